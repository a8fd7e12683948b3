"""Start-up messages of the emotion node: refused parameters and models, each said once, plainly."""

from __future__ import annotations

import subprocess
import sys

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")

from rclpy.parameter import Parameter  # noqa: E402

from conftest import REPO_ROOT, child_env  # noqa: E402
from fer_ros.core.errors import ConfigError  # noqa: E402
from fer_ros.node.ros_params import declare_all, deferred_change_message  # noqa: E402
from fer_ros.params import load_defaults  # noqa: E402


@pytest.mark.parametrize("name, value, message", [
    ("ssd_threshold", 2.0,
     "parameter ssd_threshold=2.0 is out of range: allowed 0.0 to 1.0"),
    ("ssd_threshold", 1,
     "parameter ssd_threshold=1: expected type double (0.0 to 1.0); write it as 1.0"),
    ("ssd_threshold", "abc",
     "parameter ssd_threshold='abc': expected type double (0.0 to 1.0)"),
    ("min_face_size", 20.5, "parameter min_face_size=20.5: expected type integer (0 to 4096)"),
    ("detector", "haar", "parameter detector='haar': must be one of: ssd, yunet, ssd_tf"),
])
def test_a_refused_override_is_one_line_naming_parameter_and_allowed_values(ros, name, value,
                                                                            message):
    """What `--ros-args -p NAME:=VALUE` gives a real rclpy node (rclpy's own text reads
    "Invalid parameter value (2.0) for parameter. Reason: ...: ssd_threshold")."""
    node = rclpy.create_node("startup_probe", context=ros.context,
                             parameter_overrides=[Parameter(name, value=value)])
    try:
        with pytest.raises(ConfigError) as err:
            declare_all(node, load_defaults())
        assert str(err.value) == message
    finally:
        node.destroy_node()


def test_an_unknown_classifier_is_reported_once_listing_only_classifiers():
    proc = subprocess.run([sys.executable, "-m", "fer_ros.node.emotion_node", "--ros-args",
                           "-p", "classifier_model:=fer9"], env=child_env(), cwd=str(REPO_ROOT),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    mentions = [line for line in (proc.stdout + proc.stderr).splitlines() if "fer9" in line]
    assert len(mentions) == 1, mentions
    assert "configure failed: unknown classifier 'fer9' (known: fer6, fer7, fer7_fer2013, fer7_photo, ferplus8)" in mentions[0]
    assert "Traceback" not in proc.stderr


def test_only_changed_configure_time_parameters_are_reported():
    live = {"ssd_threshold"}
    old = {"detector": "ssd", "device": "cpu", "ssd_threshold": 0.5, "tracking": True}
    assert deferred_change_message(old, dict(old), live) == ""  # `ros2 param load` of the same
    assert deferred_change_message(old, {"ssd_threshold": 0.7}, live) == ""
    assert (deferred_change_message(old, {**old, "detector": "yunet"}, live)
            == "detector takes effect at the next configure")
    assert (deferred_change_message(old, {"device": "cuda", "detector": "yunet",
                                          "tracking": True}, live)
            == "detector, device take effect at the next configure")
