"""Train the emotion classifier on the CPU (bf16 autocast, channels_last).

    python -m training.train [--key=value ...] [--resume]

Keys are the fields of ``training.config.TrainConfig``. The network is one trunk with a
FER2013 head (hard labels, 7 or 6 classes) and, with ``--ferplus_weight`` > 0, a FER+ head
(8 classes, trained on the annotators' vote distribution; training/ferplus.py). With
``--wild_weight`` > 0 the FER+ head also learns real-face crops (read in FER2013's 7 classes);
``--video_aug`` adds camera degradations (training/augment.py). Each epoch writes
``OUT_DIR/last.pt`` (for ``--resume``) and a line to ``OUT_DIR/log.jsonl``. Self-describing
checkpoints that the inference core loads, each of one head:

- ``best.pt``: FER2013 head, best PublicTest flip-TTA accuracy;
- ``best_ferplus.pt``: FER+ head, best FER+ PublicTest majority accuracy;
- ``best_wild.pt`` (with ``--wild_crops``): the FER+ head in FER2013's 7 classes, best on the
  scored wild-dev ``tune`` crops;
- ``best_balanced.pt`` (with ``--wild_crops`` and ``--video_crops``): the same 7-class head at
  its best balanced score, the mean of FER+ PublicTest, wild ``tune`` and video-dev accuracy
  minus video-dev's calm false-alarm rate (selection only: never a reported figure).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fer_ros.core.checkpoint import (
    load_checkpoint, make_checkpoint, normalize_batch, output_layer, output_layer_of,
    save_checkpoint,
)
from fer_ros.core.network import EmotionNet, build_network, count_parameters, flip_averaged
from fer_ros.progress import Progress
from training.augment import augment_batch, camera_degrade, speaking_mouths
from training.config import TrainConfig, usage
from training.dataset import FER2013_LABELS, default_data_path, load_fer2013
from training.ferplus import (
    FER2013_ORDER, FERPLUS_LABELS, default_votes_path, read_votes, seven_class_head, targets_for_rows,
)
from training.wild_eval import calm_false_alarm_rate


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
        layer = output_layer_of(self.net)
        state = {k: v for k, v in self.net.state_dict().items() if not k.startswith(layer + ".")}
        state[f"{layer}.weight"] = torch.from_numpy(weight.copy())
        state[f"{layer}.bias"] = torch.from_numpy(bias.copy())
        out.load_state_dict(state)
        return out


@dataclass
class Data:
    """Everything a run reads, normalised once. Optional parts are None when not asked for."""

    labels: list[str]
    norm: dict[str, float]
    sha256: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: np.ndarray
    soft_train: torch.Tensor | None = None  # FER+ vote distributions and where they exist
    mask_train: torch.Tensor | None = None
    major_val: np.ndarray | None = None  # FER+ majority labels of PublicTest (-1: none)
    wild: tuple[torch.Tensor, np.ndarray] | None = None  # scored real-face crops
    wild_train: tuple[torch.Tensor, torch.Tensor] | None = None  # trained-on real-face crops
    video: tuple[torch.Tensor, np.ndarray, list[str]] | None = None  # crops, found, labels


def load_data(cfg: TrainConfig) -> Data:
    """FER2013 (and FER+ votes, wild and video crops, as configured), normalised."""
    splits, sha = load_fer2013(Path(cfg.data) if cfg.data else default_data_path(), cfg.num_classes)
    train = splits["Training"]
    if cfg.limit_train:
        train = train.subset(np.random.default_rng(cfg.seed).permutation(len(train))[: cfg.limit_train])
    norm = {"mean": float(train.images.mean() / 255), "std": float(train.images.std() / 255)}
    data = Data(train.labels, norm, sha, normalize_batch(train.images, norm),
                torch.from_numpy(train.targets), normalize_batch(splits["PublicTest"].images, norm),
                splits["PublicTest"].targets)
    if cfg.ferplus_weight > 0:
        votes = read_votes(cfg.ferplus_votes or default_votes_path())
        soft, mask, _ = targets_for_rows(train.rows, votes)
        data.soft_train, data.mask_train = torch.from_numpy(soft), torch.from_numpy(mask)
        data.major_val = targets_for_rows(splits["PublicTest"].rows, votes)[2]
        print(f"FER+ soft targets for {int(mask.sum())}/{len(train)} training images, "
              f"{int((data.major_val >= 0).sum())} PublicTest majority labels")
    if cfg.wild_crops:
        load_wild(cfg, data)
    if cfg.video_crops:
        with np.load(cfg.video_crops) as z:
            data.video = (normalize_batch(z["images"], norm), z["found"], [str(v) for v in z["labels"]])
    return data


def wild_split(cfg: TrainConfig, norm: dict[str, float]
               ) -> tuple[tuple[torch.Tensor, np.ndarray], tuple[torch.Tensor, torch.Tensor] | None]:
    """Real-face crops as (scored, trained-on): all scored, or (``wild_weight`` > 0) split by
    identity into held-out scored and trained-on parts, so selection never sees a trained-on
    person. The one place the run's split is made (training/six_class.py reuses it)."""
    from training.finetune_wild import identity_split

    with np.load(cfg.wild_crops) as z:
        x, y = normalize_batch(z["images"], norm), z["targets"]
        ids = z["identity"] if cfg.wild_weight > 0 else None
    if ids is None:
        return (x, y), None
    held = identity_split(ids, y, cfg.wild_holdout, cfg.seed)
    return ((x[torch.from_numpy(held)], y[held]),
            (x[torch.from_numpy(~held)], torch.from_numpy(y[~held])))


