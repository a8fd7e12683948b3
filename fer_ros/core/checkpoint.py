"""Self-describing classifier checkpoints: weights plus everything needed to use them.

A checkpoint is a plain dict (loadable with ``torch.load(weights_only=True)``)::

    format: "fer_ros.classifier/1"
    arch: network description (see network.DEFAULT_ARCH)
    labels: class names in output order
    input_size: side of the square input (pixels)
    color: "gray"
    normalization: {"mean": float, "std": float} on [0, 1] pixel values
    temperature: softmax temperature fitted on PublicTest (1.0 = uncalibrated)
    flip_tta: (optional, default False) the model was selected and calibrated for flip
        test-time augmentation: inference always averages it with the mirrored face
    model: state_dict
    meta: training config, epoch, seed, PublicTest accuracy, data sha256, ...
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ModelError
from .file_checks import require_file
from .network import DEFAULT_ARCH, EmotionNet, build_network

FORMAT = "fer_ros.classifier/1"
REQUIRED_KEYS = ("format", "arch", "labels", "input_size", "color", "normalization", "model")
# Bounds a checkpoint must stay within (the shipped ones: widths up to 256, 4 blocks of 2
# convolutions, 48 px input, 1.17 M parameters); beyond them it is refused, not built.
MAX_BLOCKS = 8
MAX_WIDTH = 4096
MAX_INPUT_SIZE = 1024
MAX_PARAMETERS = 100_000_000


def make_checkpoint(
    model: EmotionNet,
    labels: list[str],
    normalization: dict[str, float],
    meta: dict[str, Any],
    input_size: int = 48,
    temperature: float = 1.0,
    flip_tta: bool = False,
) -> dict[str, Any]:
    """Bundle a trained network with its labels, preprocessing and training metadata."""
    if len(labels) != model.num_classes:
        raise ValueError(f"{len(labels)} labels for a {model.num_classes}-output network")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    return {
        "format": FORMAT,
        "arch": dict(model.arch),
        "labels": list(labels),
        "input_size": int(input_size),
        "color": "gray",
        "normalization": {"mean": float(normalization["mean"]), "std": float(normalization["std"])},
        "temperature": float(temperature),
        "flip_tta": bool(flip_tta),
        "model": state,
        "meta": meta,
    }


def save_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write atomically (temp file + rename), so a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate a checkpoint (weights_only: no code is executed from the file).

    Every problem is a ModelError in one line naming the file and what is wrong with it
    (see :func:`validate_checkpoint`)."""
    path = require_file(path, "classifier checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise ModelError(f"classifier checkpoint {path} is unreadable or corrupt: "
                         f"{_first_line(exc)}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelError(f"{path} is not a fer_ros classifier checkpoint (format {FORMAT})")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise ModelError(f"{path}: checkpoint lacks {missing}")
    validate_checkpoint(ckpt, str(path))
    return ckpt


def validate_checkpoint(ckpt: dict[str, Any], where: str = "checkpoint") -> None:
    """Raise ModelError ("<where>: <what is wrong>") unless the checkpoint describes a network
    this package can build and run: a known architecture with sane sizes, 2+ distinct string
    labels matching the network's outputs, a gray input of a usable size, a finite
    normalisation with std > 0, a finite temperature > 0, a boolean flip_tta, and weights of the right shapes with
    no NaN or infinite value. Nothing is allocated for the network (shapes are checked on
    torch's meta device)."""
    try:
        _check_arch(ckpt["arch"])
        _check_labels(ckpt["labels"])
        _check_input(ckpt, len({**DEFAULT_ARCH, **ckpt["arch"]}["widths"]))
        _check_weights(ckpt)
    except ModelError as exc:
        raise ModelError(f"{where}: {exc}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _short(value: Any, limit: int = 60) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _check_arch(arch: Any) -> None:
    if not isinstance(arch, dict):
        raise ModelError(f"arch must be a dict, got {_short(arch)}")
    unknown = sorted(str(k) for k in arch if k not in DEFAULT_ARCH)
    if unknown:
        raise ModelError(f"unknown arch key(s) {', '.join(unknown)} (known: {', '.join(DEFAULT_ARCH)})")
    arch = {**DEFAULT_ARCH, **arch}
    if arch["name"] != "vgg":
        raise ModelError(f"unknown architecture {_short(arch['name'])} (known: 'vgg')")
    if arch["in_channels"] != 1 or not _is_int(arch["in_channels"]):
        raise ModelError(f"arch in_channels must be 1 (gray input), got {_short(arch['in_channels'])}")
    widths = arch["widths"]
    if (not isinstance(widths, list) or not 1 <= len(widths) <= MAX_BLOCKS
            or not all(_is_int(w) and 1 <= w <= MAX_WIDTH for w in widths)):
        raise ModelError(f"arch widths must be a list of 1 to {MAX_BLOCKS} integers from 1 to "
                         f"{MAX_WIDTH}, got {_short(widths)}")
    convs = arch["convs_per_block"]
    if not _is_int(convs) or not 1 <= convs <= MAX_BLOCKS:
        raise ModelError(f"arch convs_per_block must be an integer from 1 to {MAX_BLOCKS}, "
                         f"got {_short(convs)}")
    dropout = arch["dropout"]
    if not _is_real(dropout) or not 0.0 <= dropout < 1.0:
        raise ModelError(f"arch dropout must be a number in [0, 1), got {_short(dropout)}")


def _check_labels(labels: Any) -> None:
    if (not isinstance(labels, list) or len(labels) < 2
            or not all(isinstance(x, str) and x.strip() for x in labels)):
        raise ModelError(f"labels must be a list of 2 or more non-empty strings, got {_short(labels)}")
    if len(set(labels)) != len(labels):
        raise ModelError(f"labels must be distinct, got {_short(labels)}")


def _check_input(ckpt: dict[str, Any], blocks: int) -> None:
    size, smallest = ckpt["input_size"], 2 ** blocks  # each block halves the image
    if not _is_int(size) or not smallest <= size <= MAX_INPUT_SIZE:
        raise ModelError(f"input_size must be an integer from {smallest} (for {blocks} pooling "
                         f"blocks) to {MAX_INPUT_SIZE}, got {_short(size)}")
    if ckpt["color"] != "gray":
        raise ModelError(f"color must be 'gray', got {_short(ckpt['color'])}")
    norm = ckpt["normalization"]
    if not isinstance(norm, dict) or not {"mean", "std"} <= set(norm):
        raise ModelError(f"normalization must hold 'mean' and 'std', got {_short(norm)}")
    for key in ("mean", "std"):
        if not _is_real(norm[key]):
            raise ModelError(f"normalization {key} must be a finite number, got {_short(norm[key])}")
    if not norm["std"] > 0:
        raise ModelError(f"normalization std must be > 0, got {_short(norm['std'])}")
    temperature = ckpt.get("temperature", 1.0)
    if not _is_real(temperature) or not temperature > 0:
        raise ModelError(f"temperature must be a finite number > 0, got {_short(temperature)}")
    if not isinstance(ckpt.get("flip_tta", False), bool):
        raise ModelError(f"flip_tta must be true or false, got {_short(ckpt['flip_tta'])}")


def wants_flip_tta(ckpt: dict[str, Any]) -> bool:
    """Whether the checkpoint asks to be run with flip test-time augmentation."""
    return bool(ckpt.get("flip_tta", False))


def _check_weights(ckpt: dict[str, Any]) -> None:
    state, labels = ckpt["model"], ckpt["labels"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError("model must be a state_dict (a dict of tensors)")
    with torch.device("meta"):  # the shapes only: nothing is allocated
        net = build_network(ckpt["arch"], num_classes=len(labels))
    expected = net.state_dict()
    if sum(t.numel() for t in expected.values()) > MAX_PARAMETERS:
        raise ModelError(f"the network would have over {MAX_PARAMETERS:,} parameters")
    last = output_layer_of(net)
    head = state.get(f"{last}.weight")
    if head is not None and head.ndim == 2 and head.shape[0] != len(labels):
        raise ModelError(f"{len(labels)} labels but the network has {head.shape[0]} outputs")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ModelError("weights do not match the architecture: "
                         + (f"missing {', '.join(missing[:3])}" if missing else "")
                         + ("; " if missing and unexpected else "")
                         + (f"unexpected {', '.join(unexpected[:3])}" if unexpected else "")
                         + (" ..." if len(missing) > 3 or len(unexpected) > 3 else ""))
    for name, want in expected.items():
        got = state[name]
        if tuple(got.shape) != tuple(want.shape):
            raise ModelError(f"weights do not match the architecture: {name} has shape "
                             f"{list(got.shape)}, the architecture needs {list(want.shape)}")
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise ModelError(f"weights contain NaN or infinite values ({name})")


def output_layer_of(net: torch.nn.Module) -> str:
    """Name of the network's last Linear layer: the class scores (one row per label)."""
    return [name for name, m in net.named_modules() if isinstance(m, torch.nn.Linear)][-1]


def output_layer(ckpt: dict[str, Any]) -> str:
    """Name of the output layer in a checkpoint's state_dict (``{name}.weight``/``.bias``)."""
    with torch.device("meta"):
        return output_layer_of(build_network(ckpt["arch"], num_classes=len(ckpt["labels"])))


def network_from_checkpoint(ckpt: dict[str, Any]) -> EmotionNet:
    """Rebuild the network and load its weights (a checkpoint from :func:`load_checkpoint` is
    already validated, so the weights fit)."""
    model = build_network(ckpt["arch"], num_classes=len(ckpt["labels"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise ModelError(f"checkpoint weights do not match its architecture/labels: "
                         f"{' '.join(str(exc).split())[:300]}") from exc
    return model.eval()


def normalize_batch(gray: np.ndarray, normalization: dict[str, float]) -> torch.Tensor:
    """uint8 faces (N, H, W) -> float tensor (N, 1, H, W): ``(x / 255 - mean) / std``.

    The one definition of input normalisation, used by training, evaluation and inference.
    """
    x = torch.from_numpy(np.ascontiguousarray(gray)).float().div_(255.0).unsqueeze(1)
    return x.sub_(normalization["mean"]).div_(normalization["std"])
