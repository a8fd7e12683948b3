"""FER+ targets, the two-head training, wild-dev scoring and the real-face fine-tune."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

from training.ferplus import (
    FER2013_ORDER, FERPLUS_LABELS, majority_label, read_votes, seven_class_head, soft_target,
    targets_for_rows,
)
from test_training import write_tiny_csv  # noqa: E402

from fer_ros.core.checkpoint import load_checkpoint, network_from_checkpoint  # noqa: E402
from fer_ros.core.network import DEFAULT_ARCH, build_network  # noqa: E402

SHARED = REPO.parent / "shared"
VOTES = SHARED / "data" / "ferplus_votes.csv.gz"
COLUMNS = "row,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"


def test_majority_rule_follows_ferplus():
    v = np.array([0, 8, 1, 1, 0, 0, 0, 0, 0, 0], float)  # single votes are outliers
    assert majority_label(v) == 1
    np.testing.assert_allclose(soft_target(v), np.eye(8)[1])
    assert majority_label(np.array([4, 0, 0, 0, 4, 0, 0, 0, 2, 0], float)) == -1  # no majority
    assert majority_label(np.array([2, 0, 0, 0, 0, 0, 0, 0, 0, 8], float)) == -1  # not a face
    assert soft_target(np.array([0, 0, 0, 0, 0, 0, 0, 0, 9, 1], float)) is None
    t = soft_target(np.array([6, 0, 0, 0, 3, 0, 0, 0, 1, 0], float))
    np.testing.assert_allclose(t[[0, 4]], [2 / 3, 1 / 3])


def test_ferplus_order_maps_to_fer2013_classes():
    # FER2013 order: angry, disgust, fear, happy, sad, surprise, neutral
    assert [FERPLUS_LABELS[i] for i in FER2013_ORDER] == [
        "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    w, b = np.arange(8 * 3).reshape(8, 3), np.arange(8)
    w7, b7 = seven_class_head(w, b)
    assert b7.tolist() == FER2013_ORDER and w7.shape == (7, 3)


@pytest.mark.skipif(not VOTES.exists(), reason="../shared FER+ votes not present")
def test_real_votes_give_ferplus_counts():
    """The majority rule reproduces FERPlus's usable-image counts on the joined votes."""
    from training.dataset import default_data_path, load_fer2013

    splits, _ = load_fer2013(default_data_path())
    votes = read_votes(VOTES)
    counts = {s: int((targets_for_rows(splits[s].rows, votes)[2] >= 0).sum()) for s in splits}
    assert counts == {"Training": 25059, "PublicTest": 3199, "PrivateTest": 3152}


def test_two_head_export_matches_the_training_network():
    from training.train import TwoHeadNet

    torch.manual_seed(0)
    model = TwoHeadNet(build_network(DEFAULT_ARCH, 7), 8).eval()
    x = torch.randn(3, 1, 48, 48)
    main, extra = model(x)
    torch.testing.assert_close(model.export("main").eval()(x), main)
    torch.testing.assert_close(model.export("extra").eval()(x), extra)
    torch.testing.assert_close(model.export("extra7").eval()(x), extra[:, FER2013_ORDER])


