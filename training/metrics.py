"""Classification metrics on numpy arrays: confusion, per-class P/R/F1, macro-F1, ECE, accuracy
by confidence."""

from __future__ import annotations

import numpy as np


def confusion_matrix(targets: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts with rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(targets), np.asarray(preds)), 1)
    return cm


def per_class_scores(cm: np.ndarray, labels: list[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each class (0 where undefined)."""
    tp = np.diag(cm).astype(float)
    pred_count, true_count = cm.sum(0).astype(float), cm.sum(1).astype(float)
    precision = np.divide(tp, pred_count, out=np.zeros_like(tp), where=pred_count > 0)
    recall = np.divide(tp, true_count, out=np.zeros_like(tp), where=true_count > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {
        label: {"precision": float(precision[i]), "recall": float(recall[i]),
                "f1": float(f1[i]), "support": int(true_count[i])}
        for i, label in enumerate(labels)
    }


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, bins: int = 15) -> float:
    """ECE: support-weighted |accuracy - confidence| over equal-width confidence bins."""
    conf = probs.max(1)
    correct = (probs.argmax(1) == targets).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def accuracy_by_confidence(correct: np.ndarray, confidence: np.ndarray,
                           thresholds: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
                           ) -> list[tuple[float, float, float]]:
    """(threshold, coverage, accuracy) for each threshold: what a robot that acts only on
    answers at least that confident gets. ``confidence`` is NaN where nothing was answered
    (never covered); coverage is the share of all items answered at or above the threshold."""
    correct, confidence = np.asarray(correct, bool), np.asarray(confidence, float)
    rows = []
    for tau in thresholds:
        sel = np.nan_to_num(confidence, nan=-1.0) >= tau
        rows.append((float(tau), float(sel.mean()) if len(sel) else 0.0,
                     float(correct[sel].mean()) if sel.any() else float("nan")))
    return rows


def summarize(probs: np.ndarray, targets: np.ndarray, labels: list[str]) -> dict:
    """The evaluation report: accuracy, macro_f1, per_class, confusion, ece."""
    preds = probs.argmax(1)
    cm = confusion_matrix(targets, preds, len(labels))
    per_class = per_class_scores(cm, labels)
    return {
        "accuracy": float((preds == targets).mean()) if len(targets) else 0.0,
        "macro_f1": float(np.mean([c["f1"] for c in per_class.values()])),
        "per_class": per_class,
        "confusion": cm.tolist(),
        "ece": expected_calibration_error(probs, targets),
    }