def load_wild(cfg: TrainConfig, data: Data) -> None:
    """``data.wild`` (scored) and ``data.wild_train`` from :func:`wild_split`."""
    data.wild, data.wild_train = wild_split(cfg, data.norm)
    if data.wild_train is not None:
        print(f"wild crops: training on {len(data.wild_train[1])}, scoring {len(data.wild[1])} "
              "held-out images (whole identities)")


def build_model(cfg: TrainConfig, labels: list[str]) -> TwoHeadNet:
    arch = {"name": "vgg", "in_channels": 1, "widths": cfg.widths,
            "convs_per_block": cfg.convs_per_block, "dropout": cfg.dropout}
    extra = len(FERPLUS_LABELS) if cfg.ferplus_weight > 0 else 0
    return TwoHeadNet(build_network(arch, len(labels)), extra)


def init_from(model: TwoHeadNet, path: str, labels: list[str]) -> None:
    """Start from a checkpoint's matching weights; a FER+ checkpoint also gives the FER+ head,
    and its 7 FER2013 rows start a 7-class FER2013 head."""
    ckpt = load_checkpoint(path)
    own = model.net.state_dict()
    usable = {k: v for k, v in ckpt["model"].items() if k in own and own[k].shape == v.shape}
    model.net.load_state_dict(usable, strict=False)
    print(f"init_from {path}: {len(usable)}/{len(own)} tensors loaded")
    if model.extra is None or list(ckpt["labels"]) != FERPLUS_LABELS:
        return
    layer = output_layer(ckpt)
    model.extra.load_state_dict({"weight": ckpt["model"][f"{layer}.weight"],
                                 "bias": ckpt["model"][f"{layer}.bias"]})
    if len(labels) == len(FER2013_LABELS):
        w7, b7 = seven_class_head(model.extra.weight.detach().numpy(),
                                  model.extra.bias.detach().numpy())
        model.net.head[-1].load_state_dict({"weight": torch.from_numpy(w7.copy()),
                                            "bias": torch.from_numpy(b7.copy())})
    print(f"init_from {path}: FER+ head loaded too")


@dataclass
class Run:
    """The mutable state of a run: what ``last.pt`` saves and ``--resume`` restores."""

    model: TwoHeadNet
    ema: torch.nn.Module | None
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    gen: torch.Generator
    steps_per_epoch: int
    start_epoch: int = 1
    best: dict | None = None

    @property
    def scored(self) -> TwoHeadNet:
        """What is evaluated and saved: the weight average when there is one."""
        return self.ema.module if self.ema is not None else self.model


