"""The emotion node's run-time behaviour over real Fast DDS, against the node process: a camera
whose frames are all refused (WARN naming the reason, OK again once good frames come), live
``diagnostics_period_s`` and ``smoothing_time_constant_s`` changes, and lifecycle deactivate /
activate while frames flow (never more than one worker thread)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from typing import Callable

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")
pytest.importorskip("fer_msgs.msg", reason="fer_msgs is not built (run `make setup`)")

from conftest import REPO_ROOT, SHARED_DIR, child_env, stop_process  # noqa: E402
from test_diagnostics import OK, WARN, DiagWatch, number, set_params, start_node  # noqa: E402

PHOTO = SHARED_DIR / "samples" / "fer_justin.jpg"
pytestmark = pytest.mark.skipif(not PHOTO.is_file(), reason="../shared/samples is absent")


def photo_frames(width: int = 640, height: int = 480):
    """(sharp, blurred) letterboxed BGR frames of the same face at the same place (blurred
    strongly: the default classifier is trained on blurred faces, so a light blur barely moves
    its answer)."""
    import cv2

    from fer_ros.core.frame_reader import letterbox

    sharp = letterbox(cv2.imread(str(PHOTO)), width, height)
    return sharp, cv2.GaussianBlur(sharp, (0, 0), 8)


class Feeder:
    """Publishes a cycle of messages at ``rate`` Hz while spinning (spin_until replacement)."""

    def __init__(self, ros, child, topic: str = "image_raw") -> None:
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        self.ros, self.child = ros, child
        self.pub = ros.node.create_publisher(Image, topic, qos_profile_sensor_data)
        self.msgs: list = []
        self.rate = 15.0
        self.sent = 0
        self.first_sent_at: float | None = None
        self._next = 0.0

    def feed(self, msgs: list, rate: float = 15.0) -> None:
        self.msgs, self.rate, self.first_sent_at = msgs, rate, None
        self._next = time.monotonic()

    def spin(self, pred: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            now = time.monotonic()
            if self.msgs and now >= self._next:
                msg = self.msgs[self.sent % len(self.msgs)]
                self.sent += 1
                msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + self.sent // 100, (self.sent % 100) * 10_000_000
                self.pub.publish(msg)
                self.first_sent_at = self.first_sent_at or now
                self._next = max(self._next + 1 / self.rate, now)
            self.ros.spin_until(lambda: False, min(0.02, max(0.0, self._next - now)), self.child)
        return pred()


def test_refused_camera_warns_then_ok_live_period_and_smoothing(ros):
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from fer_msgs.msg import EmotionArray
    from fer_ros.node.conversions import bgr_to_image

    node = start_node("-p", "smoothing_time_constant_s:=0.0", "-p", "diagnostics_period_s:=1.0",
                      "-p", "diagnostics_warn_input_hz_min:=0.0",
                      "-p", "diagnostics_warn_processing_ms:=0.0")
    try:
        diag = DiagWatch(ros)
        feeder = Feeder(ros, node)
        diag.wait(lambda s: True, 90, node, what="status at all")
        ros.wait_for_subscribers(feeder.pub, timeout=60, child=node)

        # a depth camera on the colour topic: every frame is refused (32FC1 stays refused)
        depth = Image(header=Header(frame_id="depth_cam"), height=480, width=640,
                      encoding="32FC1", is_bigendian=0, step=640 * 4)
        depth.data = np.full(480 * 640, 1.5, dtype=np.float32).tobytes()
        feeder.feed([depth])
        warn = diag.wait(lambda s: s.level == WARN, 60, node, spin=feeder.spin,
                         what="WARN while every frame is refused")
        warned_after = time.monotonic() - feeder.first_sent_at
        print(f"refused camera: WARN {warned_after:.2f} s after the first frame: {warn.message}")
        assert re.fullmatch(r"(\d+) of \1 frames refused in the last 5 s: .*'32FC1'.*", warn.message), warn.message
        assert number(warn, "frames_processed") == 0 and number(warn, "errors") == 0
        # deterministic form of "within 3 s": the first status that had seen 3 refusals warned
        first_judged = next(s for _, s in diag.items if number(s, "recent_frames_refused") >= 3)
        assert first_judged.level == WARN, first_judged.message

        # good frames return: OK again (once they outnumber the refusals of the last 5 s)
        sharp, blurred = photo_frames()
        good = [bgr_to_image(sharp, Header(frame_id="sharp")),
                bgr_to_image(blurred, Header(frame_id="blurred"))]
        feeder.feed(good)
        ok = diag.wait(lambda s: s.level == OK and number(s, "frames_processed") > 0, 60, node,
                       spin=feeder.spin, what="OK once good frames return")
        print(f"good frames: OK {time.monotonic() - feeder.first_sent_at:.2f} s after the first")
        assert ok.message == "ok"

        # diagnostics_period_s takes effect at once (the timer is recreated)
        before = [t for t, _ in diag.items[-4:]]
        set_params(ros, node, "/emotion_node", diagnostics_period_s=0.25)
        start = len(diag.items)
        assert feeder.spin(lambda: len(diag.items) >= start + 9, 30)
        after = [t for t, _ in diag.items[start + 1:]]
        print(f"status interval: {np.median(np.diff(before)):.2f} s, then "
              f"{np.median(np.diff(after)):.2f} s")
        assert 0.6 <= float(np.median(np.diff(before))) <= 1.6
        assert 0.1 <= float(np.median(np.diff(after))) <= 0.5

        # smoothing_time_constant_s from 0 to 5.0 live: the answers to alternating sharp and
        # blurred frames of one face stop jumping
        answers: list[EmotionArray] = []
        ros.node.create_subscription(EmotionArray, "emotions", answers.append, 50)

        def jumps(n: int) -> float:
            answers.clear()
            assert feeder.spin(lambda: len(answers) >= n, 120), "too few answers"
            one = [a for a in answers if len(a.emotions) == 1]
            # consecutive answers to a sharp and a blurred frame (a frame may be dropped)
            pairs = [(np.asarray(a.emotions[0].probabilities), np.asarray(b.emotions[0].probabilities))
                     for a, b in zip(one, one[1:]) if a.header.frame_id != b.header.frame_id]
            assert len(pairs) >= n // 3
            return float(np.mean([np.abs(b - a).sum() for a, b in pairs]))

        feeder.feed(good, rate=5.0)  # slow enough that most frames are answered, alternating
        raw = jumps(25)
        set_params(ros, node, "/emotion_node", smoothing_time_constant_s=5.0)
        jumps(5)  # answers already in flight
        smoothed = jumps(25)
        print(f"mean L1 change between answers: smoothing off {raw:.4f}, 5 s {smoothed:.4f}")
        assert raw > 0.03, "sharp and blurred frames should differ"
        assert smoothed < 0.3 * raw
        assert node.poll() is None
    finally:
        stop_process(node, timeout=10)


class NodeLog:
    """The node process with its merged output collected line by line."""

    def __init__(self, *ros_args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fer_ros.node.emotion_node", "--ros-args", *ros_args],
            env=child_env(), cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def matching(self, pattern: str) -> list[re.Match]:
        return [m for m in (re.search(pattern, line) for line in list(self.lines)) if m]


def test_deactivate_during_frames_never_leaves_two_workers(ros):
    """Deactivate lands while the worker is in a frame (large frames, flip TTA), activate
    follows at once: every activation reports one live fer_worker thread, so do all
    diagnostics, and the node answers afterwards with no error."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    from std_msgs.msg import Header

    from fer_msgs.msg import EmotionArray
    from fer_ros.node.conversions import bgr_to_image

    # OpenCV's own ONNX runtime: the slowest, so that deactivates land inside frames
    # ... and a full detection on every frame (the frame schedule would make most frames quick)
    log = NodeLog("-p", "flip_tta:=true", "-p", "diagnostics_period_s:=0.2",
                  "-p", "ssd_runtime:=opencv", "-p", "detect_every:=1")
    node = log.proc
    try:
        diag = DiagWatch(ros)
        feeder = Feeder(ros, node)
        answers: list[EmotionArray] = []
        ros.node.create_subscription(EmotionArray, "emotions", answers.append, 50)
        change = ros.node.create_client(ChangeState, "/emotion_node/change_state")
        assert ros.spin_until(change.service_is_ready, 90, node)
        ros.wait_for_subscribers(feeder.pub, timeout=90, child=node)
        sharp, _ = photo_frames(1280, 720)
        feeder.feed([bgr_to_image(sharp, Header(frame_id="cam"))], rate=30.0)
        assert feeder.spin(lambda: len(answers) >= 3, 90), "no answers before the cycles"

        def transition(tid: int) -> bool:
            fut = change.call_async(ChangeState.Request(transition=Transition(id=tid)))
            assert feeder.spin(fut.done, 60)
            return fut.result().success

        cycles = 12
        for _ in range(cycles):
            assert feeder.spin(lambda: False, 0.15) is False  # let the worker get into a frame
            assert transition(Transition.TRANSITION_DEACTIVATE)
            assert transition(Transition.TRANSITION_ACTIVATE)
        answers.clear()
        assert feeder.spin(lambda: len(answers) >= 3, 60), "no answers after the cycles"
        assert [e.label for e in answers[-1].emotions] == ["happy"]

        started = [int(m.group(1)) for m in log.matching(r"fer_worker threads: (\d+)\)")]
        finishing = log.matching(r"fer_worker is finishing a frame")
        print(f"{cycles} cycles: live fer_worker threads at each activation {started}; "
              f"deactivate landed in a frame {len(finishing)} times")
        assert started == [1] * (cycles + 1)
        assert finishing, "no deactivate landed during a frame: the race was not exercised"
        alive = [number(s, "workers_alive") for _, s in diag.items]
        assert alive and max(alive) <= 1
        assert not log.matching(r"error while processing|Traceback|cannot activate")
    finally:
        if node.poll() is None:
            node.terminate()
        try:
            node.wait(10)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
