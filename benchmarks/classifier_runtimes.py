"""Per-face classifier time by width and runtime: is there room for a stronger network?

    python benchmarks/classifier_runtimes.py [--rounds 15] [--calls 20]
    ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/classifier_runtimes.py

The budget is 3 ms per face at batch 1 on one thread. For the shipped widths and wider ones
(random weights: time does not depend on them), batch norm folded as the core does, this times
eager PyTorch (what the core runs) and ONNX Runtime's CPU provider on the same graph. Variants
run interleaved, round by round; printed: the median ms per face and the ratio to the shipped
network in eager PyTorch (these machines are shared: compare ratios from one run). The ISA
variables cap PyTorch/oneDNN only; ONNX Runtime picks its own kernels.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

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


def onnx(widths: list[int], folder: Path):
    import onnxruntime as ort

    path = folder / f"{'_'.join(map(str, widths))}.onnx"
    model = fold_batch_norm(build_network({"widths": widths}, 7).eval())
    torch.onnx.export(model, torch.zeros(1, 1, 48, 48), str(path), input_names=["x"],
                      output_names=["logits"], dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"x": x})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    x = np.random.default_rng(0).standard_normal((1, 1, 48, 48)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {f"{name:10} torch": eager(w) for name, w in WIDTHS.items()}
        runs.update({f"{name:10} onnxruntime": onnx(w, Path(tmp)) for name, w in WIDTHS.items()})
        times: dict[str, list[float]] = {k: [] for k in runs}
        for run in runs.values():
            for _ in range(args.calls):
                run(x)  # warm-up
        for r in range(args.rounds):
            names = list(runs)
            for name in names[r % len(names):] + names[:r % len(names)]:
                start = time.perf_counter()
                for _ in range(args.calls):
                    runs[name](x)
                times[name].append((time.perf_counter() - start) / args.calls * 1e3)
    base = statistics.median(times[f"{'shipped':10} torch"])
    isa = os.environ.get("ATEN_CPU_CAPABILITY", "default")
    print(f"batch 1, 1 thread, torch ISA {isa}, load {os.getloadavg()[0]:.1f}")
    for name, t in times.items():
        ms = statistics.median(t)
        print(f"  {name:24} {ms:5.2f} ms/face  x{ms / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