def make_run(cfg: TrainConfig, model: TwoHeadNet, train_size: int) -> Run:
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = None
    if cfg.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay),
                            use_buffers=True)
    steps = math.ceil(train_size / cfg.batch_size)
    if cfg.max_train_batches:
        steps = min(steps, cfg.max_train_batches)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0}],
        lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps, pct_start=0.2
    )
    best = {"fer2013": -1.0, "ferplus": -1.0, "wild": -1.0}
    return Run(model, ema, opt, sched, torch.Generator().manual_seed(cfg.seed), steps, 1, best)


def restore(run: Run, state: dict) -> None:
    run.model.load_state_dict(state["model"])
    if run.ema is not None:
        run.ema.load_state_dict(state["ema"])
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    run.gen.set_state(state["generator"])
    run.start_epoch = state["epoch"] + 1
    run.best = dict(state["best"]) if "best" in state else {**run.best, "fer2013": state["best_acc"]}


def save_last(cfg: TrainConfig, run: Run, epoch: int, path: Path) -> None:
    save_checkpoint({"config": cfg.to_dict(), "model": run.model.state_dict(),
                     "optimizer": run.opt.state_dict(), "scheduler": run.sched.state_dict(),
                     "generator": run.gen.get_state(), "epoch": epoch, "best": run.best,
                     **({"ema": run.ema.state_dict()} if run.ema is not None else {})}, path)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy against target distributions over the rows where ``mask`` is set."""
    if not bool(mask.any()):
        return logits.sum() * 0.0
    logp = F.log_softmax(logits[mask].float(), dim=1)
    return -(target[mask] * logp).sum(1).mean()


def batch_loss(cfg: TrainConfig, data: Data, run: Run, idx: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, FER2013 logits, FER2013 targets) of one step: the FER2013 rows ``idx`` plus, when
    configured, ``wild_per_batch`` random real-face crops, all augmented in one batch."""
    xb, n_fer = data.x_train[idx], len(idx)
    if cfg.speech_aug > 0:
        yb, cls = data.y_train[idx], data.labels.index
        xb = speaking_mouths(xb, yb == cls("neutral"), (yb == cls("surprise")) | (yb == cls("fear")),
                             cfg.speech_aug, run.gen)
    if data.wild_train is not None:
        pick = torch.randint(len(data.wild_train[1]), (cfg.wild_per_batch,), generator=run.gen)
        xb = torch.cat([xb, data.wild_train[0][pick]])
    xb = augment_batch(xb, cfg, run.gen)
    if cfg.video_aug > 0:
        xb = camera_degrade(xb, data.norm, cfg.video_aug, run.gen)
    yb = data.y_train[idx]
    if cfg.channels_last:
        xb = xb.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        logits_all, extra_all = run.model(xb)
        logits = logits_all[:n_fer]
        loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
        if extra_all is not None:
            loss = loss + cfg.ferplus_weight * soft_cross_entropy(
                extra_all[:n_fer], data.soft_train[idx], data.mask_train[idx])
        if data.wild_train is not None:
            loss = loss + cfg.wild_weight * F.cross_entropy(
                extra_all[n_fer:, FER2013_ORDER].float(), data.wild_train[1][pick],
                label_smoothing=cfg.label_smoothing)
    return loss, logits, yb


