"""Face-detector recall by face width, false positives and speed, for every configuration.

    python benchmarks/detector_recall.py [--wild N] [--configs default,default_video,ssd,...]
                                         [--json F]

Frames are 640x480, made by rescaling real photos with known face boxes and pasting them onto
a no-face background (a real photo, ``fer_no-faces.jpg``), so that each face gets a chosen width
(16-160 px buckets) at a seeded random position:
- ``dlib_2008_002506.jpg``: dlib's own annotations of its 3 faces (dlib examples/faces);
- ``fer_justin.jpg`` and ``--wild`` photos of wild-dev ``tune``: boxes derived where the SSD
  (ONNX, full-size input) and YuNet agree on the original photo (IoU >= 0.6; the reference is
  the mean of the two boxes; photos where they do not agree are left out).
A detection matches a face at IoU >= 0.5 (greedy, best score first); the rest are false
positives. No-face frames: crops of ``dlib_dogs.jpg`` (dogs' faces) and ``fer_no-faces.jpg``.
Timing: the configurations take turns on blocks of 16 frames (interleaved, so machine drift
hits all alike, in blocks, so one detector's thread pool does not spin against the next); ms/frame is the median, also printed as a ratio to ``ssd_tf`` (the
reference: the SSD-300 OpenCV path at OpenCV's default thread count, all cores) measured in the
same run (``--cv-threads 1`` runs everything with one OpenCV thread, like the SSD runtimes'
default ``detector_threads: 1``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_ros.core.detector import make_detector  # noqa: E402
from fer_ros.core.types import Box  # noqa: E402

SHARED = Path(os.environ.get("FER_SHARED_DIR", REPO.parent / "shared"))
SAMPLES = SHARED / "samples"
WILD = SHARED / "data" / "wild-dev"
FRAME = (640, 480)
BLOCK = 16  # frames per turn: one detector's thread pools settle, as in a node running one
BUCKETS = (16, 20, 24, 28, 32, 40, 48, 64, 80, 96, 128, 160)
DLIB_BOXES = {"dlib_2008_002506.jpg": [(329, 78, 437, 186), (224, 95, 314, 185), (125, 65, 214, 155)]}


@dataclass
class Source:
    """A real photo and its reference face boxes (x1, y1, x2, y2)."""

    name: str
    image: np.ndarray
    boxes: list[tuple[float, float, float, float]]


@dataclass
class Tally:
    found: dict[int, int] = field(default_factory=dict)
    total: dict[int, int] = field(default_factory=dict)
    fp_face: int = 0
    face_frames: int = 0
    fp_noface: int = 0
    noface_frames: int = 0
    ms: list[float] = field(default_factory=list)


def score_frame(t: Tally, dets: list, boxes: list, width: int | None) -> None:
    """Count found faces (greedy IoU >= 0.5 matches) and false positives of one frame."""
    used = set()
    for b in boxes:
        best = max(((iou(b, d), j) for j, d in enumerate(dets) if j not in used),
                   default=(0.0, -1))
        if best[0] >= 0.5:
            used.add(best[1])
        t.total[width] = t.total.get(width, 0) + 1
        t.found[width] = t.found.get(width, 0) + (best[0] >= 0.5)
    fps = len(dets) - len(used)
    if width is None:
        t.fp_noface += fps
        t.noface_frames += 1
    else:
        t.fp_face += fps
        t.face_frames += 1


def iou(a, b) -> float:
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def corners(box: Box) -> tuple[float, float, float, float]:
    return (box.x, box.y, box.x + box.w, box.y + box.h)


def consensus(image: np.ndarray, ssd, yunet) -> tuple[float, ...] | None:
    """The mean of the SSD's and YuNet's best boxes when they agree (IoU >= 0.6)."""
    a, b = ssd.detect(image), yunet.detect(image)
    if not a or not b:
        return None
    ba, bb = corners(a[0].box), corners(b[0].box)
    if iou(ba, bb) < 0.6:
        return None
    return tuple((np.array(ba) + np.array(bb)) / 2)


def load_sources(wild: int, seed: int) -> list[Source]:
    ssd = make_detector("ssd", 0.5)
    yunet = make_detector("yunet", 0.5)
    out = [Source(n, cv2.imread(str(SAMPLES / n)), [tuple(map(float, b)) for b in bs])
           for n, bs in DLIB_BOXES.items()]
    justin = cv2.imread(str(SAMPLES / "fer_justin.jpg"))
    box = consensus(justin, ssd, yunet)
    if box is not None:
        out.append(Source("fer_justin.jpg", justin, [box]))
    rows = [r for r in csv.DictReader(open(WILD / "labels.csv")) if r["split"] == "tune"]
    rng = np.random.default_rng(seed)
    for i in rng.permutation(len(rows)):
        if sum(s.name.startswith("wild:") for s in out) >= wild:
            break
        img = cv2.imread(str(WILD / rows[i]["file"]))
        if img is None or min(img.shape[:2]) < 150:  # small film crops: too little to rescale
            continue
        box = consensus(img, ssd, yunet)
        if box is not None:
            out.append(Source("wild:" + rows[i]["file"], img, [box]))
    return out


def place(src: Source, width: int, background: np.ndarray, rng: np.random.Generator
          ) -> tuple[np.ndarray, list[tuple[float, ...]]]:
    """A FRAME-sized frame with ``src`` rescaled so that its first face is ``width`` px wide."""
    ref = src.boxes[0]
    s = width / (ref[2] - ref[0])
    img = cv2.resize(src.image, None, fx=s, fy=s,
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    boxes = [tuple(v * s for v in b) for b in src.boxes]
    fw, fh = FRAME
    h, w = img.shape[:2]
    # choose a crop of img (when it is larger than the frame) that keeps the first face inside
    x1, y1, x2, y2 = boxes[0]
    cx0 = int(rng.uniform(max(0, x2 - fw), min(x1, w - fw) + 1)) if w > fw else 0
    cy0 = int(rng.uniform(max(0, y2 - fh), min(y1, h - fh) + 1)) if h > fh else 0
    crop = img[cy0:cy0 + fh, cx0:cx0 + fw]
    ch, cw = crop.shape[:2]
    px = int(rng.integers(0, fw - cw + 1))
    py = int(rng.integers(0, fh - ch + 1))
    frame = background.copy()
    frame[py:py + ch, px:px + cw] = crop
    dx, dy = px - cx0, py - cy0
    placed = []
    for b in boxes:
        b = (b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy)
        if b[0] >= 0 and b[1] >= 0 and b[2] <= fw and b[3] <= fh:  # faces wholly in the frame
            placed.append(b)
    return frame, placed


def noface_frames(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    out = []
    for name in ("dlib_dogs.jpg", "fer_no-faces.jpg"):
        img = cv2.imread(str(SAMPLES / name))
        for _ in range(n):
            s = rng.uniform(0.6, 1.6) * max(FRAME[0] / img.shape[1], FRAME[1] / img.shape[0])
            big = cv2.resize(img, (max(int(np.ceil(img.shape[1] * s)), FRAME[0]),
                                   max(int(np.ceil(img.shape[0] * s)), FRAME[1])))
            y = int(rng.integers(0, big.shape[0] - FRAME[1] + 1))
            x = int(rng.integers(0, big.shape[1] - FRAME[0] + 1))
            out.append(big[y:y + FRAME[1], x:x + FRAME[0]].copy())
    return out


CONFIGS = {
    # name: (detector, keyword arguments of make_detector, SsdOnnxFaceDetector overrides)
    # "default": the node's detector with the second-stage check, as fer-detect on a photo;
    # "default_video": each frame as a static VIDEO_FRAMES-frame video through the node's
    # frame schedule and confirmed tracks (what reaches `emotions` on the last frame)
    "default": ("default", {}, {}),
    "default_video": ("default_video", {}, {}),
    "ssd_tf": ("ssd_tf", {}, {}),
    "ssd": ("ssd", {}, {}),
    "ssd_float": ("ssd", {"precision": "float"}, {}),
    "ssd_onnxruntime": ("ssd", {"runtime": "onnxruntime"}, {}),
    "ssd_float_onnxruntime": ("ssd", {"runtime": "onnxruntime", "precision": "float"}, {}),
    "ssd_opencv": ("ssd", {"runtime": "opencv"}, {}),
    "ssd_no_closeup": ("ssd", {}, {"passes": "full"}),
    "ssd_512": ("ssd", {}, {"passes": "512"}),
    "ssd_closeup320": ("ssd", {}, {"passes": "closeup320"}),
    "yunet": ("yunet", {}, {}),
}


VIDEO_FRAMES = 8


class Verified:
    """The node's detector and second-stage check, as ``fer-detect`` runs them on a photo."""

    def __init__(self, params: dict) -> None:
        from fer_ros.core.factory import build_detector, build_verifier

        self.detector = build_detector(params)
        self.verifier = build_verifier(params)

    def detect(self, frame: np.ndarray) -> list:
        dets = self.detector.detect(frame)
        return self.verifier.filter(frame, dets) if self.verifier is not None else dets


