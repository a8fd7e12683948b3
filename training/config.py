"""Typed training configuration: defaults here, overrides as ``--key=value`` on the command line."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    """Every knob of a training run; stored verbatim in each checkpoint."""

    data: str = ""  # FER2013 csv(.gz) or image folder; empty -> FER2013_CSV / ../shared copy
    out_dir: str = "runs/fer7"
    num_classes: int = 7  # 7 (FER2013) or 6 (disgust merged into angry)
    init_from: str = ""  # checkpoint whose matching weights start this run (e.g. 7 -> 6 class)
    # FER+ soft targets: a second 8-class head on the same trunk trained on the FER+ vote
    # distribution (training/ferplus.py); 0 trains the FER2013 head alone
    ferplus_weight: float = 0.0
    ferplus_votes: str = ""  # empty -> FERPLUS_VOTES / ../shared copy
    # real-face crops (training/wild_crops.py npz) scored after every epoch: monitoring and
    # model selection on wild-dev `tune`, never `dev`
    wild_crops: str = ""
    # > 0: also train on wild_crops (the FER+ head, read in FER2013's 7 classes), holding out
    # whole identities (wild_holdout of them) that are scored for selection instead
    wild_weight: float = 0.0
    wild_per_batch: int = 24
    wild_holdout: float = 0.25
    # video-dev crops (training/video_crops npz) scored after every epoch: selection data
    video_crops: str = ""
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    convs_per_block: int = 2
    dropout: float = 0.3
    epochs: int = 40
    batch_size: int = 128
    lr: float = 0.1  # peak of the one-cycle schedule
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    # > 0: evaluate and save an exponential moving average of the weights (and BN statistics),
    # updated every step with this decay
    ema_decay: float = 0.0
    # augmentation (applied on the batch, in torch)
    flip: bool = True
    max_rotate_deg: float = 10.0
    # zoom in [1 - s, 1 + s] and shift: training/measure_crops.py measured the pipeline's crops
    # of real faces against FER2013's (wild-dev tune, YuNet landmarks): per-face scale p5-p95
    # 0.71-1.03 around a median that crop_margin recentres (0.80-1.15 of it), shift p5-p95
    # +-0.10 (x), +-0.04 (y), roll p5-p95 +-10 degrees
    scale_range: float = 0.15
    max_shift: float = 0.1  # fraction of the image side
    contrast: float = 0.2  # contrast and brightness jitter amplitude
    erase_prob: float = 0.5
    # camera degradations (augment.camera_degrade): the probability of each
    video_aug: float = 0.0
    # neutral FER2013 faces given a surprised/fearful face's open mouth (augment.speaking_mouths),
    # label kept: the probability for each neutral face
    speech_aug: float = 0.0
    # speed
    bf16: bool = True  # bf16 autocast on the CPU (about 2x faster here)
    channels_last: bool = True
    threads: int = 0  # 0 -> torch default (all cores)
    seed: int = 1337
    max_train_batches: int = 0  # > 0: stop each epoch early (smoke tests)
    limit_train: int = 0  # > 0: use only this many training images (smoke tests)
    progress: bool = True

    @classmethod
    def from_args(cls, argv: list[str], base: dict[str, Any] | None = None) -> "TrainConfig":
        """Parse ``--key=value`` or ``--key value`` (as argparse does for the other tools;
        ``-`` and ``_`` alike in keys); unknown keys and wrong types raise ValueError."""
        values = dict(base or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        defaults = cls()
        for key, raw in _pairs(argv):
            key = key.replace("-", "_")
            if key not in fields:
                raise ValueError(f"unknown config key {key!r} (known: {', '.join(sorted(fields))})")
            values[key] = _parse(key, raw, getattr(defaults, key))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _pairs(argv: list[str]) -> list[tuple[str, str]]:
    """(key, raw value) of each ``--key=value`` or ``--key value`` in ``argv``."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise ValueError(f"expected --key=value or --key value, got {arg!r}")
        if "=" in arg:
            out.append(tuple(arg[2:].split("=", 1)))
            i += 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out.append((arg[2:], argv[i + 1]))
            i += 2
        else:
            raise ValueError(f"{arg} needs a value (--key=value or --key value)")
    return out


def usage() -> str:
    """The --help text: every key with its default."""
    lines = ["usage: python -m training.train [--key=value | --key value ...] [--resume]", "",
             "keys (default):"]
    for f in dataclasses.fields(TrainConfig):
        lines.append(f"  --{f.name} ({getattr(TrainConfig(), f.name)!r})")
    return "\n".join(lines)


def _parse(key: str, raw: str, default: Any) -> Any:
    """Convert ``raw`` to the type of ``default``; bools accept true/false/1/0."""
    try:
        if isinstance(default, bool):
            low = raw.lower()
            if low not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(raw)
            return low in {"true", "1", "yes"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, list):
            value = json.loads(raw) if raw.startswith("[") else [int(v) for v in raw.split(",")]
            if not all(isinstance(v, int) for v in value):
                raise ValueError(raw)
            return value
        return raw
    except ValueError:
        raise ValueError(
            f"--{key}: {raw!r} is not a valid {type(default).__name__}"
        ) from None
