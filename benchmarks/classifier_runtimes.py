"""Per-face classifier time by runtime, flip TTA and width: what fits 3 ms per face?

    python benchmarks/classifier_runtimes.py [--rounds 15] [--calls 20] [--model fer7]
    ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/classifier_runtimes.py

The budget is 3 ms per face at batch 1 on one thread. Two tables, each timed interleaved,
round by round, as the median ms per face and the ratio to its first row (these machines are
shared: compare ratios from one run):

- the shipped classifier as the node runs it (``EmotionClassifier.predict``: normalisation,
  network, softmax) for each ``classifier_runtime``, with flip TTA off and on, for 1 and 3 faces;
- networks of the shipped and wider widths (random weights: time does not depend on them),
  batch norm folded as the core does, in eager PyTorch and ONNX Runtime's CPU provider.

The ISA variables cap PyTorch/oneDNN only; ONNX Runtime picks its own kernels from the CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable

import numpy as np
import torch

from fer_ros.core.network import DEFAULT_ARCH, build_network, fold_batch_norm

WIDTHS = {"shipped": DEFAULT_ARCH["widths"], "late x1.25": [32, 64, 160, 320],
          "x1.25": [40, 80, 160, 320], "x1.5": [48, 96, 192, 384]}


def eager(widths: list[int]):
    model = fold_batch_norm(build_network({"widths": widths}, 7).eval())
    model = model.to(memory_format=torch.channels_last)

    def run(x: np.ndarray) -> None:
        with torch.inference_mode():
            model(torch.from_numpy(x).contiguous(memory_format=torch.channels_last))
    return run


def onnx(widths: list[int]):
    from fer_ros.core.classifier_runtime import OnnxRuntimeNetwork

    network = OnnxRuntimeNetwork(fold_batch_norm(build_network({"widths": widths}, 7).eval()),
                                 in_channels=1, input_size=48, threads=1)
    return lambda x: network(torch.from_numpy(x))


def shipped(model: str) -> dict[str, Callable[[], object]]:
    """The shipped classifier's ``predict`` per runtime, flip TTA and face count."""
    from fer_ros.core.classifier import EmotionClassifier
    from fer_ros.core.model_files import resolve_model

    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    runs = {}
    for runtime in ("torch", "onnxruntime"):
        for tta in (False, True):
            clf = EmotionClassifier(resolve_model(model), runtime=runtime)
            clf.flip_tta = tta  # also off for a checkpoint made for it (fer7)
            for n in (1, 3):
                runs[f"{runtime:11} tta {'on ' if tta else 'off'} {n} face{'s' if n > 1 else ''}"] = (
                    lambda clf=clf, x=faces[:n]: clf.predict(x), n)
    return runs


def widths() -> dict[str, tuple[Callable[[], object], int]]:
    x = np.random.default_rng(0).standard_normal((1, 1, 48, 48)).astype(np.float32)
    runs = {f"{name:10} torch": (lambda f=eager(w): f(x), 1) for name, w in WIDTHS.items()}
    runs.update({f"{name:10} onnxruntime": (lambda f=onnx(w): f(x), 1)
                 for name, w in WIDTHS.items()})
    return runs


def timed(runs: dict[str, tuple[Callable[[], object], int]], rounds: int,
          calls: int) -> dict[str, float]:
    """Median ms per face of each run, interleaved round by round in a rotating order."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    for run, _ in runs.values():
        for _ in range(calls):
            run()  # warm-up
    names = list(runs)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            run, faces = runs[name]
            start = time.perf_counter()
            for _ in range(calls):
                run()
            times[name].append((time.perf_counter() - start) / calls / faces * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def report(title: str, ms: dict[str, float]) -> None:
    base = next(iter(ms.values()))
    print(title)
    for name, t in ms.items():
        print(f"  {name:30} {t:5.2f} ms/face  x{t / base:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--model", default="fer7", help="the shipped classifier of the first table")
    args = ap.parse_args()
    torch.set_num_threads(1)
    isa = os.environ.get("ATEN_CPU_CAPABILITY", "default")
    print(f"1 thread, torch ISA {isa}, load {os.getloadavg()[0]:.1f}")
    report(f"{args.model} as the node runs it (EmotionClassifier.predict):",
           timed(shipped(args.model), args.rounds, args.calls))
    report("network alone by width, batch 1:", timed(widths(), args.rounds, args.calls))
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
