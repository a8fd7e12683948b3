"""Training curves (loss and accuracy per epoch) from a run's log.jsonl, as a PNG.

    python -m training.plot_curves runs/fer7/log.jsonl --out docs/fer7_curves.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_log(path: Path) -> list[dict]:
    """Epoch records; a resumed run's repeated epochs keep their latest line."""
    records: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            records[rec["epoch"]] = rec
    return [records[e] for e in sorted(records)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = read_log(args.log)
    epochs = [r["epoch"] for r in recs]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [r["train_loss"] for r in recs], label="train (augmented, smoothed)")
    ax1.plot(epochs, [r["val_loss"] for r in recs], label="PublicTest")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy")
    ax1.legend()
    ax2.plot(epochs, [r["train_acc"] for r in recs], label="train (augmented)")
    ax2.plot(epochs, [r["val_acc"] for r in recs], label="PublicTest")
    ax2.plot(epochs, [r["val_acc_flip"] for r in recs], label="PublicTest, flip TTA")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.legend()
    fig.suptitle(f"{args.log.parent.name}: best PublicTest {max(r['val_acc_flip'] for r in recs):.4f}")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
