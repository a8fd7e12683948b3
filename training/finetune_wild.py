"""Fine-tune a classifier on real faces (wild-dev ``tune`` crops) without forgetting FER2013.

    python training/finetune_wild.py --init runs/v2/best_wild.pt \\
        --wild-crops runs/wild_tune_ssd.npz --out runs/wild7 [--num-classes 7|6] [--epochs 12]

``--wild-crops`` comes from training/wild_crops.py (crops made the way the pipeline makes them:
default detector, default crop margin). ``tune`` is split by identity into a fit part and a
validation part (``--val-fraction``); ``dev`` is never read. Each step trains on a batch of
real crops, drawn class-balanced (real disgust and fear photos are few), plus a batch of
FER2013 Training images whose targets are their FER+ vote distributions (reordered to the
model's classes, contempt dropped) or, where FER+ has none, their FER2013 label. Both go
through the same augmentation as training/train.py. The epoch with the best accuracy on the
validation identities is kept; then per-class logit offsets, fitted on the validation part to
maximise accuracy + mean per-class recall (real photos' class balance is not FER2013's), are
folded into the output layer's bias, and the softmax temperature is fitted there. Saved as ``OUT/best.pt`` (self-describing, with the split,
offsets and numbers in meta); ``OUT/log.jsonl`` has one line per epoch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augment import augment_batch  # noqa: E402
from calibrate import fit_temperature  # noqa: E402
from config import TrainConfig  # noqa: E402
from dataset import FER2013_LABELS, default_data_path, load_fer2013, to_six_classes  # noqa: E402
from ferplus import FER2013_ORDER, default_votes_path, read_votes, targets_for_rows  # noqa: E402

from fer_ros.core.checkpoint import (  # noqa: E402
    load_checkpoint, make_checkpoint, network_from_checkpoint, normalize_batch, save_checkpoint,
)
from fer_ros.core.network import build_network  # noqa: E402


def identity_split(identities: np.ndarray, targets: np.ndarray, fraction: float, seed: int
                   ) -> np.ndarray:
    """Boolean mask of the validation rows: whole identities (never on both sides), added in
    seeded order until about ``fraction`` of each class's images are in (rarest class first,
    so that rare classes are in both parts)."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(targets), dtype=bool)
    decided: set[str] = set()
    for c in np.argsort(np.bincount(targets)):
        want = fraction * (targets == c).sum()
        for name in rng.permutation(sorted(set(identities[targets == c].tolist()) - decided)):
            if (val & (targets == c)).sum() + ((identities == name) & (targets == c)).sum() \
                    > want + 0.5 * ((identities == name) & (targets == c)).sum():
                continue
            val |= identities == name
            decided.add(name)
        decided |= set(identities[targets == c].tolist())
    return val


def balance_bias(logits: np.ndarray, targets: np.ndarray, rounds: int = 4) -> np.ndarray:
    """Per-class logit offsets that maximise accuracy + mean per-class recall on held-out
    logits (coordinate search on a grid; classes absent there keep 0)."""
    def objective(b: np.ndarray) -> float:
        pred = (logits + b).argmax(1)
        present = [c for c in range(logits.shape[1]) if (targets == c).any()]
        recall = np.mean([(pred[targets == c] == c).mean() for c in present])
        return float((pred == targets).mean() + recall)

    bias = np.zeros(logits.shape[1])
    grid = np.arange(-2.0, 3.01, 0.25)
    for _ in range(rounds):
        for c in range(logits.shape[1]):
            if not (targets == c).any():
                continue
            scores = []
            for v in grid:
                trial = bias.copy()
                trial[c] = v
                scores.append((objective(trial), -abs(v), v))
            bias[c] = max(scores)[2]
    return bias


