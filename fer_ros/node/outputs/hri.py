"""ROS4HRI face topics (REP-155), on with ``hri_output``: ``/humans/faces/tracked``
(hri_msgs/IdsList) and, for each tracked face, ``/humans/faces/<id>/roi``
(hri_msgs/NormalizedRegionOfInterest2D), ``/humans/faces/<id>/cropped`` (sensor_msgs/Image)
and ``/humans/faces/<id>/expression`` (hri_msgs/Expression). A face's topics are created
when its track starts and destroyed when it ends; the values come from
fer_ros/core/hri_faces.py. hri_msgs is the robot's (``ros-jazzy-hri-msgs``), never ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from rclpy.qos import QoSProfile

from fer_ros.core import hri_faces
from fer_ros.node import conversions
from fer_ros.node.outputs.base import Frame, Output

FACES = "/humans/faces"
# REP-155 topics are absolute; consumers (libhri, pyhri) subscribe with reliable, volatile
# QoS of depth 1, which these profiles match.
QOS = QoSProfile(depth=1)


def hri_refusal(params: Mapping[str, Any]) -> str:
    """"" when ``hri_output`` can run with these parameters, else the one-line reason it is
    refused: hri_msgs not importable, or tracking off (REP-155 ids are per track)."""
    if not params.get("hri_output"):
        return ""
    try:
        import hri_msgs.msg  # noqa: F401
    except ImportError:
        return ("hri_output needs the hri_msgs package (ROS4HRI, REP-155), which is not "
                "installed: sudo apt install ros-jazzy-hri-msgs (or your distro's)")
    if not params.get("tracking"):
        return "hri_output needs tracking:=true (REP-155 face ids follow tracks)"
    return ""


@dataclass
class _FaceTopics:
    roi: Any
    cropped: Any
    expression: Any


class HriOutput(Output):
    """REP-155 face topics; ``max_missed`` frames without a result end a face (as its track)."""

    def __init__(self, cropped_size: int, max_missed: int) -> None:
        from hri_msgs.msg import Expression, IdsList, NormalizedRegionOfInterest2D

        self._types = (IdsList, NormalizedRegionOfInterest2D, Expression)
        self._cropped_size = cropped_size
        self._lifetimes = hri_faces.TrackLifetimes(max_missed)
        self._faces: dict[int, _FaceTopics] = {}
        self._prefix = hri_faces.new_id_prefix()
        self._node = None
        self._tracked = None

    def open(self, node: Any) -> None:
        self._node = node
        self._tracked = node.create_publisher(self._types[0], f"{FACES}/tracked", QOS)

    def close(self, node: Any) -> None:
        if self._tracked is not None:
            self._tracked.publish(self._types[0]())  # no face is tracked any more
        for track in list(self._faces):
            self._end(track)
        if self._tracked is not None:
            node.destroy_publisher(self._tracked)
        self._tracked = None

    def topics(self) -> list[str]:
        return [f"{FACES}/tracked", f"{FACES}/<id>/{{roi,cropped,expression}}"]

    def render(self, frame: Frame) -> tuple[Frame, list]:
        """Per tracked face: (track id, roi, cropped, expression) messages."""
        _, roi_type, expression_type = self._types
        height, width = frame.bgr.shape[:2]
        faces = []
        for result in frame.results:
            if result.track_id < 0:
                continue
            xmin, ymin, xmax, ymax = hri_faces.normalized_roi(result.box, width, height)
            roi = roi_type(header=frame.header, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax,
                           c=float(result.score))
            crop = hri_faces.cropped_face(frame.bgr, result.box, self._cropped_size)
            cropped = conversions.bgr_to_image(crop, frame.header)
            mapped = hri_faces.expression(frame.labels, result.probabilities)
            expression = expression_type(header=frame.header, expression=mapped.expression,
                                         valence=mapped.valence, arousal=mapped.arousal,
                                         confidence=mapped.confidence)
            faces.append((result.track_id, roi, cropped, expression))
        return frame, faces

    def send(self, rendered: tuple[Frame, list]) -> None:
        frame, faces = rendered
        started, ended = self._lifetimes.update([f[0] for f in faces])
        for track in ended:
            self._end(track)
        for track in started:
            self._start(track)
        ids = [hri_faces.face_id(self._prefix, t) for t in self._lifetimes.alive]
        self._tracked.publish(self._types[0](header=frame.header, ids=ids))
        for track, roi, cropped, expression in faces:
            topics = self._faces[track]
            topics.roi.publish(roi)
            topics.cropped.publish(cropped)
            topics.expression.publish(expression)

    def _start(self, track: int) -> None:
        from sensor_msgs.msg import Image

        _, roi_type, expression_type = self._types
        base = f"{FACES}/{hri_faces.face_id(self._prefix, track)}"
        node = self._node
        self._faces[track] = _FaceTopics(
            roi=node.create_publisher(roi_type, f"{base}/roi", QOS),
            cropped=node.create_publisher(Image, f"{base}/cropped", QOS),
            expression=node.create_publisher(expression_type, f"{base}/expression", QOS))

    def _end(self, track: int) -> None:
        topics = self._faces.pop(track, None)
        if topics is not None:
            for pub in (topics.roi, topics.cropped, topics.expression):
                self._node.destroy_publisher(pub)
