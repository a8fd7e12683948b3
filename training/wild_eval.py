"""The whole pipeline on wild-dev's real photos: detector -> largest face -> classifier.

A photo with no face found counts as wrong (its prediction is "no face"). Labels follow the
checkpoint: for a 6-class model, disgust photos count as angry. Used by training/evaluate.py
(``--wild``) and benchmarks/wild_accuracy.py.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from training.metrics import confusion_matrix, per_class_scores

NO_FACE = "(no face)"


def wild_dev_dir() -> Path:
    """``FER_WILD_DEV`` if set, else ``../shared/data/wild-dev`` beside the repository."""
    env = os.environ.get("FER_WILD_DEV")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared/data/wild-dev"


def wild_rows(split: str, root: Path | None = None) -> list[dict[str, str]]:
    """The labels.csv rows of one split ("dev" or "tune")."""
    root = root or wild_dev_dir()
    labels = root / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(f"wild-dev labels not found at {labels}: set FER_WILD_DEV")
    return [r for r in csv.DictReader(open(labels)) if r["split"] == split]


def map_label(label: str, labels: Sequence[str]) -> str:
    """A wild-dev label in a model's label set (disgust -> angry for 6-class models)."""
    return "angry" if label == "disgust" and "disgust" not in labels else label


def predict_largest_face(pipeline) -> Callable[[np.ndarray], str]:
    """photo -> label of its largest face (by box area), or NO_FACE."""
    def predict(bgr: np.ndarray) -> str:
        results = pipeline.process(bgr)
        if not results:
            return NO_FACE
        return max(results, key=lambda r: r.box.area).label
    return predict


CALM = ("happy", "neutral")
UPSET = ("angry", "disgust", "fear", "sad")


def calm_false_alarm_rate(truth: Sequence[str], pred: Sequence[str]) -> float:
    """Share of calm (happy or neutral) faces called angry, disgust, fear or sad."""
    calm = [p for t, p in zip(truth, pred) if t in CALM]
    return float(np.mean([p in UPSET for p in calm])) if calm else 0.0


def score(truth: list[str], pred: list[str], labels: Sequence[str]) -> dict:
    """accuracy, face_found, macro_f1, per_class (precision/recall/f1/support), confusion
    (rows = true label in ``labels`` order; last column = no face), calm_false_alarms."""
    labels = list(labels)
    cols = labels + [NO_FACE]
    t = np.array([labels.index(x) for x in truth])
    p = np.array([cols.index(x) for x in pred])
    cm = confusion_matrix(t, p, len(cols))[: len(labels)]
    per_class = per_class_scores(np.pad(cm, ((0, 1), (0, 0))), cols)  # square: + no-face row
    per_class.pop(NO_FACE)
    present = [c for c in labels if per_class[c]["support"] > 0]
    return {
        "images": len(truth),
        "accuracy": float((t == p).mean()) if len(t) else 0.0,
        "face_found": float((p != len(labels)).mean()) if len(t) else 0.0,
        "macro_f1": float(np.mean([per_class[c]["f1"] for c in present])) if present else 0.0,
        "per_class": per_class,
        "confusion": cm.tolist(),
        "labels": labels,
        "calm_false_alarms": calm_false_alarm_rate(truth, pred),
    }


def evaluate_wild(predict: Callable[[np.ndarray], str], labels: Sequence[str],
                  split: str = "dev", root: Path | None = None) -> tuple[dict, list[dict]]:
    """Score ``predict`` on a wild-dev split; returns (report, per-image rows)."""
    root = root or wild_dev_dir()
    truth, pred, rows = [], [], []
    for row in wild_rows(split, root):
        bgr = cv2.imread(str(root / row["file"]))
        if bgr is None:
            raise FileNotFoundError(f"unreadable wild-dev photo {root / row['file']}")
        label = map_label(row["label"], labels)
        guess = predict(bgr)
        truth.append(label)
        pred.append(guess)
        rows.append({"file": row["file"], "label": label, "prediction": guess})
    report = score(truth, pred, labels)
    report["split"] = split
    return report, rows


def plot_confusion(report: dict, out: Path, title: str) -> None:
    """Row-normalised confusion matrix as a PNG; a confusion with one column more than rows
    (wild-dev's) gets a "no face" column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(report["confusion"], dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    rows = report["labels"]
    cols = rows + ["no face"] if cm.shape[1] > len(rows) else rows
    fig, ax = plt.subplots(figsize=(6.5 + (len(cols) - len(rows)), 5.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: accuracy {report['accuracy']:.3f}, macro-F1 {report['macro_f1']:.3f}")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
