"""Score a classifier on video-dev: faces in real video, labelled by eye.

The protocol of ``../shared/README.md``: run the detector (and the pipeline's second-stage
check) on the full frame (OpenCV's
sequential decode, no seeking), match each labelled box to the detected face of highest IoU
(>= 0.3) and classify that face as the pipeline does, per frame, without tracking or
smoothing; a labelled face with no match counts as wrong. ``skip`` faces are not counted.

Detection does not depend on the classifier, so it runs once (:func:`collect_faces`) and any
number of checkpoints are scored on the same crops (:func:`score_probs`); this is exactly what
``EmotionPipeline.process`` computes for the matched faces.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from fer_ros.core.classifier import crop_faces
from fer_ros.core.types import Box
from training.metrics import accuracy_by_confidence, expected_calibration_error
from training.wild_eval import NO_FACE, calm_false_alarm_rate, map_label, score

MIN_IOU = 0.3


def video_dev_dir() -> Path:
    """``FER_VIDEO_DEV`` if set, else ``../shared/data/video-dev`` beside the repository."""
    env = os.environ.get("FER_VIDEO_DEV")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared/data/video-dev"


def read_labels(root: Path) -> dict[str, dict[int, list[dict[str, str]]]]:
    """labels.csv as {video: {frame: [rows]}}, ``skip`` rows left out."""
    path = root / "labels.csv"
    if not path.is_file():
        raise FileNotFoundError(f"video-dev labels not found at {path}: set FER_VIDEO_DEV")
    out: dict[str, dict[int, list[dict[str, str]]]] = defaultdict(lambda: defaultdict(list))
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["label"] != "skip":
                out[row["video"]][int(row["frame"])].append(row)
    return out


def labelled_frames(root: Path) -> Iterator[tuple[str, int, np.ndarray, list[dict[str, str]]]]:
    """(video, frame index, BGR frame, labelled rows) for every frame that has labels."""
    for video, frames in sorted(read_labels(root).items()):
        cap = cv2.VideoCapture(str(root / "videos" / video))
        if not cap.isOpened():
            raise FileNotFoundError(f"cannot open {root / 'videos' / video}")
        try:
            index, last = 0, max(frames)
            while index <= last:
                ok, bgr = cap.read()
                if not ok:
                    raise ValueError(f"{video}: the video ends before labelled frame {last}")
                if index in frames:
                    yield video, index, bgr, frames[index]
                index += 1
        finally:
            cap.release()


def best_match(truth: Box, boxes: Sequence[Box]) -> int | None:
    """Index of the box with the highest IoU with ``truth`` if it reaches MIN_IOU, else None."""
    ious = [truth.iou(b) for b in boxes]
    if not ious or max(ious) < MIN_IOU:
        return None
    return int(np.argmax(ious))


@dataclass
class VideoFaces:
    """The labelled faces of video-dev with the crop the pipeline classifies for each."""

    images: np.ndarray  # (N, S, S) uint8: the matched detection's crop (labelled box if none)
    found: np.ndarray  # (N,) bool: a detection matched the labelled box
    labels: list[str]  # (N,) true labels, FER2013 names
    videos: list[str]


def collect_faces(detector, root: Path | None = None, input_size: int = 48,
                  margin: float = 0.05, verifier=None) -> VideoFaces:
    """Detect once on every labelled frame (with the pipeline's second-stage check when it
    has one) and crop each labelled face's matched detection."""
    root = root or video_dev_dir()
    images, found, labels, videos = [], [], [], []
    for video, _, bgr, rows in labelled_frames(root):
        detections = detector.detect(bgr)
        if verifier is not None:
            detections = verifier.filter(bgr, detections)
        boxes = [d.box for d in detections]
        for row in rows:
            truth = Box(int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"]))
            hit = best_match(truth, boxes)
            images.append(crop_faces(bgr, [boxes[hit] if hit is not None else truth],
                                     input_size, margin)[0])
            found.append(hit is not None)
            labels.append(row["label"])
            videos.append(video)
    return VideoFaces(np.stack(images), np.array(found), labels, videos)


def truth_and_predictions(probs: np.ndarray, faces: VideoFaces, labels: Sequence[str]
                          ) -> tuple[list[str], list[str]]:
    """The faces' true labels in the model's classes and its answers (no match: no face)."""
    truth = [map_label(t, labels) for t in faces.labels]
    pred = [labels[i] if ok else NO_FACE for i, ok in zip(probs.argmax(1), faces.found)]
    return truth, pred


def score_probs(probs: np.ndarray, faces: VideoFaces, labels: Sequence[str]) -> dict:
    """The protocol's report for one model's probabilities on ``faces``: accuracy, macro-F1
    over the classes present, per-class precision/recall, calm false alarms, ECE."""
    labels = list(labels)
    truth, pred = truth_and_predictions(probs, faces, labels)
    report = score(truth, pred, labels)
    matched = faces.found
    targets = np.array([labels.index(t) for t in truth])
    report["ece"] = expected_calibration_error(probs[matched], targets[matched])
    report["faces"] = len(truth)
    return report


def default_faces(detector_name: str | None = None, margin: float | None = None) -> VideoFaces:
    """:func:`collect_faces` with the node's default detector and crop margin (params)."""
    from fer_ros.core.factory import build_detector, build_verifier
    from fer_ros.params import load_defaults

    params = load_defaults()
    if detector_name:
        params["detector"] = detector_name
    return collect_faces(build_detector(params), margin=params["crop_margin"] if margin is None
                         else margin, verifier=build_verifier(params))


def checkpoint_probs(path: str | os.PathLike[str], faces: VideoFaces) -> tuple[np.ndarray, list[str]]:
    """Probabilities of a checkpoint on the crops, through the inference core's classifier."""
    from fer_ros.core.classifier import EmotionClassifier

    clf = EmotionClassifier(path, num_threads=None)
    return clf.predict(faces.images), clf.labels


def format_report(name: str, r: dict) -> str:
    """One block of text: headline numbers (ECE where the model gives probabilities), then
    per-class precision / recall."""
    present = [c for c, v in r["per_class"].items() if v["support"] > 0]
    per = ", ".join(f"{c} P {100 * r['per_class'][c]['precision']:.0f} / "
                    f"R {100 * r['per_class'][c]['recall']:.0f}" for c in present)
    return (f"{name}: video-dev {r['faces']} faces, accuracy {100 * r['accuracy']:.1f} %, "
            f"macro-F1 {r['macro_f1']:.3f}, calm false alarms {100 * r['calm_false_alarms']:.1f} %, "
            + (f"ECE {r['ece']:.3f}, " if "ece" in r else "")
            + f"face found {100 * r['face_found']:.1f} %\n  {per}")


def format_errors(probs: np.ndarray, faces: VideoFaces, labels: Sequence[str]) -> str:
    """The wrong answers, most frequent first: count, clip, true -> predicted label."""
    from collections import Counter

    truth, pred = truth_and_predictions(probs, faces, list(labels))
    wrong = Counter((v, t, p) for v, t, p in zip(faces.videos, truth, pred) if t != p)
    return "\n".join(f"  {n:3d}  {v}: {t} -> {p}" for (v, t, p), n in wrong.most_common())


def format_coverage(probs: np.ndarray, faces: VideoFaces, labels: Sequence[str]) -> str:
    """Accuracy of the answers at or above each confidence, and the share of faces they cover
    (a face the detector missed is never covered)."""
    truth, pred = truth_and_predictions(probs, faces, list(labels))
    confidence = np.where(faces.found, probs.max(1), np.nan)
    rows = accuracy_by_confidence(np.array(truth) == np.array(pred), confidence)
    return "\n".join(f"  confidence >= {tau:.1f}: {100 * cov:5.1f} % of faces answered, "
                     f"{100 * acc:5.1f} % of them right" for tau, cov, acc in rows)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="*", help="shipped model names or .pt paths")
    ap.add_argument("--save-crops", type=Path,
                    help="also save the crops (npz: images, found, labels, videos) for training's "
                         "per-epoch scoring (--video_crops)")
    ap.add_argument("--detector", default=None, help="detector (default: the node's default)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--errors", action="store_true",
                    help="also list the wrong answers: count per clip, true -> predicted label")
    ap.add_argument("--coverage", action="store_true",
                    help="also print accuracy and coverage of the answers above confidence 0.5-0.9")
    args = ap.parse_args(argv)
    from fer_ros.core.factory import classifier_path

    faces = default_faces(args.detector)
    if args.save_crops:
        args.save_crops.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.save_crops, images=faces.images, found=faces.found,
                            labels=np.array(faces.labels), videos=np.array(faces.videos))
    out = {}
    for name in args.checkpoints:
        probs, labels = checkpoint_probs(classifier_path(name), faces)
        out[name] = score_probs(probs, faces, labels)
        if not args.json:
            print(format_report(name, out[name]), flush=True)
        if args.errors and not args.json:
            print(format_errors(probs, faces, labels))
        if args.coverage and not args.json:
            print(format_coverage(probs, faces, labels))
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
