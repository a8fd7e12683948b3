"""Evaluate a classifier checkpoint on a FER2013 split.

    python training/evaluate.py --checkpoint models/fer7.pt [--data PATH]
        [--split PrivateTest] [--flip] [--json] [--plot confusion.png]

Reports accuracy, macro-F1, per-class precision/recall/F1, the confusion matrix (rows = true
labels in checkpoint order) and the expected calibration error (15 bins), using the
checkpoint's stored temperature.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataset import SPLITS, default_data_path, load_fer2013  # noqa: E402
from inference import checkpoint_logits  # noqa: E402
from metrics import summarize  # noqa: E402

from fer_ros.core.checkpoint import load_checkpoint  # noqa: E402
from fer_ros.core.errors import FerError  # noqa: E402


def evaluate(ckpt: dict, data: Path, split: str, flip: bool) -> dict:
    """The metrics dict of ``ckpt`` on ``split`` of ``data``."""
    labels = ckpt["labels"]
    splits, _ = load_fer2013(data, num_classes=len(labels))
    if splits[split].labels != labels:
        raise ValueError(f"checkpoint labels {labels} do not match the {len(labels)}-class data")
    logits = checkpoint_logits(ckpt, splits[split].images, flip_tta=flip)
    probs = torch.softmax(logits / float(ckpt.get("temperature", 1.0)), dim=1).numpy()
    report = summarize(probs, splits[split].targets, labels)
    report.update({"split": split, "samples": int(len(probs)), "flip_tta": flip,
                   "labels": labels, "temperature": float(ckpt.get("temperature", 1.0))})
    return report


def plot_confusion(report: dict, out: Path) -> None:
    """Row-normalised confusion matrix as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(report["confusion"], dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    labels = report["labels"]
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{report['split']}: accuracy {report['accuracy']:.3f}, "
                 f"macro-F1 {report['macro_f1']:.3f}")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def print_table(report: dict) -> None:
    print(f"{report['split']}: {report['samples']} images, accuracy {report['accuracy']:.4f}, "
          f"macro-F1 {report['macro_f1']:.4f}, ECE {report['ece']:.4f} "
          f"(T={report['temperature']:.3f}, flip TTA {'on' if report['flip_tta'] else 'off'})")
    print(f"{'label':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for label, c in report["per_class"].items():
        print(f"{label:<10}{c['precision']:>10.3f}{c['recall']:>10.3f}{c['f1']:>10.3f}"
              f"{c['support']:>10d}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--data", type=Path, default=None,
                        help="FER2013 csv(.gz) or image folder (default: FER2013_CSV or ../shared)")
    parser.add_argument("--split", default="PrivateTest", choices=SPLITS)
    parser.add_argument("--flip", action="store_true", help="horizontal-flip test-time augmentation")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", type=Path, help="write the confusion matrix PNG here")
    args = parser.parse_args(argv)
    try:
        ckpt = load_checkpoint(args.checkpoint)
        report = evaluate(ckpt, args.data or default_data_path(), args.split, args.flip)
    except (FerError, ValueError, FileNotFoundError) as exc:
        print(f"evaluate.py: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        plot_confusion(report, args.plot)
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
