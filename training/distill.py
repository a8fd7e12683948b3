"""Distil flip-TTA ensembles into one network that needs a single pass per face.

    python training/distill.py --init runs/v3/best.pt \\
        --teachers runs/v3/best.pt runs/fer7_fer2013_v2.pt --out runs/distill7 [--resume]

The teachers (7-class FER2013 checkpoints) score every FER2013 Training image and its mirror
image once; the mean of their softmax outputs at ``--kd-temperature`` is each image's soft
target. The student starts from ``--init`` and trains on augmented images (training/train.py's
augmentation) against ``alpha`` x the teachers' distribution (KL, scaled by T^2) plus
``1 - alpha`` x the smoothed FER2013 label, cosine learning rate, an exponential moving average
of the weights. After each epoch the average is scored on PublicTest without TTA; the best
epoch is saved as ``OUT/best.pt`` (self-describing: arguments, teachers' sha256, scores in
meta). ``OUT/last.pt`` and ``--resume`` continue a stopped run; ``OUT/log.jsonl`` has one line
per epoch. PrivateTest is never read.
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
from config import TrainConfig  # noqa: E402
from dataset import default_data_path, file_sha256, load_fer2013  # noqa: E402
from finetune_wild import logits_of  # noqa: E402
from inference import checkpoint_logits  # noqa: E402

from fer_ros.core.checkpoint import (  # noqa: E402
    load_checkpoint, make_checkpoint, network_from_checkpoint, normalize_batch, save_checkpoint,
)


def teacher_targets(teachers: list[dict], images: np.ndarray, temperature: float) -> torch.Tensor:
    """Mean softmax(logits / T) of every teacher on the images and their mirror images."""
    total = torch.zeros(len(images), len(teachers[0]["labels"]))
    mirrored = np.ascontiguousarray(images[:, :, ::-1])
    for ckpt in teachers:
        for batch in (images, mirrored):
            total += torch.softmax(checkpoint_logits(ckpt, batch) / temperature, dim=1)
    return total / (2 * len(teachers))


def distill_loss(logits: torch.Tensor, soft: torch.Tensor, hard: torch.Tensor, alpha: float,
                 temperature: float, smoothing: float) -> torch.Tensor:
    """alpha * T^2 * KL(soft || softmax(logits / T)) + (1 - alpha) * CE(hard label)."""
    logits = logits.float()
    kd = F.kl_div(F.log_softmax(logits / temperature, dim=1), soft, reduction="batchmean")
    ce = F.cross_entropy(logits, hard, label_smoothing=smoothing)
    return alpha * temperature**2 * kd + (1 - alpha) * ce


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: np.ndarray, flip: bool = False) -> float:
    """Top-1 accuracy of ``model`` on normalised faces (``flip``: averaged with the mirror)."""
    logits = logits_of(model, x)
    if flip:
        logits = logits + logits_of(model, torch.flip(x, dims=[3]))
    return float((logits.argmax(1).numpy() == y).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", required=True, type=Path, help="student's start (7-class FER2013)")
    ap.add_argument("--teachers", required=True, type=Path, nargs="+")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--alpha", type=float, default=0.7, help="weight of the teachers' targets")
    ap.add_argument("--kd-temperature", type=float, default=2.0)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--ema-decay", type=float, default=0.998)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    init = load_checkpoint(args.init)
    teachers = [load_checkpoint(p) for p in args.teachers]
    for path, ckpt in zip([args.init, *args.teachers], [init, *teachers]):
        if ckpt["labels"] != init["labels"]:
            raise SystemExit(f"distill.py: {path} has labels {ckpt['labels']}, "
                             f"the student {init['labels']}")
    labels, norm = init["labels"], init["normalization"]
    splits, data_sha = load_fer2013(default_data_path(), num_classes=len(labels))
    train, public = splits["Training"], splits["PublicTest"]
    x_train, y_train = normalize_batch(train.images, norm), torch.from_numpy(train.targets)
    x_pub, y_pub = normalize_batch(public.images, norm), public.targets

    t0 = time.perf_counter()
    soft = teacher_targets(teachers, train.images, args.kd_temperature)
    print(f"teacher targets for {len(soft)} images in {time.perf_counter() - t0:.0f}s; teachers' "
          f"own Training accuracy {(soft.argmax(1) == y_train).float().mean():.4f}", flush=True)

    model = network_from_checkpoint(init).to(memory_format=torch.channels_last)
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema_decay), use_buffers=True)
    steps = len(x_train) // args.batch_size
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs * steps)
    gen = torch.Generator().manual_seed(args.seed)
    cfg = TrainConfig()
    start, best = 1, {"acc": accuracy(model, x_pub, y_pub), "epoch": 0}
    print(f"init: PublicTest {best['acc']:.4f} (flip {accuracy(model, x_pub, y_pub, True):.4f})")
    args.out.mkdir(parents=True, exist_ok=True)
    last = args.out / "last.pt"
    if args.resume:
        if not last.exists():
            raise SystemExit(f"distill.py: --resume: {last} does not exist")
        state = torch.load(last, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        start, best = state["epoch"] + 1, state["best"]
        print(f"resumed at epoch {state['epoch']}")
    else:
        (args.out / "log.jsonl").write_text("")
    meta = {"distill": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                        if k not in ("teachers", "resume")}
            | {"teachers": [{"path": str(p), "sha256": file_sha256(p)} for p in args.teachers]},
            "init_meta": init.get("meta", {}), "data_sha256": data_sha}
    for epoch in range(start, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for step in range(steps):
            idx = perm[step * args.batch_size : (step + 1) * args.batch_size]
            xb = augment_batch(x_train[idx], cfg, gen).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(xb)
            loss = distill_loss(logits, soft[idx], y_train[idx], args.alpha, args.kd_temperature,
                                args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            ema.update_parameters(model)
            total += float(loss.detach())
        acc = accuracy(ema.module, x_pub, y_pub)
        acc_flip = accuracy(ema.module, x_pub, y_pub, flip=True)
        entry = {"epoch": epoch, "loss": total / steps, "public_test_acc": acc,
                 "public_test_acc_flip": acc_flip, "seconds": time.perf_counter() - t0}
        mark = ""
        if acc > best["acc"]:
            best = {"acc": acc, "epoch": epoch}
            save_checkpoint(make_checkpoint(ema.module, labels, norm, {
                **meta, "epoch": epoch, "public_test_accuracy": acc,
                "public_test_accuracy_flip": acc_flip}), args.out / "best.pt")
            mark = " *best"
        save_checkpoint({"model": model.state_dict(), "ema": ema.state_dict(),
                         "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                         "generator": gen.get_state(), "epoch": epoch, "best": best}, last)
        with open(args.out / "log.jsonl", "a") as fh:
            fh.write(json.dumps(entry) + "\n")
        print(f"epoch {epoch:2d} loss {entry['loss']:.4f} PublicTest {acc:.4f} flip {acc_flip:.4f} "
              f"{entry['seconds']:.0f}s{mark}", flush=True)
    if best["epoch"] == 0:
        print("no epoch beat the init on PublicTest; nothing saved as best.pt")
        return 1
    print(f"best: epoch {best['epoch']} PublicTest {best['acc']:.4f} -> {args.out / 'best.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
