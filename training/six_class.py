"""The 6-class variant of a trained classifier: a new output layer on its frozen trunk.

    python -m training.six_class --from runs/v6/best_balanced.pt --out runs/v6/fer6.pt

Merging disgust into angry cannot be done on a linear layer's rows (the merged class's
probability is a sum of two softmax outputs, not a row), so the 6-class layer is fitted: on
the trunk's pooled features of FER2013 Training with FER+ vote distributions as targets
(disgust folded into angry, contempt dropped), plus the run's trained-on wild-dev `tune` crops
(the same identity split as training: the held-out identities stay unseen), weighted as the
run weighted them. The trunk, normalisation and selection metadata are those of ``--from``,
so the variant shares the recipe and the selection of the model it comes from.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from fer_ros.core.checkpoint import (
    load_checkpoint, make_checkpoint, network_from_checkpoint, normalize_batch, output_layer_of,
    save_checkpoint,
)
from fer_ros.core.network import EmotionNet, build_network
from training.config import TrainConfig
from training.dataset import SIX_CLASS_LABELS, default_data_path, load_fer2013, to_six_classes
from training.finetune_wild import fer_targets
from training.train import wild_split


@torch.no_grad()
def pooled_features(net: EmotionNet, x: torch.Tensor) -> torch.Tensor:
    """The inputs of the output layer (global-average-pooled trunk features)."""
    net = net.eval()
    out = [net.head[:-1](net.features(x[i : i + 512])) for i in range(0, len(x), 512)]
    return torch.cat(out).float()


def fit_output_layer(parts: list[tuple[torch.Tensor, torch.Tensor, float]],
                     init: torch.nn.Linear, weight_decay: float = 1e-4) -> torch.nn.Linear:
    """A linear layer fitted by L-BFGS to soft targets: the sum over ``parts`` (features,
    targets, weight) of weight x mean cross-entropy, plus L2. ``init`` is left unchanged."""
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


def training_parts(net: EmotionNet, cfg: TrainConfig, norm: dict[str, float]
                   ) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """(features, 6-class targets, weight) of FER2013 Training and the run's wild crops."""
    splits, _ = load_fer2013(Path(cfg.data) if cfg.data else default_data_path(), num_classes=6)
    train = splits["Training"]
    parts = [(pooled_features(net, normalize_batch(train.images, norm)),
              fer_targets(train.rows, train.targets, 6, 0.1, votes_path=cfg.ferplus_votes), 1.0)]
    if cfg.wild_crops and cfg.wild_weight > 0:
        x, y = wild_split(cfg, norm)[1]
        onehot = F.one_hot(torch.from_numpy(to_six_classes(y.numpy())), 6).float() * 0.9 + 0.1 / 6
        parts.append((pooled_features(net, x), onehot, cfg.wild_weight))
    return parts


def six_class_network(ckpt: dict) -> EmotionNet:
    """``ckpt``'s trunk with a fitted 6-class output layer (started from its own rows of the
    six classes: angry's row starts the merged class)."""
    net = network_from_checkpoint(ckpt)
    missing = [c for c in SIX_CLASS_LABELS if c not in ckpt["labels"]]
    if missing:
        raise SystemExit(f"--from has no {', '.join(missing)} output: {ckpt['labels']}")
    cfg = TrainConfig(**ckpt.get("meta", {}).get("train_config", {}))
    out = output_layer_of(net)
    old = dict(net.named_modules())[out]
    rows = [list(ckpt["labels"]).index(c) for c in SIX_CLASS_LABELS]
    init = torch.nn.Linear(old.in_features, 6)
    init.load_state_dict({"weight": old.weight.detach()[rows].clone(),
                          "bias": old.bias.detach()[rows].clone()})
    layer = fit_output_layer(training_parts(net, cfg, ckpt["normalization"]), init)
    net6 = build_network(ckpt["arch"], 6)
    state = {k: v for k, v in net.state_dict().items() if not k.startswith(out + ".")}
    state.update({f"{out}.{k}": v for k, v in layer.state_dict().items()})
    net6.load_state_dict(state)
    return net6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="source", type=Path, required=True,
                    help="a checkpoint of training/train.py (7-class or FER+ 8-class)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    ckpt = load_checkpoint(args.source)
    net = six_class_network(ckpt)
    meta = {**ckpt.get("meta", {}), "head": "six", "six_class_from": str(args.source)}
    save_checkpoint(make_checkpoint(net.eval(), list(SIX_CLASS_LABELS), ckpt["normalization"],
                                    meta), args.out)
    print(f"{args.out}: {SIX_CLASS_LABELS} on the trunk of {args.source} (epoch "
          f"{meta.get('epoch', '?')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
