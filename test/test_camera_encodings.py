"""Every camera encoding fer_ros reads, made from a real face photo, through the core and over
real Fast DDS against the node process: the face is found, its box is close to the bgr8
frame's and its label is the bgr8 frame's. Depth / float encodings are refused with one
throttled line naming the encoding. A yuv422_yuy2 stream (usb_cam's default) and a
yuv422_yuy2 bag (``fer-bag from-video --encoding``, ``fer-bag evaluate``) are answered.
"""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")
pytest.importorskip("fer_msgs.msg", reason="fer_msgs is not built (run `make setup`)")

from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from conftest import SHARED_DIR, stop_process  # noqa: E402
from fer_msgs.msg import EmotionArray  # noqa: E402
from fer_ros.core.image_codec import ENCODINGS  # noqa: E402
from fer_ros.node.conversions import bgr_to_image, image_to_bgr  # noqa: E402
from fer_ros.core.frame_reader import letterbox  # noqa: E402
from test_bag import classifier_args, fer_bag  # noqa: E402
from test_diagnostics import DiagWatch, number, start_node  # noqa: E402
from test_node_robustness import RELIABLE, Asker  # noqa: E402

SAMPLES = SHARED_DIR / "samples"
pytestmark = pytest.mark.skipif(not (SAMPLES / "fer_justin.jpg").is_file(),
                                reason="../shared/samples is absent")
CAMERA_ENCODINGS = sorted(ENCODINGS)
DEPTH_ENCODINGS = ["16UC1", "32FC1", "8UC3", "64FC1"]


def face_frame() -> np.ndarray:
    return letterbox(cv2.imread(str(SAMPLES / "fer_justin.jpg")), 640, 480)


def iou(a: list[int], b: list[int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / float(aw * ah + bw * bh - w * h)


@pytest.fixture(scope="module")
def pipeline():
    from fer_ros.core.factory import build_pipeline
    from fer_ros.params import load_defaults

    params = load_defaults()
    params["tracking"] = False
    return build_pipeline(params)


def test_every_encoding_gives_the_bgr8_face_and_label_in_the_core(pipeline):
    bgr = face_frame()
    (ref,) = pipeline.process(bgr)
    for encoding in CAMERA_ENCODINGS:
        msg = bgr_to_image(bgr, Header(frame_id="cam"), encoding)
        faces = pipeline.process(image_to_bgr(msg))
        assert len(faces) == 1, encoding
        assert faces[0].label == ref.label, (encoding, faces[0].label, ref.label)
        assert iou(faces[0].box.as_list(), ref.box.as_list()) > 0.8, encoding


def test_every_encoding_is_answered_by_the_node_and_depth_is_refused(ros):
    node = start_node("-p", "tracking:=false", "-p", "diagnostics_period_s:=0.5",
                      "-p", "qos_overrides./image_raw.subscription.reliability:=reliable",
                      "-p", "qos_overrides./image_raw.subscription.depth:=50")
    try:
        pub = ros.node.create_publisher(Image, "image_raw", RELIABLE)
        asker = Asker(ros, pub, "emotions")
        diag = DiagWatch(ros)
        bgr = face_frame()
        ref = asker.ask(bgr_to_image(bgr, Header(frame_id="cam")), (1, 0), node)
        assert [e.label for e in ref.emotions] and len(ref.emotions) == 1
        ref_box = [ref.emotions[0].roi.x_offset, ref.emotions[0].roi.y_offset,
                   ref.emotions[0].roi.width, ref.emotions[0].roi.height]
        for k, encoding in enumerate(CAMERA_ENCODINGS):
            answer = asker.ask(bgr_to_image(bgr, Header(frame_id="cam"), encoding), (2 + k, 0), node)
            assert len(answer.emotions) == 1, encoding
            face = answer.emotions[0]
            assert face.label == ref.emotions[0].label, (encoding, face.label)
            box = [face.roi.x_offset, face.roi.y_offset, face.roi.width, face.roi.height]
            assert iou(box, ref_box) > 0.8, (encoding, box, ref_box)

        # depth and float images: refused, counted as bad, one warning per encoding
        received_before = number(diag.wait(lambda s: True, 30, node), "frames_received")
        sent = 0
        for _ in range(5):
            for encoding in DEPTH_ENCODINGS:
                msg = Image(encoding=encoding, width=32, height=24, step=32 * 4)
                msg.data = bytes(32 * 4 * 24)
                pub.publish(msg)
                sent += 1
                ros.spin_until(lambda: False, 0.02, node)
        status = diag.wait(lambda s: number(s, "frames_received") >= received_before + sent
                           and number(s, "frames_bad") >= sent // 2, 60, node,
                           what="the depth frames counted as bad")
        assert number(status, "errors") == 0
        assert node.poll() is None
    finally:
        out, err = stop_process(node, timeout=10)
    for encoding in DEPTH_ENCODINGS:
        lines = [ln for ln in err.splitlines() if f"image encoding '{encoding}' is depth" in ln]
        assert len(lines) == 1, (encoding, lines)  # 5 sent within the 5 s throttle: one line
    assert "Traceback" not in err


def test_a_yuv422_yuy2_stream_is_answered(ros):
    """As usb_cam publishes: yuv422_yuy2, best effort, 15 Hz, for 4 s."""
    node = start_node("-p", "tracking:=false")
    try:
        answers: list[list[str]] = []
        ros.node.create_subscription(
            EmotionArray, "emotions", lambda m: answers.append([e.label for e in m.emotions]),
            RELIABLE)
        pub = ros.node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        msg = bgr_to_image(face_frame(), Header(frame_id="usb_cam"), "yuv422_yuy2")
        ros.wait_for_subscribers(pub, timeout=90.0, child=node)
        start, sent = time.monotonic(), 0
        deadline = start + 120
        while time.monotonic() < deadline and (sent < 60 or not answers):
            msg.header.stamp.sec = 100 + sent
            pub.publish(msg)
            sent += 1
            ros.spin_until(lambda: False, 1 / 15, node)
        ros.spin_until(lambda: False, 2.0, node)
        assert len(answers) >= 10, f"{len(answers)} answers to {sent} yuv422_yuy2 frames"
        assert all(labels == answers[0] and len(labels) == 1 for labels in answers), answers[:5]
    finally:
        stop_process(node, timeout=10)


def test_a_yuv422_yuy2_bag_is_evaluated(tmp_path):
    video = SAMPLES / "fer_woman2.mp4"
    if not video.is_file():
        pytest.skip(f"{video} is absent")
    bag = tmp_path / "yuy2"
    run = fer_bag("from-video", str(video), str(bag), "--encoding", "yuv422_yuy2",
                  "--max-frames", "20", "-q")
    assert run.returncode == 0, run.stderr
    run = fer_bag("evaluate", str(bag), "--lockstep", "--json", "--out", str(tmp_path / "eval"),
                  "-q", *classifier_args(tmp_path), timeout=400)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["frames_published"] == 20
    assert report["frames_answered"] == 20 and report["faces_per_frame"] >= 0.9, report
