"""FER+ votes (10 annotators per FER2013 image) as soft targets and as majority labels.

The votes file (``ferplus_votes.csv.gz``) has one row per FER2013 data row:
``row,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF``.

Decisions (documented in models/README.md):
- **Soft targets** are the vote distribution over the 8 emotions (contempt included), after
  FERPlus's outlier rule (a class with a single vote gets 0). ``unknown`` and ``NF`` votes are
  dropped from the distribution.
- An image **has no FER+ target** (masked out of the FER+ loss; it still trains the FER2013 head)
  when it has no votes, or when FERPlus's majority rule does not give one of the 8 emotions
  (majority ``unknown``/``NF``, or no class above half the votes).
- **Majority labels** follow FERPlus ``src/ferplus.py`` (mode 'majority'): the evaluation labels
  of "FER+ accuracy as FERPlus reports it".
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

# FER+ column order (the 8 emotions, then unknown and not-a-face)
FERPLUS_LABELS: list[str] = ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear",
                             "contempt"]
VOTE_COLUMNS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                "contempt", "unknown", "NF"]
# FER+ emotion index -> FER2013 7-class index (angry, disgust, fear, happy, sad, surprise,
# neutral); contempt has no FER2013 class
TO_FER2013 = {0: 6, 1: 3, 2: 5, 3: 4, 4: 0, 5: 1, 6: 2}
# FER+ output columns in FER2013 class order: logits[:, FER2013_ORDER] are 7-class logits
FER2013_ORDER = [k for k, _ in sorted(TO_FER2013.items(), key=lambda kv: kv[1])]


def default_votes_path() -> Path:
    """``FERPLUS_VOTES`` if set, else ``../shared/data/ferplus_votes.csv.gz``."""
    env = os.environ.get("FERPLUS_VOTES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "ferplus_votes.csv.gz"


def read_votes(path: str | os.PathLike[str]) -> dict[int, np.ndarray]:
    """{data row: votes (10,) float} from the joined votes csv (plain or .gz)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FER+ votes not found at {path}: pass --ferplus_votes or set "
                                "FERPLUS_VOTES")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:  # type: ignore[operator]
        header = fh.readline().strip().split(",")
        if header != ["row"] + VOTE_COLUMNS:
            raise ValueError(f"{path}: unexpected header {header}")
        data = np.loadtxt(fh, delimiter=",", dtype=np.int64, ndmin=2)
    return {int(r[0]): r[1:].astype(np.float64) for r in data}


def _outliers_removed(votes: np.ndarray) -> np.ndarray:
    v = votes.copy()
    v[v <= 1.0] = 0.0
    return v


def majority_label(votes: np.ndarray) -> int:
    """FERPlus's majority label: an index into FERPLUS_LABELS, or -1 (unknown / not a face /
    no majority)."""
    v = _outliers_removed(votes)
    total = v.sum()
    if total <= 0 or v.max() <= 0.5 * total:
        return -1
    best = int(np.argmax(v))
    return best if best < len(FERPLUS_LABELS) else -1


def soft_target(votes: np.ndarray) -> np.ndarray | None:
    """The 8-emotion distribution to train on, or None when the image has no FER+ target."""
    if majority_label(votes) < 0:
        return None
    v = _outliers_removed(votes)[: len(FERPLUS_LABELS)]
    return (v / v.sum()).astype(np.float32)


def targets_for_rows(rows: np.ndarray, votes: dict[int, np.ndarray]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For FER2013 data rows: soft targets (N, 8) float32, a mask (N,) of rows that have one,
    and majority labels (N,) int64 (-1 where none)."""
    soft = np.zeros((len(rows), len(FERPLUS_LABELS)), dtype=np.float32)
    mask = np.zeros(len(rows), dtype=bool)
    major = np.full(len(rows), -1, dtype=np.int64)
    for i, row in enumerate(rows.tolist()):
        v = votes.get(int(row))
        if v is None:
            continue
        major[i] = majority_label(v)
        t = soft_target(v)
        if t is not None:
            soft[i], mask[i] = t, True
    return soft, mask, major


def seven_class_head(weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of an 8-class FER+ output layer reordered to FER2013's 7 classes (contempt
    dropped: its softmax mass is shared out over the others in proportion)."""
    return weight[FER2013_ORDER], bias[FER2013_ORDER]