def _tiny_votes(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w") as fh:
        fh.write(COLUMNS + "\n")
        for r in range(rows):
            v = np.zeros(10, int)
            v[r % 8] = 7
            v[rng.integers(0, 8)] += 3
            fh.write(",".join(map(str, [r, *v])) + "\n")


def test_training_with_ferplus_head_writes_three_checkpoints(tmp_path):
    data = tmp_path / "tiny.csv"
    write_tiny_csv(data, {"Training": 210, "PublicTest": 70, "PrivateTest": 70})
    votes = tmp_path / "votes.csv"
    _tiny_votes(votes, 350)
    crops = tmp_path / "wild.npz"
    rng = np.random.default_rng(1)
    np.savez(crops, images=rng.integers(0, 255, (20, 48, 48), dtype=np.uint8),
             targets=np.arange(20) % 7)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "training.train", f"--data={data}",
           f"--out_dir={out}", "--epochs=1", "--widths=8,16", "--batch_size=32",
           "--progress=false", "--ferplus_weight=1.0", f"--ferplus_votes={votes}",
           f"--wild_crops={crops}", "--ema_decay=0.9"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "FER_CACHE_DIR": str(tmp_path / "c")})
    assert proc.returncode == 0, proc.stderr
    labels = {n: load_checkpoint(out / n)["labels"] for n in ("best.pt", "best_ferplus.pt",
                                                              "best_wild.pt")}
    assert labels["best_ferplus.pt"] == FERPLUS_LABELS
    assert labels["best.pt"] == labels["best_wild.pt"] == [
        "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    record = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    assert {"val_ferplus_acc", "wild_tune_acc", "wild_tune_acc_ferplus"} <= record.keys()
    assert network_from_checkpoint(load_checkpoint(out / "best_ferplus.pt")).num_classes == 8


def test_identity_split_keeps_people_on_one_side_and_classes_on_both():
    from training.finetune_wild import identity_split

    rng = np.random.default_rng(0)
    ids = np.array([f"p{i}" for i in rng.integers(0, 60, 400)])
    targets = rng.integers(0, 7, 400)
    targets[:6] = 2  # a rare class
    val = identity_split(ids, targets, 0.25, seed=3)
    assert not set(ids[val]) & set(ids[~val])
    assert 0.1 < val.mean() < 0.45
    for c in range(7):
        assert (targets[~val] == c).any()


def test_balance_bias_raises_a_starved_class():
    from training.finetune_wild import balance_bias

    rng = np.random.default_rng(0)
    targets = np.repeat(np.arange(3), 50)
    logits = rng.normal(0, 0.3, (150, 3))
    logits[np.arange(150), targets] += 1.0
    logits[:, 1] -= 1.5  # class 1 is never predicted
    bias = balance_bias(logits, targets)
    before = ((logits.argmax(1) == targets) & (targets == 1)).sum()
    after = (((logits + bias).argmax(1) == targets) & (targets == 1)).sum()
    assert before < 10 < after and bias[1] > bias[0]


def test_wild_scoring_counts_no_face_as_wrong(tmp_path):
    from training.wild_eval import NO_FACE, evaluate_wild, score

    r = score(["happy", "sad", "sad"], ["happy", NO_FACE, "happy"], ["happy", "sad"])
    assert r["accuracy"] == pytest.approx(1 / 3) and r["face_found"] == pytest.approx(2 / 3)
    assert r["per_class"]["sad"]["recall"] == 0 and r["confusion"] == [[1, 0, 0], [1, 0, 1]]
    samples = SHARED / "samples"
    if not samples.is_dir():
        pytest.skip("../shared samples not present")
    (tmp_path / "images").mkdir()
    rows = [("images/a.jpg", "happy"), ("images/b.jpg", "disgust")]
    shutil.copyfile(samples / "fer_justin.jpg", tmp_path / rows[0][0])
    shutil.copyfile(samples / "fer_no-faces.jpg", tmp_path / rows[1][0])
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label", "split", "identity"])
        for f, lab in rows:
            w.writerow([f, lab, "dev", f])
    seen = []
    report, out = evaluate_wild(lambda bgr: seen.append(bgr.shape) or "happy",
                                ["angry", "fear", "happy", "sad", "surprise", "neutral"],
                                "dev", tmp_path)
    assert [o["label"] for o in out] == ["happy", "angry"]  # 6 classes: disgust -> angry
    assert report["accuracy"] == 0.5 and len(seen) == 2


def test_identity_folds_keep_people_together_and_spread_every_class():
    from training.finetune_wild import identity_folds

    rng = np.random.default_rng(0)
    ids = np.array([f"p{i}" for i in rng.integers(0, 80, 500)])
    targets = rng.integers(0, 7, 500)
    targets[ids == "p1"] = 1  # a rare class from few people
    targets[ids == "p2"] = 1
    targets[(ids == "p3") | (ids == "p4")] = 1
    fold = identity_folds(ids, targets, 4, seed=2)
    assert set(fold.tolist()) == {0, 1, 2, 3}
    for name in set(ids.tolist()):
        assert len(set(fold[ids == name].tolist())) == 1
    for c in range(7):
        people = len(set(ids[targets == c].tolist()))
        folds_with_c = len(set(fold[targets == c].tolist()))
        assert folds_with_c == min(4, people)


def test_finetune_init_from_the_ferplus_model_keeps_its_seven_class_logits():
    from training.finetune_wild import init_state

    from fer_ros.core.checkpoint import make_checkpoint

    torch.manual_seed(0)
    net8 = build_network(DEFAULT_ARCH, 8).eval()
    ckpt8 = make_checkpoint(net8, FERPLUS_LABELS, {"mean": 0.5, "std": 0.25}, {})
    net7 = build_network(DEFAULT_ARCH, 7).eval()
    net7.load_state_dict(init_state(ckpt8, 7))
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(net7(x), net8(x)[:, FER2013_ORDER])
    # a fine-tuned checkpoint's folded class offsets are taken out again
    ckpt7 = make_checkpoint(net7, ["angry", "disgust", "fear", "happy", "sad", "surprise",
                                   "neutral"], {"mean": 0.5, "std": 0.25},
                            {"class_bias": {"angry": 0.0, "disgust": 1.5, "fear": 0.0,
                                            "happy": -1.0, "sad": 0.0, "surprise": 0.0,
                                            "neutral": 0.0}})
    again = init_state(ckpt7, 7)["head.3.bias"]
    torch.testing.assert_close(again - ckpt7["model"]["head.3.bias"],
                               torch.tensor([0, -1.5, 0, 1.0, 0, 0, 0]))


@pytest.mark.parametrize("folds", [3, 0])
def test_finetune_writes_offsets_fitted_on_held_out_identities(tmp_path, folds):
    data = tmp_path / "tiny.csv"
    write_tiny_csv(data, {"Training": 210, "PublicTest": 70, "PrivateTest": 70})
    votes = tmp_path / "votes.csv"
    _tiny_votes(votes, 350)
    torch.manual_seed(0)
    init = tmp_path / "init.pt"
    from fer_ros.core.checkpoint import make_checkpoint, save_checkpoint

    arch = {**DEFAULT_ARCH, "widths": [8, 16]}
    save_checkpoint(make_checkpoint(build_network(arch, 8), FERPLUS_LABELS,
                                    {"mean": 0.5, "std": 0.25}, {}), init)
    rng = np.random.default_rng(1)
    crops = tmp_path / "wild.npz"
    np.savez(crops, images=rng.integers(0, 255, (60, 48, 48), dtype=np.uint8),
             targets=np.arange(60) % 7, identity=np.array([f"p{i % 20}" for i in range(60)]),
             detector="ssd", margin=0.05)
    out = tmp_path / "ft"
    cmd = [sys.executable, "-m", "training.finetune_wild", "--init", str(init),
           "--wild-crops", str(crops), "--out", str(out), "--folds", str(folds), "--epochs", "2",
           "--steps", "2", "--wild-batch", "8", "--fer-batch", "8"]
    if folds:
        cmd += ["--recall-floor", "auto"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "FER2013_CSV": str(data), "FERPLUS_VOTES": str(votes),
                               "FER_CACHE_DIR": str(tmp_path / "c")})
    assert proc.returncode == 0, proc.stderr
    ckpt = load_checkpoint(out / "best.pt")
    meta = ckpt["meta"]
    assert ckpt["labels"][1] == "disgust" and meta["epoch"] in (1, 2)
    assert set(meta["class_bias"]) == set(ckpt["labels"])
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    if folds:  # out-of-fold logits chose the epoch count; the final run stops there
        assert meta["folds"] == 3 and len(meta["out_of_fold_accuracy_by_epoch"]) == 2
        assert sorted({r["fold"] for r in records if "fold" in r}) == [0, 1, 2]
        assert sum(1 for r in records if r.get("final")) == meta["epoch"]
        # the recall floor of the offsets was chosen by nested cross-fitting, from tune only
        assert meta["recall_floor"] in [r["floor"] for r in meta["recall_floor_nested"]]
        with np.load(out / "oof.npz") as oof:
            assert oof["logits"].shape == (60, 7) and set(oof["fold"].tolist()) == {0, 1, 2}
    else:  # the held-out identities never trained; the best epoch on them is kept
        val = set(meta["wild_tune_val_identities"])
        assert val and len(val) < 20
        assert max((r["wild_val_acc"], -r["epoch"]) for r in records)[1] == -meta["epoch"]


