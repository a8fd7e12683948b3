"""The emotion node's /diagnostics: keys (units in the names), levels and parameter thresholds.

The level logic is checked directly (ROS-free inputs), then on a node process over real Fast
DDS: WARN before any input, OK while fed at 15 Hz, WARN when processing exceeds a tiny
``diagnostics_warn_processing_ms`` (set at run time), WARN when input stops, OK again when
``diagnostics_warn_input_hz_min`` is 0. The machine may be slow: timeouts are generous.
Also holds the helpers the robustness tests share (node process, diagnostics watcher).
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")
pytest.importorskip("fer_msgs.msg", reason="fer_msgs is not built (run `make setup`)")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402

from conftest import SHARED_DIR, start_emotion_node, stop_process  # noqa: E402
from fer_ros.node.diagnostics import diagnostic_level, diagnostic_status  # noqa: E402
from fer_ros.params import load_defaults  # noqa: E402

SAMPLES = SHARED_DIR / "samples"
OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
# every value the node reports; rates and times carry their unit in the key, the rest are counts
EXPECTED_KEYS = {"state", "input_rate_hz", "processed_rate_hz", "processing_ms_p50",
                 "processing_ms_p95", "faces_mean", "frames_received", "frames_processed",
                 "frames_bad", "frames_skipped", "errors", "recent_frames_checked",
                 "recent_frames_refused", "unanswered_s", "workers_alive", "reject_ms_max",
                 "reject_ms_p99"}
COUNT_KEYS = {"frames_received", "frames_processed", "frames_bad", "frames_skipped", "errors",
              "recent_frames_checked", "recent_frames_refused", "workers_alive"}


# ----- helpers shared with test_node_robustness.py ------------------------------------------
start_node = start_emotion_node  # the emotion node as a child process


def values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def number(status: DiagnosticStatus, key: str) -> float:
    return float(values(status)[key])


class DiagWatch:
    """Collects the /diagnostics statuses of one node (by fully qualified node name)."""

    def __init__(self, ros, node_name: str = "/emotion_node") -> None:
        self.ros = ros
        self.name = f"fer_ros: {node_name}"
        self.items: list[tuple[float, DiagnosticStatus]] = []
        self.sub = ros.node.create_subscription(DiagnosticArray, "/diagnostics", self._on, 50)

    def _on(self, msg: DiagnosticArray) -> None:
        now = time.monotonic()
        self.items.extend((now, s) for s in msg.status if s.name == self.name)

    def latest(self) -> DiagnosticStatus | None:
        return self.items[-1][1] if self.items else None

    def wait(self, pred: Callable[[DiagnosticStatus], bool], timeout: float, child,
             spin: Callable[[Callable[[], bool], float], bool] | None = None,
             what: str = "a matching status") -> DiagnosticStatus:
        """The first status arriving from now on that satisfies ``pred``; fails after timeout.
        ``spin(predicate, timeout)`` replaces ros.spin_until (e.g. to keep feeding images)."""
        start = len(self.items)
        found: list[DiagnosticStatus] = []

        def check() -> bool:
            for _, s in self.items[start:]:
                if pred(s):
                    found.append(s)
                    return True
            return False

        spin = spin or (lambda p, t: self.ros.spin_until(p, t, child))
        if not spin(check, timeout):
            seen = [(s.level, s.message) for _, s in self.items[start:]][-5:]
            pytest.fail(f"no {what} on /diagnostics within {timeout} s (last seen: {seen})")
        return found[0]


def set_params(ros, child, node_name: str, **params: Any) -> None:
    """Sets parameters on a running node through its set_parameters service (must succeed)."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    client = ros.node.create_client(SetParameters, f"{node_name}/set_parameters")
    try:
        assert ros.spin_until(client.service_is_ready, 60, child), "set_parameters not ready"
        request = SetParameters.Request()
        for name, value in params.items():
            pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=float(value))
            request.parameters.append(Parameter(name=name, value=pv))
        answer = ros.query(client, request, 30, child)
        for name, result in zip(params, answer.results):
            assert result.successful, f"{name} refused: {result.reason}"
    finally:
        ros.node.destroy_client(client)


