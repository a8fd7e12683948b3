"""ROS4HRI (REP-155) face data from our results, ROS-free: face ids, normalised ROIs, the
cropped face image, and our labels mapped onto ``hri_msgs/Expression`` with valence/arousal.

The message side is fer_ros/node/outputs/hri.py; everything that decides a value lives here
so that it is tested without ROS. docs/ros4hri.md documents the mapping.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .types import Box

# our class names -> hri_msgs/Expression constants (REP-155 spells the adjectives)
EXPRESSION_OF_LABEL: dict[str, str] = {
    "neutral": "neutral",
    "happy": "happy",
    "sad": "sad",
    "angry": "angry",
    "surprise": "surprised",
    "disgust": "disgusted",
    "fear": "scared",
}
# (valence, arousal) of each class: its place on Russell's circumplex of affect (1980), in
# [-1, 1]. A convention that turns class probabilities into a 2-D signal, not a regressor
# trained on valence/arousal labels. contempt has no Expression constant but a place here.
CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "happy": (0.8, 0.4),
    "surprise": (0.2, 0.8),
    "fear": (-0.6, 0.6),
    "angry": (-0.6, 0.7),
    "disgust": (-0.7, 0.3),
    "sad": (-0.7, -0.4),
    "contempt": (-0.5, 0.2),
}
CROPPED_SIZE = 128  # REP-155's default /humans/faces/width and height


@dataclass(frozen=True)
class HriExpression:
    """What goes into hri_msgs/Expression."""

    expression: str
    valence: float
    arousal: float
    confidence: float


def expression(labels: Sequence[str], probabilities: np.ndarray) -> HriExpression:
    """The Expression of one face: the most probable of our classes that has an Expression
    constant (a class without one, contempt, never wins: it only moves valence/arousal), its
    probability as confidence, and valence/arousal as the probability-weighted mean of the
    classes' :data:`CIRCUMPLEX` places (classes without a place count as (0, 0))."""
    probs = np.asarray(probabilities, dtype=np.float64)
    mappable = [i for i, name in enumerate(labels) if name in EXPRESSION_OF_LABEL]
    best = max(mappable, key=lambda i: probs[i]) if mappable else None
    places = np.array([CIRCUMPLEX.get(name, (0.0, 0.0)) for name in labels], dtype=np.float64)
    valence, arousal = np.clip(probs @ places, -1.0, 1.0) if len(labels) else (0.0, 0.0)
    if best is None:
        return HriExpression("", float(valence), float(arousal), 0.0)
    return HriExpression(EXPRESSION_OF_LABEL[labels[best]], float(valence), float(arousal),
                         float(np.clip(probs[best], 0.0, 1.0)))


def normalized_roi(box: Box, width: int, height: int) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of a pixel box as fractions of the image, in [0, 1]."""
    clip = lambda v: float(min(max(v, 0.0), 1.0))  # noqa: E731
    return (clip(box.x / width), clip(box.y / height), clip((box.x + box.w) / width),
            clip((box.y + box.h) / height))


def cropped_face(bgr: np.ndarray, box: Box, size: int = CROPPED_SIZE) -> np.ndarray:
    """The face as REP-155's ``cropped`` image: the square around the box (side = its longer
    side, centred on it), the part outside the frame filled with black (0-padded), scaled to
    ``size`` x ``size``, BGR uint8."""
    height, width = bgr.shape[:2]
    side = max(box.w, box.h, 1)
    cx, cy = box.center
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    square = np.zeros((side, side, 3), dtype=np.uint8)
    sx1, sy1 = max(x0, 0), max(y0, 0)
    sx2, sy2 = min(x0 + side, width), min(y0 + side, height)
    if sx2 > sx1 and sy2 > sy1:
        square[sy1 - y0:sy2 - y0, sx1 - x0:sx2 - x0] = bgr[sy1:sy2, sx1:sx2]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interp)


def new_id_prefix(rng: random.Random | None = None) -> str:
    """Four random lowercase letters: REP-155 ids must not be reused, and track ids restart
    at 0 with every (re)activation of the node, so each activation gets its own prefix."""
    rng = rng or random.SystemRandom()
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(4))


def face_id(prefix: str, track_id: int) -> str:
    """The REP-155 face id of a track: a valid ROS name token (starts with a letter)."""
    return f"{prefix}{track_id}"


class TrackLifetimes:
    """Which face ids are alive: an id starts with its first result and ends after
    ``max_missed`` + 1 processed frames without one (the tracker's own rule, so the id lives
    as long as the track does)."""

    def __init__(self, max_missed: int) -> None:
        self.max_missed = max_missed
        self._missed: dict[int, int] = {}

    def update(self, seen: Sequence[int]) -> tuple[list[int], list[int]]:
        """Record one frame's track ids; returns (started, ended) track ids."""
        started = [t for t in seen if t not in self._missed]
        ended = []
        for track in list(self._missed):
            if track in seen:
                continue
            self._missed[track] += 1
            if self._missed[track] > self.max_missed:
                del self._missed[track]
                ended.append(track)
        for track in seen:
            self._missed[track] = 0
        return started, ended

    @property
    def alive(self) -> list[int]:
        """The live track ids, oldest first."""
        return sorted(self._missed)