def train_epoch(cfg: TrainConfig, data: Data, run: Run, epoch: int) -> tuple[float, float]:
    """One pass over the (shuffled) training set; returns (mean loss, accuracy)."""
    run.model.train()
    perm = torch.randperm(len(data.x_train), generator=run.gen)
    total_loss, correct, seen = 0.0, 0, 0
    bar = Progress(run.steps_per_epoch, f"epoch {epoch}/{cfg.epochs}",
                   enabled=cfg.progress and sys.stderr.isatty())
    for step in range(run.steps_per_epoch):
        idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        loss, logits, yb = batch_loss(cfg, data, run, idx)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        run.opt.step()
        run.sched.step()
        if run.ema is not None:
            run.ema.update_parameters(run.model)
        total_loss += float(loss.detach()) * len(idx)
        correct += int((logits.argmax(1) == yb).sum())
        seen += len(idx)
        bar.update(step + 1, f"loss {total_loss / seen:.3f}")
    bar.close()
    return total_loss / seen, correct / seen


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
            main, extra = flip_averaged(model, xb) if flip_tta else model(xb)
        mains.append(main.float())
        if extra is not None:
            extras.append(extra.float())
    return torch.cat(mains), (torch.cat(extras) if extras else None)


def accuracy(logits: torch.Tensor, targets: np.ndarray) -> float:
    return float((logits.argmax(1).numpy() == targets).mean())


def score_epoch(cfg: TrainConfig, data: Data, model: TwoHeadNet) -> dict:
    """The selection figures of one epoch (PublicTest, FER+ PublicTest, wild, video-dev)."""
    val, val_extra = predict_logits(model, data.x_val, cfg)
    tta, tta_extra = predict_logits(model, data.x_val, cfg, flip_tta=True)
    rec = {"val_loss": float(F.cross_entropy(val, torch.from_numpy(data.y_val))),
           "val_acc": accuracy(val, data.y_val), "val_acc_flip": accuracy(tta, data.y_val)}
    if val_extra is not None:
        keep = data.major_val >= 0
        rec["val_ferplus_acc"] = accuracy(val_extra[keep], data.major_val[keep])
        rec["val_ferplus_acc_flip"] = accuracy(tta_extra[keep], data.major_val[keep])
    if data.wild is not None:
        main_w, extra_w = predict_logits(model, data.wild[0], cfg)
        rec["wild_tune_acc"] = accuracy(main_w, data.wild[1]) if len(data.labels) == 7 else None
        if extra_w is not None:
            rec["wild_tune_acc_ferplus"] = accuracy(extra_w[:, FER2013_ORDER], data.wild[1])
    if data.video is not None and val_extra is not None:
        _, extra_v = predict_logits(model, data.video[0], cfg)
        pred = [FER2013_LABELS[i] if ok else "" for i, ok in
                zip(extra_v[:, FER2013_ORDER].argmax(1).tolist(), data.video[1])]
        rec["video_acc"] = float(np.mean([p == t for p, t in zip(pred, data.video[2])]))
        rec["video_calm_false_alarms"] = calm_false_alarm_rate(data.video[2], pred)
        if "wild_tune_acc_ferplus" in rec:
            rec["balanced"] = (rec["val_ferplus_acc"] + rec["wild_tune_acc_ferplus"]
                               + rec["video_acc"]) / 3 - rec["video_calm_false_alarms"]
    return rec


# (record key, best key, head exported, labels, file, meta key of the figure): a checkpoint is
# saved whenever its record value beats the run's best so far; rows sharing a best key save
# several heads of the same epoch
SELECTIONS = [
    ("val_acc_flip", "fer2013", "main", None, "best.pt", None),
    ("val_ferplus_acc", "ferplus", "extra", FERPLUS_LABELS, "best_ferplus.pt",
     "public_test_ferplus_accuracy"),
    ("wild_tune_acc_ferplus", "wild", "extra7", FER2013_LABELS, "best_wild.pt", "wild_tune_accuracy"),
    ("balanced", "balanced", "extra7", FER2013_LABELS, "best_balanced.pt", "balanced_score"),
    # the same epoch's FER+ head with all 8 classes: the recipe's 8-class variant
    ("balanced", "balanced", "extra", FERPLUS_LABELS, "best_balanced_ferplus.pt", "balanced_score"),
]


