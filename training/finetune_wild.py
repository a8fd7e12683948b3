"""Fine-tune a classifier on real faces (wild-dev ``tune`` crops) without forgetting FER2013.

    python -m training.finetune_wild --init models/ferplus8.pt \\
        --wild-crops runs/wild_tune_ssd.npz --out runs/wild7 [--num-classes 7|6] [--folds 0|K]

``--wild-crops`` comes from training/wild_crops.py (crops made the way the pipeline makes them:
default detector, default crop margin); ``dev`` is never read. Each step trains on a batch of
real crops, drawn class-balanced (real disgust and fear photos are few), plus a batch of
FER2013 Training images whose targets are their FER+ vote distributions (reordered to the
model's classes, contempt dropped) or, where FER+ has none, their FER2013 label. Both go
through the same augmentation as training/train.py.

Per-class logit offsets (real photos' class balance is not FER2013's), folded into the output
layer's bias, and the softmax temperature are fitted on held-out logits, to maximise accuracy +
mean per-class recall (``--recall-floor F``: less 4 x each class's recall shortfall under F, so
that no class is given up for accuracy; ``auto`` chooses F by nested cross-fitting over the
out-of-fold logits, see ``nested_floor_choice``). Where those logits come from:

- ``--folds K`` (K >= 2), cross-fitting: ``tune`` is cut into K folds of whole identities;
  K fine-tunes each leave one fold out, so every tune photo gets logits from a model that
  never saw its person. The epoch count with the best out-of-fold accuracy, the offsets and
  the temperature are fitted on those; then one model is fine-tuned on all of ``tune`` for
  that many epochs. (wild-dev's disgust photos come from few people: a single held-out part
  held one disgust identity, and offsets fitted to one person did not carry over.)
- ``--folds 0`` (default; how the shipped ``fer7.pt`` / ``fer6.pt`` were made): one held-out
  part of the identities (``--val-fraction``); the epoch best on it is kept and the offsets
  are fitted on it.

Saved as ``OUT/best.pt`` (self-describing: fine-tune arguments, folds or validation
identities, offsets and held-out numbers in meta); ``OUT/log.jsonl`` has one line per epoch;
with ``--folds``, ``OUT/oof.npz`` holds the out-of-fold logits the offsets were fitted on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F


from training.augment import augment_batch
from training.calibrate import fit_temperature
from training.config import TrainConfig
from training.dataset import (
    FER2013_LABELS, SIX_CLASS_LABELS, default_data_path, load_fer2013, to_six_classes,
)
from training.ferplus import (
    FER2013_ORDER, FERPLUS_LABELS, default_votes_path, read_votes, seven_class_head, targets_for_rows,
)
from training.metrics import confusion_matrix, per_class_scores

from fer_ros.core.checkpoint import (
    load_checkpoint, make_checkpoint, normalize_batch, output_layer, save_checkpoint,
)
from fer_ros.core.network import build_network


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


def balance_bias(logits: np.ndarray, targets: np.ndarray, floor: float = 0.0, rounds: int = 4
                 ) -> np.ndarray:
    """Per-class logit offsets that maximise accuracy + mean per-class recall on held-out
    logits, less 4 x the shortfall of each class's recall under ``floor`` (coordinate search on
    a grid; classes absent there keep 0)."""
    present = [c for c in range(logits.shape[1]) if (targets == c).any()]

    def objective(b: np.ndarray) -> float:
        pred = (logits + b).argmax(1)
        recall = np.array([(pred[targets == c] == c).mean() for c in present])
        shortfall = np.maximum(floor - recall, 0.0).sum()
        return float((pred == targets).mean() + recall.mean() - 4.0 * shortfall)

    bias = np.zeros(logits.shape[1])
    grid = np.arange(-2.0, 3.01, 0.25)
    for _ in range(rounds):
        for c in present:
            scores = []
            for v in grid:
                trial = bias.copy()
                trial[c] = v
                scores.append((objective(trial), -abs(v), v))
            bias[c] = max(scores)[2]
    return bias


AUTO_FLOORS = [0.0, 0.35, 0.45, 0.55]  # the recall floors --recall-floor auto chooses among


def nested_floor_choice(logits: np.ndarray, targets: np.ndarray, folds: np.ndarray,
                        floors: list[float], goal: float) -> tuple[float, list[dict]]:
    """Choose the recall floor of the offset fit without looking outside ``tune``: for each
    floor, offsets fitted on all folds but one are scored on that one (nested over the
    out-of-fold logits). The floor with the best nested accuracy + mean recall among those whose
    nested recall of every class reaches ``goal`` wins (none: the best nested lowest recall)."""
    rows = []
    for floor in floors:
        pred = np.zeros(len(targets), dtype=int)
        for k in np.unique(folds):
            out = folds == k
            bias = balance_bias(logits[~out], targets[~out], floor)
            pred[out] = (logits[out] + bias).argmax(1)
        present = [c for c in range(logits.shape[1]) if (targets == c).any()]
        recall = [float((pred[targets == c] == c).mean()) for c in present]
        rows.append({"floor": floor, "nested_accuracy": float((pred == targets).mean()),
                     "nested_mean_recall": float(np.mean(recall)),
                     "nested_min_recall": float(min(recall)), "nested_recall": recall})
    ok = [r for r in rows if r["nested_min_recall"] >= goal]
    pick = (max(ok, key=lambda r: r["nested_accuracy"] + r["nested_mean_recall"]) if ok
            else max(rows, key=lambda r: r["nested_min_recall"]))
    return pick["floor"], rows


def fer_targets(rows: np.ndarray, hard: np.ndarray, num_classes: int, smoothing: float,
                mix: float = 0.0, votes_path: str = "") -> torch.Tensor:
    """(N, C) targets of FER2013 images: FER+ vote distributions where FER+ has one (FER2013
    class order, contempt dropped, disgust folded into angry for 6 classes), else the smoothed
    FER2013 label; ``mix`` of the smoothed FER2013 label is blended into every FER+ target
    (FER+ keeps few disgust faces: FER2013's labels bring them back)."""
    soft8, mask, _ = targets_for_rows(rows, read_votes(votes_path or default_votes_path()))
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
    state, layer = dict(ckpt["model"]), output_layer(ckpt)
    keep = [0, 2, 3, 4, 5, 6]
    state[f"{layer}.weight"] = state[f"{layer}.weight"][keep]
    state[f"{layer}.bias"] = state[f"{layer}.bias"][keep]
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


def init_state(ckpt: dict, num_classes: int) -> dict:
    """Start weights for a ``num_classes`` network in FER2013 order from a 7-class FER2013-order
    checkpoint (a fine-tuned one's folded class offsets taken out again) or from the 8-class
    FER+ model (its head reordered, contempt dropped)."""
    state, layer = dict(ckpt["model"]), output_layer(ckpt)
    w, b = f"{layer}.weight", f"{layer}.bias"
    if ckpt["labels"] == FERPLUS_LABELS:
        weight, bias = seven_class_head(state[w], state[b])
        state[w], state[b] = weight.clone(), bias.clone()
    elif ckpt["labels"] != FER2013_LABELS:
        raise SystemExit("--init must be a 7-class FER2013-order or the 8-class FER+ "
                         f"checkpoint, has {ckpt['labels']}")
    offsets = ckpt.get("meta", {}).get("class_bias")
    if offsets:
        state[b] = state[b] - torch.tensor([offsets[k] for k in FER2013_LABELS],
                                           dtype=state[b].dtype)
    return state if num_classes == 7 else six_class_init({**ckpt, "model": state})


def identity_folds(identities: np.ndarray, targets: np.ndarray, k: int, seed: int
                   ) -> np.ndarray:
    """Fold number (0..k-1) of each row: whole identities per fold, spread class by class
    (rarest class first, each identity to the fold that has fewest images of that class), so
    that every fold holds some of each class that has at least k identities."""
    rng = np.random.default_rng(seed)
    fold = np.full(len(targets), -1)
    for c in np.argsort(np.bincount(targets)):
        names = sorted(set(identities[(targets == c) & (fold < 0)].tolist()))
        sizes = {n: int(((identities == n) & (targets == c)).sum()) for n in names}
        for name in sorted(rng.permutation(names), key=lambda n: -sizes[n]):
            have = [int(((fold == f) & (targets == c)).sum()) for f in range(k)]
            fold[identities == name] = int(np.argmin(have))
    return fold


def finetune(state: dict, labels: list[str], x_fit: torch.Tensor, y_fit: torch.Tensor,
             x_fer: torch.Tensor, t_fer: torch.Tensor, args, epochs: int,
             on_epoch: Callable[[int, torch.nn.Module, float], None]) -> torch.nn.Module:
    """Fine-tune from ``state``: each step a class-balanced batch of real crops plus a batch of
    FER2013 replay images, both augmented; cosine schedule over ``args.epochs`` (stopped after
    ``epochs``); ``on_epoch(epoch, model, loss)`` after each epoch."""
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    model = build_network(args.arch, len(labels))
    model.load_state_dict(state)
    model = model.to(memory_format=torch.channels_last)
    counts = np.bincount(y_fit.numpy(), minlength=len(labels)).astype(float)
    weights = torch.from_numpy(1.0 / np.maximum(counts, 1))[y_fit]
    cfg = TrainConfig()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs * args.steps)
    smooth = args.label_smoothing
    for epoch in range(1, epochs + 1):
        model.train()
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
        on_epoch(epoch, model, float(loss.detach()))
    return model