def test_balance_bias_floor_lifts_the_weakest_class_to_it():
    from training.finetune_wild import balance_bias

    rng = np.random.default_rng(0)
    targets = np.repeat(np.arange(3), 60)
    logits = rng.normal(0, 0.6, (180, 3))
    logits[np.arange(180), targets] += 1.0
    logits[:, 1] -= 0.9  # class 1 under-predicted

    def recall1(bias: np.ndarray) -> float:
        return float(((logits + bias).argmax(1)[targets == 1] == 1).mean())

    plain, floored = balance_bias(logits, targets), balance_bias(logits, targets, floor=0.9)
    assert recall1(floored) > recall1(plain) > recall1(np.zeros(3))
    np.testing.assert_array_equal(balance_bias(logits, targets, floor=0.0), plain)


def test_nested_floor_choice_prefers_a_floor_that_meets_the_goal():
    from training.finetune_wild import nested_floor_choice

    rng = np.random.default_rng(1)
    targets = np.repeat(np.arange(4), 80)
    logits = rng.normal(0, 0.7, (320, 4))
    logits[np.arange(320), targets] += 1.2
    logits[:, 3] -= 1.6  # class 3 is starved unless a floor protects it
    folds = np.tile(np.arange(4), 80)
    floor, rows = nested_floor_choice(logits, targets, folds, [0.0, 0.6], goal=0.55)
    by_floor = {r["floor"]: r for r in rows}
    assert set(by_floor) == {0.0, 0.6}
    ok = [r for r in rows if r["nested_min_recall"] >= 0.55]
    assert ok and by_floor[floor] in ok
    assert all(len(r["nested_recall"]) == 4 for r in rows)


