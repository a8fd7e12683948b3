"""Ship the other heads of a two-head run: the FER+ 8-class head, or a 6-class head.

    python -m training.export_head --run runs/v5 --head ferplus8 --out runs/v5/ferplus8.pt
    python -m training.export_head --run runs/v5 --head six --out runs/v5/fer6.pt

A run of training/train.py with FER+ votes trains one trunk and two heads; its balanced
selection ships the FER+ head read in FER2013's 7 classes (``best_balanced.pt``). The 8-class
and 6-class variants come from the same trunk, so they share the recipe and its selection:
``ferplus8`` is the FER+ head as trained; ``six`` fits a new 6-class output layer on the frozen
trunk (disgust merged into angry cannot be read off a linear layer's rows: the merged class's
probability is a sum, not a row) to the FER+ vote distributions with disgust folded into angry.
Both start from the checkpoint selected by ``--select`` (default: the balanced one, whose
``meta`` gives the epoch; ``last.pt`` must be that epoch's state, which ``--epoch-check``
enforces).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fer_ros.core.checkpoint import (
    load_checkpoint, make_checkpoint, normalize_batch, output_layer_of, save_checkpoint,
)
from fer_ros.core.network import EmotionNet, build_network
from training.config import TrainConfig
from training.dataset import (
    SIX_CLASS_LABELS, default_data_path, labels_for, load_fer2013, to_six_classes,
)
from training.ferplus import FERPLUS_LABELS
from training.finetune_wild import fer_targets
from training.train import Data, TwoHeadNet, build_model, load_wild


def load_two_head(run_dir: Path) -> tuple[TwoHeadNet, dict]:
    """The scored (weight-averaged) two-head network of ``run_dir/last.pt`` and the balanced
    checkpoint it must match (its normalisation and metadata are reused)."""
    state = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)
    balanced = load_checkpoint(run_dir / "best_balanced.pt")
    if state["epoch"] != balanced["meta"]["epoch"]:
        raise SystemExit(f"{run_dir}/last.pt is epoch {state['epoch']} but the balanced "
                         f"selection is epoch {balanced['meta']['epoch']}: the heads would not "
                         "come from the shipped trunk")
    cfg = TrainConfig(**state["config"])
    model = build_model(cfg, labels_for(cfg.num_classes))
    weights = state.get("ema", state["model"])
    weights = {k.removeprefix("module."): v for k, v in weights.items() if k != "n_averaged"}
    model.load_state_dict(weights)
    return model.eval(), balanced


@torch.no_grad()
def pooled_features(net: EmotionNet, x: torch.Tensor) -> torch.Tensor:
    """The inputs of the output layer (global-average-pooled trunk features)."""
    out = [net.head[:-1](net.features(x[i : i + 512])) for i in range(0, len(x), 512)]
    return torch.cat(out).float()


def fit_output_layer(parts: list[tuple[torch.Tensor, torch.Tensor, float]],
                     init: torch.nn.Linear, weight_decay: float = 1e-4) -> torch.nn.Linear:
    """A linear layer fitted by L-BFGS to soft targets: the sum over ``parts`` (features,
    targets, weight) of weight x mean cross-entropy, plus L2."""
    layer = torch.nn.Linear(init.in_features, init.out_features)
    layer.load_state_dict(init.state_dict())
    opt = torch.optim.LBFGS(layer.parameters(), lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def loss_fn() -> torch.Tensor:
        opt.zero_grad()
        loss = weight_decay * layer.weight.pow(2).sum()
        for feats, targets, weight in parts:
            loss = loss - weight * (targets * F.log_softmax(layer(feats), 1)).sum(1).mean()
        loss.backward()
        return loss

    opt.step(loss_fn)
    return layer


def six_class_network(model: TwoHeadNet, cfg: TrainConfig, norm: dict[str, float]) -> EmotionNet:
    """The trunk with a 6-class output layer fitted on FER2013 Training's FER+ votes and, as
    the run trained, its trained-on wild crops (the same identity split, never the held-out)."""
    splits, _ = load_fer2013(Path(cfg.data) if cfg.data else default_data_path(), num_classes=6)
    train = splits["Training"]
    net8 = model.export("extra")
    parts = [(pooled_features(net8, normalize_batch(train.images, norm)),
              fer_targets(train.rows, train.targets, 6, 0.1, votes_path=cfg.ferplus_votes), 1.0)]
    if cfg.wild_crops and cfg.wild_weight > 0:
        data = Data(labels_for(7), norm, "", *[torch.zeros(0)] * 3, np.zeros(0))  # wild only
        load_wild(cfg, data)
        x, y = data.wild_train
        onehot = F.one_hot(torch.from_numpy(to_six_classes(y.numpy())), 6).float() * 0.9 + 0.1 / 6
        parts.append((pooled_features(net8, x), onehot, cfg.wild_weight))
    w8, b8 = net8.head[-1].weight.detach(), net8.head[-1].bias.detach()
    rows = [FERPLUS_LABELS.index(c) for c in SIX_CLASS_LABELS]  # angry row starts merged angry
    init = torch.nn.Linear(w8.shape[1], 6)
    init.load_state_dict({"weight": w8[rows].clone(), "bias": b8[rows].clone()})
    layer = fit_output_layer(parts, init)
    net6 = build_network(net8.arch, 6)
    out = output_layer_of(net8)
    state = {k: v for k, v in net8.state_dict().items() if not k.startswith(out + ".")}
    state.update({f"{out}.{k}": v for k, v in layer.state_dict().items()})
    net6.load_state_dict(state)
    return net6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a train.py out_dir with FER+ votes")
    ap.add_argument("--head", choices=["ferplus8", "six"], required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    model, balanced = load_two_head(args.run)
    norm = balanced["normalization"]
    if args.head == "ferplus8":
        net, labels = model.export("extra"), FERPLUS_LABELS
    else:
        cfg = TrainConfig(**balanced["meta"]["train_config"])
        net, labels = six_class_network(model, cfg, norm), SIX_CLASS_LABELS
    meta = {**balanced["meta"], "head": args.head, "exported_from": str(args.run / "last.pt")}
    save_checkpoint(make_checkpoint(net.eval(), list(labels), norm, meta), args.out)
    print(f"{args.out}: {len(labels)} classes {labels} from {args.run} epoch {meta['epoch']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
