"""Error types of the core: each carries a message meant for the person running it."""


class FerError(Exception):
    """Base class of fer_ros errors."""


class ModelError(FerError):
    """A model file is missing, corrupt, fails its sha256 check, or does not fit."""


class ImageError(FerError):
    """An image cannot be decoded or converted (bad encoding, size, step or data)."""


class ConfigError(FerError):
    """A parameter value is invalid."""