def save_bests(cfg: TrainConfig, data: Data, run: Run, rec: dict, epoch: int, out_dir: Path
               ) -> list[str]:
    """Save each head whose selection figure improved; returns the names that did."""
    meta = {"train_config": cfg.to_dict(), "epoch": epoch, "seed": cfg.seed,
            "public_test_accuracy": rec["val_acc"], "public_test_accuracy_flip": rec["val_acc_flip"],
            "data_sha256": data.sha256, "parameters": count_parameters(run.model.net)}
    marks = [name for key, name, *_ in SELECTIONS
             if rec.get(key) is not None and rec[key] > run.best.get(name, -1.0)]
    for key, name, head, labels, file, meta_key in SELECTIONS:
        if name not in marks:
            continue
        run.best[name] = rec[key]
        figure = {meta_key: rec[key]} if meta_key else {}
        save_checkpoint(make_checkpoint(run.scored.export(head), list(labels or data.labels),
                                        data.norm, {**meta, **figure, "head": head}),
                        out_dir / file)
    return list(dict.fromkeys(marks))


def log_epoch(out_dir: Path, rec: dict, marks: list[str]) -> None:
    with open(out_dir / "log.jsonl", "a") as fh:
        fh.write(json.dumps(rec) + "\n")
    extra = "".join(f" {k} {rec[k]:.4f}" for k in
                    ("val_ferplus_acc", "wild_tune_acc", "wild_tune_acc_ferplus", "video_acc",
                     "video_calm_false_alarms", "balanced") if rec.get(k) is not None)
    print(f"epoch {rec['epoch']:3d} loss {rec['train_loss']:.3f} train {rec['train_acc']:.3f} "
          f"val {rec['val_acc']:.4f} val+flip {rec['val_acc_flip']:.4f}{extra} lr {rec['lr']:.4f} "
          f"{rec['seconds']:.0f}s{' *best ' + ','.join(marks) if marks else ''}", flush=True)


def parse(argv: list[str]) -> tuple[TrainConfig, dict | None]:
    """The run's config and, with ``--resume``, the saved state it continues."""
    if "--help" in argv or "-h" in argv:
        print(usage())
        raise SystemExit(0)
    resume = "--resume" in argv
    argv = [a for a in argv if a != "--resume"]
    cfg = TrainConfig.from_args(argv)
    if not resume:
        return cfg, None
    last = Path(cfg.out_dir) / "last.pt"
    if not last.exists():
        raise FileNotFoundError(f"--resume: {last} does not exist")
    state = torch.load(last, map_location="cpu", weights_only=True)
    cfg = TrainConfig.from_args(argv, base=state["config"])
    if cfg.epochs != state["config"]["epochs"]:
        raise ValueError("--resume: the one-cycle schedule fixes --epochs; keep the run's value "
                         f"({state['config']['epochs']})")
    return cfg, state


def main(argv: list[str]) -> int:
    cfg, state = parse(argv)
    out_dir = Path(cfg.out_dir)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    data = load_data(cfg)
    model = build_model(cfg, data.labels)
    if cfg.init_from and state is None:
        init_from(model, cfg.init_from, data.labels)
    run = make_run(cfg, model, len(data.x_train))
    if state is not None:
        restore(run, state)
        print(f"resumed from {out_dir / 'last.pt'} at epoch {state['epoch']}")
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"{len(data.x_train)} training images, {len(data.labels)} classes {data.labels}, "
          f"{count_parameters(run.model.net)} parameters, {torch.get_num_threads()} threads")
    for epoch in range(run.start_epoch, cfg.epochs + 1):
        t0 = time.perf_counter()
        loss, acc = train_epoch(cfg, data, run, epoch)
        rec = {"epoch": epoch, "train_loss": loss, "train_acc": acc,
               **score_epoch(cfg, data, run.scored), "lr": run.sched.get_last_lr()[0]}
        marks = save_bests(cfg, data, run, rec, epoch, out_dir)
        rec["seconds"] = time.perf_counter() - t0
        save_last(cfg, run, epoch, out_dir / "last.pt")
        log_epoch(out_dir, rec, marks)
    print(f"best: {json.dumps(run.best)} -> {out_dir}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (ValueError, FileNotFoundError) as exc:
        print(f"train.py: {exc}", file=sys.stderr)
        sys.exit(2)
