"""``emotions`` (fer_msgs/EmotionArray): every face of every processed frame, always on."""

from __future__ import annotations

from typing import Any

from fer_msgs.msg import EmotionArray
from fer_ros.node import conversions
from fer_ros.node.outputs.base import Frame, Output


class EmotionsOutput(Output):
    """One EmotionArray per processed frame (also when it holds no face)."""

    def __init__(self) -> None:
        self._pub = None

    def open(self, node: Any) -> None:
        self._pub = node.create_publisher(EmotionArray, "emotions", 10)

    def close(self, node: Any) -> None:
        if self._pub is not None:
            node.destroy_publisher(self._pub)
        self._pub = None

    def topics(self) -> list[str]:
        return [self._pub.topic_name] if self._pub is not None else []

    def render(self, frame: Frame) -> EmotionArray:
        return conversions.results_to_msg(frame.results, frame.labels, frame.header)

    def send(self, rendered: EmotionArray) -> None:
        self._pub.publish(rendered)
