"""``annotated_image`` (sensor_msgs/Image): the frame with boxes and labels drawn, made only
while ``publish_annotated`` is on and somebody subscribes (drawing costs a few ms a frame)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from fer_ros.core.drawing import draw_results
from fer_ros.node import conversions
from fer_ros.node.outputs.base import Frame, Output


class AnnotatedImageOutput(Output):
    """The annotated image; ``params`` gives the node's live parameters."""

    def __init__(self, params: Callable[[], Mapping[str, Any]]) -> None:
        self._params = params
        self._pub = None

    def open(self, node: Any) -> None:
        self._pub = node.create_publisher(Image, "annotated_image", qos_profile_sensor_data)

    def close(self, node: Any) -> None:
        if self._pub is not None:
            node.destroy_publisher(self._pub)
        self._pub = None

    def topics(self) -> list[str]:
        if self._pub is None or not self._params()["publish_annotated"]:
            return []
        return [self._pub.topic_name]

    def wanted(self) -> bool:
        return (self._params()["publish_annotated"] and self._pub is not None
                and self._pub.get_subscription_count() > 0)

    def render(self, frame: Frame) -> Image:
        return conversions.bgr_to_image(draw_results(frame.bgr, frame.results), frame.header)

    def send(self, rendered: Image) -> None:
        self._pub.publish(rendered)
