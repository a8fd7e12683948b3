"""The classifier's eager batch-norm fold against the TorchScript freeze it replaced (issue 14.3).

    python benchmarks/classifier_fold.py [--models fer7 fer6 ...] [--rounds 30] [--calls 20]

For each shipped model, on the real face crops the default SSD finds in the sample photos
(``../shared/samples``), three variants of ``EmotionClassifier.predict`` (normalisation,
network, softmax) at batch 1, torch 1 thread, channels_last, inference mode:

  fold         what the core runs now: eager PyTorch, batch norm folded into the convolutions
               (fer_ros.core.network.fold_batch_norm)
  torchscript  the previous core: torch.jit.trace + freeze + optimize_for_inference
  unfused      the plain eager network from the checkpoint (batch norm as separate layers)

Prints the max abs probability difference of fold and torchscript against unfused (float32;
target < 1e-4), then the timing: the variants run interleaved (each round times ``--calls``
calls of each, in a rotating order), and per variant the median over rounds of the per-round
median wall and process-CPU ms/face, plus the ratio torchscript / fold (> 1: the fold is
faster) as the median of the per-round ratios. Ratios from one run are what to compare: these
machines are shared, so absolute times drift with the load (printed beside them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_ros.core.checkpoint import load_checkpoint, network_from_checkpoint  # noqa: E402
from bench_pipeline import median_ms  # noqa: E402  (this folder is on sys.path)
from fer_ros.core.classifier import EmotionClassifier, crop_faces  # noqa: E402
from fer_ros.core.factory import build_detector  # noqa: E402
from fer_ros.core.model_files import resolve_model  # noqa: E402
from fer_ros.params import load_defaults  # noqa: E402

SAMPLES = Path(os.environ.get("FER_SHARED_DIR", REPO.parent / "shared")) / "samples"
PHOTOS = ("dlib_2008_002506.jpg", "fer_justin.jpg")
MODELS = ("fer7", "fer6", "fer7_fer2013", "ferplus8")


def torchscript_freeze(model: torch.nn.Module, input_size: int) -> torch.nn.Module:
    """The previous core's ``freeze_for_cpu``, verbatim: trace, freeze, optimise for inference."""
    example = torch.zeros(1, 1, input_size, input_size).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, example)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


def real_crops() -> np.ndarray:
    detector = build_detector(load_defaults())
    crops = []
    for name in PHOTOS:
        image = cv2.imread(str(SAMPLES / name))
        if image is None:
            sys.exit(f"classifier_fold: sample {SAMPLES / name} not found (../shared beside the repo)")
        crops.append(crop_faces(image, [d.box for d in detector.detect(image)], 48, 0.05))
    return np.concatenate(crops)


def bench_model(name: str, crops: np.ndarray, rounds: int, calls: int) -> dict:
    path = resolve_model(name)
    clf = EmotionClassifier(path, runtime="torch")  # num_threads=1: torch.set_num_threads(1)
    ckpt = load_checkpoint(path)
    unfused = network_from_checkpoint(ckpt).to(memory_format=torch.channels_last).eval()
    variants = {"fold": clf.network.model, "torchscript": torchscript_freeze(unfused, clf.input_size),
                "unfused": unfused}

    def predict_with(model: torch.nn.Module, faces: np.ndarray) -> np.ndarray:
        clf.network.model = model
        return clf.predict(faces)

    reference = predict_with(unfused, crops)
    diff = {v: float(np.abs(predict_with(m, crops) - reference).max())
            for v, m in variants.items() if v != "unfused"}
    one = crops[:1]
    for model in variants.values():  # warm-up: oneDNN primitive caches, lazy allocations
        for _ in range(10):
            predict_with(model, one)
    walls: dict[str, list[float]] = {v: [] for v in variants}
    cpus: dict[str, list[float]] = {v: [] for v in variants}
    names = list(variants)
    for r in range(rounds):
        for v in names[r % len(names):] + names[: r % len(names)]:  # rotate the order
            model = variants[v]
            wall, cpu = median_ms(lambda: predict_with(model, one), calls, warmup=0)
            walls[v].append(wall)
            cpus[v].append(cpu)
    clf.network.model = variants["fold"]
    ratio = statistics.median(t / f for t, f in zip(walls["torchscript"], walls["fold"]))
    cpu_ratio = statistics.median(t / f for t, f in zip(cpus["torchscript"], cpus["fold"]))
    return {"model": name, "faces": int(len(crops)), "max_abs_prob_diff_vs_unfused": diff,
            "ms_per_face_batch1": {v: {"wall": round(statistics.median(walls[v]), 3),
                                       "cpu": round(statistics.median(cpus[v]), 3)}
                                   for v in variants},
            "torchscript_over_fold": {"wall": round(ratio, 3), "cpu": round(cpu_ratio, 3)}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--calls", type=int, default=20, help="timed calls per variant and round")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    crops = real_crops()
    print(f"torch {torch.__version__}, 1 thread, batch 1, {len(crops)} real face crops; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    results = []
    for name in args.models:
        res = bench_model(name, crops, args.rounds, args.calls)
        results.append(res)
        ms, d = res["ms_per_face_batch1"], res["max_abs_prob_diff_vs_unfused"]
        print(f"{name:13s} max |p - unfused|: fold {d['fold']:.2e}, torchscript "
              f"{d['torchscript']:.2e}; ms/face wall (cpu): fold {ms['fold']['wall']:.3f} "
              f"({ms['fold']['cpu']:.3f}), torchscript {ms['torchscript']['wall']:.3f} "
              f"({ms['torchscript']['cpu']:.3f}), unfused {ms['unfused']['wall']:.3f} "
              f"({ms['unfused']['cpu']:.3f}); torchscript/fold {res['torchscript_over_fold']['wall']:.3f}"
              f" (cpu {res['torchscript_over_fold']['cpu']:.3f})", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print(json.dumps({"results": results, "load_average": [round(x, 2) for x in os.getloadavg()]}))
    worst = max(max(r["max_abs_prob_diff_vs_unfused"].values()) for r in results)
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
