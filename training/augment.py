"""Batched data augmentation for 48x48 grayscale faces, done in torch on the whole batch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment_batch(x: torch.Tensor, cfg, gen: torch.Generator) -> torch.Tensor:
    """Random flip, rotation/scale/shift, contrast/brightness and erasing of a (N,1,H,W) batch.

    ``x`` is normalised already (mean 0, unit std), so erased patches are filled with 0.
    """
    n = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=gen) * (hi - lo) + lo

    angle = uniform(-cfg.max_rotate_deg, cfg.max_rotate_deg) * math.pi / 180
    scale = uniform(1 - cfg.scale_range, 1 + cfg.scale_range)
    flip = (torch.rand(n, generator=gen) < 0.5).float() * 2 - 1 if cfg.flip else torch.ones(n)
    tx = uniform(-cfg.max_shift, cfg.max_shift) * 2
    ty = uniform(-cfg.max_shift, cfg.max_shift) * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    if cfg.contrast > 0:
        c = uniform(1 - cfg.contrast, 1 + cfg.contrast).view(n, 1, 1, 1)
        b = uniform(-cfg.contrast, cfg.contrast).view(n, 1, 1, 1)
        x = x * c + b

    if cfg.erase_prob > 0:
        h, w = x.shape[-2:]
        area = uniform(0.02, 0.2) * h * w
        aspect = torch.exp(uniform(math.log(0.3), math.log(3.3)))
        eh = (area * aspect).sqrt().clamp(1, h).long()
        ew = (area / aspect).sqrt().clamp(1, w).long()
        y0 = (torch.rand(n, generator=gen) * (h - eh + 1)).long()
        x0 = (torch.rand(n, generator=gen) * (w - ew + 1)).long()
        rows = torch.arange(h).view(1, h, 1)
        cols = torch.arange(w).view(1, 1, w)
        box = (
            (rows >= y0.view(n, 1, 1)) & (rows < (y0 + eh).view(n, 1, 1))
            & (cols >= x0.view(n, 1, 1)) & (cols < (x0 + ew).view(n, 1, 1))
        )
        apply = (torch.rand(n, generator=gen) < cfg.erase_prob).view(n, 1, 1)
        x = x.masked_fill((box & apply).unsqueeze(1), 0.0)
    return x
