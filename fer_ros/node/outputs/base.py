"""The one seam of the node's outputs: what the worker hands each output per frame, and the
calls every output answers. The node knows no output by name beyond building the list
(outputs/__init__.py); adding an output is a module here, not a branch in the node.

Thread model (fer_ros/node/emotion_node.py): ``open`` runs at activate; ``wanted`` and
``send`` run under the node's publish lock (deactivate destroys publishers under it, so a
publisher is never used after ``close``); ``render`` runs outside it, so drawing or cropping
never holds up a deactivate.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
from std_msgs.msg import Header

from fer_ros.core.types import FaceResult


@dataclass(frozen=True)
class Frame:
    """One processed frame: the input's header, its BGR pixels, the faces and class names."""

    header: Header
    bgr: np.ndarray
    results: list[FaceResult]
    labels: list[str]


class Output(ABC):
    """One kind of output of the node (a topic or a family of topics)."""

    @abstractmethod
    def open(self, node: Any) -> None:
        """Create the publishers (at activate)."""

    @abstractmethod
    def close(self, node: Any) -> None:
        """Destroy the publishers (at deactivate, under the publish lock)."""

    @abstractmethod
    def topics(self) -> list[str]:
        """The topic names, for the start-up log."""

    def wanted(self) -> bool:
        """Whether this frame needs ``render`` at all (under the lock; cheap)."""
        return True

    @abstractmethod
    def render(self, frame: Frame) -> Any:
        """The messages for ``frame`` (outside the lock: the costly part)."""

    @abstractmethod
    def send(self, rendered: Any) -> None:
        """Publish what ``render`` made (under the lock)."""