class AsVideo:
    """A frame shown VIDEO_FRAMES times (30 Hz) through the node's schedule (inline full
    detections, so the run is repeatable) and confirming tracker: the faces published on the
    last frame."""

    def __init__(self, params: dict) -> None:
        from fer_ros.core.factory import build_detector, build_verifier

        self.params = params
        self.detector = build_detector(params)
        self.verifier = build_verifier(params)

    def detect(self, frame: np.ndarray) -> list:
        from fer_ros.core.schedule import FrameSchedule
        from fer_ros.core.tracking import FaceTracker

        p = self.params
        tracker = FaceTracker(p["track_iou_threshold"], p["track_max_missed"],
                              min_hits=p["confirm_hits"], hit_window=p["confirm_window"])
        schedule = FrameSchedule(self.detector, tracker, p["detect_every"],
                                 p["detect_every_max"], p["frame_budget_ms"],
                                 p["scene_change"], self.verifier)
        published = []
        for i in range(VIDEO_FRAMES):
            dets = schedule.detect(frame, i / 30.0)
            published = [d for d, (_, ok) in zip(dets, tracker.update([d.box for d in dets]))
                         if ok]
        return published


def build(name: str, threshold: float | None):
    from fer_ros.core.ssd_detector import SsdPass

    from fer_ros.core.detector import threshold_param
    from fer_ros.params import load_defaults

    detector, kwargs, overrides = CONFIGS[name]
    if detector in ("default", "default_video"):
        params = load_defaults()
        if threshold is not None:
            params[threshold_param(params["detector"])] = threshold
        return Verified(params) if detector == "default" else AsVideo(params)
    if threshold is None:  # the node's default (config/emotion.yaml)
        threshold = load_defaults()[threshold_param(detector)]
    det = make_detector(detector, score_threshold=threshold, **kwargs)
    if overrides.get("passes") == "full":
        det.passes = det.passes[:1]
    elif overrides.get("passes") == "closeup320":
        det.passes = det.passes[:1] + (SsdPass(0.25, (320, 240), upscale=True),)
    elif overrides.get("passes") == "512":
        det.passes = (SsdPass(0.0, (512, 384), 0.45),) + det.passes[1:]
    return det


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wild", type=int, default=40, help="wild-dev tune photos as face sources")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--threshold", type=float, help="score threshold for all (default: the "
                    "node's, config/emotion.yaml)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cv-threads", type=int, default=0,
                    help="OpenCV threads for the whole run (default: OpenCV's own, all cores)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    names = args.configs.split(",")
    if "ssd_tf" not in names:
        names.insert(0, "ssd_tf")
    rng = np.random.default_rng(args.seed)
    sources = load_sources(args.wild, args.seed)
    bg = cv2.resize(cv2.imread(str(SAMPLES / "fer_no-faces.jpg")), FRAME)
    frames = []
    for width in BUCKETS:
        for src in sources:
            frames.append(place(src, width, bg, rng) + (width,))
    for img in noface_frames(rng, 10):
        frames.append((img, [], None))
    print(f"{len(sources)} face sources, {len(frames)} frames", file=sys.stderr)
    detectors = {n: build(n, args.threshold) for n in names}
    tallies = {n: Tally() for n in names}
    if args.cv_threads:
        cv2.setNumThreads(args.cv_threads)
    for start in range(0, len(frames), BLOCK):  # configurations take turns on blocks of frames
        for n, det in detectors.items():
            for frame, boxes, width in frames[start:start + BLOCK]:
                t0 = time.perf_counter()
                found = det.detect(frame)
                tallies[n].ms.append((time.perf_counter() - t0) * 1e3)
                score_frame(tallies[n], [corners(d.box) for d in found], boxes, width)
    base = statistics.median(tallies["ssd_tf"].ms)
    header = "config".ljust(16) + "".join(f"{w:>5}" for w in BUCKETS) + \
        "  fp/face fp/noface  ms/frame  x ssd_tf"
    print(f"recall (%) by face width (px) in {FRAME[0]}x{FRAME[1]} frames; OpenCV "
          f"{cv2.getNumThreads()} threads; load {os.getloadavg()[0]:.1f}")
    print(header)
    report = {}
    for n, t in tallies.items():
        recall = {w: t.found.get(w, 0) / max(t.total.get(w, 1), 1) for w in BUCKETS}
        ms = statistics.median(t.ms)
        report[n] = {"recall": recall, "fp_per_face_frame": t.fp_face / max(t.face_frames, 1),
                     "fp_per_noface_frame": t.fp_noface / max(t.noface_frames, 1),
                     "ms_per_frame": ms, "ratio_to_ssd_tf": ms / base,
                     "faces_per_bucket": t.total.get(BUCKETS[0], 0)}
        print(n.ljust(16) + "".join(f"{100 * recall[w]:5.0f}" for w in BUCKETS) +
              f"  {report[n]['fp_per_face_frame']:7.3f} {report[n]['fp_per_noface_frame']:9.2f}"
              f"  {ms:8.1f}  {ms / base:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