def recalls(pred: np.ndarray, targets: np.ndarray, labels: list[str]) -> dict[str, float | None]:
    """Recall of each class (None for a class with no photo here)."""
    scores = per_class_scores(confusion_matrix(targets, pred, len(labels)), labels)
    return {lab: s["recall"] if s["support"] else None for lab, s in scores.items()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", required=True, type=Path,
                    help="7-class FER2013-order checkpoint or the 8-class FER+ model")
    ap.add_argument("--wild-crops", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--num-classes", type=int, default=7, choices=[7, 6])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--steps", type=int, default=60, help="steps per epoch")
    ap.add_argument("--wild-batch", type=int, default=48)
    ap.add_argument("--fer-batch", type=int, default=80)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--folds", type=int, default=0,
                    help="K >= 2: cross-fitting over all of tune in K identity folds (the "
                         "epoch count, offsets and temperature come from out-of-fold logits, "
                         "then one model is fine-tuned on all of tune); 0 (default, how the "
                         "shipped models were made): one held-out part (--val-fraction)")
    ap.add_argument("--val-fraction", type=float, default=0.25)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--fer2013-mix", type=float, default=0.0,
                    help="weight of FER2013's own label in the FER+ replay targets")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--recall-floor", default="0",
                    help="offset fit: penalise held-out class recalls under this floor; 'auto' "
                         f"(with --folds): choose among {', '.join(map(str, AUTO_FLOORS))} by "
                         "nested cross-fitting (every class >= --recall-goal, then accuracy + "
                         "mean recall)")
    ap.add_argument("--recall-goal", type=float, default=0.40)
    ap.add_argument("--no-balance", dest="balance", action="store_false",
                    help="skip the per-class logit offsets")
    args = ap.parse_args(argv)
    if args.recall_floor == "auto" and args.folds < 2:
        ap.error("--recall-floor auto needs --folds K (K >= 2)")
    try:
        args.floor = None if args.recall_floor == "auto" else float(args.recall_floor)
    except ValueError:
        ap.error(f"--recall-floor: {args.recall_floor!r} is neither a number nor 'auto'")
    return args


