"""FaceTracker: stable ids on synthetic moving boxes, and on the real sample video."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fer_ros.core.errors import ConfigError
from fer_ros.core.tracking import FaceTracker
from fer_ros.core.types import Box, FaceResult

REPO_ROOT = Path(__file__).resolve().parents[1]
VIDEO = REPO_ROOT.parent / "shared" / "samples" / "fer_woman2.mp4"


def face(x: int, y: int, w: int = 80, h: int = 80) -> FaceResult:
    probs = np.full(7, 1 / 7, dtype=np.float32)
    return FaceResult(Box(x, y, w, h), 0.9, "angry", float(probs[0]), probs)


def step(tracker: FaceTracker, *boxes: tuple[int, int]) -> list[int]:
    results = [face(x, y) for x, y in boxes]
    tracker.assign(results, None)
    return [r.track_id for r in results]


def test_ids_start_at_zero_and_stay_stable_while_moving():
    tracker = FaceTracker()
    ids = [step(tracker, (100 + 6 * i, 50 + 2 * i)) for i in range(30)]
    assert ids == [[0]] * 30


def test_id_survives_three_frame_occlusion():
    tracker = FaceTracker(max_missed=5)
    for i in range(10):
        assert step(tracker, (100 + 4 * i, 100)) == [0]
    for _ in range(3):  # face hidden: no detections
        assert step(tracker) == []
    assert tracker.active_ids == [0]
    # reappears where it would have moved to (constant velocity), keeps its id
    assert step(tracker, (100 + 4 * 13, 100)) == [0]


def test_track_dies_after_max_missed_and_ids_are_never_reused():
    tracker = FaceTracker(max_missed=2)
    assert step(tracker, (100, 100)) == [0]
    for _ in range(2):
        step(tracker)
    assert tracker.active_ids == [0]  # missed 2 frames: still alive
    step(tracker)
    assert tracker.active_ids == []  # missed 3 > max_missed: gone
    assert step(tracker, (100, 100)) == [1]  # same place, but a new face id
    tracker.reset()
    assert step(tracker, (100, 100)) == [2]  # reset forgets tracks, not the id counter
    tracker.reset(restart_ids=True)
    assert step(tracker, (100, 100)) == [0]


def test_new_face_gets_new_id_and_others_keep_theirs():
    tracker = FaceTracker()
    assert step(tracker, (100, 100)) == [0]
    assert step(tracker, (102, 100)) == [0]
    assert step(tracker, (400, 120), (104, 100)) == [1, 0]  # order of detections does not matter
    assert step(tracker, (106, 100), (402, 120)) == [0, 1]


def test_crossing_faces_keep_their_ids():
    tracker = FaceTracker()
    # face A moves right, face B moves left, 20 px lower; they overlap heavily mid-way
    for i in range(25):
        a, b = (100 + 10 * i, 100), (340 - 10 * i, 120)
        if i % 2:  # detection order must not matter
            id_b, id_a = step(tracker, b, a)
        else:
            id_a, id_b = step(tracker, a, b)
        assert (id_a, id_b) == (0, 1), f"frame {i}"


def test_fast_motion_matches_by_center_distance():
    # default: a jump of 0.35 side diagonally gives IoU 0.27 < 0.3, matched through the fallback
    tracker = FaceTracker(predict_motion=False)
    assert step(tracker, (100, 100)) == [0]
    assert Box(100, 100, 80, 80).iou(Box(128, 128, 80, 80)) < 0.3
    assert step(tracker, (128, 128)) == [0]
    # a jump of 1.2 sides (IoU 0) needs a larger max_center_distance
    tracker = FaceTracker(max_center_distance=1.5, predict_motion=False)
    assert step(tracker, (100, 100)) == [0]
    assert step(tracker, (196, 100)) == [0]
    tracker = FaceTracker(max_center_distance=0.0, predict_motion=False)  # fallback off
    assert step(tracker, (100, 100)) == [0]
    assert step(tracker, (128, 128)) == [1]


def test_prediction_follows_an_accelerating_face():
    # speeds up to 60 px/frame on an 80 px face (IoU 0.14 between raw consecutive boxes)
    tracker = FaceTracker()
    xs = np.cumsum([20] + [min(10 * i, 60) for i in range(1, 15)])
    assert Box(0, 100, 80, 80).iou(Box(60, 100, 80, 80)) < 0.3
    ids = [step(tracker, (int(x), 100)) for x in xs]
    assert ids == [[0]] * len(xs)


def test_deterministic():
    rng = np.random.default_rng(0)
    frames = [[(int(x), int(y)) for x, y in rng.integers(0, 400, size=(rng.integers(0, 4), 2))]
              for _ in range(40)]
    runs = []
    for _ in range(2):
        tracker = FaceTracker()
        runs.append([step(tracker, *f) for f in frames])
    assert runs[0] == runs[1]


def test_bad_parameters_raise():
    with pytest.raises(ConfigError):
        FaceTracker(iou_threshold=0.0)
    with pytest.raises(ConfigError):
        FaceTracker(max_missed=-1)
    with pytest.raises(ConfigError):
        FaceTracker(max_center_distance=-0.1)


def ssd_detector(models_dir: Path):
    """The SSD face detector: through model_files when it resolves the weights, else straight
    from the model mirror (the conftest's ``shared_models_dir``)."""
    from fer_ros.core.detector import SSD_CONFIG, SSD_MODEL, SsdTfFaceDetector, make_detector
    from fer_ros.core.errors import ModelError

    try:
        return make_detector("ssd")
    except (ImportError, ModelError):
        folder = models_dir / "face_detector"
        return SsdTfFaceDetector(folder / SSD_MODEL, folder / SSD_CONFIG)


def read_frames(path: Path, count: int, stride: int = 1) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    index = 0
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        if index % stride == 0:
            frames.append(frame)
        index += 1
    cap.release()
    return frames


def test_one_woman_keeps_one_id_on_real_video(shared_models_dir):
    if not VIDEO.is_file():
        pytest.skip(f"sample video not found at {VIDEO} (needs ../shared beside the repo)")
    detector = ssd_detector(shared_models_dir)
    frames = read_frames(VIDEO, 150)
    assert len(frames) == 150
    tracker = FaceTracker()
    ids: list[int] = []
    for i, frame in enumerate(frames):
        results = [FaceResult(d.box, d.score, "neutral", 1.0, np.ones(1, np.float32))
                   for d in detector.detect(frame)]
        tracker.assign(results, i / 30.0)
        ids.extend(r.track_id for r in results)
    assert len(ids) >= 140, f"SSD found a face in only {len(ids)} of 150 frames"
    top_id, top_count = Counter(ids).most_common(1)[0]
    assert top_id == 0
    assert top_count >= 0.95 * len(ids), Counter(ids)



def test_a_face_is_confirmed_after_min_hits_of_hit_window():
    tracker = FaceTracker(min_hits=3, hit_window=5)
    box = Box(100, 100, 80, 80)
    assert tracker.update([box]) == [(0, False)]
    assert tracker.update([box]) == [(0, False)]
    assert tracker.update([]) == []
    assert tracker.update([box]) == [(0, True)]  # 3 of the last 4
    for _ in range(3):  # confirmed tracks stay confirmed through misses
        tracker.update([])
    assert tracker.update([box]) == [(0, True)]


def test_a_one_frame_box_is_never_confirmed_and_dropped_soon():
    tracker = FaceTracker(min_hits=3, hit_window=5, max_missed=10)
    assert tracker.update([Box(300, 300, 60, 60)]) == [(0, False)]
    for _ in range(3):
        tracker.update([])
    assert tracker.active_ids == []  # cannot reach 3 hits in its window any more
    with pytest.raises(ConfigError):
        FaceTracker(min_hits=4, hit_window=3)
