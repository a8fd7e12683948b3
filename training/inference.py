"""Logits of a checkpoint on a dataset split, with the inference core's normalisation."""

from __future__ import annotations

import numpy as np
import torch

from fer_ros.core.checkpoint import network_from_checkpoint, normalize_batch, wants_flip_tta
from fer_ros.core.network import flip_averaged


@torch.no_grad()
def checkpoint_logits(
    ckpt: dict, images: np.ndarray, flip_tta: bool = False, batch_size: int = 512
) -> torch.Tensor:
    """Float32 logits (N, C) of 48x48 uint8 faces; ``flip_tta`` (or a checkpoint that asks for
    it, as the inference core does) averages with the mirror image."""
    flip_tta = flip_tta or wants_flip_tta(ckpt)
    model = network_from_checkpoint(ckpt).to(memory_format=torch.channels_last)
    out = []
    for i in range(0, len(images), batch_size):
        x = normalize_batch(images[i : i + batch_size], ckpt["normalization"])
        x = x.contiguous(memory_format=torch.channels_last)
        out.append(flip_averaged(model, x) if flip_tta else model(x).float())
    return torch.cat(out) if out else torch.zeros((0, len(ckpt["labels"])))
