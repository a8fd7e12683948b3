"""Crop the faces of wild-dev photos the way the pipeline does and save them as an npz.

    python -m training.wild_crops --split tune --out runs/wild_tune.npz [--detector ssd] [--margin M]

The npz holds ``images`` (N, 48, 48) uint8, ``targets`` (N,) in FER2013 7-class order,
``identity`` and ``files`` (str), and ``found`` (bool: a face was detected; where none was,
the whole photo is used, so the row still counts as a face the pipeline would miss).
Training scores ``tune`` crops after every epoch (``--wild_crops``) and fine-tunes on them;
``dev`` is for evaluation only (benchmarks/wild_accuracy.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np


from training.dataset import FER2013_LABELS
from training.wild_eval import wild_dev_dir, wild_rows

from fer_ros.core.classifier import crop_faces
from fer_ros.core.detector import make_detector
from fer_ros.core.types import Box


def build(split: str, detector: str, margin: float) -> dict[str, np.ndarray]:
    root = wild_dev_dir()
    det = make_detector(detector)
    rows = wild_rows(split, root)
    images, found = [], []
    for row in rows:
        bgr = cv2.imread(str(root / row["file"]))
        faces = det.detect(bgr)
        if faces:
            box = max(faces, key=lambda f: f.box.area).box
        else:
            box = Box(0, 0, bgr.shape[1], bgr.shape[0])
        images.append(crop_faces(bgr, [box], 48, margin)[0])
        found.append(bool(faces))
    return {"images": np.stack(images),
            "targets": np.array([FER2013_LABELS.index(r["label"]) for r in rows], np.int64),
            "identity": np.array([r["identity"] for r in rows]),
            "files": np.array([r["file"] for r in rows]), "found": np.array(found)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="tune", choices=["tune", "dev"])
    ap.add_argument("--detector", default="ssd")
    ap.add_argument("--margin", type=float, default=0.0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    data = build(args.split, args.detector, args.margin)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **data, detector=args.detector, margin=args.margin)
    print(f"{len(data['images'])} crops ({int(data['found'].sum())} with a detected face) "
          f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
