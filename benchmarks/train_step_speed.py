"""Time one training step (batch 128, 48x48 gray) of the shipped architecture on the CPU with
and without bf16 autocast and channels_last: the numbers behind training's speed settings.

    python benchmarks/train_step_speed.py [--batch 128] [--steps 5]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from fer_ros.core.network import DEFAULT_ARCH, build_network


def step_ms(channels_last: bool, bf16: bool, batch: int, steps: int) -> float:
    """Mean ms of ``steps`` SGD steps after 3 warm-up steps."""
    torch.manual_seed(0)
    model = build_network(DEFAULT_ARCH, 7)
    x = torch.randn(batch, 1, 48, 48)
    y = torch.randint(0, 7, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for i in range(3 + steps):
        if i == 3:
            t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    base = None
    for cl in (False, True):
        for bf16 in (False, True):
            ms = step_ms(cl, bf16, args.batch, args.steps)
            base = base or ms
            print(f"channels_last={cl!s:5} bf16={bf16!s:5}: {ms:6.0f} ms/step ({base / ms:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