# ----- the level logic, without a node ------------------------------------------------------
def _snap(**overrides: float) -> dict[str, float]:
    snap = {"input_rate_hz": 15.0, "processed_rate_hz": 10.0, "processing_ms_p50": 40.0,
            "processing_ms_p95": 60.0, "faces_mean": 1.0, "frames_received": 100,
            "frames_processed": 80, "frames_bad": 0, "errors": 0, "frames_skipped": 20,
            "recent_frames_checked": 75, "recent_frames_refused": 0, "unanswered_s": 0.0,
            "workers_alive": 1, "reject_ms_max": 0.0, "reject_ms_p99": 0.0}
    snap.update(overrides)
    return snap


def test_level_logic_and_thresholds():
    params = {**load_defaults(), "diagnostics_warn_processing_ms": 100.0,
              "diagnostics_warn_input_hz_min": 5.0}
    assert diagnostic_level("active", _snap(), params, "") == (OK, "ok")
    level, message = diagnostic_level("active", _snap(input_rate_hz=2.0), params, "")
    assert level == WARN and message.startswith("input rate 2.0 Hz < 5 Hz")
    level, message = diagnostic_level("active", _snap(processing_ms_p50=150.0), params, "")
    assert level == WARN and message.startswith("processing 150 ms > 100 ms")
    # nothing processed yet: the processing threshold does not apply
    assert diagnostic_level("active", _snap(processing_ms_p50=150.0, frames_processed=0),
                            params, "")[0] == OK
    # 0 = never
    never = {**params, "diagnostics_warn_processing_ms": 0.0, "diagnostics_warn_input_hz_min": 0.0}
    assert diagnostic_level("active", _snap(input_rate_hz=0.0, processing_ms_p50=1e6), never, "")[0] == OK
    level, message = diagnostic_level("inactive", _snap(), params, "")
    assert level == WARN and message == "node is inactive"
    level, message = diagnostic_level("active", _snap(), params, "ValueError: boom")
    assert level == ERROR and "ValueError: boom" in message
    # most frames checked lately were refused: WARN naming the most frequent reason
    reasons = [("unsupported image encoding '32FC1'", 148), ("image has size 0x0", 1)]
    level, message = diagnostic_level("active", _snap(recent_frames_checked=150,
                                                      recent_frames_refused=149),
                                      params, "", reasons)
    assert level == WARN
    assert message == ("149 of 150 frames refused in the last 5 s: unsupported image encoding "
                       "'32FC1' (148 frames); 1 other reason(s)")
    # a minority refused, or too few to judge: not a refusal WARN
    assert diagnostic_level("active", _snap(recent_frames_checked=150, recent_frames_refused=70),
                            params, "", reasons)[0] == OK
    assert diagnostic_level("active", _snap(recent_frames_checked=2, recent_frames_refused=2),
                            params, "", reasons)[0] == OK
    # a frame waiting unanswered longer than diagnostics_stall_s: ERROR (before any WARN)
    stalled = _snap(unanswered_s=7.25, input_rate_hz=14.0, processed_rate_hz=0.0)
    level, message = diagnostic_level("active", stalled, {**params, "diagnostics_stall_s": 5.0}, "")
    assert level == ERROR
    assert message == ("stalled: frames arrive but none was processed for 7.2 s "
                       "(> diagnostics_stall_s 5 s)")
    assert diagnostic_level("active", stalled, {**params, "diagnostics_stall_s": 0.0}, "")[0] == OK
    assert diagnostic_level("active", _snap(unanswered_s=4.9), params, "")[0] == OK

    status = diagnostic_status("/emotion_node", "active", _snap(), params)
    assert status.name == "fer_ros: /emotion_node" and status.hardware_id == "fer_ros"
    assert set(values(status)) == EXPECTED_KEYS
    assert values(status)["processing_ms_p50"] == "40.00" and values(status)["frames_received"] == "100"


def test_frame_stats_keep_the_last_times_when_a_window_has_no_frames():
    from fer_ros.node.frame_stats import FrameStats

    stats = FrameStats()
    first = stats.snapshot()
    assert first["processing_ms_p50"] == 0.0 and first["faces_mean"] == 0.0  # nothing yet
    for ms, faces in ((200.0, 1), (300.0, 3), (250.0, 2)):
        stats.on_received()
        stats.on_processed(ms, faces)
    stats.on_received()
    stats.on_bad()
    snap = stats.snapshot()
    assert snap["processing_ms_p50"] == 250.0 and snap["faces_mean"] == 2.0
    assert snap["frames_received"] == 4 and snap["frames_processed"] == 3
    assert snap["frames_bad"] == 1 and snap["input_rate_hz"] > 0
    # processing slower than the diagnostics period: a window without a finished frame still
    # reports the recent processing time (so a processing WARN does not flicker to OK)
    idle = stats.snapshot()
    assert idle["processed_rate_hz"] == 0.0 and idle["input_rate_hz"] == 0.0
    assert idle["processing_ms_p50"] == 250.0 and idle["faces_mean"] == 2.0
    params = {**load_defaults(), "diagnostics_warn_processing_ms": 100.0,
              "diagnostics_warn_input_hz_min": 0.0}
    assert diagnostic_level("active", {**idle, "frames_skipped": 0}, params, "")[0] == WARN
    stats.on_processed(10.0, 0)
    assert stats.snapshot()["processing_ms_p50"] == 10.0  # a new window replaces it


