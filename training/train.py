"""Train the emotion classifier on the CPU (bf16 autocast, channels_last).

    python training/train.py [--key=value ...] [--resume]

Keys are the fields of ``config.TrainConfig``. The network is one trunk with a FER2013 head
(hard labels, 7 or 6 classes) and, with ``--ferplus_weight`` > 0, a FER+ head (8 classes,
trained on the annotators' vote distribution; training/ferplus.py). Each epoch writes
``OUT_DIR/last.pt`` (for ``--resume``) and a line to ``OUT_DIR/log.jsonl``. Self-describing
checkpoints that the inference core loads, each of one head, selected on PublicTest:
``best.pt`` (FER2013 head, best flip-TTA accuracy), ``best_ferplus.pt`` (FER+ head, best FER+
majority accuracy); with ``--wild_crops``, ``best_wild.pt``: the FER+ head reordered to the
7 FER2013 classes at its best wild-dev ``tune`` accuracy.
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
from dataset import FER2013_LABELS, Split, default_data_path, load_fer2013  # noqa: E402
from ferplus import (  # noqa: E402
    FER2013_ORDER, FERPLUS_LABELS, default_votes_path, read_votes, seven_class_head, targets_for_rows,
)

from fer_ros.core.checkpoint import (  # noqa: E402
    load_checkpoint, make_checkpoint, normalize_batch, save_checkpoint,
)
from fer_ros.core.network import EmotionNet, build_network, count_parameters  # noqa: E402
from fer_ros.progress import Progress  # noqa: E402


class TwoHeadNet(torch.nn.Module):
    """An EmotionNet (trunk + FER2013 head) with an optional second linear head (FER+) on the
    same pooled features. Training only: each head is exported as a plain EmotionNet."""

    def __init__(self, net: EmotionNet, extra_classes: int) -> None:
        super().__init__()
        self.net = net
        width = net.head[-1].in_features
        self.extra = torch.nn.Linear(width, extra_classes) if extra_classes else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        pooled = self.net.head[:-1](self.net.features(x))
        main = self.net.head[-1](pooled)
        return main, (self.extra(pooled) if self.extra is not None else None)

    def export(self, head: str) -> EmotionNet:
        """A plain EmotionNet of the trunk with head "main", "extra" or "extra7" (the extra
        FER+ head's rows reordered to FER2013's 7 classes, contempt dropped)."""
        if head == "main":
            return self.net
        weight = self.extra.weight.detach().numpy()
        bias = self.extra.bias.detach().numpy()
        if head == "extra7":
            weight, bias = seven_class_head(weight, bias)
        out = build_network(self.net.arch, len(bias))
        state = {k: v for k, v in self.net.state_dict().items() if not k.startswith("head.3.")}
        state["head.3.weight"] = torch.from_numpy(weight.copy())
        state["head.3.bias"] = torch.from_numpy(bias.copy())
        out.load_state_dict(state)
        return out


@torch.no_grad()
def predict_logits(model: TwoHeadNet, x: torch.Tensor, cfg: TrainConfig, flip_tta: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Both heads' logits for a normalised batch tensor, in chunks; optional flip averaging."""
    model.eval()
    mains, extras = [], []
    for i in range(0, len(x), 512):
        xb = x[i : i + 512]
        if cfg.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            main, extra = model(xb)
            if flip_tta:
                fmain, fextra = model(torch.flip(xb, dims=[3]))
                main = (main.float() + fmain.float()) / 2
                extra = None if extra is None else (extra.float() + fextra.float()) / 2
        mains.append(main.float())
        if extra is not None:
            extras.append(extra.float())
    return torch.cat(mains), (torch.cat(extras) if extras else None)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy against target distributions over the rows where ``mask`` is set."""
    if not bool(mask.any()):
        return logits.sum() * 0.0
    logp = F.log_softmax(logits[mask].float(), dim=1)
    return -(target[mask] * logp).sum(1).mean()


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
        train = train.subset(keep)
    labels = train.labels
    norm = {"mean": float(train.images.mean() / 255), "std": float(train.images.std() / 255)}
    x_train = normalize_batch(train.images, norm)
    y_train = torch.from_numpy(train.targets)
    x_val = normalize_batch(splits["PublicTest"].images, norm)
    y_val = splits["PublicTest"].targets
    use_ferplus = cfg.ferplus_weight > 0
    if use_ferplus:
        votes = read_votes(cfg.ferplus_votes or default_votes_path())
        soft, soft_mask, _ = targets_for_rows(train.rows, votes)
        soft_train, mask_train = torch.from_numpy(soft), torch.from_numpy(soft_mask)
        _, _, major_val = targets_for_rows(splits["PublicTest"].rows, votes)
        print(f"FER+ soft targets for {int(soft_mask.sum())}/{len(train)} training images, "
              f"{int((major_val >= 0).sum())} PublicTest majority labels")
    wild = None
    if cfg.wild_crops:
        with np.load(cfg.wild_crops) as z:
            wild = (normalize_batch(z["images"], norm), z["targets"])

    arch = {"name": "vgg", "in_channels": 1, "widths": cfg.widths,
            "convs_per_block": cfg.convs_per_block, "dropout": cfg.dropout}
    model = TwoHeadNet(build_network(arch, len(labels)), len(FERPLUS_LABELS) if use_ferplus else 0)
    if cfg.init_from and state is None:
        init = load_checkpoint(cfg.init_from)["model"]
        own = model.net.state_dict()
        usable = {k: v for k, v in init.items() if k in own and own[k].shape == v.shape}
        model.net.load_state_dict(usable, strict=False)
        print(f"init_from {cfg.init_from}: {len(usable)}/{len(own)} tensors loaded")
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = None
    if cfg.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay),
                            use_buffers=True)
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
    start_epoch = 1
    best = {"fer2013": -1.0, "ferplus": -1.0, "wild": -1.0}
    if state is not None:
        model.load_state_dict(state["model"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        start_epoch = state["epoch"] + 1
        best = dict(state["best"]) if "best" in state else {**best, "fer2013": state["best_acc"]}
        print(f"resumed from {out_dir / 'last.pt'} at epoch {state['epoch']}")

    def save_best(head: str, head_labels: list[str], name: str, meta: dict) -> None:
        net = scored.export(head)
        save_checkpoint(make_checkpoint(net, head_labels, norm, {**meta, "head": head}),
                        out_dir / name)

    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"{len(x_train)} training images, {len(labels)} classes {labels}, "
          f"{count_parameters(model.net)} parameters, {torch.get_num_threads()} threads")
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
                logits, extra = model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
                if extra is not None:
                    loss = loss + cfg.ferplus_weight * soft_cross_entropy(
                        extra, soft_train[idx], mask_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
            bar.update(step + 1, f"loss {total_loss / seen:.3f}")
        bar.close()
        scored = ema.module if ema is not None else model  # what is evaluated and saved
        val_logits, val_extra = predict_logits(scored, x_val, cfg)
        val_acc = accuracy(val_logits, y_val)
        tta_logits, tta_extra = predict_logits(scored, x_val, cfg, flip_tta=True)
        val_acc_tta = accuracy(tta_logits, y_val)
        record = {
            "epoch": epoch, "train_loss": total_loss / seen, "train_acc": correct / seen,
            "val_loss": float(F.cross_entropy(val_logits, torch.from_numpy(y_val))),
            "val_acc": val_acc, "val_acc_flip": val_acc_tta, "lr": sched.get_last_lr()[0],
        }
        meta = {"train_config": cfg.to_dict(), "epoch": epoch, "seed": cfg.seed,
                "public_test_accuracy": val_acc, "public_test_accuracy_flip": val_acc_tta,
                "data_sha256": data_sha, "parameters": count_parameters(model.net)}
        marks = []
        if val_acc_tta > best["fer2013"]:
            best["fer2013"] = val_acc_tta
            save_best("main", labels, "best.pt", meta)
            marks.append("fer2013")
        if val_extra is not None:
            keep = major_val >= 0
            record["val_ferplus_acc"] = accuracy(val_extra[keep], major_val[keep])
            record["val_ferplus_acc_flip"] = accuracy(tta_extra[keep], major_val[keep])
            if record["val_ferplus_acc"] > best["ferplus"]:
                best["ferplus"] = record["val_ferplus_acc"]
                save_best("extra", FERPLUS_LABELS, "best_ferplus.pt",
                          {**meta, "public_test_ferplus_accuracy": record["val_ferplus_acc"]})
                marks.append("ferplus")
        if wild is not None:
            main_w, extra_w = predict_logits(scored, wild[0], cfg)
            record["wild_tune_acc"] = accuracy(main_w, wild[1]) if len(labels) == 7 else None
            if extra_w is not None:
                seven = extra_w[:, FER2013_ORDER]
                record["wild_tune_acc_ferplus"] = accuracy(seven, wild[1])
                if record["wild_tune_acc_ferplus"] > best["wild"]:
                    best["wild"] = record["wild_tune_acc_ferplus"]
                    save_best("extra7", list(FER2013_LABELS), "best_wild.pt",
                              {**meta, "wild_tune_accuracy": best["wild"]})
                    marks.append("wild")
        record["seconds"] = time.perf_counter() - t0
        save_checkpoint({"config": cfg.to_dict(), "model": model.state_dict(),
                         "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                         "generator": gen.get_state(), "epoch": epoch, "best": best,
                         **({"ema": ema.state_dict()} if ema is not None else {})},
                        out_dir / "last.pt")
        with open(out_dir / "log.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        extra_text = "".join(f" {k} {record[k]:.4f}" for k in
                             ("val_ferplus_acc", "wild_tune_acc", "wild_tune_acc_ferplus")
                             if record.get(k) is not None)
        print(f"epoch {epoch:3d} loss {record['train_loss']:.3f} train {record['train_acc']:.3f} "
              f"val {val_acc:.4f} val+flip {val_acc_tta:.4f}{extra_text} lr {record['lr']:.4f} "
              f"{record['seconds']:.0f}s{' *best ' + ','.join(marks) if marks else ''}", flush=True)
    print(f"best: {json.dumps(best)} -> {out_dir}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (ValueError, FileNotFoundError) as exc:
        print(f"train.py: {exc}", file=sys.stderr)
        sys.exit(2)
