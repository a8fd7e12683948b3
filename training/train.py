"""Train the FER2013 emotion classifier on the CPU (bf16 autocast, channels_last).

    python training/train.py [--key=value ...] [--resume]

Keys are the fields of ``config.TrainConfig``. Each epoch writes ``OUT_DIR/last.pt`` (for
``--resume``) and a line to ``OUT_DIR/log.jsonl``; the best epoch on PublicTest is saved as
``OUT_DIR/best.pt``, a self-describing checkpoint that the inference core loads.
"""

from __future__ import annotations

import json
import math
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
from dataset import Split, default_data_path, load_fer2013  # noqa: E402

from fer_ros.core.checkpoint import (  # noqa: E402
    load_checkpoint, make_checkpoint, normalize_batch, save_checkpoint,
)
from fer_ros.core.network import build_network, count_parameters  # noqa: E402
from fer_ros.progress import Progress  # noqa: E402


@torch.no_grad()
def predict_logits(model, x: torch.Tensor, cfg: TrainConfig, flip_tta: bool = False) -> torch.Tensor:
    """Logits for a normalised batch tensor, in chunks; optional horizontal-flip averaging."""
    model.eval()
    out = []
    for i in range(0, len(x), 512):
        xb = x[i : i + 512]
        if cfg.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = model(xb).float()
            if flip_tta:
                logits = (logits + model(torch.flip(xb, dims=[3])).float()) / 2
        out.append(logits)
    return torch.cat(out)


def accuracy(logits: torch.Tensor, targets: np.ndarray) -> float:
    return float((logits.argmax(1).numpy() == targets).mean())


def main(argv: list[str]) -> int:
    resume = "--resume" in argv
    argv = [a for a in argv if a != "--resume"]
    cfg = TrainConfig.from_args(argv)
    out_dir = Path(cfg.out_dir)
    state = None
    if resume:
        last = out_dir / "last.pt"
        if not last.exists():
            print(f"--resume: {last} does not exist", file=sys.stderr)
            return 2
        state = torch.load(last, map_location="cpu", weights_only=True)
        cfg = TrainConfig.from_args(argv, base=state["config"])
        if cfg.epochs != state["config"]["epochs"]:
            print("--resume: the one-cycle schedule fixes --epochs; keep the run's value "
                  f"({state['config']['epochs']})", file=sys.stderr)
            return 2
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)

    data_path = Path(cfg.data) if cfg.data else default_data_path()
    splits, data_sha = load_fer2013(data_path, cfg.num_classes)
    train: Split = splits["Training"]
    if cfg.limit_train:
        keep = np.random.default_rng(cfg.seed).permutation(len(train))[: cfg.limit_train]
        train = Split(train.images[keep], train.targets[keep], train.labels)
    labels = train.labels
    norm = {"mean": float(train.images.mean() / 255), "std": float(train.images.std() / 255)}
    x_train = normalize_batch(train.images, norm)
    y_train = torch.from_numpy(train.targets)
    x_val = normalize_batch(splits["PublicTest"].images, norm)
    y_val = splits["PublicTest"].targets

    arch = {"name": "vgg", "in_channels": 1, "widths": cfg.widths,
            "convs_per_block": cfg.convs_per_block, "dropout": cfg.dropout}
    model = build_network(arch, len(labels))
    if cfg.init_from and state is None:
        init = load_checkpoint(cfg.init_from)["model"]
        own = model.state_dict()
        usable = {k: v for k, v in init.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(usable, strict=False)
        print(f"init_from {cfg.init_from}: {len(usable)}/{len(own)} tensors loaded")
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    steps_per_epoch = math.ceil(len(x_train) / cfg.batch_size)
    if cfg.max_train_batches:
        steps_per_epoch = min(steps_per_epoch, cfg.max_train_batches)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0}],
        lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.2
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    start_epoch, best_acc = 1, -1.0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        start_epoch, best_acc = state["epoch"] + 1, state["best_acc"]
        print(f"resumed from {out_dir / 'last.pt'} at epoch {state['epoch']}")

    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"{len(x_train)} training images, {len(labels)} classes {labels}, "
          f"{count_parameters(model)} parameters, {torch.get_num_threads()} threads")
    for epoch in range(start_epoch, cfg.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(x_train), generator=gen)
        total_loss, correct, seen = 0.0, 0, 0
        bar = Progress(steps_per_epoch, f"epoch {epoch}/{cfg.epochs}",
                       enabled=cfg.progress and sys.stderr.isatty())
        for step in range(steps_per_epoch):
            idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            xb = augment_batch(x_train[idx], cfg, gen)
            yb = y_train[idx]
            if cfg.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
            bar.update(step + 1, f"loss {total_loss / seen:.3f}")
        bar.close()
        val_logits = predict_logits(model, x_val, cfg)
        val_acc = accuracy(val_logits, y_val)
        val_acc_tta = accuracy(predict_logits(model, x_val, cfg, flip_tta=True), y_val)
        record = {
            "epoch": epoch, "train_loss": total_loss / seen, "train_acc": correct / seen,
            "val_loss": float(F.cross_entropy(val_logits, torch.from_numpy(y_val))),
            "val_acc": val_acc, "val_acc_flip": val_acc_tta, "lr": sched.get_last_lr()[0],
            "seconds": time.perf_counter() - t0,
        }
        improved = val_acc_tta > best_acc
        if improved:
            best_acc = val_acc_tta
            meta = {"train_config": cfg.to_dict(), "epoch": epoch, "seed": cfg.seed,
                    "public_test_accuracy": val_acc, "public_test_accuracy_flip": val_acc_tta,
                    "data_sha256": data_sha, "parameters": count_parameters(model)}
            save_checkpoint(make_checkpoint(model, labels, norm, meta), out_dir / "best.pt")
        save_checkpoint({"config": cfg.to_dict(), "model": model.state_dict(),
                         "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                         "generator": gen.get_state(), "epoch": epoch, "best_acc": best_acc},
                        out_dir / "last.pt")
        with open(out_dir / "log.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        print(f"epoch {epoch:3d} loss {record['train_loss']:.3f} train {record['train_acc']:.3f} "
              f"val {val_acc:.4f} val+flip {val_acc_tta:.4f} lr {record['lr']:.4f} "
              f"{record['seconds']:.0f}s{' *best' if improved else ''}", flush=True)
    print(f"best PublicTest accuracy (flip TTA) {best_acc:.4f} -> {out_dir / 'best.pt'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (ValueError, FileNotFoundError) as exc:
        print(f"train.py: {exc}", file=sys.stderr)
        sys.exit(2)
