"""The emotion node as a separate process over real Fast DDS (random domain, localhost)."""

from __future__ import annotations

import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")
pytest.importorskip("fer_msgs.msg", reason="fer_msgs is not built (run `make setup`)")

from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from conftest import REPO_ROOT, SHARED_DIR, child_env, stop_process  # noqa: E402
from fer_msgs.msg import EmotionArray  # noqa: E402
from fer_ros.node.conversions import bgr_to_image  # noqa: E402
from fer_ros.core.frame_reader import letterbox  # noqa: E402

SAMPLES = SHARED_DIR / "samples"
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/samples is absent")
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def start_node(*ros_args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fer_ros.node.emotion_node", "--ros-args", *ros_args],
        env=child_env(), cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def sample(name: str) -> np.ndarray:
    return letterbox(cv2.imread(str(SAMPLES / name)), 640, 480)


class Exchange:
    """Publishes images to the node and collects its EmotionArray answers by stamp."""

    def __init__(self, ros, image_topic: str, emotions_topic: str, compressed: bool = False):
        self.ros = ros
        node = ros.node
        self.compressed = compressed
        msg_type = CompressedImage if compressed else Image
        self.pub = node.create_publisher(msg_type, image_topic, qos_profile_sensor_data)
        self.answers: dict[tuple[int, int], EmotionArray] = {}
        self.sub = node.create_subscription(
            EmotionArray, emotions_topic,
            lambda m: self.answers.setdefault((m.header.stamp.sec, m.header.stamp.nanosec), m),
            RELIABLE)
        self._sec = 1000

    def ask(self, bgr: np.ndarray, child, frame_id: str = "test_cam", timeout: float = 60.0):
        """Publish ``bgr`` (re-sending, best effort) until the answer with its stamp arrives."""
        self.ros.wait_for_subscribers(self.pub, timeout=60.0, child=child)
        self.ros.wait_for_publishers(self.sub, timeout=60.0, child=child)
        self._sec += 1
        key = (self._sec, 123)
        msg = self.encode(bgr)
        msg.header.frame_id = frame_id
        msg.header.stamp.sec, msg.header.stamp.nanosec = key
        deadline = time.monotonic() + timeout
        while key not in self.answers and time.monotonic() < deadline:
            self.pub.publish(msg)
            self.ros.spin_until(lambda: key in self.answers, 0.5, child)
        assert key in self.answers, "the node did not answer within the timeout"
        return self.answers[key]

    def encode(self, bgr: np.ndarray):
        if self.compressed:
            msg = CompressedImage(format="jpeg")
            msg.data = cv2.imencode(".jpg", bgr)[1].tobytes()
            return msg
        from std_msgs.msg import Header

        return bgr_to_image(bgr, Header())


@pytest.fixture(scope="module")
def core_pipeline():
    from fer_ros.core.factory import build_pipeline
    from fer_ros.params import load_defaults

    return build_pipeline({**load_defaults(), "tracking": False})


def boxes(msg: EmotionArray) -> list[tuple[int, int, int, int]]:
    return [(e.roi.x_offset, e.roi.y_offset, e.roi.width, e.roi.height) for e in msg.emotions]


def iou(a, b) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_samples_labels_boxes_header_and_bad_messages(ros, core_pipeline):
    node = start_node("-p", "tracking:=false")
    try:
        ex = Exchange(ros, "image_raw", "emotions")
        crowd = sample("dlib_2008_002506.jpg")
        answer = ex.ask(crowd, node, frame_id="head_camera")
        assert answer.header.frame_id == "head_camera"
        assert list(answer.labels) == core_pipeline.labels
        assert len(answer.emotions) == 3
        expected = [r.box.as_list() for r in core_pipeline.process(crowd)]
        for got, want in zip(sorted(boxes(answer)), sorted(map(tuple, expected))):
            assert iou(got, want) > 0.9
        for e in answer.emotions:
            assert e.id == -1  # tracking off
            assert 0.0 <= e.confidence <= 1.0 and len(e.probabilities) == len(answer.labels)
            assert abs(sum(e.probabilities) - 1.0) < 1e-3
            assert e.label == answer.labels[int(np.argmax(e.probabilities))]
            assert e.roi.x_offset + e.roi.width <= 640 and e.roi.y_offset + e.roi.height <= 480

        happy = ex.ask(sample("fer_justin.jpg"), node)
        assert [e.label for e in happy.emotions] == ["happy"]
        assert ex.ask(sample("fer_no-faces.jpg"), node).emotions == []

        # garbage does not kill it; the next valid image is still answered correctly
        bad = []
        for enc, w, h, step, data in [("yuv999", 4, 4, 12, bytes(48)), ("bgr8", 640, 480, 1920, bytes(10)),
                                      ("bgr8", 0, 0, 0, b""), ("rgb8", 10, 10, 5, bytes(50)),
                                      ("mono16", 3, 3, 6, bytes(18))]:
            m = Image(encoding=enc, width=w, height=h, step=step)
            m.data = data
            bad.append(m)
        for _ in range(3):
            for m in bad:
                ex.pub.publish(m)
                ros.spin_until(lambda: False, 0.05, node)
        assert node.poll() is None, "the node died on a bad message"
        assert [e.label for e in ex.ask(sample("fer_justin.jpg"), node).emotions] == ["happy"]
    finally:
        out, err = stop_process(node, timeout=10)
    assert "skipping a bad image" in err


def test_annotated_image_is_published_to_a_subscriber(ros):
    node = start_node("-p", "confirm_hits:=1")  # the first answer already holds the face
    try:
        ex = Exchange(ros, "image_raw", "emotions")
        got: list[Image] = []
        ros.node.create_subscription(Image, "annotated_image", got.append, qos_profile_sensor_data)
        frame = sample("fer_justin.jpg")
        deadline = time.monotonic() + 60
        while not got and time.monotonic() < deadline:
            ex.ask(frame, node)
            ros.spin_until(lambda: bool(got), 1.0, node)
        assert got, "no annotated image arrived"
        assert (got[0].width, got[0].height, got[0].encoding) == (640, 480, "bgr8")
        annotated = np.frombuffer(bytes(got[0].data), np.uint8).reshape(480, 640, 3)
        assert not np.array_equal(annotated, frame)  # boxes and labels were drawn
    finally:
        stop_process(node, timeout=10)


def test_compressed_input_with_namespace_and_remap(ros):
    # confirm_hits 1: one image answers with its faces (the default waits for 3 frames)
    node = start_node("-p", "input_transport:=compressed", "-p", "confirm_hits:=1",
                      "-r", "__ns:=/robot1",
                      "-r", "image_raw/compressed:=/front_cam/image/compressed")
    try:
        ex = Exchange(ros, "/front_cam/image/compressed", "/robot1/emotions", compressed=True)
        answer = ex.ask(sample("dlib_2008_002506.jpg"), node)
        assert len(answer.emotions) == 3
        # corrupt and truncated JPEGs are skipped
        jpeg = cv2.imencode(".jpg", sample("fer_justin.jpg"))[1].tobytes()
        for data in (jpeg[: len(jpeg) // 3], b"\xff\xd8garbage", b""):
            m = CompressedImage(format="jpeg")
            m.data = data
            ex.pub.publish(m)
        assert [e.label for e in ex.ask(sample("fer_justin.jpg"), node).emotions] == ["happy"]
    finally:
        stop_process(node, timeout=10)


def test_out_of_range_parameter_is_refused_at_start():
    proc = start_node("-p", "ssd_threshold:=1.5")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "ssd_threshold" in err and "Traceback" not in err
    proc = start_node("-p", "detector:=haar")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "parameter detector='haar': must be one of: ssd, yunet" in err


def test_runtime_parameter_changes_are_validated(ros):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    node = start_node("-p", "autostart:=false")
    try:
        client = ros.node.create_client(SetParameters, "/emotion_node/set_parameters")
        assert ros.spin_until(client.service_is_ready, 60, node)

        def set_param(name, value):
            if isinstance(value, str):
                pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
            else:
                pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
            request = SetParameters.Request(parameters=[Parameter(name=name, value=pv)])
            return ros.query(client, request, 30, node).results[0]

        assert set_param("ssd_threshold", 0.7).successful
        refused = set_param("ssd_threshold", 7.0)
        assert not refused.successful
        refused = set_param("detector", "haar")
        assert not refused.successful and "ssd, yunet" in refused.reason
    finally:
        stop_process(node, timeout=10)


def test_missing_model_fails_configure_with_a_clear_message(tmp_path):
    proc = start_node("-p", f"classifier_model:={tmp_path / 'absent.pt'}")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "configure failed" in err and "classifier checkpoint not found" in err
    assert "Traceback" not in err


def test_lifecycle_services_configure_activate_deactivate(ros):
    """With autostart off, the standard lifecycle services drive the node; after
    deactivate + activate it answers again."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    node = start_node("-p", "autostart:=false", "-p", "confirm_hits:=1")
    try:
        change = ros.node.create_client(ChangeState, "/emotion_node/change_state")
        get = ros.node.create_client(GetState, "/emotion_node/get_state")
        assert ros.spin_until(lambda: change.service_is_ready() and get.service_is_ready(), 60, node)

        def transition(tid: int) -> bool:
            fut = change.call_async(ChangeState.Request(transition=Transition(id=tid)))
            assert ros.spin_until(fut.done, 60, node)
            return fut.result().success

        def state() -> str:
            return ros.query(get, GetState.Request(), 30, node).current_state.label

        assert state() == "unconfigured"
        assert transition(Transition.TRANSITION_CONFIGURE) and state() == "inactive"
        assert transition(Transition.TRANSITION_ACTIVATE) and state() == "active"
        ex = Exchange(ros, "image_raw", "emotions")
        assert [e.label for e in ex.ask(sample("fer_justin.jpg"), node).emotions] == ["happy"]
        assert transition(Transition.TRANSITION_DEACTIVATE) and state() == "inactive"
        assert transition(Transition.TRANSITION_ACTIVATE) and state() == "active"
        assert [e.label for e in ex.ask(sample("fer_justin.jpg"), node).emotions] == ["happy"]
    finally:
        stop_process(node, timeout=10)
