"""Expression classifier: face crops -> class probabilities with the trained CNN.

Preprocessing is :func:`preprocess_faces`: :func:`crop_faces` (crop -> gray -> resize) then
``checkpoint.normalize_batch``, the one normalisation shared with training and evaluation, so
all three see identical inputs.
"""

from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np
import torch

from .checkpoint import load_checkpoint, network_from_checkpoint, normalize_batch, wants_flip_tta
from .classifier_runtime import make_network_runtime
from .network import flip_averaged, fold_batch_norm
from ..params import or_default
from .errors import ConfigError
from .image_codec import ensure_bgr
from .types import Box


def crop_region(box: Box, margin: float) -> Box:
    """The square region cropped for a face (may extend beyond the image): centred on the box,
    side = longer box side * (1 + 2 * margin), i.e. ``margin`` of the box size on each side.

    Square, because FER2013's faces are square crops: a square around the detector's box frames
    a face the way the training data does, without stretching it. The margin that matches
    FER2013's face scale depends on the detector's boxes (``training/measure_crops.py``).
    """
    cx, cy = box.center
    side = max(box.w, box.h) * (1.0 + 2.0 * margin)
    x, y = int(round(cx - side / 2)), int(round(cy - side / 2))
    return Box(x, y, int(round(side)), int(round(side)))


def crop_faces(bgr: np.ndarray, boxes: Sequence[Box], input_size: int, margin: float) -> np.ndarray:
    """Gray face crops (N, input_size, input_size) uint8: the :func:`crop_region` of each box,
    clamped to the image (the part outside is filled by replicating the edge pixels, so the
    face is never distorted), converted to gray, resized (INTER_AREA when shrinking)."""
    bgr = ensure_bgr(bgr)
    height, width = bgr.shape[:2]
    out = np.empty((len(boxes), input_size, input_size), dtype=np.uint8)
    for i, box in enumerate(boxes):
        r = crop_region(box, margin)
        x1, y1 = max(r.x, 0), max(r.y, 0)
        x2, y2 = min(r.x + r.w, width), min(r.y + r.h, height)
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"face box {box.as_list()} lies outside the {width}x{height} image")
        gray = cv2.cvtColor(bgr[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
        if (x1, y1, x2, y2) != (r.x, r.y, r.x + r.w, r.y + r.h):
            gray = cv2.copyMakeBorder(gray, y1 - r.y, r.y + r.h - y2, x1 - r.x, r.x + r.w - x2,
                                      cv2.BORDER_REPLICATE)
        interp = cv2.INTER_AREA if r.w > input_size else cv2.INTER_LINEAR
        out[i] = cv2.resize(gray, (input_size, input_size), interpolation=interp)
    return out


def preprocess_faces(
    bgr: np.ndarray,
    boxes: Sequence[Box],
    normalization: dict[str, float],
    input_size: int = 48,
    margin: float = 0.1,
) -> torch.Tensor:
    """Face boxes of a BGR (or gray) image -> the normalised (N, 1, S, S) float batch the
    network takes: :func:`crop_faces` then ``checkpoint.normalize_batch`` (``normalization``
    is the checkpoint's {"mean", "std"})."""
    return normalize_batch(crop_faces(bgr, boxes, input_size, margin), normalization)


def _device(name: str) -> torch.device:
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available: use 'cpu'")
        return torch.device(name)
    raise ConfigError(f"unknown device {name!r}: use 'cpu' or 'cuda'")


class EmotionClassifier:
    """Classifies face crops with a self-describing checkpoint (labels, input size,
    normalisation and softmax temperature all come from the checkpoint).

    ``device``, ``crop_margin``, ``flip_tta``, ``bf16`` and ``runtime`` left out take the
    defaults of the parameters ``device``, ``crop_margin``, ``flip_tta``, ``classifier_bf16``
    and ``classifier_runtime`` (fer_ros.core.classifier_runtime: which runs the network).
    Keyword-only extras: ``num_threads`` sets the runtime's threads (torch's intra-op threads
    for the whole process; default 1: a batch of a few 48x48 faces gains little from more, and
    OpenMP threads stall badly when another process or OpenCV's pool holds the cores; None
    leaves the runtime's own choice, e.g. for bulk evaluation); ``bf16`` runs the network
    under bfloat16 autocast in torch, as training's validation does: faster on CPUs with
    native bf16 (AVX512-BF16/AMX), slower elsewhere, with nearly the same predictions as fp32.
    """

    def __init__(
        self,
        checkpoint_path: str | os.PathLike[str],
        device: str | None = None,
        crop_margin: float | None = None,
        flip_tta: bool | None = None,
        *,
        num_threads: int | None = 1,
        bf16: bool | None = None,
        runtime: str | None = None,
    ) -> None:
        device = or_default(device, "device")
        crop_margin = or_default(crop_margin, "crop_margin")
        flip_tta = or_default(flip_tta, "flip_tta")
        bf16 = or_default(bf16, "classifier_bf16")
        runtime = or_default(runtime, "classifier_runtime")
        if not 0.0 <= crop_margin <= 1.0:
            raise ConfigError(f"crop_margin must be in [0, 1], got {crop_margin}")
        self.device = _device(device)
        ckpt = load_checkpoint(checkpoint_path)
        self.checkpoint_path = str(checkpoint_path)
        self.labels: list[str] = list(ckpt["labels"])
        self.input_size = int(ckpt["input_size"])
        self.normalization = {k: float(ckpt["normalization"][k]) for k in ("mean", "std")}
        self.temperature = float(ckpt.get("temperature", 1.0))  # checked finite and > 0
        self.crop_margin = float(crop_margin)
        # on when asked for, or when the checkpoint was selected and calibrated with it
        self.flip_tta = bool(flip_tta) or wants_flip_tta(ckpt)
        self.bf16 = bool(bf16)
        if num_threads is not None and num_threads > 0:
            torch.set_num_threads(int(num_threads))
        # batch norm folded into the convolutions (nothing compiled or cached on disk, so a
        # rebuild frees the old model)
        self.network = make_network_runtime(
            runtime, fold_batch_norm(network_from_checkpoint(ckpt)), device=self.device,
            bf16=self.bf16, in_channels=int(ckpt["arch"].get("in_channels", 1)),
            input_size=self.input_size, threads=num_threads)

    @property
    def runtime(self) -> str:
        """Which runtime runs the network and, when ``auto`` chose it, why (for logs)."""
        return self.network.choice

    def classify(self, bgr: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """Probabilities (N, C) float32 for the faces in ``boxes`` (one forward pass for all)."""
        if len(boxes) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return self.predict(crop_faces(bgr, boxes, self.input_size, self.crop_margin))

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities (N, C) float32 for gray uint8 face images (N, S, S) already cropped to
        the checkpoint's input size (e.g. FER2013 arrays)."""
        if faces.ndim != 3 or faces.shape[1:] != (self.input_size, self.input_size):
            raise ValueError(
                f"faces must be (N, {self.input_size}, {self.input_size}) uint8, got {faces.shape}"
            )
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        x = normalize_batch(faces, self.normalization)
        # flip averaging: one pass for the faces and their mirror images
        logits = flip_averaged(self.network, x) if self.flip_tta else self.network(x)
        probs = torch.softmax(logits / self.temperature, dim=1)
        return probs.numpy().astype(np.float32, copy=False)