@dataclass
class Inputs:
    """What a fine-tune reads: the start checkpoint, real crops and FER2013 replay data."""

    init: dict
    labels: list[str]
    state: dict
    x_wild: torch.Tensor
    y_wild: torch.Tensor
    w_targets: np.ndarray
    w_ids: np.ndarray
    crop_info: dict
    x_fer: torch.Tensor
    t_fer: torch.Tensor
    x_pub: torch.Tensor
    y_pub: np.ndarray
    data_sha: str


def load_inputs(args: argparse.Namespace) -> Inputs:
    init = load_checkpoint(args.init)
    args.arch = init["arch"]
    norm = init["normalization"]
    labels = FER2013_LABELS if args.num_classes == 7 else SIX_CLASS_LABELS
    with np.load(args.wild_crops) as z:
        w_images, w_targets, w_ids = z["images"], z["targets"], z["identity"]
        crop_info = {"detector": str(z["detector"]), "margin": float(z["margin"])}
    if args.num_classes == 6:
        w_targets = to_six_classes(w_targets)
    splits, data_sha = load_fer2013(default_data_path(), num_classes=args.num_classes)
    train, public = splits["Training"], splits["PublicTest"]
    return Inputs(init, labels, init_state(init, args.num_classes),
                  normalize_batch(w_images, norm), torch.from_numpy(w_targets), w_targets, w_ids,
                  crop_info, normalize_batch(train.images, norm),
                  fer_targets(train.rows, train.targets, args.num_classes,
                              args.label_smoothing, args.fer2013_mix),
                  normalize_batch(public.images, norm), public.targets, data_sha)


