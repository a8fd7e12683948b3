"""Label flips per 100 frames on the sample video, without and with EMA smoothing.

Runs detector + classifier + FaceTracker once over the video, then replays the raw results
through EmaSmoother for a few time constants (tau = 0 is no smoothing). A flip is a change
of a track's label between two consecutive frames in which that track has a face.

    python benchmarks/smoothing_flips.py [--checkpoint models/fer7.pt] [--frames 464]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from fer_ros.core.classifier import EmotionClassifier  # noqa: E402
from fer_ros.core.detector import (  # noqa: E402
    SSD_CONFIG, SSD_MODEL, SsdTfFaceDetector, make_detector,
)
from fer_ros.core.errors import ModelError  # noqa: E402
from fer_ros.core.smoothing import EmaSmoother, label_flips  # noqa: E402
from fer_ros.core.tracking import FaceTracker  # noqa: E402
from fer_ros.core.types import FaceResult  # noqa: E402

DEFAULT_VIDEO = REPO_ROOT.parent / "shared" / "samples" / "fer_woman2.mp4"
Frames = list[tuple[float, list[FaceResult]]]


def default_checkpoint() -> Path:
    try:
        from fer_ros.core.model_files import resolve_model

        return resolve_model("fer7")
    except (ImportError, ModelError):
        return REPO_ROOT / "models" / "fer7.pt"


def make_ssd():
    """SSD through model_files, else from the model mirror (FER_MODEL_MIRROR, ../shared/models)."""
    try:
        return make_detector("ssd")
    except (ImportError, ModelError):
        mirror = Path(os.environ.get("FER_MODEL_MIRROR", REPO_ROOT.parent / "shared" / "models"))
        folder = mirror / "face_detector"
        return SsdTfFaceDetector(folder / SSD_MODEL, folder / SSD_CONFIG)


def collect(video: Path, detector, classifier: EmotionClassifier, max_frames: int) -> Frames:
    """Raw (unsmoothed) tracked results per frame, with the frame's time stamp."""
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SystemExit(f"cannot open video {video}: pass --video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    tracker = FaceTracker()
    frames: Frames = []
    while len(frames) < max_frames:
        ok, bgr = cap.read()
        if not ok:
            break
        stamp = len(frames) / fps
        dets = detector.detect(bgr)
        probs = classifier.classify(bgr, [d.box for d in dets])
        results = []
        for d, p in zip(dets, probs):
            best = int(np.argmax(p))
            results.append(FaceResult(d.box, d.score, classifier.labels[best], float(p[best]), p))
        tracker.assign(results, stamp)
        frames.append((stamp, results))
    cap.release()
    return frames


def smoothed(frames: Frames, tau: float, labels: list[str]) -> Frames:
    smoother = EmaSmoother(tau, labels=labels)
    out = copy.deepcopy(frames)
    for stamp, results in out:
        smoother.smooth(results, stamp)
    return out


def flips_per_100(frames: Frames) -> float:
    """Label changes per 100 consecutive same-track frame pairs."""
    flips, pairs = label_flips(results for _, results in frames)
    return 100.0 * flips / max(pairs, 1)


def agreement(a: Frames, b: Frames) -> float:
    """Share of faces whose label is the same in both runs (percent)."""
    same = total = 0
    for (_, ra), (_, rb) in zip(a, b):
        for x, y in zip(ra, rb):
            same += x.label == y.label
            total += 1
    return 100.0 * same / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: models/fer7.pt")
    parser.add_argument("--frames", type=int, default=464)
    parser.add_argument("--taus", default="0,0.1,0.25,0.5,1.0", help="time constants (s)")
    args = parser.parse_args()
    checkpoint = args.checkpoint or default_checkpoint()
    if not checkpoint.is_file():
        raise SystemExit(f"classifier checkpoint not found: {checkpoint} (pass --checkpoint)")
    classifier = EmotionClassifier(checkpoint, num_threads=1)  # tiny batches: 1 thread is fastest
    start = time.perf_counter()
    raw = collect(args.video, make_ssd(), classifier, args.frames)
    faces = sum(len(r) for _, r in raw)
    ids = {r.track_id for _, rs in raw for r in rs}
    print(f"{args.video.name}: {len(raw)} frames, {faces} faces, {len(ids)} track id(s), "
          f"checkpoint {checkpoint.name}, {time.perf_counter() - start:.1f} s")
    print(f"{'tau (s)':>8} {'flips/100 frames':>17} {'same label as raw':>18}")
    for tau in (float(t) for t in args.taus.split(",")):
        run = smoothed(raw, tau, classifier.labels)
        print(f"{tau:>8.2f} {flips_per_100(run):>17.1f} {agreement(run, raw):>17.1f}%")


if __name__ == "__main__":
    main()