def test_frame_stats_count_refusals_per_reason_over_a_time_window():
    """Real FrameStats, real clock: refusals are counted per reason over the last
    ``refusal_window_s`` seconds, and forgotten after it."""
    from fer_ros.node.frame_stats import FrameStats

    stats = FrameStats(refusal_window_s=0.5)
    for _ in range(8):
        stats.on_received()
        stats.on_taken()
        stats.on_bad("unsupported image encoding '32FC1'")
    stats.on_bad("image step 10 / data 20 bytes do not fit 640x480 bgr8")
    stats.on_processed(20.0, 1)
    refused, checked, reasons = stats.refusals()
    assert (refused, checked) == (9, 10)
    assert reasons == [("unsupported image encoding '32FC1'", 8),
                       ("image step 10 / data 20 bytes do not fit 640x480 bgr8", 1)]
    params = {**load_defaults(), "diagnostics_warn_input_hz_min": 0.0}
    snap = {**stats.snapshot(), "frames_skipped": 0}
    assert (snap["recent_frames_refused"], snap["recent_frames_checked"]) == (9, 10)
    level, message = diagnostic_level("active", snap, params, "", reasons)
    assert level == WARN and message.startswith("9 of 10 frames refused in the last")
    assert "unsupported image encoding '32FC1' (8 frames)" in message
    # good frames return: the refusals age out of the window, the level is OK again
    deadline = time.monotonic() + 10.0
    while stats.refusals()[0] and time.monotonic() < deadline:
        stats.on_received()
        stats.on_processed(20.0, 1)
        time.sleep(0.05)
    refused, checked, reasons = stats.refusals()
    assert refused == 0 and checked > 0 and reasons == []
    snap = {**stats.snapshot(), "frames_skipped": 0}
    assert diagnostic_level("active", snap, params, "", reasons) == (OK, "ok")


def test_frame_stats_see_a_worker_stuck_in_one_frame():
    """A real worker thread stuck in one frame (blocked until released) while frames keep
    arriving: ``unanswered_s`` grows past diagnostics_stall_s -> ERROR; once the frame is
    done, 0 again -> OK. Input that merely stops is no stall."""
    import threading

    from fer_ros.node.frame_stats import FrameStats

    stats = FrameStats()
    params = {**load_defaults(), "diagnostics_warn_input_hz_min": 0.0, "diagnostics_stall_s": 0.3,
              "diagnostics_warn_processing_ms": 0.0}
    stats.on_received()
    stats.on_processed(10.0, 1)
    time.sleep(0.4)  # idle input, everything answered: not a stall
    assert stats.unanswered_s() == 0.0
    assert diagnostic_level("active", {**stats.snapshot(), "frames_skipped": 0}, params, "")[0] == OK

    release = threading.Event()

    def worker() -> None:
        stats.on_taken()
        release.wait(30.0)  # stuck in a slow decode / inference
        stats.on_processed(5000.0, 0)

    stats.on_received()
    thread = threading.Thread(target=worker, name="fer_worker_test")
    thread.start()
    try:
        deadline = time.monotonic() + 10.0
        while stats.unanswered_s() <= 0.3 and time.monotonic() < deadline:
            stats.on_received()  # frames keep arriving meanwhile
            time.sleep(0.05)
        snap = {**stats.snapshot(), "frames_skipped": 0}
        level, message = diagnostic_level("active", snap, params, "")
        assert level == ERROR and message.startswith("stalled: frames arrive but none was processed")
        assert snap["processed_rate_hz"] == 0.0 and snap["input_rate_hz"] > 0
    finally:
        release.set()
        thread.join(10.0)
    assert stats.unanswered_s() == 0.0
    assert diagnostic_level("active", {**stats.snapshot(), "frames_skipped": 0}, params, "")[0] == OK


