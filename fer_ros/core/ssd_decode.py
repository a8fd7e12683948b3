"""Prior boxes and box decoding of the ResNet-10 SSD face detector, for any input size.

The six heads' priors follow Caffe's / OpenCV's ``PriorBox`` (per cell: the min-size square,
the sqrt(min * max) square, then each aspect ratio and its flip), with the heads' true strides
(8, 16, 32, 64, 64, 64). The original ``.pbtxt`` hard-wires steps 100 and 300 for the last two
heads, right only for a 300x300 blob; :data:`PBTXT_STEPS` keeps those for the reference check.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class HeadSpec:
    """One SSD head: its feature-map stride and its PriorBox parameters (input pixels)."""

    stride: int
    min_size: float
    max_size: float
    aspect_ratios: tuple[float, ...]


HEADS: tuple[HeadSpec, ...] = (
    HeadSpec(8, 30, 60, (2.0,)),
    HeadSpec(16, 60, 111, (2.0, 3.0)),
    HeadSpec(32, 111, 162, (2.0, 3.0)),
    HeadSpec(64, 162, 213, (2.0, 3.0)),
    HeadSpec(64, 213, 264, (2.0,)),
    HeadSpec(64, 264, 315, (2.0,)),
)
PBTXT_STEPS: tuple[float, ...] = (8, 16, 32, 64, 100, 300)  # what the original graph uses
VARIANCE = np.array([0.1, 0.1, 0.2, 0.2], dtype=np.float32)


def feature_size(n: int, stride: int) -> int:
    """Side of a head's feature map for an input side ``n``: every stride-2 layer of the
    network gives ceil(n / 2)."""
    for _ in range(int(np.log2(stride))):
        n = (n + 1) // 2
    return n


def _head_priors(spec: HeadSpec, step: float, width: int, height: int) -> np.ndarray:
    """(H * W * k, 4) priors [cx, cy, w, h] normalised by the input size."""
    fw, fh = feature_size(width, spec.stride), feature_size(height, spec.stride)
    sizes = [(spec.min_size, spec.min_size)]
    big = float(np.sqrt(spec.min_size * spec.max_size))
    sizes.append((big, big))
    for ar in spec.aspect_ratios:
        r = float(np.sqrt(ar))
        sizes += [(spec.min_size * r, spec.min_size / r), (spec.min_size / r, spec.min_size * r)]
    wh = np.array(sizes, dtype=np.float32) / np.array([width, height], dtype=np.float32)
    cx = (np.arange(fw, dtype=np.float32) + 0.5) * step / width
    cy = (np.arange(fh, dtype=np.float32) + 0.5) * step / height
    gx, gy = np.meshgrid(cx, cy)  # (fh, fw)
    centers = np.stack([gx, gy], -1).reshape(-1, 1, 2)
    k = len(sizes)
    out = np.concatenate([np.broadcast_to(centers, (len(centers), k, 2)),
                          np.broadcast_to(wh, (len(centers), k, 2))], axis=-1)
    return out.reshape(-1, 4)


@lru_cache(maxsize=16)
def priors(width: int, height: int, steps: tuple[float, ...] | None = None) -> np.ndarray:
    """All priors (P, 4) [cx, cy, w, h] for a ``width`` x ``height`` input, in the network's
    output order; ``steps`` defaults to the true strides."""
    steps = steps or tuple(float(h.stride) for h in HEADS)
    out = np.concatenate([_head_priors(h, s, width, height) for h, s in zip(HEADS, steps)])
    out.setflags(write=False)
    return out


def decode(loc: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """CENTER_SIZE decoding: offsets (P, 4) + priors (P, 4) -> corners (P, 4)
    [x1, y1, x2, y2] normalised by the input size."""
    cxcy = prior[:, :2] + loc[:, :2] * VARIANCE[:2] * prior[:, 2:]
    wh = prior[:, 2:] * np.exp(np.minimum(loc[:, 2:] * VARIANCE[2:], 10.0))
    return np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1)
