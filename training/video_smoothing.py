"""What per-face tracking + smoothing does on real video: video-dev's whole clips.

    python -m training.video_smoothing [--checkpoint fer7] [--taus 0,0.15,0.3,0.6,1.0]

Runs the default detector, the classifier and the tracker over every frame of each clip once,
then replays the raw results through the node's smoother for each time constant (0 = off).
Per time constant it prints label flips per face-minute (a flip is a change of a track's label
between consecutive frames; a face-minute is 60 s of one tracked face) and the accuracy on the
labelled frames (video-dev's protocol, but with the label the node would publish there:
matched by IoU, unmatched counts as wrong). The node's default ``smoothing_time_constant_s``
is chosen from this.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_ros.core.factory import build_classifier, build_detector, classifier_path
from fer_ros.core.smoothing import EmaSmoother, label_flips
from fer_ros.core.tracking import FaceTracker
from fer_ros.core.types import Box, FaceResult
from fer_ros.params import load_defaults
from training.video_eval import best_match, read_labels, video_dev_dir
from training.wild_eval import NO_FACE, map_label, score

Frames = list[tuple[float, list[FaceResult]]]


@dataclass
class Clip:
    name: str
    fps: float
    frames: Frames  # raw tracked results per frame
    labels: dict[int, list[dict[str, str]]]  # frame -> labelled rows


def run_clip(path: Path, labels: dict, detector, classifier, params: dict) -> Clip:
    """Raw (unsmoothed) tracked results of every frame of one clip."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    tracker = FaceTracker(iou_threshold=params["track_iou_threshold"],
                          max_missed=params["track_max_missed"])
    frames: Frames = []
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            stamp = len(frames) / fps
            dets = detector.detect(bgr)
            probs = classifier.classify(bgr, [d.box for d in dets])
            results = [FaceResult(d.box, d.score, classifier.labels[int(np.argmax(p))],
                                  float(np.max(p)), p) for d, p in zip(dets, probs)]
            tracker.assign(results, stamp)
            frames.append((stamp, results))
    finally:
        cap.release()
    return Clip(path.name, fps, frames, labels)


def smoothed(frames: Frames, tau: float, labels: list[str]) -> Frames:
    """The results the node would publish with time constant ``tau`` (a copy)."""
    out = copy.deepcopy(frames)
    if tau <= 0:
        return out
    smoother = EmaSmoother(tau, labels=labels)
    for i, (stamp, results) in enumerate(out):
        new = smoother.smooth(results, stamp)
        if isinstance(new, list):  # as EmotionPipeline.process: a smoother may return new results
            out[i] = (stamp, new)
    return out


def flips_per_face_minute(clips: list[Clip], runs: list[Frames]) -> float:
    flips = face_frames = 0.0
    for clip, frames in zip(clips, runs):
        f, _ = label_flips(results for _, results in frames)
        flips += f
        face_frames += sum(len(r) for _, r in frames) / clip.fps
    return 60.0 * flips / max(face_frames, 1e-9)


def labelled_predictions(clips: list[Clip], runs: list[Frames], labels: list[str]
                         ) -> tuple[list[str], list[str]]:
    """(truth, published label) for every labelled face of every clip."""
    truth, pred = [], []
    for clip, frames in zip(clips, runs):
        for index, rows in clip.labels.items():
            results = frames[index][1] if index < len(frames) else []
            for row in rows:
                box = Box(int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"]))
                hit = best_match(box, [r.box for r in results])
                truth.append(map_label(row["label"], labels))
                pred.append(results[hit].label if hit is not None else NO_FACE)
    return truth, pred


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="model name or .pt (default: the node's)")
    ap.add_argument("--taus", default="0,0.15,0.3,0.6,1.0", help="time constants (s)")
    args = ap.parse_args(argv)
    params = load_defaults()
    if args.checkpoint:
        params["classifier_model"] = args.checkpoint
    root = video_dev_dir()
    detector, classifier = build_detector(params), build_classifier(params)
    clips = [run_clip(root / "videos" / name, frames, detector, classifier, params)
             for name, frames in sorted(read_labels(root).items())]
    seconds = sum(len(c.frames) / c.fps for c in clips)
    print(f"video-dev: {len(clips)} clips, {sum(len(c.frames) for c in clips)} frames "
          f"({seconds:.0f} s), classifier {classifier_path(params['classifier_model']).name}")
    print(f"{'tau (s)':>8} {'flips/face-min':>15} {'accuracy':>9} {'macro-F1':>9}")
    for tau in (float(t) for t in args.taus.split(",")):
        runs = [smoothed(c.frames, tau, classifier.labels) for c in clips]
        truth, pred = labelled_predictions(clips, runs, classifier.labels)
        r = score(truth, pred, classifier.labels)
        print(f"{tau:>8.2f} {flips_per_face_minute(clips, runs):>15.1f} "
              f"{100 * r['accuracy']:>8.1f}% {r['macro_f1']:>9.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