class JsonLog:
    """One JSON object per line in ``path`` (emptied on creation)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("")

    def __call__(self, entry: dict) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")


@dataclass
class Held:
    """The held-out logits the offsets and temperature are fitted on, and what to train on."""

    logits: np.ndarray | None
    targets: np.ndarray
    fit_x: torch.Tensor
    fit_y: torch.Tensor
    epochs: int
    selection: dict
    val: np.ndarray | None = None  # held-out mode: the validation rows


class FoldScorer:
    """``on_epoch`` of one cross-fitting fold: stores its out-of-fold logits and logs them."""

    def __init__(self, oof: np.ndarray, held: np.ndarray, fold: int, inputs: Inputs,
                 log: JsonLog) -> None:
        self.oof, self.held, self.fold, self.inputs, self.log = oof, held, fold, inputs, log
        self.t0 = time.perf_counter()

    def __call__(self, epoch: int, model, loss: float) -> None:
        self.oof[epoch - 1, self.held] = logits_of(model, self.inputs.x_wild[self.held]).numpy()
        pred = self.oof[epoch - 1, self.held].argmax(1)
        self.log({"fold": self.fold, "epoch": epoch, "loss": loss,
                  "held_acc": float((pred == self.inputs.w_targets[self.held]).mean()),
                  "seconds": time.perf_counter() - self.t0})


def cross_fit(args: argparse.Namespace, inputs: Inputs, log: JsonLog) -> Held:
    """Every tune photo gets logits from a model that never trained on its identity; those
    choose the epoch count, the class offsets, the temperature (and an ``auto`` floor)."""
    folds = identity_folds(inputs.w_ids, inputs.w_targets, args.folds, args.seed)
    oof = np.zeros((args.epochs, len(inputs.w_targets), len(inputs.labels)), np.float32)
    for k in range(args.folds):
        held = folds == k
        scorer = FoldScorer(oof, held, k, inputs, log)
        finetune(inputs.state, inputs.labels, inputs.x_wild[~held], inputs.y_wild[~held],
                 inputs.x_fer, inputs.t_fer, args, args.epochs, scorer)
        print(f"fold {k}: {int(held.sum())} held-out photos "
              f"({len(np.unique(inputs.w_ids[held]))} identities), "
              f"{time.perf_counter() - scorer.t0:.0f}s", flush=True)
    oof_acc = [float((oof[e].argmax(1) == inputs.w_targets).mean()) for e in range(args.epochs)]
    epochs = int(np.argmax(oof_acc)) + 1
    print("out-of-fold accuracy by epoch: "
          + " ".join(f"{a:.4f}" for a in oof_acc) + f" -> {epochs} epochs", flush=True)
    np.savez_compressed(args.out / "oof.npz", logits=oof[epochs - 1], targets=inputs.w_targets,
                        identity=inputs.w_ids, fold=folds)
    selection = {"folds": args.folds, "out_of_fold_accuracy_by_epoch": oof_acc,
                 "epochs_chosen": epochs, "wild_tune_out_of_fold_accuracy": oof_acc[epochs - 1]}
    if args.floor is None:
        args.floor, rows = nested_floor_choice(oof[epochs - 1], inputs.w_targets, folds,
                                               AUTO_FLOORS, args.recall_goal)
        selection["recall_floor_nested"] = rows
        for r in rows:
            print(f"recall floor {r['floor']:.2f}: nested accuracy {r['nested_accuracy']:.4f}"
                  f" mean recall {r['nested_mean_recall']:.4f} lowest "
                  f"{r['nested_min_recall']:.4f}", flush=True)
        print(f"-> recall floor {args.floor:.2f}", flush=True)
    return Held(oof[epochs - 1], inputs.w_targets, inputs.x_wild, inputs.y_wild, epochs, selection)


def held_out_part(args: argparse.Namespace, inputs: Inputs) -> Held:
    """One held-out part of the identities; the final run keeps the epoch best on it."""
    val = identity_split(inputs.w_ids, inputs.w_targets, args.val_fraction, args.seed)
    return Held(None, inputs.w_targets[val], inputs.x_wild[~val], inputs.y_wild[~val],
                args.epochs, {"wild_tune_val_identities": sorted(np.unique(inputs.w_ids[val]).tolist())},
                val)


class FinalScorer:
    """``on_epoch`` of the final fine-tune: logs PublicTest and, in held-out mode, keeps the
    epoch best on the validation part (its weights and logits)."""

    def __init__(self, args: argparse.Namespace, inputs: Inputs, held: Held, log: JsonLog) -> None:
        self.args, self.inputs, self.held, self.log = args, inputs, held, log
        self.acc, self.state, self.epoch, self.logits = -1.0, None, 0, None

    def __call__(self, epoch: int, model, loss: float) -> None:
        x_pub, y_pub = self.inputs.x_pub, self.inputs.y_pub
        entry = {"final": True, "epoch": epoch, "loss": loss,
                 "public_test_acc": float((logits_of(model, x_pub).argmax(1).numpy() == y_pub).mean())}
        if self.held.val is not None:
            val_logits = logits_of(model, self.inputs.x_wild[self.held.val]).numpy()
            entry["wild_val_acc"] = float((val_logits.argmax(1) == self.held.targets).mean())
            entry["wild_val_recall"] = recalls(val_logits.argmax(1), self.held.targets,
                                               self.inputs.labels)
            if entry["wild_val_acc"] > self.acc:
                self.acc, self.epoch, self.logits = entry["wild_val_acc"], epoch, val_logits
                self.state = {n: t.clone() for n, t in model.state_dict().items()}
        self.log(entry)
        print(f"epoch {epoch:2d} loss {loss:.3f} PublicTest {entry['public_test_acc']:.4f}"
              + (f" wild-val {entry['wild_val_acc']:.4f}" if "wild_val_acc" in entry else ""),
              flush=True)


def save_finetuned(args: argparse.Namespace, inputs: Inputs, held: Held, model) -> None:
    """Fold the class offsets into the output bias, fit the temperature, save ``best.pt``."""
    labels = inputs.labels
    # class balance: real-face priors differ from FER2013's (disgust is rare there)
    bias = (balance_bias(held.logits, held.targets, args.floor) if args.balance
            else np.zeros(len(labels)))
    before, after = held.logits.argmax(1), (held.logits + bias).argmax(1)
    pub = float((logits_of(model, inputs.x_pub).argmax(1).numpy() == inputs.y_pub).mean())
    meta = {"finetune": {k: v for k, v in vars(args).items() if k != "floor"}
            | {"init": str(args.init), "wild_crops": str(args.wild_crops), "out": str(args.out)},
            "init_meta": inputs.init.get("meta", {}), "epoch": held.epochs,
            "crops": inputs.crop_info, **held.selection, "data_sha256": inputs.data_sha,
            "public_test_accuracy": pub, "class_bias": dict(zip(labels, bias.tolist())),
            "recall_floor": args.floor,
            "wild_tune_held_accuracy_balanced": float((after == held.targets).mean()),
            "wild_tune_held_recall_balanced": recalls(after, held.targets, labels)}
    ckpt = make_checkpoint(model, labels, inputs.init["normalization"], meta)
    layer = output_layer(ckpt)
    ckpt["model"][f"{layer}.bias"] = ckpt["model"][f"{layer}.bias"] + torch.from_numpy(bias).float()
    # softmax temperature on the same held-out logits (calibrate.py's fit)
    ckpt["temperature"] = fit_temperature(torch.from_numpy(held.logits + bias).float(),
                                          torch.from_numpy(held.targets))
    save_checkpoint(ckpt, args.out / "best.pt")
    print(f"held-out accuracy {(before == held.targets).mean():.4f}; class offsets "
          + " ".join(f"{lab[:3]} {b:+.2f}" for lab, b in zip(labels, bias))
          + f" -> {(after == held.targets).mean():.4f}, recall "
          + " ".join(f"{lab[:3]} {r:.2f}" for lab, r in
                     meta["wild_tune_held_recall_balanced"].items() if r is not None)
          + f"; temperature {ckpt['temperature']:.3f}; {args.out / 'best.pt'}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    inputs = load_inputs(args)
    args.out.mkdir(parents=True, exist_ok=True)
    log = JsonLog(args.out / "log.jsonl")
    held = cross_fit(args, inputs, log) if args.folds >= 2 else held_out_part(args, inputs)
    scorer = FinalScorer(args, inputs, held, log)
    model = finetune(inputs.state, inputs.labels, held.fit_x, held.fit_y, inputs.x_fer,
                     inputs.t_fer, args, held.epochs, scorer)
    if held.val is not None:
        model.load_state_dict(scorer.state)
        held.logits, held.epochs = scorer.logits, scorer.epoch
        held.selection["wild_tune_val_accuracy"] = scorer.acc
    save_finetuned(args, inputs, held, model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
