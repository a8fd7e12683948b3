"""Speed of the inference core at 640x480: detectors, classifier, whole pipeline.

    python benchmarks/bench_pipeline.py [--isa native|avx2|both] [--rounds N] [--repeats N]
                                        [--torch-threads N] [--cv-threads N]
                                        [--flip-tta | --no-flip-tta] [--bf16] [--detector ssd|yunet]
                                        [--classifier-runtime auto|onnxruntime|torch]

Prints the median over ``--repeats`` timed runs after warm-up runs: detector ms/frame (SSD and
YuNet), classifier ms/face at batch 1 and 8, and whole-pipeline frames/s (detect + track +
classify + smooth, parameters from config/emotion.yaml unless overridden) with 1 face
(fer_justin.jpg padded to 640x480) and 3 faces (dlib_2008_002506.jpg resized to 640x480), fed
as a 30 Hz video of ``--frames`` frames: frames/s is frames over the total time (full
detections included), p95 the per-frame latency. Each pipeline runs twice: with the frame
schedule of the yaml (``detect_every`` 0: as the CPU allows) and with ``detect_every`` 1 (a
full detection on every frame, the behaviour before the schedule).
Target: >= 30 frames/s with 3 faces on 2 cores.

``--isa avx2`` holds oneDNN (torch, OpenVINO) to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2,
DNNL_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2), as on an AVX2-only robot CPU; ``both``
(default) runs native and AVX2 in alternating child processes, ``--rounds`` times each, and
prints the ratios. The load average is printed because these machines are often shared:
compare numbers only within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
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

AVX2_HOLD = {"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2",
             "ATEN_CPU_CAPABILITY": "avx2"}

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


def run_video(pipeline, frame: np.ndarray, frames: int) -> tuple[float, float, int, float]:
    """(frames/s over the whole run, p95 ms per frame, faces in the last frame, process CPU
    ms per frame: all threads, far less hit by other processes than wall time) of ``frames``
    copies of ``frame`` stamped as 30 Hz video."""
    times = []
    t_start, c_start = time.perf_counter(), time.process_time()
    n = 0
    for i in range(frames):
        t0 = time.perf_counter()
        n = len(pipeline.process(frame, i / 30.0))
        times.append((time.perf_counter() - t0) * 1e3)
    total = time.perf_counter() - t_start
    cpu_ms = (time.process_time() - c_start) * 1e3 / frames
    return frames / total, float(np.percentile(times, 95)), n, cpu_ms


def run_both(argv: list[str], rounds: int) -> int:
    """Native and AVX2 in alternating child processes; then the AVX2 / native ratios."""
    rest = [a for a in argv if not a.startswith("--isa") and a not in ("both",)]
    results: dict[str, list[dict[str, float]]] = {"native": [], "avx2": []}
    for r in range(rounds):
        for isa in ("native", "avx2"):
            print(f"## round {r + 1}, {isa}, load {os.getloadavg()[0]:.2f}", flush=True)
            env = {**os.environ, **(AVX2_HOLD if isa == "avx2" else {})}
            if isa == "native":
                for k in AVX2_HOLD:
                    env.pop(k, None)
            out = subprocess.run([sys.executable, __file__, *rest, "--isa", isa], env=env,
                                 capture_output=True, text=True)
            sys.stdout.write(out.stdout)
            if out.returncode != 0:
                sys.stderr.write(out.stderr)
                return out.returncode
            line = [x for x in out.stdout.splitlines() if x.startswith("SUMMARY ")][-1]
            results[isa].append(json.loads(line[len("SUMMARY "):]))
    print(f"## medians over {rounds} round(s) (load now {os.getloadavg()[0]:.2f})")
    print(f"{'':32s}{'native':>10s}{'AVX2':>10s}{'AVX2/native':>13s}")
    for key in results["native"][0]:
        nat = statistics.median(x[key] for x in results["native"])
        avx = statistics.median(x[key] for x in results["avx2"])
        print(f"{key:32s}{nat:10.1f}{avx:10.1f}{avx / nat:13.2f}")
    return 0


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
    p.add_argument("--classifier-runtime", choices=("auto", "onnxruntime", "torch"), default=None,
                   help="override classifier_runtime from config/emotion.yaml")
    p.add_argument("--detector", choices=("ssd", "yunet"), default=None,
                   help="detector of the whole-pipeline runs (default from the yaml)")
    p.add_argument("--checkpoint", default=None, help="classifier (default from the yaml)")
    p.add_argument("--frames", type=int, default=150, help="frames of each pipeline video")
    p.add_argument("--isa", choices=("native", "avx2", "both"), default="both",
                   help="hold oneDNN/torch to AVX2, or run both in alternating child processes")
    p.add_argument("--rounds", type=int, default=1, help="rounds of native + AVX2 (--isa both)")
    args = p.parse_args(argv)
    if args.isa == "both":
        return run_both(argv if argv is not None else sys.argv[1:], args.rounds)
    if args.isa == "avx2" and any(os.environ.get(k) != v for k, v in AVX2_HOLD.items()):
        return subprocess.call([sys.executable, __file__, *(argv if argv is not None
                                                             else sys.argv[1:])],
                               env={**os.environ, **AVX2_HOLD})

    overrides: dict[str, object] = {"classifier_bf16": args.bf16}
    if args.flip_tta is not None:
        overrides["flip_tta"] = args.flip_tta
    if args.detector:
        overrides["detector"] = args.detector
    if args.classifier_runtime:
        overrides["classifier_runtime"] = args.classifier_runtime
    if args.checkpoint:
        overrides["classifier_model"] = args.checkpoint
    params = {**load_defaults(), **validate(overrides)}
    if args.cv_threads >= 0:
        cv2.setNumThreads(args.cv_threads)
    torch.set_num_threads(args.torch_threads)

    print(f"# ISA: {'held to AVX2 (' + ' '.join(f'{k}={v}' for k, v in AVX2_HOLD.items()) + ')' if args.isa == 'avx2' else 'native'}")
    load1, load5, _ = os.getloadavg()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{load1:.2f} (1 min) {load5:.2f} (5 min)"
          + ("  <-- machine busy: numbers are low" if load1 > 0.5 else ""))
    print(f"# OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), torch {torch.__version__} "
          f"({args.torch_threads} threads), flip_tta={params['flip_tta']}, bf16={args.bf16}, "
          f"median of {args.repeats} after {args.warmup} warm-up runs")

    three = cv2.resize(load("dlib_2008_002506.jpg"), SIZE, interpolation=cv2.INTER_AREA)
    clf = time_parts(args, params, three)
    summary = time_pipelines(args, params, clf, one_face_frame(), three)
    print("SUMMARY " + json.dumps(summary))
    return 0


def time_parts(args: argparse.Namespace, params: dict, three: np.ndarray) -> EmotionClassifier:
    """Each detector on the 3-face frame and the classifier at batch 1 and 8; returns the
    classifier (with the benchmark's threads and bf16) for the pipeline runs."""
    for name in ("ssd", "ssd_tf", "yunet"):
        det = build_detector({**params, "detector": name})
        ms, cpu = median_ms(lambda: det.detect(three), args.repeats, args.warmup)
        print(f"detector {name:6s} 640x480: {ms:7.2f} ms/frame (CPU {cpu:.1f} ms; "
              f"{len(det.detect(three))} faces)")

    pipeline = build_pipeline(params)  # before clf: its own classifier sets torch's threads
    print(f"# classifier_runtime {pipeline.classifier.runtime}, flip TTA "
          f"{'on' if pipeline.classifier.flip_tta else 'off'} (the checkpoint's own included)")
    clf = EmotionClassifier(classifier_path(params["classifier_model"]),
                            crop_margin=params["crop_margin"], flip_tta=params["flip_tta"],
                            num_threads=args.torch_threads, bf16=args.bf16,
                            runtime=params["classifier_runtime"])
    faces = np.random.default_rng(0).integers(0, 256, (8, clf.input_size, clf.input_size),
                                               dtype=np.uint8)
    for batch in (1, 8):
        ms, cpu = median_ms(lambda: clf.predict(faces[:batch]), args.repeats, args.warmup)
        print(f"classifier batch {batch}: {ms / batch:7.2f} ms/face ({ms:.2f} ms/batch, "
              f"CPU {cpu / batch:.1f} ms/face)")

    pipeline.close()
    return clf


def time_pipelines(args: argparse.Namespace, params: dict, clf: EmotionClassifier,
                   one: np.ndarray, three: np.ndarray) -> dict[str, float]:
    """The whole pipeline on a still 1-face and 3-face "video", with the frame schedule and
    with a full detection every frame."""
    summary: dict[str, float] = {}
    for mode, extra in (("schedule", {}), ("every frame", {"detect_every": 1})):
        for label, frame in (("1 face ", one), ("3 faces", three)):
            p = build_pipeline({**params, **extra})
            p.classifier = clf
            p.warm_up()
            fps, p95, n, cpu = run_video(p, frame, args.frames)
            stats = p.stats()
            p.close()
            verdict = "" if label.startswith("1") else ("  (target >= 30: met)" if fps >= 30
                                                        else "  (target >= 30: NOT met)")
            print(f"pipeline {params['detector']} {mode:11s} {label} 640x480: {fps:6.1f} "
                  f"frames/s, p95 {p95:.1f} ms/frame, CPU {cpu:.1f} ms/frame, {n} faces at the end, full detection on "
                  f"{stats.get('schedule_full_detection_share', 1.0):.0%} of frames{verdict}")
            summary[f"{mode} {label.strip()} frames/s"] = round(fps, 1)
            summary[f"{mode} {label.strip()} p95 ms"] = round(p95, 1)
            summary[f"{mode} {label.strip()} CPU ms/frame"] = round(cpu, 1)
    return summary


if __name__ == "__main__":
    sys.exit(main())
