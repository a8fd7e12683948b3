"""How do the node's face crops sit on real faces, compared with FER2013's own crops?

    python -m training.measure_crops [--detector ssd] [--margin 0.05] [--split tune] [--json out.json]

Both sides are measured with the same ruler: YuNet's five landmarks (eyes, nose, mouth
corners), expressed in units of the crop side.
- FER2013: Training faces (48x48), upscaled 5x and padded so YuNet sees a whole face.
- Real faces: wild-dev photos (split ``tune`` only: ``dev`` is for evaluation), cropped the way
  the pipeline crops them (``--detector`` box -> ``crop_region(box, margin)``); the landmarks
  come from YuNet on the padded full photo.
Printed: percentiles of eye distance, eye-midpoint position and eye-line roll for both, and the
per-face ratio / offset of the real crops to the FER2013 median: the scale and shift spread
that training augmentation has to cover (``training/config.py`` documents the values chosen).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np


from training.dataset import default_data_path, load_fer2013
from training.wild_eval import wild_dev_dir, wild_rows

from fer_ros.core.classifier import crop_region
from fer_ros.core.detector import YUNET_MODEL, make_detector
from fer_ros.core.model_files import resolve_model

UPSCALE, PAD = 5, 0.5  # FER2013 faces: 48 -> 240 px, then 50 % of the side padded each way


class Landmarker:
    """YuNet's landmarks of the most confident face, on a padded copy of the image."""

    def __init__(self) -> None:
        self._net = cv2.FaceDetectorYN.create(str(resolve_model(YUNET_MODEL)), "", (320, 320),
                                              0.5, 0.3, 50)

    def __call__(self, bgr: np.ndarray, pad_fraction: float) -> np.ndarray | None:
        """(5, 2) landmarks in the coordinates of ``bgr``, or None when no face is found."""
        h, w = bgr.shape[:2]
        p = int(round(max(h, w) * pad_fraction))
        padded = cv2.copyMakeBorder(bgr, p, p, p, p, cv2.BORDER_CONSTANT, value=(128, 128, 128))
        self._net.setInputSize((padded.shape[1], padded.shape[0]))
        _, faces = self._net.detect(padded)
        if faces is None or len(faces) == 0:
            return None
        best = faces[int(np.argmax(faces[:, -1]))]
        return best[4:14].reshape(5, 2) - p


def geometry(marks: np.ndarray, x0: float, y0: float, side: float) -> dict[str, float]:
    """Eye distance, eye midpoint and roll (degrees) in units of a crop at (x0, y0, side)."""
    right_eye, left_eye = marks[0], marks[1]
    mid = (right_eye + left_eye) / 2
    d = left_eye - right_eye
    return {"eye_distance": float(np.hypot(*d) / side), "eye_x": float((mid[0] - x0) / side),
            "eye_y": float((mid[1] - y0) / side), "roll_deg": float(np.degrees(np.arctan2(d[1], d[0])))}


def fer2013_geometry(limit: int, seed: int, marker: Landmarker) -> list[dict[str, float]]:
    splits, _ = load_fer2013(default_data_path())
    images = splits["Training"].images
    idx = np.random.default_rng(seed).permutation(len(images))[:limit]
    out = []
    for i in idx:
        big = cv2.resize(images[i], None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
        marks = marker(cv2.cvtColor(big, cv2.COLOR_GRAY2BGR), PAD)
        if marks is not None:
            out.append(geometry(marks, 0.0, 0.0, 48.0 * UPSCALE))
    return out


def wild_geometry(detector: str, margin: float, split: str, marker: Landmarker
                  ) -> tuple[list[dict[str, float]], int]:
    root = wild_dev_dir()
    det = make_detector(detector)
    rows = wild_rows(split, root)
    out, no_face = [], 0
    for row in rows:
        bgr = cv2.imread(str(root / row["file"]))
        faces = det.detect(bgr)
        marks = marker(bgr, 0.25)
        if not faces or marks is None:
            no_face += 1
            continue
        box = max(faces, key=lambda f: f.box.area).box
        r = crop_region(box, margin)
        out.append(geometry(marks, r.x, r.y, r.w))
    return out, no_face


def summary(values: list[float]) -> dict[str, float]:
    q = np.percentile(values, [5, 25, 50, 75, 95])
    return dict(zip(("p5", "p25", "p50", "p75", "p95"), map(float, q)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detector", default="ssd")
    ap.add_argument("--margin", type=float, default=0.05)
    ap.add_argument("--split", default="tune", choices=["tune"])
    ap.add_argument("--fer-limit", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    marker = Landmarker()
    fer = fer2013_geometry(args.fer_limit, args.seed, marker)
    wild, no_face = wild_geometry(args.detector, args.margin, args.split, marker)
    keys = ("eye_distance", "eye_x", "eye_y", "roll_deg")
    report: dict = {"detector": args.detector, "margin": args.margin,
                    "fer2013_faces": len(fer), "wild_faces": len(wild), "wild_no_face": no_face}
    for name, rows in (("fer2013", fer), ("wild", wild)):
        report[name] = {k: summary([r[k] for r in rows]) for k in keys}
    ref = report["fer2013"]
    # per real face: how much bigger the face is than FER2013's median, and how far it is shifted
    report["wild_vs_fer2013"] = {
        "scale": summary([r["eye_distance"] / ref["eye_distance"]["p50"] for r in wild]),
        "shift_x": summary([r["eye_x"] - ref["eye_x"]["p50"] for r in wild]),
        "shift_y": summary([r["eye_y"] - ref["eye_y"]["p50"] for r in wild]),
    }
    report["fer2013_spread"] = {
        "scale": summary([r["eye_distance"] / ref["eye_distance"]["p50"] for r in fer]),
        "shift_y": summary([r["eye_y"] - ref["eye_y"]["p50"] for r in fer]),
    }
    for section in ("fer2013", "wild", "wild_vs_fer2013", "fer2013_spread"):
        for k, s in report[section].items():
            print(f"{section:16s} {k:13s} " + "  ".join(f"{n} {v:7.3f}" for n, v in s.items()))
    print(f"faces: FER2013 {len(fer)}, real {len(wild)} (no face or no landmarks: {no_face})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
