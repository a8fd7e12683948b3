"""Training pipeline: data loading (csv and folders), 6-class mapping, config, smoke training."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

from training.config import TrainConfig
from training.dataset import FER2013_LABELS, load_fer2013, to_six_classes
from training.metrics import expected_calibration_error, summarize

from fer_ros.core.checkpoint import load_checkpoint, network_from_checkpoint  # noqa: E402

SHARED_CSV = REPO.parent / "shared" / "data" / "fer2013.csv.gz"


def _face(label: int, rng: np.random.Generator) -> np.ndarray:
    """A 48x48 image whose brightness pattern depends on the label (learnable, not random)."""
    img = rng.integers(0, 40, (48, 48)).astype(np.uint8)
    img[:, label * 6 : label * 6 + 6] += 200
    return img


def write_tiny_csv(path: Path, per_split: dict[str, int], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for usage, n in per_split.items():
            for i in range(n):
                label = i % 7
                w.writerow([label, " ".join(map(str, _face(label, rng).ravel())), usage])


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path / "cache"))


def test_csv_loading_splits_and_labels(tmp_path):
    path = tmp_path / "tiny.csv"
    write_tiny_csv(path, {"Training": 21, "PublicTest": 14, "PrivateTest": 7})
    splits, digest = load_fer2013(path)
    assert {k: len(v) for k, v in splits.items()} == {"Training": 21, "PublicTest": 14, "PrivateTest": 7}
    assert splits["Training"].images.shape == (21, 48, 48)
    assert splits["Training"].images.dtype == np.uint8
    assert splits["Training"].targets.tolist() == [i % 7 for i in range(21)]
    assert splits["Training"].labels == FER2013_LABELS
    assert len(digest) == 64
    cached, _ = load_fer2013(path)  # second load comes from the cache, same content
    assert np.array_equal(cached["PublicTest"].images, splits["PublicTest"].images)


def test_six_class_mode_merges_disgust_into_angry(tmp_path):
    assert to_six_classes(np.arange(7)).tolist() == [0, 0, 1, 2, 3, 4, 5]
    path = tmp_path / "tiny.csv"
    write_tiny_csv(path, {"Training": 14, "PublicTest": 7, "PrivateTest": 7})
    splits, _ = load_fer2013(path, num_classes=6)
    assert splits["Training"].labels == ["angry", "fear", "happy", "sad", "surprise", "neutral"]
    assert splits["Training"].targets.tolist() == [0, 0, 1, 2, 3, 4, 5] * 2


def test_bad_csv_rows_are_reported(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    with pytest.raises(ValueError, match="3 pixels, expected 2304"):
        load_fer2013(path)
    (tmp_path / "nocols.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        load_fer2013(tmp_path / "nocols.csv")
    with pytest.raises(FileNotFoundError, match="FER2013 data not found"):
        load_fer2013(tmp_path / "absent.csv")


def test_image_folder_layout(tmp_path):
    rng = np.random.default_rng(1)
    for split, n in (("train", 10), ("test", 3)):
        for label in ("happy", "sad"):
            d = tmp_path / "imgs" / split / label
            d.mkdir(parents=True)
            for i in range(n):
                cv2.imwrite(str(d / f"{i}.png"), _face(FER2013_LABELS.index(label), rng))
    splits, _ = load_fer2013(tmp_path / "imgs")
    # no val/ folder: a seeded stratified 10 % of train becomes PublicTest
    assert len(splits["Training"]) + len(splits["PublicTest"]) == 20
    assert sorted(set(splits["PublicTest"].targets.tolist())) == [3, 4]
    assert len(splits["PrivateTest"]) == 6
    assert set(splits["PrivateTest"].targets.tolist()) == {3, 4}


def test_config_rejects_unknown_keys_and_bad_types():
    cfg = TrainConfig.from_args(["--epochs=3", "--lr=0.05", "--bf16=false", "--widths=16,32"])
    assert (cfg.epochs, cfg.lr, cfg.bf16, cfg.widths) == (3, 0.05, False, [16, 32])
    with pytest.raises(ValueError, match="unknown config key 'epoch'"):
        TrainConfig.from_args(["--epoch=3"])
    with pytest.raises(ValueError, match="not a valid int"):
        TrainConfig.from_args(["--epochs=many"])
    with pytest.raises(ValueError, match="not a valid bool"):
        TrainConfig.from_args(["--bf16=maybe"])


def test_metrics_on_a_known_example():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    targets = np.array([0, 1, 1, 1])
    rep = summarize(probs, targets, ["a", "b"])
    assert rep["accuracy"] == 0.75
    assert rep["confusion"] == [[1, 0], [1, 2]]
    assert rep["per_class"]["a"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert expected_calibration_error(np.array([[1.0, 0.0]]), np.array([0])) == 0.0
    assert expected_calibration_error(np.array([[0.9, 0.1]]), np.array([1])) == pytest.approx(0.9)


def test_one_epoch_smoke_training_gives_a_checkpoint_the_core_loads(tmp_path):
    data = tmp_path / "tiny.csv"
    write_tiny_csv(data, {"Training": 280, "PublicTest": 70, "PrivateTest": 70})
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "training.train", f"--data={data}",
           f"--out_dir={out}", "--epochs=1", "--widths=8,16", "--batch_size=32",
           "--progress=false", "--num_classes=6"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**__import__("os").environ, "FER_CACHE_DIR": str(tmp_path / "c")})
    assert proc.returncode == 0, proc.stderr
    assert "epoch   1" in proc.stdout
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["labels"] == ["angry", "fear", "happy", "sad", "surprise", "neutral"]
    assert ckpt["input_size"] == 48 and ckpt["color"] == "gray"
    assert ckpt["meta"]["epoch"] == 1 and len(ckpt["meta"]["data_sha256"]) == 64
    assert 0.0 <= ckpt["meta"]["public_test_accuracy"] <= 1.0
    assert network_from_checkpoint(ckpt).num_classes == 6
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1]
    # the evaluation script reads it back with the documented JSON keys
    ev = subprocess.run([sys.executable, "-m", "training.evaluate", "--checkpoint",
                         str(out / "best.pt"), "--data", str(data), "--json"],
                        capture_output=True, text=True, cwd=REPO, timeout=120,
                        env={**__import__("os").environ, "FER_CACHE_DIR": str(tmp_path / "c")})
    assert ev.returncode == 0, ev.stderr
    report = json.loads(ev.stdout)
    assert {"accuracy", "macro_f1", "per_class", "confusion", "ece"} <= report.keys()
    assert len(report["confusion"]) == 6 and sum(map(sum, report["confusion"])) == 70


def test_train_rejects_unknown_key_with_exit_code_2():
    proc = subprocess.run([sys.executable, "-m", "training.train", "--nope=1"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2
    assert "unknown config key 'nope'" in proc.stderr


@pytest.mark.skipif(not SHARED_CSV.exists(), reason="../shared FER2013 copy not present")
@pytest.mark.parametrize("name, labels, fer2013, ferplus", [
    # fer2013: PrivateTest accuracy on FER2013's labels; ferplus: on FER+ majority labels
    ("fer7_fer2013.pt", 7, 0.72, None),  # with the flip TTA it was made for
    ("fer7.pt", 7, 0.59, 0.84),
    ("fer7_photo.pt", 7, 0.60, 0.81),
    ("fer6.pt", 6, 0.60, 0.82),
    ("ferplus8.pt", 8, None, 0.87),
])
def test_shipped_models_score_on_private_test(name, labels, fer2013, ferplus):
    """The shipped checkpoints hold what models/README.md says (a bit below the measured
    figures, which `training/evaluate.py --report` prints)."""
    path = REPO / "models" / name
    if not path.exists():
        pytest.fail(f"shipped model {path} is missing")
    from training.dataset import load_fer2013
    from training.ferplus import FERPLUS_LABELS, default_votes_path, read_votes, targets_for_rows
    from training.inference import checkpoint_logits

    ckpt = load_checkpoint(path)
    assert len(ckpt["labels"]) == labels
    test = load_fer2013(SHARED_CSV, num_classes=6 if labels == 6 else 7)[0]["PrivateTest"]
    pred = [ckpt["labels"][i] for i in checkpoint_logits(ckpt, test.images).argmax(1).tolist()]
    if fer2013 is not None:
        truth = [test.labels[t] for t in test.targets]
        assert np.mean([p == t for p, t in zip(pred, truth)]) > fer2013
    if ferplus is not None:
        _, _, major = targets_for_rows(test.rows, read_votes(default_votes_path()))
        merged = {"disgust": "angry"} if labels == 6 else {}
        pairs = [(p, merged.get(FERPLUS_LABELS[m], FERPLUS_LABELS[m]))
                 for p, m in zip(pred, major) if m >= 0]
        assert np.mean([p == t for p, t in pairs]) > ferplus


def test_accuracy_by_confidence_counts_unanswered_items_as_uncovered():
    from training.metrics import accuracy_by_confidence

    correct = np.array([True, True, False, True, False, False])
    confidence = np.array([0.95, 0.75, 0.72, 0.55, 0.4, np.nan])  # the last: nothing answered
    rows = accuracy_by_confidence(correct, confidence, (0.0, 0.7, 0.9, 0.99))
    assert rows[0] == (0.0, 5 / 6, 3 / 5)
    assert rows[1] == (0.7, 0.5, 2 / 3)
    assert rows[2] == (0.9, 1 / 6, 1.0)
    assert rows[3][:2] == (0.99, 0.0) and np.isnan(rows[3][2])