def fer_targets(rows: np.ndarray, hard: np.ndarray, num_classes: int, smoothing: float,
                mix: float = 0.0) -> torch.Tensor:
    """(N, C) targets of FER2013 images: FER+ vote distributions where FER+ has one (FER2013
    class order, contempt dropped, disgust folded into angry for 6 classes), else the smoothed
    FER2013 label; ``mix`` of the smoothed FER2013 label is blended into every FER+ target
    (FER+ keeps few disgust faces: FER2013's labels bring them back)."""
    soft8, mask, _ = targets_for_rows(rows, read_votes(default_votes_path()))
    soft = soft8[:, FER2013_ORDER]
    if num_classes == 6:
        soft = np.concatenate([soft[:, :1] + soft[:, 1:2], soft[:, 2:]], axis=1)
    total = soft.sum(1, keepdims=True)
    mask &= total[:, 0] > 0
    soft = np.divide(soft, total, out=np.zeros_like(soft), where=total > 0)
    onehot = np.full((len(hard), num_classes), smoothing / num_classes, np.float32)
    onehot[np.arange(len(hard)), hard] += 1 - smoothing
    soft = (1 - mix) * soft + mix * onehot
    return torch.from_numpy(np.where(mask[:, None], soft, onehot).astype(np.float32))


def six_class_init(ckpt: dict) -> dict:
    """A 7-class checkpoint's weights for a 6-class network: the merged angry output starts as
    the old angry one."""
    state = dict(ckpt["model"])
    keep = [0, 2, 3, 4, 5, 6]
    state["head.3.weight"] = state["head.3.weight"][keep]
    state["head.3.bias"] = state["head.3.bias"][keep]
    return state


