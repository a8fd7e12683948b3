"""The ResNet-10 SSD face detector on its ONNX graph: right at every distance.

Each frame goes through two passes of the same network (``passes``), whose candidates are
merged by one NMS:

- **near/far pass**: the frame at up to 640x480 (aspect kept, never upscaled), so a 24-pixel
  face in a 640x480 frame reaches the network at full size (the network finds faces from
  about 20 px of its input). It answers only for faces up to ``max_face`` (0.45) of the
  frame's shorter side: on bigger ones, which lack the context around them, it also emits
  boxes on parts of the face;
- **close-up pass**: the frame padded by a quarter of its size on every side with the mean
  colour, fitted to 256x192 (small frames enlarged: the pass costs the same): a face that
  fills the frame shrinks into the range of the largest priors, with the context the network
  was trained on. It runs only when needed (``when_needed``): when the first pass found no
  face, or dropped a box as too large for it (what a close-up face gives there).

Raw boxes that lie mostly outside the frame (``min_inside``) are dropped before NMS: on
close-ups the network emits high-scoring boxes far outside the image, which clamping would
turn into phantom corner faces. Priors use the heads' true strides and the two stride-2
convolutions pad symmetrically (see ssd_export and ssd_decode), so boxes are right at every
input size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .detector_base import DetectorOptions, FaceDetector, postprocess, thresholds
from .image_codec import ensure_bgr
from .ssd_decode import decode, priors
from .ssd_runtime import SsdRuntime, make_runtime
from .types import Detection

# File names of the ONNX forms (manifest entries "ssd_onnx" and "ssd_onnx_int8")
SSD_ONNX = "opencv_face_detector_res10.onnx"  # made from ssd_tf's weights by ssd_export
SSD_ONNX_INT8 = "ssd_res10_int8.onnx"  # SSD_ONNX quantised by scripts/quantize_ssd.py
SSD_PRECISIONS = ("int8", "float")
SSD_MEAN = np.array([104.0, 177.0, 123.0], dtype=np.float32)
BLOB_ALIGN = 32  # blobs are padded (bottom/right) to multiples of this: fewer distinct shapes


@dataclass(frozen=True)
class SsdPass:
    """One pass: pad the frame by ``pad`` of its width/height on each side, then shrink it to
    fit ``max_size`` (width, height); keep boxes whose longer side is at most ``max_face`` of
    the frame's shorter side."""

    pad: float
    max_size: tuple[int, int]
    max_face: float = float("inf")
    upscale: bool = False  # may enlarge a small frame to max_size
    # run only when the earlier passes found nothing or dropped a box as too large for them
    when_needed: bool = False


DEFAULT_PASSES = (SsdPass(0.0, (640, 480), max_face=0.45),
                  SsdPass(0.25, (256, 192), upscale=True, when_needed=True))


