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


def _kernels(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """(n, 1, size, size) blur kernels, half motion (a line at a random angle and length),
    half defocus (a Gaussian of random width), each summing to 1."""
    r = size // 2
    ys, xs = torch.meshgrid(torch.arange(-r, r + 1.0), torch.arange(-r, r + 1.0), indexing="ij")
    angle = torch.rand(n, generator=gen) * math.pi
    length = 1.5 + torch.rand(n, generator=gen) * (r + 0.5)
    dist = (xs * torch.sin(angle).view(n, 1, 1) - ys * torch.cos(angle).view(n, 1, 1)).abs()
    along = (xs * torch.cos(angle).view(n, 1, 1) + ys * torch.sin(angle).view(n, 1, 1)).abs()
    motion = ((dist < 0.5) & (along <= length.view(n, 1, 1))).float()
    sigma = 0.5 + torch.rand(n, generator=gen) * 1.2
    defocus = torch.exp(-(xs ** 2 + ys ** 2) / (2 * sigma.view(n, 1, 1) ** 2))
    pick = (torch.rand(n, generator=gen) < 0.5).view(n, 1, 1)
    k = torch.where(pick, motion, defocus)
    return (k / k.sum((1, 2), keepdim=True)).unsqueeze(1)


def _jpeg(pixels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each (1, H, W) image in [0, 1] through a JPEG round trip at quality 20-70."""
    import cv2
    import numpy as np

    out = pixels.clone()
    for i in range(len(pixels)):
        img = (pixels[i, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        quality = int(20 + torch.rand(1, generator=gen).item() * 50)
        _, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        dec = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_GRAYSCALE)
        out[i, 0] = torch.from_numpy(dec).float() / 255
    return out


def camera_degrade(x: torch.Tensor, norm: dict, prob: float, gen: torch.Generator) -> torch.Tensor:
    """Faces as a robot's camera sees them: each of low resolution, motion/defocus blur, low
    light, sensor noise, JPEG compression and a dark occluding band (glasses, a hand) hits a
    face with probability ``prob``. Works on normalised batches (N, 1, H, W); ``norm`` is the
    dataset's {"mean", "std"} so that light and compression act on real grey levels."""
    n, _, h, w = x.shape
    mean, std = float(norm["mean"]), float(norm["std"])
    p = x * std + mean  # grey levels in [0, 1]

    def chosen() -> torch.Tensor:
        return torch.rand(n, generator=gen) < prob

    sel = chosen()
    if sel.any():  # low resolution: down to 12-36 px and back up
        side = int(12 + torch.rand(1, generator=gen).item() * 24)
        small = F.interpolate(p[sel], size=(side, side), mode="area")
        p[sel] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    sel = chosen()
    if sel.any():  # motion or defocus blur
        k = _kernels(int(sel.sum()), 7, gen)
        sub = p[sel]
        p[sel] = F.conv2d(F.pad(sub.transpose(0, 1), (3, 3, 3, 3), mode="replicate"), k,
                          groups=len(sub)).transpose(0, 1)
    sel = chosen()
    if sel.any():  # low light: darker and flatter (gamma 1-2.2, gain 0.35-1)
        m = int(sel.sum())
        gamma = (1 + torch.rand(m, generator=gen) * 1.2).view(m, 1, 1, 1)
        gain = (0.35 + torch.rand(m, generator=gen) * 0.65).view(m, 1, 1, 1)
        p[sel] = p[sel].clamp(0, 1) ** gamma * gain
    sel = chosen()
    if sel.any():  # sensor noise, sigma 1-8 % of full scale
        m = int(sel.sum())
        sigma = (0.01 + torch.rand(m, generator=gen) * 0.07).view(m, 1, 1, 1)
        p[sel] = p[sel] + torch.randn(p[sel].shape, generator=gen) * sigma
    sel = chosen()
    if sel.any():
        p[sel] = _jpeg(p[sel], gen)
    sel = chosen() & (torch.rand(n, generator=gen) < 0.5)
    if sel.any():  # a dark band across the eyes (glasses) or the mouth (a hand)
        m = int(sel.sum())
        top = torch.where(torch.rand(m, generator=gen) < 0.6,
                          0.28 + torch.rand(m, generator=gen) * 0.1,
                          0.62 + torch.rand(m, generator=gen) * 0.12)
        rows = torch.arange(h).view(1, h, 1).float() / h
        band = (rows >= top.view(m, 1, 1)) & (rows < (top + 0.14).view(m, 1, 1))
        shade = (torch.rand(m, generator=gen) * 0.25).view(m, 1, 1, 1)
        sub = p[sel]
        p[sel] = torch.where(band.unsqueeze(1), shade.expand_as(sub), sub)
    return (p.clamp(0, 1) - mean) / std


def speaking_mouths(x: torch.Tensor, calm: torch.Tensor, donor: torch.Tensor, prob: float,
                    gen: torch.Generator, top: int = 30, ramp: int = 4) -> torch.Tensor:
    """Neutral faces given another face's open mouth, label kept: in video a neutral person
    speaks, and a still frame of speech looks like surprise. For each ``calm`` row, with
    probability ``prob``, the rows from ``top`` down (the mouth of an aligned 48x48 FER2013
    face) are blended in, over ``ramp`` rows, from a random ``donor`` row of the same batch
    (surprised or fearful faces: open mouths). Run before the geometric augmentation."""
    donors = torch.nonzero(donor).flatten()
    pick = calm & (torch.rand(len(x), generator=gen) < prob)
    if len(donors) == 0 or not bool(pick.any()):
        return x
    out = x.clone()
    rows = torch.nonzero(pick).flatten()
    src = donors[torch.randint(len(donors), (len(rows),), generator=gen)]
    h = x.shape[-2]
    alpha = ((torch.arange(h, dtype=x.dtype) - top + ramp) / ramp).clamp(0, 1).view(1, 1, h, 1)
    out[rows] = x[rows] * (1 - alpha) + x[src] * alpha
    return out