def soft_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -(target * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


@torch.no_grad()
def logits_of(model, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    out = []
    for i in range(0, len(x), 512):
        xb = x[i : i + 512].contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out.append(model(xb).float())
    return torch.cat(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", required=True, type=Path)
    ap.add_argument("--wild-crops", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--num-classes", type=int, default=7, choices=[7, 6])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--steps", type=int, default=60, help="steps per epoch")
    ap.add_argument("--wild-batch", type=int, default=48)
    ap.add_argument("--fer-batch", type=int, default=80)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--val-fraction", type=float, default=0.25)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--fer2013-mix", type=float, default=0.0,
                    help="weight of FER2013's own label in the FER+ replay targets")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-balance", dest="balance", action="store_false",
                    help="skip the per-class logit offsets fitted on the validation part")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    init = load_checkpoint(args.init)
    if init["labels"] != FER2013_LABELS:
        raise SystemExit(f"--init must be a 7-class FER2013-order checkpoint, has {init['labels']}")
    norm = init["normalization"]
    labels = FER2013_LABELS if args.num_classes == 7 else [
        "angry", "fear", "happy", "sad", "surprise", "neutral"]
    model = build_network(init["arch"], len(labels))
    model.load_state_dict(init["model"] if args.num_classes == 7 else six_class_init(init))
    model = model.to(memory_format=torch.channels_last)

    with np.load(args.wild_crops) as z:
        w_images, w_targets, w_ids = z["images"], z["targets"], z["identity"]
        crop_info = {"detector": str(z["detector"]), "margin": float(z["margin"])}
    if args.num_classes == 6:
        w_targets = to_six_classes(w_targets)
    val = identity_split(w_ids, w_targets, args.val_fraction, args.seed)
    x_fit, y_fit = normalize_batch(w_images[~val], norm), torch.from_numpy(w_targets[~val])
    x_val, y_val = normalize_batch(w_images[val], norm), w_targets[val]
    counts = np.bincount(w_targets[~val], minlength=len(labels)).astype(float)
    weights = torch.from_numpy(1.0 / np.maximum(counts, 1))[y_fit]

    splits, data_sha = load_fer2013(default_data_path(), num_classes=args.num_classes)
    train, public = splits["Training"], splits["PublicTest"]
    x_fer = normalize_batch(train.images, norm)
    t_fer = fer_targets(train.rows, train.targets, args.num_classes, args.label_smoothing,
                        args.fer2013_mix)
    x_pub, y_pub = normalize_batch(public.images, norm), public.targets
    print(f"real crops: {int((~val).sum())} fit / {int(val.sum())} validation "
          f"({len(np.unique(w_ids[val]))} identities), per class fit {counts.astype(int).tolist()}")

    cfg = TrainConfig()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs * args.steps)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "log.jsonl").write_text("")
    best = -1.0
    smooth = args.label_smoothing
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            wi = torch.multinomial(weights, args.wild_batch, replacement=True, generator=gen)
            fi = torch.randint(0, len(x_fer), (args.fer_batch,), generator=gen)
            xb = augment_batch(torch.cat([x_fit[wi], x_fer[fi]]), cfg, gen)
            tw = torch.full((len(wi), len(labels)), smooth / len(labels))
            tw[torch.arange(len(wi)), y_fit[wi]] += 1 - smooth
            tb = torch.cat([tw, t_fer[fi]])
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(xb.contiguous(memory_format=torch.channels_last))
            loss = soft_ce(logits, tb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        pred_val = logits_of(model, x_val).argmax(1).numpy()
        recall = [float((pred_val[y_val == c] == c).mean()) if (y_val == c).any() else None
                  for c in range(len(labels))]
        record = {"epoch": epoch, "loss": float(loss.detach()), "wild_val_acc": float((pred_val == y_val).mean()),
                  "wild_val_recall": dict(zip(labels, recall)),
                  "public_test_acc": float((logits_of(model, x_pub).argmax(1).numpy() == y_pub).mean()),
                  "seconds": time.perf_counter() - t0}
        mark = ""
        if record["wild_val_acc"] > best:
            best = record["wild_val_acc"]
            meta = {"finetune": vars(args) | {"init": str(args.init), "wild_crops": str(args.wild_crops),
                                               "out": str(args.out)},
                    "init_meta": init.get("meta", {}), "epoch": epoch, "crops": crop_info,
                    "wild_tune_val_accuracy": best, "wild_tune_val_identities":
                        sorted(np.unique(w_ids[val]).tolist()),
                    "public_test_accuracy": record["public_test_acc"], "data_sha256": data_sha}
            save_checkpoint(make_checkpoint(model, labels, norm, meta), args.out / "best.pt")
            mark = " *best"
        with open(args.out / "log.jsonl", "a") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
        print(f"epoch {epoch:2d} loss {record['loss']:.3f} wild-val {record['wild_val_acc']:.4f} "
              f"PublicTest {record['public_test_acc']:.4f} recall "
              + " ".join(f"{lab[:3]} {r:.2f}" for lab, r in zip(labels, recall) if r is not None)
              + f" {record['seconds']:.0f}s{mark}", flush=True)
    # class balance: real-face priors differ from FER2013's (disgust is rare there)
    ckpt = load_checkpoint(args.out / "best.pt")
    net = network_from_checkpoint(ckpt).to(memory_format=torch.channels_last)
    val_logits = logits_of(net, x_val).numpy()
    bias = balance_bias(val_logits, y_val) if args.balance else np.zeros(len(labels))
    before, after = val_logits.argmax(1), (val_logits + bias).argmax(1)
    ckpt["model"]["head.3.bias"] = ckpt["model"]["head.3.bias"] + torch.from_numpy(bias).float()
    ckpt["meta"]["class_bias"] = dict(zip(labels, bias.tolist()))
    ckpt["meta"]["wild_tune_val_accuracy_balanced"] = float((after == y_val).mean())
    # softmax temperature on the same held-out real faces (calibrate.py's fit)
    ckpt["temperature"] = fit_temperature(torch.from_numpy(val_logits + bias).float(),
                                          torch.from_numpy(y_val))
    save_checkpoint(ckpt, args.out / "best.pt")
    print(f"best wild-val accuracy {best:.4f}; class offsets "
          + " ".join(f"{lab[:3]} {b:+.2f}" for lab, b in zip(labels, bias))
          + f" -> accuracy {(after == y_val).mean():.4f} (was {(before == y_val).mean():.4f}), "
          f"temperature {ckpt['temperature']:.3f}; "
          f"{args.out / 'best.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
