"""Error types of the core: each carries a message meant for the person running it."""


class FerError(Exception):
    """Base class of fer_ros errors."""


class ModelError(FerError):
    """A model file is missing, corrupt, fails its sha256 check, or does not fit."""


class ImageError(FerError):
    """An image cannot be decoded or converted (bad encoding, size, step or data)."""


class ConfigError(FerError):
    """A parameter value is invalid."""


def one_line_error(exc: BaseException) -> str:
    """``exc`` as one line for the person running it: a FerError's own message, any other
    exception's type and message (``ValueError: ...``), whitespace and newlines collapsed."""
    text = " ".join(str(exc).split())
    if isinstance(exc, FerError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
