"""EmotionPipeline (detector + classifier + optional tracker/smoother) and draw_results."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fer_ros.core.checkpoint import make_checkpoint, save_checkpoint
from fer_ros.core.classifier import EmotionClassifier
from fer_ros.core.detector import make_detector
from fer_ros.core.drawing import draw_results, style_for
from fer_ros.core.errors import ImageError, ModelError
from fer_ros.core.network import EmotionNet
from fer_ros.core.pipeline import EmotionPipeline
from fer_ros.core.types import Box, Detection, FaceResult

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "samples"
SIX = ["angry", "fear", "happy", "sad", "surprise", "neutral"]


def sample(name: str) -> np.ndarray:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"sample {path} is absent (../shared beside the repo is needed)")
    return cv2.imread(str(path))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> EmotionClassifier:
    torch.manual_seed(0)
    model = EmotionNet(num_classes=6, arch={"widths": [8, 16]}).eval()
    path = tmp_path_factory.mktemp("ckpt") / "six.pt"
    save_checkpoint(make_checkpoint(model, SIX, {"mean": 0.5, "std": 0.25}, {}), path)
    return EmotionClassifier(path)


@pytest.fixture(scope="module")
def ssd():
    try:
        return make_detector("ssd")
    except ModelError as exc:
        pytest.skip(f"SSD weights unavailable: {exc}")


class FixedDetector:
    """Returns the same detections for every frame (in a scrambled order)."""

    def __init__(self, boxes: list[Box]) -> None:
        self.dets = [Detection(b, 0.9 - 0.1 * i) for i, b in enumerate(boxes)]

    def detect(self, bgr):
        return list(reversed(self.dets))


class RecordingTracker:
    def __init__(self) -> None:
        self.calls: list[tuple[int, float | None]] = []

    def assign(self, results, stamp_s=None):
        self.calls.append((len(results), stamp_s))
        for i, r in enumerate(results):
            r.track_id = 10 + i


class RecordingSmoother:
    def __init__(self) -> None:
        self.seen_ids: list[list[int]] = []

    def smooth(self, results, stamp_s=None):
        self.seen_ids.append([r.track_id for r in results])
        for r in results:
            r.probabilities = np.full(len(r.probabilities), 1 / len(r.probabilities), np.float32)
            r.label, r.confidence = "neutral", float(r.probabilities[0])


def test_three_faces_left_to_right(ssd, classifier):
    pipeline = EmotionPipeline(ssd, classifier)
    assert pipeline.labels == SIX
    results = pipeline.process(sample("dlib_2008_002506.jpg"))
    assert len(results) == 3
    assert [r.box.x for r in results] == sorted(r.box.x for r in results)
    for r in results:
        assert isinstance(r, FaceResult) and r.track_id == -1 and r.score > 0.8
        assert r.probabilities.dtype == np.float32 and r.probabilities.shape == (6,)
        assert abs(float(r.probabilities.sum()) - 1) < 1e-5
        assert r.label == SIX[int(np.argmax(r.probabilities))]
        assert r.confidence == pytest.approx(float(r.probabilities.max()))


def test_no_faces_and_gray_frames(ssd, classifier):
    pipeline = EmotionPipeline(ssd, classifier)
    assert pipeline.process(sample("fer_no-faces.jpg")) == []
    gray = cv2.cvtColor(sample("dlib_2008_002506.jpg"), cv2.COLOR_BGR2GRAY)
    assert len(pipeline.process(gray)) == 3
    with pytest.raises(ImageError):
        pipeline.process(None)


def test_tracker_then_smoother_are_called(classifier):
    boxes = [Box(10, 10, 40, 40), Box(100, 20, 40, 40)]
    tracker, smoother = RecordingTracker(), RecordingSmoother()
    pipeline = EmotionPipeline(FixedDetector(boxes), classifier, tracker, smoother)
    results = pipeline.process(np.zeros((120, 160, 3), np.uint8), stamp_s=1.5)
    assert tracker.calls == [(2, 1.5)]
    assert smoother.seen_ids == [[10, 11]]  # the smoother sees the tracker's ids
    assert [r.box for r in results] == boxes and [r.track_id for r in results] == [10, 11]
    assert all(r.label == "neutral" for r in results)
    pipeline.process(np.zeros((120, 160, 3), np.uint8))
    assert tracker.calls[-1] == (2, None)


def test_with_the_real_tracker_and_smoother(classifier):
    tracking = pytest.importorskip("fer_ros.core.tracking")
    smoothing = pytest.importorskip("fer_ros.core.smoothing")
    boxes = [Box(10, 10, 40, 40), Box(100, 20, 40, 40)]
    pipeline = EmotionPipeline(FixedDetector(boxes), classifier, tracking.FaceTracker(),
                               smoothing.EmaSmoother(0.5, labels=SIX))
    frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    first = pipeline.process(frame, 0.0)
    second = pipeline.process(frame, 0.1)
    assert [r.track_id for r in first] == [r.track_id for r in second] == [0, 1]
    for r in second:
        assert abs(float(r.probabilities.sum()) - 1) < 1e-5 and r.label in SIX


def test_fer7_pipeline_justin_is_happy(ssd):
    if not (REPO / "models" / "fer7.pt").is_file():
        pytest.skip("models/fer7.pt (the trained classifier) is not in the repo yet")
    from fer_ros.core.model_files import resolve_model

    results = EmotionPipeline(ssd, EmotionClassifier(resolve_model("fer7"))).process(
        sample("fer_justin.jpg"))
    assert len(results) == 1 and results[0].label == "happy"


# ----------------------------------------------------------------------------- drawing

def _result(box: Box, label: str = "happy", track_id: int = -1) -> FaceResult:
    probs = np.full(6, 0.1, np.float32)
    probs[SIX.index(label) if label in SIX else 0] = 0.5
    return FaceResult(box, 0.9, label, 0.5, probs, track_id)


@pytest.mark.parametrize("size", [(120, 160), (480, 640), (2160, 3840)])
def test_draw_results_returns_a_new_annotated_image(size):
    h, w = size
    image = np.zeros((h, w, 3), np.uint8)
    box = Box(w // 4, h // 4, w // 3, h // 3)
    out = draw_results(image, [_result(box, track_id=3)])
    assert out.shape == image.shape and out.dtype == np.uint8 and out is not image
    assert image.max() == 0  # the input is untouched
    thickness, _ = style_for(w, h)
    assert out[box.y + box.h // 2, box.x].any()  # the left edge of the box is drawn
    assert not out[box.y + box.h // 2, box.x + box.w // 2].any()  # the face itself is not
    assert out[: box.y, box.x : box.x + box.w].any()  # the tag sits above the box
    assert thickness >= 1


def test_style_grows_with_image_size():
    small, vga, uhd = style_for(160, 120), style_for(640, 480), style_for(3840, 2160)
    assert small[0] == 1 and small[0] <= vga[0] < uhd[0]
    assert small[1] < vga[1] < uhd[1]


def test_boxes_at_and_beyond_the_edges_stay_inside():
    image = np.zeros((120, 160, 3), np.uint8)
    results = [
        _result(Box(0, 0, 160, 120), "angry"),  # whole image: tag goes inside
        _result(Box(150, 110, 10, 10), "surprise", track_id=123456),  # corner: tag shifted in
        _result(Box(-20, -20, 50, 50), "unknown-label"),  # partly outside (not clamped)
        _result(Box(500, 500, 10, 10)),  # fully outside: skipped
        _result(Box(10, 10, 0, 0)),  # degenerate: skipped
    ]
    out = draw_results(image, results)
    assert out.shape == image.shape and out.any()
    empty = draw_results(image, [])
    np.testing.assert_array_equal(empty, image)
    assert empty is not image


def test_draw_on_gray_gives_bgr():
    out = draw_results(np.zeros((120, 160), np.uint8), [_result(Box(40, 40, 40, 40))])
    assert out.shape == (120, 160, 3)


def test_tag_text_fits_small_images():
    """At 160x120 the tag of a typical label stays readable (>= 6 px high) and inside."""
    image = np.zeros((120, 160, 3), np.uint8)
    out = draw_results(image, [_result(Box(60, 50, 40, 40), "surprise", track_id=7)])
    rows = np.flatnonzero(out[:50].any(axis=(1, 2)))
    assert rows.size >= 6
