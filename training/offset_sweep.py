"""Per-class offsets on a checkpoint's log-probabilities: does any help video and photos together?

    python -m training.offset_sweep models/fer7.pt [--classes neutral,surprise,disgust]
                                                  [--grid=-1,-0.5,0,0.5,1] [--flip-tta on|off]

The rule for shipping an offset is that it improves video-dev and wild-dev together. This
prints every combination of the grid for the named classes, scored on the selection sets
(video-dev and wild-dev ``tune``: only the identities the checkpoint's run held out, when it
trained on ``tune``) with wild-dev ``dev`` beside them for reporting. ``both`` marks offsets that
raise accuracy on both selection sets without raising either calm false-alarm rate.
``--flip-tta`` scores the checkpoint with flip test-time augmentation on or off instead of
its own setting; ``--grid=0`` with each answers the same question for flip TTA.
"""

from __future__ import annotations

import argparse
import itertools
import sys

import numpy as np

from fer_ros.core.checkpoint import load_checkpoint
from fer_ros.core.classifier import EmotionClassifier
from fer_ros.params import load_defaults
from training import video_eval, wild_crops
from training.dataset import FER2013_LABELS
from training.finetune_wild import identity_split
from training.wild_eval import map_label, score


def tune_holdout(ckpt: dict, tune: dict[str, np.ndarray]) -> np.ndarray:
    """Rows of ``tune`` the checkpoint's run never trained on: train.py's identity split, or
    finetune_wild's recorded held-out identities; all when it trained on none of ``tune``.
    ValueError for a fine-tune on all of ``tune`` (nothing held out to select on)."""
    meta = ckpt.get("meta", {})
    if "finetune" in meta:
        held_ids = meta.get("wild_tune_val_identities")
        if not held_ids:
            raise ValueError("the checkpoint was fine-tuned on all of wild-dev tune: no held-out "
                             "photos to select offsets on")
        return np.isin(tune["identity"], held_ids)
    cfg = meta.get("train_config", {})
    if not cfg.get("wild_crops") or float(cfg.get("wild_weight", 0)) <= 0:
        return np.ones(len(tune["targets"]), bool)
    return identity_split(tune["identity"], tune["targets"], float(cfg["wild_holdout"]),
                          int(cfg["seed"]))


def truth(crops: dict[str, np.ndarray], rows: np.ndarray | None, labels: list[str]) -> list[str]:
    """The crops' true labels in the model's classes (disgust is angry for a 6-class model)."""
    targets = crops["targets"] if rows is None else crops["targets"][rows]
    return [map_label(FER2013_LABELS[t], labels) for t in targets]


def log_probs(clf: EmotionClassifier, images: np.ndarray) -> np.ndarray:
    return np.log(np.clip(clf.predict(images), 1e-12, 1.0))


def scores(logp: np.ndarray, truth: list[str], labels: list[str]) -> dict:
    return score(truth, [labels[i] for i in logp.argmax(1)], labels)


def fmt(r: dict) -> str:
    return f"{100 * r['accuracy']:5.1f} {r['macro_f1']:.2f} {100 * r['calm_false_alarms']:4.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--classes", default="neutral,surprise,disgust")
    ap.add_argument("--grid", default="-1,-0.5,0,0.5,1")
    ap.add_argument("--flip-tta", choices=("on", "off"), default=None,
                    help="flip test-time augmentation (default: the checkpoint's own)")
    args = ap.parse_args(argv)
    clf = EmotionClassifier(args.checkpoint, num_threads=None)
    if args.flip_tta:
        clf.flip_tta = args.flip_tta == "on"
    labels = list(clf.labels)
    classes = [labels.index(c) for c in args.classes.split(",")]
    grid = [float(v) for v in args.grid.split(",")]
    if 0.0 not in grid:
        ap.error("--grid must contain 0 (the checkpoint as it is)")
    params = load_defaults()
    faces = video_eval.default_faces()
    video = log_probs(clf, faces.images)
    tune = wild_crops.build("tune", params["detector"], params["crop_margin"])
    try:
        held = tune_holdout(load_checkpoint(args.checkpoint), tune)
    except ValueError as exc:
        ap.error(str(exc))
    tune_lp, tune_truth = log_probs(clf, tune["images"][held]), truth(tune, held, labels)
    dev = wild_crops.build("dev", params["detector"], params["crop_margin"])
    dev_lp, dev_truth = log_probs(clf, dev["images"]), truth(dev, None, labels)
    print(f"{args.checkpoint} (flip TTA {'on' if clf.flip_tta else 'off'}): tune "
          f"{int(held.sum())} held-out photos; columns accuracy %, "
          f"macro-F1, calm false alarms %\n{'offsets':27} | video-dev       | tune (select)"
          f"   | dev (report)")
    rows = []
    for values in itertools.product(grid, repeat=len(classes)):
        off = np.zeros(len(labels))
        off[classes] = values
        shifted = np.exp(video + off)  # probabilities again: rows sum to 1 (for ECE)
        v = video_eval.score_probs(shifted / shifted.sum(1, keepdims=True), faces, labels)
        t, d = scores(tune_lp + off, tune_truth, labels), scores(dev_lp + off, dev_truth, labels)
        name = " ".join(f"{labels[c][:4]}{x:+.1f}" for c, x in zip(classes, values))
        print(f"{name:27} | {fmt(v)} | {fmt(t)} | {fmt(d)}", flush=True)
        rows.append((values, v, t, name))
    base_v, base_t = next((v, t) for values, v, t, _ in rows if not any(values))
    better = [name for _, v, t, name in rows
              if v["accuracy"] > base_v["accuracy"] and t["accuracy"] > base_t["accuracy"]
              and v["calm_false_alarms"] <= base_v["calm_false_alarms"]
              and t["calm_false_alarms"] <= base_t["calm_false_alarms"]]
    print("both: " + ("; ".join(better) if better else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
