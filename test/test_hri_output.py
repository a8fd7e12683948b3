"""hri_output: the node's ROS4HRI (REP-155) face topics over real DDS, read by a separate
consumer process (test/hri_listener.py). hri_msgs is the robot's where importable, else the
test-only package test/interfaces/hri_msgs built once into build/ (test/hri_msgs_build.py)."""

from __future__ import annotations

import importlib.util
import json
import queue
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")
pytest.importorskip("fer_msgs.msg", reason="fer_msgs is not built (run `make setup`)")

from conftest import REPO_ROOT, SHARED_DIR, child_env, stop_process  # noqa: E402
from hri_msgs_build import build_hri_msgs, env_with_hri_msgs  # noqa: E402

REAL_HRI_MSGS = importlib.util.find_spec("hri_msgs") is not None


@pytest.fixture(scope="module")
def hri_env() -> dict[str, str]:
    """A child environment in which hri_msgs imports."""
    if REAL_HRI_MSGS:
        return child_env()
    return env_with_hri_msgs(child_env(), build_hri_msgs())


def start_node(env: dict[str, str], *ros_args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "fer_ros.node.emotion_node", "--ros-args",
                             *ros_args], env=env, cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


class Lines:
    """A child's stdout lines, read by a thread (so the test can keep publishing)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.queue.put(line) for line in proc.stdout],
                         daemon=True).start()

    def get(self, timeout: float = 0.0) -> str | None:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None


@pytest.mark.skipif(not (SHARED_DIR / "samples").is_dir(), reason="../shared/samples is absent")
def test_faces_tracked_roi_cropped_expression_and_track_end_over_dds(ros, hri_env):
    from test_emotion_node import Exchange, sample

    node = start_node(hri_env, "-p", "hri_output:=true", "-p", "publish_annotated:=false",
                      "-p", "track_max_missed:=1")
    listener = subprocess.Popen([sys.executable, str(REPO_ROOT / "test" / "hri_listener.py"),
                                 "120"], env=hri_env, stdout=subprocess.PIPE, text=True)
    lines = Lines(listener)
    try:
        assert lines.get(timeout=60) == "ready\n"
        ex = Exchange(ros, "image_raw", "emotions")
        face, empty = sample("fer_justin.jpg"), sample("fer_no-faces.jpg")
        report, deadline = None, time.monotonic() + 90
        while report is None and time.monotonic() < deadline:
            answer = ex.ask(face, node)
            report = lines.get(timeout=0.2)
        assert report is not None, "the consumer saw no complete face"
        seen = json.loads(report)
        ended, deadline = None, time.monotonic() + 60
        while ended is None and time.monotonic() < deadline:
            assert ex.ask(empty, node).emotions == []
            ended = lines.get(timeout=0.2)
        assert ended is not None, "the face's topics did not go away"
        ended = json.loads(ended)
    finally:
        stop_process(listener)
        out, err = stop_process(node)
    assert node.returncode == 0 and "Traceback" not in err, err
    track = answer.emotions[0].id
    assert seen["tracked"] == [seen["face"]] and seen["face"].endswith(str(track))
    assert seen["face"][0].isalpha()  # a valid topic name token
    xmin, ymin, xmax, ymax, c = seen["roi"]
    roi = answer.emotions[0].roi
    assert abs(xmin - roi.x_offset / 640) < 0.02 and abs(ymax - (roi.y_offset + roi.height) / 480) < 0.02
    assert 0.0 <= xmin < xmax <= 1.0 and 0.0 <= ymin < ymax <= 1.0 and 0.5 < c <= 1.0
    assert seen["cropped"] == [128, 128, "bgr8"]
    assert seen["expression"] == "happy" and 0.5 < seen["confidence"] <= 1.0
    assert seen["valence"] > 0.3 and -1.0 <= seen["arousal"] <= 1.0
    assert seen["stamp"] > 1000  # the input image's stamp (Exchange counts from 1001)
    assert ended == {"ended": seen["face"], "tracked": []}
    assert "/humans/faces/tracked" in out + err  # the start-up log names the topics


@pytest.mark.skipif(REAL_HRI_MSGS, reason="hri_msgs is installed here")
def test_hri_output_is_refused_in_one_line_without_hri_msgs():
    node = start_node(child_env(), "-p", "hri_output:=true")
    out, err = node.communicate(timeout=120)
    assert node.returncode == 2
    assert err.strip().splitlines() == [
        "emotion_node: invalid parameter: hri_output needs the hri_msgs package (ROS4HRI, "
        "REP-155), which is not installed: sudo apt install ros-jazzy-hri-msgs (or your "
        "distro's)"]


def test_hri_output_needs_tracking(hri_env):
    node = start_node(hri_env, "-p", "hri_output:=true", "-p", "tracking:=false")
    out, err = node.communicate(timeout=120)
    assert node.returncode == 2
    assert err.strip().splitlines() == [
        "emotion_node: invalid parameter: hri_output needs tracking:=true (REP-155 face ids "
        "follow tracks)"]


@pytest.mark.skipif(REAL_HRI_MSGS, reason="hri_msgs is installed here")
def test_ros2_param_set_hri_output_is_refused_without_hri_msgs(ros):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    node = start_node(child_env(), "-p", "autostart:=false")
    try:
        client = ros.node.create_client(SetParameters, "/emotion_node/set_parameters")
        assert ros.spin_until(client.service_is_ready, 60, node)
        value = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True)
        result = ros.query(client, SetParameters.Request(
            parameters=[Parameter(name="hri_output", value=value)]), 30, node).results[0]
    finally:
        stop_process(node)
    assert not result.successful
    assert result.reason.startswith("hri_output needs the hri_msgs package")
