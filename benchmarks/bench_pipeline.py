"""Speed of the inference core at 640x480: detectors, classifier, whole pipeline.

    python benchmarks/bench_pipeline.py [--repeats N] [--torch-threads N] [--cv-threads N]
                                        [--flip-tta | --no-flip-tta] [--bf16] [--detector ssd|yunet]

Prints the median over ``--repeats`` timed runs after warm-up runs: detector ms/frame (SSD and
YuNet), classifier ms/face at batch 1 and 8, and whole-pipeline frames/s (detect + classify +
track + smooth, parameters from config/emotion.yaml unless overridden) with 1 face
(fer_justin.jpg padded to 640x480) and 3 faces (dlib_2008_002506.jpg resized to 640x480).
Target: >= 30 frames/s with 3 faces on 2 cores. The load average is printed because these
machines are often shared: compare numbers only within one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_ros.core.classifier import EmotionClassifier  # noqa: E402
from fer_ros.core.factory import build_detector, build_pipeline, classifier_path  # noqa: E402
from fer_ros.params import load_defaults, validate  # noqa: E402

SAMPLES = Path(os.environ.get("FER_SHARED_DIR", REPO.parent / "shared")) / "samples"
SIZE = (640, 480)


def median_ms(fn: Callable[[], object], repeats: int, warmup: int) -> tuple[float, float]:
    """Median wall-clock and process-CPU milliseconds of fn() (CPU time sums all threads; it
    is far less affected by other processes than wall time)."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def load(name: str) -> np.ndarray:
    image = cv2.imread(str(SAMPLES / name))
    if image is None:
        sys.exit(f"bench_pipeline: sample {SAMPLES / name} not found (../shared beside the repo)")
    return image


def one_face_frame() -> np.ndarray:
    """fer_justin.jpg scaled to 480 px high and padded (grey) to 640x480."""
    img = load("fer_justin.jpg")
    scale = SIZE[1] / img.shape[0]
    img = cv2.resize(img, (round(img.shape[1] * scale), SIZE[1]), interpolation=cv2.INTER_AREA)
    pad = SIZE[0] - img.shape[1]
    return cv2.copyMakeBorder(img, 0, 0, pad // 2, pad - pad // 2, cv2.BORDER_CONSTANT,
                              value=(128, 128, 128))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch intra-op threads for the classifier (default 1, as the core)")
    p.add_argument("--cv-threads", type=int, default=-1,
                   help="cv2.setNumThreads (default -1: leave OpenCV's default)")
    p.add_argument("--flip-tta", action=argparse.BooleanOptionalAction, default=None,
                   help="override flip_tta from config/emotion.yaml")
    p.add_argument("--bf16", action="store_true", help="classifier in bfloat16 autocast")
    p.add_argument("--detector", choices=("ssd", "yunet"), default=None,
                   help="detector of the whole-pipeline runs (default from the yaml)")
    p.add_argument("--checkpoint", default=None, help="classifier (default from the yaml)")
    args = p.parse_args(argv)

    overrides: dict[str, object] = {"classifier_bf16": args.bf16}
    if args.flip_tta is not None:
        overrides["flip_tta"] = args.flip_tta
    if args.detector:
        overrides["detector"] = args.detector
    if args.checkpoint:
        overrides["classifier_model"] = args.checkpoint
    params = {**load_defaults(), **validate(overrides)}
    if args.cv_threads >= 0:
        cv2.setNumThreads(args.cv_threads)
    torch.set_num_threads(args.torch_threads)

    load1, load5, _ = os.getloadavg()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{load1:.2f} (1 min) {load5:.2f} (5 min)"
          + ("  <-- machine busy: numbers are low" if load1 > 0.5 else ""))
    print(f"# OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), torch {torch.__version__} "
          f"({args.torch_threads} threads), flip_tta={params['flip_tta']}, bf16={args.bf16}, "
          f"median of {args.repeats} after {args.warmup} warm-up runs")

    three = cv2.resize(load("dlib_2008_002506.jpg"), SIZE, interpolation=cv2.INTER_AREA)
    one = one_face_frame()
    for name in ("ssd", "ssd_tf", "yunet"):
        det = build_detector({**params, "detector": name})
        ms, cpu = median_ms(lambda: det.detect(three), args.repeats, args.warmup)
        print(f"detector {name:6s} 640x480: {ms:7.2f} ms/frame (CPU {cpu:.1f} ms; "
              f"{len(det.detect(three))} faces)")

    pipeline = build_pipeline(params)  # before clf: its own classifier sets torch's threads
    clf = EmotionClassifier(classifier_path(params["classifier_model"]),
                            crop_margin=params["crop_margin"], flip_tta=params["flip_tta"],
                            num_threads=args.torch_threads, bf16=args.bf16)
    faces = np.random.default_rng(0).integers(0, 256, (8, clf.input_size, clf.input_size),
                                               dtype=np.uint8)
    for batch in (1, 8):
        ms, cpu = median_ms(lambda: clf.predict(faces[:batch]), args.repeats, args.warmup)
        print(f"classifier batch {batch}: {ms / batch:7.2f} ms/face ({ms:.2f} ms/batch, "
              f"CPU {cpu / batch:.1f} ms/face)")

    pipeline.classifier = clf  # same classifier settings (bf16, threads) as above
    for label, frame in (("1 face ", one), ("3 faces", three)):
        n = len(pipeline.process(frame, 0.0))
        stamp = iter(range(1, 10**9))
        ms, cpu = median_ms(lambda: pipeline.process(frame, next(stamp) / 30.0), args.repeats,
                            args.warmup)
        verdict = "" if label.startswith("1") else ("  (target >= 30: met)" if 1e3 / ms >= 30
                                                    else "  (target >= 30: NOT met)")
        print(f"pipeline {params['detector']} {label} 640x480: {1e3 / ms:6.1f} frames/s "
              f"({ms:.2f} ms/frame, CPU {cpu:.1f} ms/frame, {n} found){verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
