"""video-dev scoring (training/video_eval.py), camera augmentation and the training CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fer_ros.core.types import Box
from training.augment import camera_degrade, speaking_mouths
from training.config import TrainConfig
from training.video_eval import (
    VideoFaces, best_match, calm_false_alarm_rate, collect_faces, format_coverage, format_errors,
    score_probs,
    video_dev_dir,
)

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def onehot(names: list[str]) -> np.ndarray:
    probs = np.full((len(names), len(LABELS)), 0.01, np.float32)
    for i, name in enumerate(names):
        probs[i, LABELS.index(name)] = 0.94
    return probs


def test_calm_false_alarms_count_calm_faces_called_upset():
    truth = ["happy", "neutral", "neutral", "neutral", "sad"]
    pred = ["sad", "surprise", "neutral", "disgust", "happy"]
    assert calm_false_alarm_rate(truth, pred) == pytest.approx(2 / 4)
    assert calm_false_alarm_rate(["sad"], ["angry"]) == 0.0


def test_best_match_needs_iou_0_3():
    truth = Box(100, 100, 50, 50)
    boxes = [Box(0, 0, 40, 40), Box(110, 105, 50, 50), Box(300, 300, 50, 50)]
    assert best_match(truth, boxes) == 1
    assert best_match(truth, [Box(130, 130, 50, 50)]) is None  # IoU 0.08
    assert best_match(truth, []) is None


def test_score_counts_unmatched_faces_as_wrong_and_reports_precision():
    truth = ["happy", "happy", "neutral", "neutral", "sad"]
    faces = VideoFaces(np.zeros((5, 48, 48), np.uint8), np.array([True, True, True, False, True]),
                       truth, ["v"] * 5)
    report = score_probs(onehot(["happy", "sad", "neutral", "neutral", "sad"]), faces, LABELS)
    assert report["accuracy"] == pytest.approx(3 / 5)  # the unmatched neutral is wrong
    assert report["face_found"] == pytest.approx(4 / 5)
    assert report["per_class"]["sad"]["precision"] == pytest.approx(1 / 2)
    assert report["per_class"]["happy"]["recall"] == pytest.approx(1 / 2)
    assert report["calm_false_alarms"] == pytest.approx(1 / 4)  # happy -> sad
    assert report["faces"] == 5 and 0.0 <= report["ece"] <= 1.0


def test_errors_list_wrong_answers_per_clip_most_frequent_first():
    truth = ["neutral", "neutral", "neutral", "happy", "angry"]
    faces = VideoFaces(np.zeros((5, 48, 48), np.uint8), np.array([True, True, True, True, False]),
                       truth, ["a", "a", "b", "b", "b"])
    text = format_errors(onehot(["surprise", "surprise", "neutral", "sad", "angry"]), faces, LABELS)
    assert text.splitlines() == ["    2  a: neutral -> surprise", "    1  b: happy -> sad",
                                 "    1  b: angry -> (no face)"]



def test_coverage_leaves_out_unmatched_faces_and_counts_only_confident_answers():
    truth = ["neutral", "neutral", "happy", "happy"]
    faces = VideoFaces(np.zeros((4, 48, 48), np.uint8), np.array([True, True, True, False]),
                       truth, ["a"] * 4)
    probs = onehot(["neutral", "surprise", "happy", "happy"])
    probs[2] = 0.1
    probs[2, LABELS.index("happy")] = 0.4  # right, but too unsure to count at 0.5 and above
    lines = format_coverage(probs, faces, LABELS).splitlines()
    assert lines[0] == "  confidence >= 0.5:  50.0 % of faces answered,  50.0 % of them right"
    assert lines[-1] == "  confidence >= 0.9:  50.0 % of faces answered,  50.0 % of them right"


@pytest.mark.skipif(not (video_dev_dir() / "labels.csv").is_file(), reason="video-dev not present")
def test_video_dev_with_the_default_detector_finds_the_labelled_faces():
    from fer_ros.core.factory import build_detector, build_verifier
    from fer_ros.params import load_defaults

    params = load_defaults()
    faces = collect_faces(build_detector(params), verifier=build_verifier(params))
    assert len(faces.labels) == 156 and faces.images.shape == (156, 48, 48)
    assert faces.found.mean() > 0.95
    assert {"happy", "neutral", "sad", "surprise", "angry"} == set(faces.labels)
    # the shipped models on those faces, per frame (models/README.md has the full figures)
    from fer_ros.core.classifier import EmotionClassifier
    from fer_ros.core.model_files import resolve_model

    scores = {}
    for name in ("fer7", "fer7_photo"):
        clf = EmotionClassifier(resolve_model(name), num_threads=None)
        scores[name] = score_probs(clf.predict(faces.images), faces, clf.labels)
    assert scores["fer7"]["accuracy"] > 0.85 and scores["fer7"]["calm_false_alarms"] < 0.01
    assert scores["fer7_photo"]["calm_false_alarms"] > 0.05  # why it is no longer the default


def test_camera_degrade_keeps_shape_and_is_identity_at_probability_0():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 1, 48, 48).clamp(-1.9, 1.9)
    norm = {"mean": 0.5, "std": 0.25}
    assert torch.allclose(camera_degrade(x.clone(), norm, 0.0, gen), x, atol=1e-6)
    y = camera_degrade(x.clone(), norm, 1.0, gen)
    assert y.shape == x.shape and torch.isfinite(y).all()
    # grey levels stay in [0, 1]; blur and low resolution take out fine detail
    assert float((y * 0.25 + 0.5).min()) >= -1e-6 and float((y * 0.25 + 0.5).max()) <= 1 + 1e-6
    grad = lambda t: (t[..., 1:] - t[..., :-1]).abs().mean()  # noqa: E731
    assert grad(y) < grad(x)


def test_camera_degrade_is_reproducible_from_the_generator():
    x = torch.randn(8, 1, 48, 48)
    norm = {"mean": 0.5, "std": 0.25}
    a = camera_degrade(x.clone(), norm, 0.5, torch.Generator().manual_seed(3))
    b = camera_degrade(x.clone(), norm, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_train_config_takes_both_option_styles():
    cfg = TrainConfig.from_args(["--epochs", "3", "--video-aug=0.25", "--widths", "8,16"])
    assert (cfg.epochs, cfg.video_aug, cfg.widths) == (3, 0.25, [8, 16])
    with pytest.raises(ValueError, match="needs a value"):
        TrainConfig.from_args(["--epochs"])
    with pytest.raises(ValueError, match="unknown config key 'nope'"):
        TrainConfig.from_args(["--nope", "1"])


def test_speaking_mouths_gives_calm_faces_a_donor_mouth_and_leaves_the_rest():
    x = torch.zeros(6, 1, 48, 48)
    x[4:] = 1.0  # the donors
    calm = torch.tensor([True, True, True, False, False, False])
    donor = torch.tensor([False, False, False, False, True, True])
    out = speaking_mouths(x, calm, donor, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(out[:3, :, :26], x[:3, :, :26])  # eyes and brows kept
    assert torch.equal(out[:3, :, 30:], torch.ones(3, 1, 18, 48))  # the donor's mouth
    assert 0 < float(out[0, 0, 28, 0]) < 1  # blended over the ramp
    assert torch.equal(out[3:], x[3:])  # not calm: untouched
    assert torch.equal(speaking_mouths(x, calm, donor, 0.0, torch.Generator()), x)
    assert torch.equal(speaking_mouths(x, calm, torch.zeros(6, dtype=torch.bool), 1.0,
                                       torch.Generator()), x)  # no donor in the batch
