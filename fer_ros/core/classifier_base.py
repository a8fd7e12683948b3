"""The interface the pipeline needs from an expression classifier.

``classifier.EmotionClassifier`` (a self-describing PyTorch checkpoint) is the one shipped;
another implementation (a different runtime or network) is one module with a class like
this, built by ``factory.build_classifier``.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from .types import Box


class FaceClassifier(Protocol):
    """Expression probabilities for face boxes of a BGR frame.

    ``crop_margin`` and ``flip_tta`` may be changed between frames (live parameters)."""

    labels: list[str]  # class names, in the order of every probability vector
    crop_margin: float
    flip_tta: bool

    def classify(self, bgr: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """Probabilities (N, len(labels)) float32 for the N ``boxes``, each row summing to 1."""
        ...
