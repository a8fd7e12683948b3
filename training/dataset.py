"""FER2013 loading: Kaggle csv (plain or .gz) or image folders, 7- or 6-class, cached arrays.

Splits follow the Kaggle ``Usage`` column: Training, PublicTest (model selection) and
PrivateTest (the reported figure).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FER2013_LABELS: list[str] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
SIX_CLASS_LABELS: list[str] = ["angry", "fear", "happy", "sad", "surprise", "neutral"]
SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
IMAGE_SIZE = 48
_FOLDER_SPLITS = {
    "train": "Training", "training": "Training",
    "val": "PublicTest", "validation": "PublicTest", "publictest": "PublicTest",
    "test": "PrivateTest", "privatetest": "PrivateTest",
}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm"}


@dataclass
class Split:
    """One split: uint8 images (N, 48, 48), int64 labels (N,) in ``labels`` order, and each
    image's 0-based data row in the source csv (-1 for image folders): the key FER+ votes use."""

    images: np.ndarray
    targets: np.ndarray
    labels: list[str]
    rows: np.ndarray | None = None

    def subset(self, keep: np.ndarray) -> "Split":
        """The images at indices (or mask) ``keep``."""
        rows = None if self.rows is None else self.rows[keep]
        return Split(self.images[keep], self.targets[keep], self.labels, rows)

    def __len__(self) -> int:
        return int(self.targets.shape[0])


def labels_for(num_classes: int) -> list[str]:
    """Class names for 7-class (FER2013) or 6-class (disgust merged into angry) mode."""
    if num_classes == 7:
        return list(FER2013_LABELS)
    if num_classes == 6:
        return list(SIX_CLASS_LABELS)
    raise ValueError(f"num_classes must be 7 or 6, got {num_classes}")


def to_six_classes(targets7: np.ndarray) -> np.ndarray:
    """Map FER2013 7-class targets to 6 classes: disgust (1) joins angry (0), the rest shift."""
    mapping = np.array([0, 0, 1, 2, 3, 4, 5], dtype=np.int64)
    return mapping[np.asarray(targets7, dtype=np.int64)]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file (of a folder: of its sorted relative file names and contents)."""
    h = hashlib.sha256()
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            h.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _read_csv(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    opener = gzip.open if path.suffix == ".gz" else open
    images: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    targets: dict[str, list[int]] = {s: [] for s in SPLITS}
    rows: dict[str, list[int]] = {s: [] for s in SPLITS}
    with opener(path, "rt", newline="") as fh:  # type: ignore[operator]
        reader = csv.DictReader(fh)
        missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: not a FER2013 csv, missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            usage = row["Usage"].strip()
            if usage not in images:
                raise ValueError(f"{path}:{line}: unknown Usage {usage!r}")
            pixels = np.array(row["pixels"].split(), dtype=np.uint8)
            if pixels.size != IMAGE_SIZE * IMAGE_SIZE:
                raise ValueError(f"{path}:{line}: {pixels.size} pixels, expected 2304")
            label = int(row["emotion"])
            if not 0 <= label < 7:
                raise ValueError(f"{path}:{line}: emotion {label} out of range 0..6")
            images[usage].append(pixels.reshape(IMAGE_SIZE, IMAGE_SIZE))
            targets[usage].append(label)
            rows[usage].append(line - 2)
    return {s: _stack(images[s], targets[s], rows[s]) for s in SPLITS}


def _stack(images: list[np.ndarray], targets: list[int], rows: list[int] | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    row_array = np.asarray(rows if rows is not None else [-1] * len(targets), dtype=np.int64)
    if not images:
        return (np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8), np.zeros((0,), np.int64),
                row_array)
    return np.stack(images), np.asarray(targets, dtype=np.int64), row_array


def _read_folders(root: Path, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import cv2  # local: only the folder layout needs OpenCV

    images: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    targets: dict[str, list[int]] = {s: [] for s in SPLITS}
    for split_dir in sorted(d for d in root.iterdir() if d.is_dir()):
        split = _FOLDER_SPLITS.get(split_dir.name.lower())
        if split is None:
            continue
        for class_dir in sorted(d for d in split_dir.iterdir() if d.is_dir()):
            name = class_dir.name.lower()
            if name not in FER2013_LABELS:
                raise ValueError(f"{class_dir}: unknown emotion folder (known: {FER2013_LABELS})")
            for f in sorted(class_dir.iterdir()):
                if f.suffix.lower() not in _IMAGE_SUFFIXES:
                    continue
                img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
                if img is None:
                    raise ValueError(f"{f}: unreadable image")
                if img.shape != (IMAGE_SIZE, IMAGE_SIZE):
                    img = cv2.resize(img, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
                images[split].append(img)
                targets[split].append(FER2013_LABELS.index(name))
    if not images["Training"]:
        raise ValueError(f"{root}: no train/<emotion>/ images found")
    out = {s: _stack(images[s], targets[s]) for s in SPLITS}
    if not images["PublicTest"]:
        out["Training"], out["PublicTest"] = _holdout(*out["Training"], fraction=0.1, seed=seed)
    return out


def _holdout(x: np.ndarray, y: np.ndarray, r: np.ndarray, fraction: float, seed: int):
    """Seeded stratified hold-out: the validation split when a folder layout has none."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        val[idx[: max(1, int(round(len(idx) * fraction)))]] = True
    return (x[~val], y[~val], r[~val]), (x[val], y[val], r[val])


def default_cache_dir() -> Path:
    """Where decoded arrays are cached (``FER_CACHE_DIR`` or ``~/.cache/fer_ros``)."""
    return Path(os.environ.get("FER_CACHE_DIR", Path.home() / ".cache" / "fer_ros"))


def load_fer2013(
    path: str | os.PathLike[str], num_classes: int = 7, cache_dir: Path | None = None
) -> tuple[dict[str, Split], str]:
    """Load all splits; returns ({split: Split}, sha256 of the data file/folder).

    Decoded arrays are cached by content hash, so a second load takes well under a second.
    """
    src = Path(path)
    if not src.exists():
        raise FileNotFoundError(
            f"FER2013 data not found at {src}: pass --data or set FER2013_CSV "
            "(Kaggle csv, plain or .gz, or a folder with train/<emotion>/ images)"
        )
    digest = file_sha256(src)
    cache = (cache_dir or default_cache_dir()) / f"fer2013-v2-{digest[:16]}.npz"
    raw: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    if cache.exists():
        with np.load(cache) as z:
            raw = {s: (z[f"{s}_x"], z[f"{s}_y"], z[f"{s}_r"]) for s in SPLITS}
    else:
        raw = _read_folders(src) if src.is_dir() else _read_csv(src)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, **{f"{s}_{k}": v for s in SPLITS for k, v in zip("xyr", raw[s])})
        os.replace(tmp, cache)
    labels = labels_for(num_classes)
    splits = {}
    for s in SPLITS:
        x, y, r = raw[s]
        y = to_six_classes(y) if num_classes == 6 else y.astype(np.int64)
        splits[s] = Split(x, y, labels, r)
    return splits, digest


def default_data_path() -> Path:
    """``FER2013_CSV`` if set, else ``../shared/data/fer2013.csv.gz`` beside the repository."""
    env = os.environ.get("FER2013_CSV")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013.csv.gz"