def test_recall_floor_auto_needs_folds():
    proc = subprocess.run([sys.executable, "-m", "training.finetune_wild",
                           "--init", "x.pt", "--wild-crops", "x.npz", "--out", "o",
                           "--recall-floor", "auto"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2 and "--recall-floor auto needs --folds" in proc.stderr


def test_fitted_output_layer_learns_soft_targets():
    from training.six_class import fit_output_layer

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (6, 16)).astype(np.float32)
    y = np.arange(600) % 6
    feats = torch.from_numpy(centres[y] + rng.normal(0, 0.5, (600, 16)).astype(np.float32))
    targets = torch.nn.functional.one_hot(torch.from_numpy(y), 6).float() * 0.9 + 0.1 / 6
    init = torch.nn.Linear(16, 6)
    torch.nn.init.zeros_(init.weight)
    torch.nn.init.zeros_(init.bias)
    layer = fit_output_layer([(feats, targets, 1.0)], init)
    assert (layer(feats).argmax(1).numpy() == y).mean() > 0.98
    assert torch.equal(init.weight, torch.zeros(6, 16))  # the start is not modified


def test_balanced_run_ships_its_ferplus_head_and_a_six_class_variant(tmp_path):
    from fer_ros.core.classifier import EmotionClassifier

    data = tmp_path / "tiny.csv"
    write_tiny_csv(data, {"Training": 210, "PublicTest": 70, "PrivateTest": 70})
    votes = tmp_path / "votes.csv"
    _tiny_votes(votes, 350)
    rng = np.random.default_rng(1)
    wild, video = tmp_path / "wild.npz", tmp_path / "video.npz"
    np.savez(wild, images=rng.integers(0, 255, (40, 48, 48), dtype=np.uint8),
             targets=np.arange(40) % 7, identity=np.array([f"p{i % 10}" for i in range(40)]))
    faces = rng.integers(0, 255, (12, 48, 48), dtype=np.uint8)
    np.savez(video, images=faces, found=np.ones(12, bool),
             labels=np.array(["happy", "neutral", "sad"] * 4), videos=np.array(["v"] * 12))
    out = tmp_path / "run"
    env = {**os.environ, "FER_CACHE_DIR": str(tmp_path / "c")}
    cmd = [sys.executable, "-m", "training.train", f"--data={data}", f"--out_dir={out}",
           "--epochs=1", "--widths=8,16", "--batch_size=32", "--progress=false",
           "--ferplus_weight=1.0", f"--ferplus_votes={votes}", f"--wild_crops={wild}",
           "--wild_weight=1", "--wild_per_batch=8", f"--video_crops={video}", "--ema_decay=0.9"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "training.six_class", "--from",
                           str(out / "best_balanced.pt"), "--out", str(tmp_path / "six.pt")],
                          capture_output=True, text=True, cwd=REPO, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    seven = EmotionClassifier(out / "best_balanced.pt", num_threads=1)
    plus = EmotionClassifier(out / "best_balanced_ferplus.pt", num_threads=1)
    six = EmotionClassifier(tmp_path / "six.pt", num_threads=1)
    assert plus.labels == FERPLUS_LABELS
    assert six.labels == ["angry", "fear", "happy", "sad", "surprise", "neutral"]
    # the 8-class model is the same epoch's head before contempt was dropped
    p7, p8 = seven.predict(faces), plus.predict(faces)
    in7 = p8[:, [FERPLUS_LABELS.index(c) for c in seven.labels]]
    np.testing.assert_allclose(in7 / in7.sum(1, keepdims=True), p7, atol=1e-4)
    np.testing.assert_allclose(six.predict(faces).sum(1), 1.0, atol=1e-5)
    assert load_checkpoint(tmp_path / "six.pt")["meta"]["epoch"] == 1


def test_offset_sweep_selects_on_the_runs_held_out_people_only():
    """fer7 trained on three quarters of wild-dev tune: the sweep scores the other quarter."""
    from training.finetune_wild import identity_split
    from training.offset_sweep import tune_holdout

    rng = np.random.default_rng(1)
    tune = {"identity": np.array([f"p{i}" for i in rng.integers(0, 80, 500)]),
            "targets": rng.integers(0, 7, 500)}
    ckpt = load_checkpoint(REPO / "models" / "fer7.pt")
    cfg = ckpt["meta"]["train_config"]
    held = tune_holdout(ckpt, tune)
    assert np.array_equal(held, identity_split(tune["identity"], tune["targets"],
                                               cfg["wild_holdout"], cfg["seed"]))
    assert 0 < held.sum() < 250
    assert tune_holdout({"meta": {"train_config": {"wild_weight": 0.0}}}, tune).all()
    # finetune_wild's checkpoints: fer6 kept its held-out identities, fer7_photo trained on all
    fer6 = load_checkpoint(REPO / "models" / "fer6.pt")
    held_ids = fer6["meta"]["wild_tune_val_identities"]
    tune["identity"] = tune["identity"].astype(object)
    tune["identity"][:3] = held_ids[0]
    assert np.array_equal(tune_holdout(fer6, tune), np.isin(tune["identity"], held_ids))
    assert tune_holdout(fer6, tune)[:3].all()
    with pytest.raises(ValueError, match="all of wild-dev tune"):
        tune_holdout(load_checkpoint(REPO / "models" / "fer7_photo.pt"), tune)


def test_offset_sweep_reads_disgust_as_angry_for_a_six_class_model():
    from training.offset_sweep import truth

    crops = {"targets": np.array([0, 1, 3, 6])}  # angry, disgust, happy, neutral
    six = ["angry", "fear", "happy", "sad", "surprise", "neutral"]
    assert truth(crops, None, six) == ["angry", "angry", "happy", "neutral"]
    assert truth(crops, np.array([False, True, True, False]),
                 six + ["disgust"]) == ["disgust", "happy"]