def blob_for(bgr: np.ndarray, p: SsdPass) -> tuple[np.ndarray, float, float, float]:
    """(blob, scale, x offset, y offset): frame pixel = blob pixel / scale - offset. Also the
    input scripts/quantize_ssd.py calibrates the int8 graph on."""
    h, w = bgr.shape[:2]
    pad_x, pad_y = p.pad * w, p.pad * h
    scale = min(p.max_size[0] / (w + 2 * pad_x), p.max_size[1] / (h + 2 * pad_y))
    if not p.upscale:
        scale = min(scale, 1.0)
    rw, rh = max(int(round(w * scale)), 1), max(int(round(h * scale)), 1)
    ox, oy = int(round(pad_x * scale)), int(round(pad_y * scale))
    bw = -(-(rw + 2 * ox) // BLOB_ALIGN) * BLOB_ALIGN
    bh = -(-(rh + 2 * oy) // BLOB_ALIGN) * BLOB_ALIGN
    if (rw, rh) != (w, h):
        bgr = cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_AREA if scale < 1
                         else cv2.INTER_LINEAR)
    if (bw, bh) != (rw, rh):  # the mean colour around it: zero once the mean is subtracted
        bgr = cv2.copyMakeBorder(bgr, oy, bh - rh - oy, ox, bw - rw - ox, cv2.BORDER_CONSTANT,
                                 value=SSD_MEAN.tolist())
    blob = cv2.dnn.blobFromImage(bgr, 1.0, (bw, bh), SSD_MEAN.tolist(), swapRB=False, crop=False)
    sx, sy = rw / w, rh / h
    return blob, (sx + sy) / 2, ox / sx, oy / sy


class SsdOnnxFaceDetector:
    """OpenCV's ResNet-10 SSD weights, run as ONNX on ``runtime`` (see ssd_runtime).

    Arguments left out take the parameters' defaults (``ssd_threshold``, ``nms_threshold``,
    ``min_face_size``)."""

    def __init__(
        self,
        runtime: SsdRuntime,
        score_threshold: float | None = None,
        nms_threshold: float | None = None,
        min_size: int | None = None,
        passes: tuple[SsdPass, ...] = DEFAULT_PASSES,
        min_inside: float = 0.6,
    ) -> None:
        score_threshold, nms_threshold, min_size = thresholds(
            score_threshold, nms_threshold, min_size, "ssd_threshold")
        if not passes:
            raise ValueError("the SSD needs at least one pass")
        self.runtime = runtime
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.min_size = int(min_size)
        self.passes = tuple(passes)
        self.min_inside = float(min_inside)

    def candidates(self, bgr: np.ndarray, p: SsdPass) -> tuple[np.ndarray, np.ndarray, bool]:
        """Frame-pixel corners (N, 4) and scores (N,) of one pass, before NMS, and whether a
        box was dropped as larger than the pass's ``max_face``."""
        h, w = bgr.shape[:2]
        blob, scale, ox, oy = blob_for(bgr, p)
        loc, conf = self.runtime(blob)
        keep = np.flatnonzero(conf[:, 1] >= self.score_threshold)
        if keep.size == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), False
        bh, bw = blob.shape[2:]
        boxes = decode(loc[keep], priors(bw, bh)[keep])
        corners = boxes * np.array([bw, bh, bw, bh], dtype=np.float32) / scale
        corners -= np.array([ox, oy, ox, oy], dtype=np.float32)
        # drop boxes mostly outside the frame (phantoms on close-ups)
        ix = np.clip(corners[:, 2], 0, w) - np.clip(corners[:, 0], 0, w)
        iy = np.clip(corners[:, 3], 0, h) - np.clip(corners[:, 1], 0, h)
        area = np.maximum(corners[:, 2] - corners[:, 0], 1e-6) * np.maximum(
            corners[:, 3] - corners[:, 1], 1e-6)
        inside = np.clip(ix, 0, None) * np.clip(iy, 0, None) / area
        side = np.maximum(corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1])
        in_frame = inside >= self.min_inside
        small_enough = side <= p.max_face * min(w, h)
        ok = in_frame & small_enough
        return corners[ok], conf[keep, 1][ok], bool((in_frame & ~small_enough).any())

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        """Faces in a BGR (or grayscale) uint8 image, highest score first."""
        bgr = ensure_bgr(bgr)
        h, w = bgr.shape[:2]
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        found, too_big = 0, False
        for p in self.passes:
            if p.when_needed and found and not too_big:
                continue
            c, s, big = self.candidates(bgr, p)
            parts.append((c, s))
            found += len(s)
            too_big |= big
        corners = np.concatenate([c for c, _ in parts])
        scores = np.concatenate([s for _, s in parts])
        return postprocess(corners, scores, w, h, self.score_threshold, self.nms_threshold,
                           self.min_size)


def build(options: DetectorOptions) -> FaceDetector:
    """The registered builder (fer_ros.core.detector): ``precision`` picks the int8 or float
    ONNX graph; ``runtime``, ``threads`` and ``device`` how it runs (ssd_runtime.py)."""
    from .errors import ConfigError
    from .model_files import resolve_model

    if options.precision not in SSD_PRECISIONS:
        raise ConfigError(f"unknown ssd_precision {options.precision!r}: use one of "
                          f"{', '.join(SSD_PRECISIONS)}")
    model = resolve_model(SSD_ONNX_INT8 if options.precision == "int8" else SSD_ONNX)
    runtime = make_runtime(options.runtime, model, options.threads, options.device)
    return SsdOnnxFaceDetector(runtime, options.score_threshold, options.nms_threshold,
                               options.min_size)
