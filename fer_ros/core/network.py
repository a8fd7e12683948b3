"""The emotion-classifier network, shared by training and inference.

The architecture is described by a small JSON-able dict (stored in every checkpoint), so a
checkpoint rebuilds exactly the network it was trained with.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

DEFAULT_ARCH: dict[str, Any] = {
    "name": "vgg",
    "in_channels": 1,
    "widths": [32, 64, 128, 256],
    "convs_per_block": 2,
    "dropout": 0.3,
}


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class EmotionNet(nn.Module):
    """VGG-style CNN: blocks of 3x3 conv-BN-ReLU, max-pool after each, global average pool."""

    def __init__(self, num_classes: int, arch: dict[str, Any] | None = None) -> None:
        super().__init__()
        arch = {**DEFAULT_ARCH, **(arch or {})}
        if arch["name"] != "vgg":
            raise ValueError(f"unknown architecture {arch['name']!r} (known: 'vgg')")
        layers: list[nn.Module] = []
        cin = int(arch["in_channels"])
        for width in arch["widths"]:
            for _ in range(int(arch["convs_per_block"])):
                layers.append(_conv_bn_relu(cin, int(width)))
                cin = int(width)
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(float(arch["dropout"])),
            nn.Linear(cin, num_classes),
        )
        self.arch = arch
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, C, H, W) float batch to (N, num_classes) logits."""
        return self.head(self.features(x))


def build_network(arch: dict[str, Any], num_classes: int) -> EmotionNet:
    """Build the network a checkpoint's ``arch`` dict describes."""
    return EmotionNet(num_classes=num_classes, arch=arch)


def flip_averaged(forward: Callable[[torch.Tensor], Any], x: torch.Tensor) -> Any:
    """``forward`` on a (N, C, H, W) batch and its mirror images in one pass, outputs averaged
    in float32: flip test-time augmentation, the one definition for inference, evaluation and
    training. A tuple output (a multi-head network) is averaged per element; None stays None."""
    out = forward(torch.cat([x, torch.flip(x, dims=[3])]))
    n = len(x)

    def average(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else (t[:n].float() + t[n:].float()) / 2

    return tuple(average(t) for t in out) if isinstance(out, tuple) else average(out)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """An inference copy of ``model`` (left unchanged): every batch norm that follows a
    convolution (or a BatchNorm1d that follows a linear layer) is folded into that layer's
    weight and bias, dropout layers are dropped, and nested ``nn.Sequential`` blocks are
    flattened into their parent. Plain eager PyTorch: the same outputs to float rounding, fewer
    layers to run, nothing compiled or cached (unlike TorchScript's freeze)."""
    folded = copy.deepcopy(model).eval()
    if isinstance(folded, nn.Sequential):
        return nn.Sequential(*_folded_layers(folded))
    _fold_children(folded)
    return folded


def _fold_children(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Sequential):
            setattr(module, name, nn.Sequential(*_folded_layers(child)))
        else:
            _fold_children(child)


def _folded_layers(seq: nn.Sequential) -> list[nn.Module]:
    out: list[nn.Module] = []
    for layer in seq:
        if isinstance(layer, nn.Sequential):
            inner = _folded_layers(layer)
        else:
            _fold_children(layer)
            inner = [layer]
        for item in inner:
            prev = out[-1] if out else None
            if isinstance(item, nn.BatchNorm2d) and isinstance(prev, nn.Conv2d):
                out[-1] = fuse_conv_bn_eval(prev, item)
            elif isinstance(item, nn.BatchNorm1d) and isinstance(prev, nn.Linear):
                out[-1] = fuse_linear_bn_eval(prev, item)
            elif not isinstance(item, nn.Dropout):  # identity in eval mode
                out.append(item)
    return out
