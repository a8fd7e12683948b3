"""Fit a softmax temperature on PublicTest and store it in the checkpoint.

    python -m training.calibrate --checkpoint runs/fer7/best.pt --out models/fer7.pt [--data PATH]
        [--flip-tta]

Prints the expected calibration error (15 bins) before and after, on PublicTest (where the
temperature is fitted) and PrivateTest (held out); ``--labels ferplus`` fits on FERPlus's
majority labels instead of FER2013's. ``--flip-tta`` marks the checkpoint as made
for flip test-time augmentation (training/train.py selects ``best.pt`` on PublicTest's flip-TTA
accuracy): the temperature is fitted on flip-averaged logits, and the inference core then
always averages with the mirrored face.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


from training.dataset import default_data_path, load_fer2013
from training.inference import checkpoint_logits
from training.metrics import expected_calibration_error

from fer_ros.core.checkpoint import load_checkpoint, save_checkpoint


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The temperature T > 0 minimising the NLL of softmax(logits / T) (LBFGS on log T)."""
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


def split_targets(split, labels: list[str], source: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows kept, targets in ``labels`` order): FER2013's own labels, or (``ferplus``) the
    FERPlus majority label where it is one of the model's classes (for a model trained on
    FER+ votes, FER2013's labels would flatten its confidence)."""
    if source == "fer2013":
        if list(split.labels) != list(labels):
            raise ValueError(f"checkpoint labels {labels} are not FER2013's {split.labels}")
        return np.ones(len(split.targets), bool), split.targets
    from training.ferplus import FERPLUS_LABELS, default_votes_path, read_votes, targets_for_rows

    _, _, major = targets_for_rows(split.rows, read_votes(default_votes_path()))
    names = [FERPLUS_LABELS[m] if m >= 0 else "" for m in major]
    keep = np.array([n in labels for n in names])
    return keep, np.array([labels.index(n) for n in names if n in labels], dtype=np.int64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--labels", choices=["fer2013", "ferplus"], default="fer2013",
                        help="the PublicTest labels the temperature is fitted on (ferplus: "
                             "FERPlus majority labels, for models trained on FER+ votes)")
    parser.add_argument("--flip-tta", action="store_true",
                        help="the model is run with flip test-time augmentation")
    args = parser.parse_args(argv)
    ckpt = load_checkpoint(args.checkpoint)
    if args.flip_tta:
        ckpt["flip_tta"] = True  # checkpoint_logits (and the core) now average with the mirror
    fer_classes = 7 if "disgust" in ckpt["labels"] else 6
    splits, _ = load_fer2013(args.data or default_data_path(), num_classes=fer_classes)
    report: dict[str, float | str] = {"labels": args.labels}
    logits, targets = {}, {}
    for split in ("PublicTest", "PrivateTest"):
        keep, target = split_targets(splits[split], ckpt["labels"], args.labels)
        logits[split] = checkpoint_logits(ckpt, splits[split].images[keep])
        targets[split] = torch.from_numpy(target)
    temperature = fit_temperature(logits["PublicTest"], targets["PublicTest"])
    for split in logits:
        for name, t in (("before", 1.0), ("after", temperature)):
            probs = torch.softmax(logits[split] / t, dim=1).numpy()
            report[f"{split}_ece_{name}"] = expected_calibration_error(probs, targets[split].numpy())
    report["temperature"] = temperature
    ckpt["temperature"] = temperature
    ckpt.setdefault("meta", {})["calibration"] = report
    save_checkpoint(ckpt, args.out)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
