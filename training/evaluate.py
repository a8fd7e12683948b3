"""Evaluate a classifier checkpoint: on a FER2013 split, or the whole report.

    python -m training.evaluate --checkpoint models/fer7.pt [--data PATH]
        [--split PrivateTest] [--flip] [--json] [--plot confusion.png]
    python -m training.evaluate --checkpoint models/fer7.pt --report [--detector ssd]
        [--plot-dir docs] [--json]

Split mode reports accuracy, macro-F1, per-class precision/recall/F1, the confusion matrix
(rows = true labels in checkpoint order) and the expected calibration error (15 bins), using
the checkpoint's stored temperature.

``--report``: FER2013 PrivateTest (original labels) on all 3,589 rows and on the 3,301 that
are not copies of Training images (``../shared/data/fer2013_test_train_duplicates.csv``);
FER+ PrivateTest, FERPlus majority labels (3,152 images; FER+ classes the model lacks, e.g.
contempt for a 7-class model, count as wrong; disgust counts as angry for a 6-class model);
wild-dev ``dev`` through the whole detector pipeline (accuracy, face-found rate, macro-F1,
per-class recall and precision, calm false alarms; confusion PNG with ``--plot-dir``); and
video-dev by its protocol (training/video_eval.py), with ECE there and on FER+.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch


from training.dataset import SPLITS, default_data_path, load_fer2013
from training.inference import checkpoint_logits
from training.metrics import expected_calibration_error, summarize
from training.video_eval import format_report
from training.wild_eval import plot_confusion

from fer_ros.core.checkpoint import load_checkpoint, wants_flip_tta
from fer_ros.core.errors import FerError


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


def duplicate_rows(path: Path | None = None) -> set[int]:
    """Data rows of test images that are copies of Training images."""
    import csv

    path = path or default_data_path().parent / "fer2013_test_train_duplicates.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (the list of test rows copied from Training)")
    return {int(r["row"]) for r in csv.DictReader(open(path))}


def full_report(ckpt: dict, data: Path, detector: str, flip: bool, plot_dir: Path | None,
                name: str) -> dict:
    """FER2013 (all / without copies), FER+ majority and wild-dev dev numbers of ``ckpt``."""
    from training.ferplus import FERPLUS_LABELS, default_votes_path, read_votes, targets_for_rows
    from training.wild_eval import evaluate_wild, map_label, plot_confusion as plot_wild
    from training.wild_eval import predict_largest_face
    from training.video_eval import collect_faces, score_probs

    labels = ckpt["labels"]
    fer_classes = 6 if "disgust" not in labels else 7
    splits, _ = load_fer2013(data, num_classes=fer_classes)
    test = splits["PrivateTest"]
    logits = checkpoint_logits(ckpt, test.images, flip_tta=flip)
    pred = [labels[i] for i in logits.argmax(1).tolist()]
    truth = [test.labels[i] for i in test.targets.tolist()]
    copies = duplicate_rows()
    keep = [int(r) not in copies for r in test.rows]
    correct = [p == t for p, t in zip(pred, truth)]
    out: dict = {"checkpoint": name, "labels": labels, "flip_tta": flip,
                 "fer2013_private_all": float(np.mean(correct)),
                 "fer2013_private_no_copies": float(np.mean([c for c, k in zip(correct, keep) if k])),
                 "fer2013_private_no_copies_images": int(sum(keep))}
    _, _, major = targets_for_rows(test.rows, read_votes(default_votes_path()))
    has = major >= 0
    fer_truth = [map_label(FERPLUS_LABELS[m], labels) for m in major[has]]
    fer_pred = [p for p, h in zip(pred, has) if h]
    out["ferplus_private_majority"] = float(np.mean([p == t for p, t in zip(fer_pred, fer_truth)]))
    out["ferplus_private_images"] = int(has.sum())
    probs = torch.softmax(logits[torch.from_numpy(has)] / float(ckpt.get("temperature", 1.0)),
                          dim=1).numpy()
    known = np.array([t in labels for t in fer_truth])
    out["ferplus_private_ece"] = expected_calibration_error(
        probs[known], np.array([labels.index(t) for t, k in zip(fer_truth, known) if k]))

    from fer_ros.core.factory import build_pipeline
    from fer_ros.params import load_defaults

    params = {**load_defaults(), "detector": detector, "tracking": False, "flip_tta": flip}
    params["classifier_model"] = str(name)
    pipeline = build_pipeline(params)
    wild, rows = evaluate_wild(predict_largest_face(pipeline), labels, "dev")
    out["wild_dev"] = wild
    out["wild_dev_detector"] = detector
    faces = collect_faces(pipeline.detector, margin=params["crop_margin"],
                          verifier=pipeline.verifier)
    out["video_dev"] = score_probs(pipeline.classifier.predict(faces.images), faces, labels)
    if plot_dir is not None:
        plot_wild(wild, plot_dir / f"{Path(name).stem}_wild_dev_confusion.png",
                  f"{Path(name).stem} on wild-dev dev ({detector})")
    return out


def print_full(report: dict) -> None:
    w = report["wild_dev"]
    print(f"{report['checkpoint']}: FER2013 PrivateTest {100 * report['fer2013_private_all']:.1f} % "
          f"(without copies of Training, {report['fer2013_private_no_copies_images']} images: "
          f"{100 * report['fer2013_private_no_copies']:.1f} %), FER+ PrivateTest majority "
          f"{100 * report['ferplus_private_majority']:.1f} % "
          f"({report['ferplus_private_images']} images, ECE {report['ferplus_private_ece']:.3f})"
          + ("; flip TTA on" if report["flip_tta"] else ""))
    print(f"  wild-dev dev ({report['wild_dev_detector']}): accuracy {100 * w['accuracy']:.1f} %, "
          f"face found {100 * w['face_found']:.1f} %, macro-F1 {w['macro_f1']:.3f}; recall "
          + ", ".join(f"{k} {100 * v['recall']:.0f}" for k, v in w["per_class"].items())
          + f"; precision " + ", ".join(f"{k} {100 * v['precision']:.0f}"
                                        for k, v in w["per_class"].items())
          + f"; calm false alarms {100 * w['calm_false_alarms']:.1f} %")
    print("  " + format_report("", report["video_dev"]).lstrip(": ").replace("\n", "\n  "))


TABLE_HEADER = ("| model | FER2013 PrivateTest (no copies) | FER+ PrivateTest (ECE) | wild-dev `dev`: "
                "accuracy / macro-F1 / calm false alarms | video-dev: accuracy / macro-F1 / calm "
                "false alarms (ECE) |\n| --- | --- | --- | --- | --- |")


def table_row(report: dict) -> str:
    """The report as one row of the README's model table (TABLE_HEADER)."""
    w, v = report["wild_dev"], report["video_dev"]
    pct = lambda x: f"{100 * x:.1f} %"  # noqa: E731
    return (f"| `{Path(report['checkpoint']).stem}` | {pct(report['fer2013_private_all'])} "
            f"({pct(report['fer2013_private_no_copies'])}) | "
            f"{pct(report['ferplus_private_majority'])} ({report['ferplus_private_ece']:.3f}) | "
            f"{pct(w['accuracy'])} / {w['macro_f1']:.2f} / {pct(w['calm_false_alarms'])} | "
            f"{pct(v['accuracy'])} / {v['macro_f1']:.2f} / {pct(v['calm_false_alarms'])} "
            f"({v['ece']:.3f}) |")


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
    parser.add_argument("--flip", action="store_true",
                        help="horizontal-flip test-time augmentation (always on for a "
                             "checkpoint made for it)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", type=Path, help="write the confusion matrix PNG here")
    parser.add_argument("--report", action="store_true",
                        help="FER2013 (all / without copies), FER+ and wild-dev dev numbers")
    parser.add_argument("--detector", default="ssd", help="detector for wild-dev (--report)")
    parser.add_argument("--plot-dir", type=Path, help="wild-dev confusion PNG here (--report)")
    parser.add_argument("--table-row", action="store_true",
                        help="with --report: print the README model table's row")
    args = parser.parse_args(argv)
    try:
        ckpt = load_checkpoint(args.checkpoint)
        flip = args.flip or wants_flip_tta(ckpt)  # as the inference core runs it
        if args.report:
            full = full_report(ckpt, args.data or default_data_path(), args.detector, flip,
                               args.plot_dir, str(args.checkpoint))
            if args.table_row:
                print(TABLE_HEADER + "\n" + table_row(full))
            else:
                print(json.dumps(full)) if args.json else print_full(full)
            return 0
        report = evaluate(ckpt, args.data or default_data_path(), args.split, flip)
    except (FerError, ValueError, FileNotFoundError) as exc:
        print(f"evaluate.py: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        plot_confusion(report, args.plot, report["split"])
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