# ----- the node process -----------------------------------------------------------------------
@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/samples is absent")
def test_node_diagnostics_keys_levels_and_thresholds(ros):
    import cv2
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from fer_ros.node.conversions import bgr_to_image
    from fer_ros.core.frame_reader import letterbox

    node = start_node("-p", "tracking:=false", "-p", "diagnostics_period_s:=1.0",
                      "-p", "diagnostics_warn_processing_ms:=60000.0",
                      "-p", "diagnostics_warn_input_hz_min:=5.0")
    try:
        diag = DiagWatch(ros)
        frame = letterbox(cv2.imread(str(SAMPLES / "fer_justin.jpg")), 640, 480)
        msg = bgr_to_image(frame, Header(frame_id="test_cam"))
        pub = ros.node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        feed = {"on": False, "next": 0.0, "sent": 0}

        def spin_feeding(pred: Callable[[], bool], timeout: float) -> bool:
            """spin_until that also publishes the image at 15 Hz while feed['on']."""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if pred():
                    return True
                now = time.monotonic()
                if feed["on"] and now >= feed["next"]:
                    feed["sent"] += 1
                    msg.header.stamp.sec = 1000 + feed["sent"]
                    pub.publish(msg)
                    feed["next"] = max(feed["next"] + 1 / 15, now)
                ros.spin_until(lambda: False, min(0.02, max(0.0, feed["next"] - now)), node)
            return pred()

        # no input yet: WARN about the input rate, with every key present
        first = diag.wait(lambda s: True, 90, node, what="status at all")
        assert first.level == WARN and first.message.startswith("input rate 0.0 Hz < 5 Hz")
        assert first.hardware_id == "fer_ros"
        assert set(values(first)) == EXPECTED_KEYS
        assert values(first)["state"] == "active"
        for key in EXPECTED_KEYS - {"state"}:
            assert np.isfinite(number(first, key)), key
            assert key in COUNT_KEYS or key.endswith(
                ("_hz", "_ms_p50", "_ms_p95", "_ms_max", "_ms_p99", "_mean", "_s")), key

        # fed at 15 Hz: OK, with rates, times and faces filled in
        ros.wait_for_subscribers(pub, timeout=60, child=node)
        feed["on"], feed["next"] = True, time.monotonic()
        ok = diag.wait(lambda s: s.level == OK and number(s, "frames_processed") > 0, 120, node,
                       spin=spin_feeding, what="OK status while fed")
        assert ok.message == "ok"
        assert number(ok, "input_rate_hz") >= 5.0
        assert number(ok, "processed_rate_hz") > 0
        assert 0 < number(ok, "processing_ms_p50") <= number(ok, "processing_ms_p95")
        assert number(ok, "faces_mean") == pytest.approx(1.0)
        assert number(ok, "frames_bad") == 0 and number(ok, "errors") == 0
        assert 0 < number(ok, "frames_received") <= feed["sent"]

        # processing slower than a tiny threshold (a live parameter): WARN, input still fine
        set_params(ros, node, "/emotion_node", diagnostics_warn_processing_ms=0.001)
        slow = diag.wait(lambda s: s.level == WARN and s.message.startswith("processing"), 60,
                         node, spin=spin_feeding, what="processing WARN")
        assert slow.message.endswith("> 0.001 ms")
        assert number(slow, "input_rate_hz") >= 5.0
        set_params(ros, node, "/emotion_node", diagnostics_warn_processing_ms=60000.0)
        diag.wait(lambda s: s.level == OK, 60, node, spin=spin_feeding, what="OK again")

        # input stops: WARN with the input rate below the threshold
        feed["on"] = False
        stopped = diag.wait(lambda s: s.level == WARN, 60, node, what="WARN after input stops")
        assert stopped.message.startswith("input rate")
        assert number(stopped, "input_rate_hz") < 5.0
        received = number(stopped, "frames_received")
        assert received >= 0.5 * feed["sent"], "most images were not delivered"

        # the input threshold is a parameter too: 0 = never warn
        set_params(ros, node, "/emotion_node", diagnostics_warn_input_hz_min=0.0)
        quiet = diag.wait(lambda s: s.level == OK, 60, node, what="OK with the input check off")
        assert number(quiet, "input_rate_hz") == 0.0
        assert number(quiet, "frames_received") == received

        # about once per diagnostics_period_s
        times = [t for t, _ in diag.items]
        assert len(times) >= 5
        assert 0.6 <= float(np.median(np.diff(times))) <= 1.6
        assert node.poll() is None
    finally:
        stop_process(node, timeout=10)
