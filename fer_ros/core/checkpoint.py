"""Self-describing classifier checkpoints: weights plus everything needed to use them.

A checkpoint is a plain dict (loadable with ``torch.load(weights_only=True)``)::

    format: "fer_ros.classifier/1"
    arch: network description (see network.DEFAULT_ARCH)
    labels: class names in output order
    input_size: side of the square input (pixels)
    color: "gray"
    normalization: {"mean": float, "std": float} on [0, 1] pixel values
    temperature: softmax temperature fitted on PublicTest (1.0 = uncalibrated)
    model: state_dict
    meta: training config, epoch, seed, PublicTest accuracy, data sha256, ...
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ModelError
from .network import EmotionNet, build_network

FORMAT = "fer_ros.classifier/1"
REQUIRED_KEYS = ("format", "arch", "labels", "input_size", "color", "normalization", "model")


def make_checkpoint(
    model: EmotionNet,
    labels: list[str],
    normalization: dict[str, float],
    meta: dict[str, Any],
    input_size: int = 48,
    temperature: float = 1.0,
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
    """Load and validate a checkpoint (weights_only: no code is executed from the file)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"classifier checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise ModelError(f"classifier checkpoint {path} is unreadable or corrupt: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelError(f"{path} is not a fer_ros classifier checkpoint (format {FORMAT})")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise ModelError(f"{path}: checkpoint lacks {missing}")
    return ckpt


def network_from_checkpoint(ckpt: dict[str, Any]) -> EmotionNet:
    """Rebuild the network and load its weights; the label count must match its outputs."""
    labels = ckpt["labels"]
    model = build_network(ckpt["arch"], num_classes=len(labels))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise ModelError(f"checkpoint weights do not match its architecture/labels: {exc}") from exc
    return model.eval()


def normalize_batch(gray: np.ndarray, normalization: dict[str, float]) -> torch.Tensor:
    """uint8 faces (N, H, W) -> float tensor (N, 1, H, W): ``(x / 255 - mean) / std``.

    The one definition of input normalisation, used by training, evaluation and inference.
    """
    x = torch.from_numpy(np.ascontiguousarray(gray)).float().div_(255.0).unsqueeze(1)
    return x.sub_(normalization["mean"]).div_(normalization["std"])
