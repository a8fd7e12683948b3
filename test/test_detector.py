"""Face detectors on the shared sample photos, plus box post-processing and errors."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_ros.core.detector import (
    SsdTfFaceDetector,
    YunetFaceDetector,
    make_detector,
    postprocess,
)
from fer_ros.core.errors import ConfigError, ImageError, ModelError
from fer_ros.core.types import Box

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"


def sample(name: str) -> np.ndarray:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"sample {path} is absent (../shared beside the repo is needed)")
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def _detector(name: str, **kwargs):
    try:
        return make_detector(name, **kwargs)
    except ModelError as exc:
        pytest.skip(f"{name} detector weights unavailable: {exc}")


@pytest.fixture(scope="module", params=["ssd", "yunet", "ssd_tf"])
def detector(request):
    det = _detector(request.param)
    det.name = request.param
    return det


def _check_three_faces(dets, image):
    height, width = image.shape[:2]
    assert len(dets) == 3
    scores = [d.score for d in dets]
    assert scores == sorted(scores, reverse=True) and min(scores) > 0.8
    for d in dets:
        b = d.box
        assert 0 <= b.x and 0 <= b.y and b.x + b.w <= width and b.y + b.h <= height
        assert 60 <= b.w <= 140 and 80 <= b.h <= 160, b  # faces of ~80x110 px in a 500x375 photo
        assert 0.5 <= b.w / b.h <= 1.2, b
    for a, b in combinations([d.box for d in dets], 2):
        assert a.iou(b) == 0.0
    return sorted((d.box for d in dets), key=lambda b: b.x)


def test_three_faces(detector):
    image = sample("dlib_2008_002506.jpg")
    boxes = _check_three_faces(detector.detect(image), image)
    centers_x = [b.center[0] for b in boxes]
    assert centers_x[0] < 200 < centers_x[1] < 300 < centers_x[2]  # three people side by side


def test_ssd_and_yunet_agree():
    image = sample("dlib_2008_002506.jpg")
    ssd = _check_three_faces(_detector("ssd").detect(image), image)
    yunet = _check_three_faces(_detector("yunet").detect(image), image)
    for a, b in zip(ssd, yunet):
        assert a.iou(b) > 0.6


def test_one_face_and_no_face(detector):
    assert len(detector.detect(sample("fer_justin.jpg"))) == 1
    assert detector.detect(sample("fer_no-faces.jpg")) == []


def test_grayscale_frame_is_accepted(detector):
    gray = cv2.cvtColor(sample("dlib_2008_002506.jpg"), cv2.COLOR_BGR2GRAY)
    assert len(detector.detect(gray)) == 3


def test_frame_size_changes_are_followed(detector):
    image = sample("dlib_2008_002506.jpg")
    small = detector.detect(image)
    big = detector.detect(cv2.resize(image, None, fx=2, fy=2))
    again = detector.detect(image)
    assert len(big) == 3 and [d.box for d in again] == [d.box for d in small]
    for s in small:
        scaled = Box(s.box.x * 2, s.box.y * 2, s.box.w * 2, s.box.h * 2)
        assert max(scaled.iou(b.box) for b in big) > 0.7


def test_min_size_and_threshold_filter(detector):
    image = sample("dlib_2008_002506.jpg")
    name = detector.name
    assert _detector(name, min_size=150).detect(image) == []
    assert len(_detector(name, min_size=70).detect(image)) == 3
    assert _detector(name, score_threshold=0.999999).detect(sample("fer_no-faces.jpg")) == []


def test_thresholds_can_change_between_frames(detector):
    image = sample("dlib_2008_002506.jpg")
    old = (detector.score_threshold, detector.min_size)
    try:
        detector.min_size = 150
        assert detector.detect(image) == []
        detector.min_size, detector.score_threshold = 0, 0.99999
        assert len(detector.detect(image)) < 3
        detector.score_threshold = 0.5
        assert len(detector.detect(image)) == 3
    finally:
        detector.score_threshold, detector.min_size = old


@pytest.mark.parametrize("name", ["ssd", "yunet", "ssd_tf"])
def test_lowering_the_threshold_at_run_time(name):
    strict = _detector(name, score_threshold=0.99999)
    image = sample("dlib_2008_002506.jpg")
    assert len(strict.detect(image)) < 3
    strict.score_threshold = 0.5
    assert len(strict.detect(image)) == 3


@pytest.mark.parametrize(
    "frame",
    [None, np.zeros((0, 10, 3), np.uint8), np.zeros((10, 10, 3), np.float32),
     np.zeros((10, 10, 4), np.uint8), "image.jpg"],
)
def test_bad_frames_raise_image_error(detector, frame):
    with pytest.raises(ImageError):
        detector.detect(frame)


def test_tiny_and_blank_frames(detector):
    assert detector.detect(np.zeros((1, 1, 3), np.uint8)) == []
    assert detector.detect(np.full((120, 160, 3), 128, np.uint8)) == []


def test_unknown_detector_name():
    with pytest.raises(ConfigError, match="unknown detector 'haar'.*ssd, yunet, ssd_tf"):
        make_detector("haar")


def test_bad_thresholds():
    with pytest.raises(ConfigError, match="score_threshold"):
        make_detector("ssd", score_threshold=1.5)
    with pytest.raises(ConfigError, match="min_size"):
        make_detector("yunet", min_size=-1)


def test_missing_weights_raise_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        SsdTfFaceDetector(tmp_path / "a.pb", tmp_path / "a.pbtxt")
    with pytest.raises(ModelError, match="not found"):
        YunetFaceDetector(tmp_path / "y.onnx")


def test_corrupt_weights_raise_model_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        YunetFaceDetector(bad)


def test_postprocess_clamps_filters_and_suppresses():
    corners = np.array(
        [
            [-20, -10, 50, 60],  # clamped to (0, 0)-(50, 60)
            [-5, 0, 48, 58],  # overlaps the first, lower score: suppressed
            [90, 90, 130, 130],  # partly outside a 100x100 image: clamped to 10x10 -> too small
            [200, 200, 300, 300],  # fully outside: degenerate
            [60, 10, 60, 40],  # zero width
            [60, 60, np.nan, 90],  # not finite
            [55, 5, 95, 45],  # kept
            [70, 50, 99, 99],  # below the score threshold
        ],
        dtype=np.float32,
    )
    scores = np.array([0.9, 0.8, 0.95, 0.99, 0.9, 0.9, 0.7, 0.4], dtype=np.float32)
    dets = postprocess(corners, scores, 100, 100, 0.5, 0.3, min_size=12)
    assert [d.box for d in dets] == [Box(0, 0, 50, 60), Box(55, 5, 40, 40)]
    assert [round(d.score, 2) for d in dets] == [0.9, 0.7]
    assert postprocess(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 10, 10, 0.5, 0.3, 0) == []


def test_yunet_starts_without_opencv_warnings():
    """OpenCV 5's new graph engine WARNs `setPreferableTarget ... not supported` when
    FaceDetectorYN sets its target: the node printed it at every start."""
    import subprocess
    import sys

    code = ("import numpy as np\nfrom fer_ros.core.detector import make_detector\n"
            "d = make_detector('yunet')\nprint(len(d.detect(np.zeros((240, 320, 3), np.uint8))))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout == "0\n", proc.stderr
    assert "WARN" not in proc.stderr and "setPreferableTarget" not in proc.stderr, proc.stderr
