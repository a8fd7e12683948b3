"""training/distill.py: teachers' flip-averaged targets, the loss, a tiny run and --resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "training"))

from dataset import FER2013_LABELS, file_sha256  # noqa: E402
from distill import distill_loss, teacher_targets  # noqa: E402
from test_training import write_tiny_csv  # noqa: E402

from fer_ros.core.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint  # noqa: E402
from fer_ros.core.network import DEFAULT_ARCH, build_network  # noqa: E402

ARCH = {**DEFAULT_ARCH, "widths": [8, 16]}
NORM = {"mean": 0.3, "std": 0.3}


def _checkpoint(seed: int, labels: list[str] = FER2013_LABELS) -> dict:
    torch.manual_seed(seed)
    return make_checkpoint(build_network(ARCH, len(labels)).eval(), labels, NORM, {})


def test_teacher_targets_are_distributions_that_ignore_mirroring():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (10, 48, 48), dtype=np.uint8)
    teachers = [_checkpoint(1), _checkpoint(2)]
    soft = teacher_targets(teachers, images, temperature=2.0)
    assert soft.shape == (10, 7)
    torch.testing.assert_close(soft.sum(1), torch.ones(10))
    mirrored = np.ascontiguousarray(images[:, :, ::-1])
    torch.testing.assert_close(teacher_targets(teachers, mirrored, 2.0), soft)
    # sharper at a lower temperature
    assert teacher_targets(teachers, images, 0.5).max(1).values.mean() > soft.max(1).values.mean()


def test_distill_loss_blends_the_teacher_and_the_label():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    hard = torch.tensor([0, 2])
    soft = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    ce = F.cross_entropy(logits, hard)
    torch.testing.assert_close(distill_loss(logits, soft, hard, 0.0, 2.0, 0.0), ce)
    kd = F.kl_div(F.log_softmax(logits / 2.0, 1), soft, reduction="batchmean") * 4.0
    torch.testing.assert_close(distill_loss(logits, soft, hard, 1.0, 2.0, 0.0), kd)
    # the student that copies the teacher (at T = 1) has no distillation loss
    assert float(distill_loss(soft.log(), soft, hard, 1.0, 1.0, 0.0)) == pytest.approx(0, abs=1e-6)


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "training" / "distill.py"), "--init",
           str(tmp_path / "init.pt"), "--teachers", str(tmp_path / "t1.pt"),
           str(tmp_path / "init.pt"), "--out", str(tmp_path / "out"), "--epochs", "2",
           "--batch-size", "32", "--lr", "0.05", "--ema-decay", "0.5", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "FER2013_CSV": str(tmp_path / "tiny.csv"),
                               "FER_CACHE_DIR": str(tmp_path / "c")})


def test_tiny_distillation_run_saves_a_self_describing_student_and_resumes(tmp_path):
    write_tiny_csv(tmp_path / "tiny.csv", {"Training": 280, "PublicTest": 70, "PrivateTest": 70})
    save_checkpoint(_checkpoint(3), tmp_path / "init.pt")
    save_checkpoint(_checkpoint(4), tmp_path / "t1.pt")
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "out"
    ckpt = load_checkpoint(out / "best.pt")
    meta = ckpt["meta"]
    assert ckpt["labels"] == FER2013_LABELS and ckpt["normalization"] == NORM
    assert [t["sha256"] for t in meta["distill"]["teachers"]] == [
        file_sha256(tmp_path / "t1.pt"), file_sha256(tmp_path / "init.pt")]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert meta["public_test_accuracy"] == max(r["public_test_acc"] for r in log) > 1 / 7
    # a finished run resumed trains no further epoch and keeps its log
    again = _run(tmp_path, "--resume")
    assert again.returncode == 0 and "resumed at epoch 2" in again.stdout
    assert len((out / "log.jsonl").read_text().splitlines()) == 2


def test_teachers_with_other_labels_are_refused(tmp_path):
    write_tiny_csv(tmp_path / "tiny.csv", {"Training": 14, "PublicTest": 7, "PrivateTest": 7})
    save_checkpoint(_checkpoint(3), tmp_path / "init.pt")
    six = ["angry", "fear", "happy", "sad", "surprise", "neutral"]
    save_checkpoint(_checkpoint(4, six), tmp_path / "t1.pt")
    proc = _run(tmp_path)
    assert proc.returncode != 0 and "has labels" in proc.stderr and "Traceback" not in proc.stderr
