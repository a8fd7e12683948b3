"""Make the SSD's int8 ONNX model (``models/ssd_res10_int8.onnx``) from its float ONNX form.

    python scripts/quantize_ssd.py [--photos 100] [--out models/ssd_res10_int8.onnx]

Static post-training quantisation with ONNX Runtime's own tool (``onnxruntime.quantization``,
already a runtime dependency): weights int8 per output channel, activations uint8 with ranges
from MinMax calibration, written in QDQ form, which OpenVINO, ONNX Runtime and OpenCV all run
as int8. The float model is the one ``fer-models fetch`` makes from OpenCV's official weights
(manifest ``ssd_onnx``). Calibration frames come from wild-dev ``tune`` only (every n-th photo
in ``labels.csv`` order, never ``dev``): each photo letterboxed into a 640x480 frame and, so
that small faces are represented, shrunk to a third and placed on a grey 640x480 frame; both
go through the detector's own two passes (``ssd_detector.DEFAULT_PASSES``), so the ranges cover
the blobs the node feeds. The run is deterministic for a given onnxruntime version; the
file's sha256 goes into ``models/manifest.json`` (``--manifest``).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_ros.core.detector import SSD_ONNX  # noqa: E402
from fer_ros.core.model_files import resolve_model  # noqa: E402
from fer_ros.core.ssd_detector import DEFAULT_PASSES, SSD_MEAN, blob_for  # noqa: E402

WILD = Path(os.environ.get("FER_SHARED_DIR", REPO.parent / "shared")) / "data" / "wild-dev"
FRAME = (640, 480)


def calibration_frames(photos: int) -> list[np.ndarray]:
    """640x480 BGR frames from ``photos`` wild-dev ``tune`` photos (two per photo)."""
    with open(WILD / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "tune"]
    step = max(len(rows) // photos, 1)
    frames = []
    for row in rows[::step][:photos]:
        image = cv2.imread(str(WILD / row["file"]))
        if image is None:
            raise SystemExit(f"cannot read {WILD / row['file']}")
        for shrink, place in ((1.0, (0, 0)), (1 / 3, (0.4, 0.3))):
            h, w = image.shape[:2]
            s = min(FRAME[0] / w, FRAME[1] / h) * shrink
            small = cv2.resize(image, (max(int(w * s), 1), max(int(h * s), 1)),
                               interpolation=cv2.INTER_AREA)
            frame = np.full((FRAME[1], FRAME[0], 3), SSD_MEAN.astype(np.uint8), np.uint8)
            x0 = int(place[0] * (FRAME[0] - small.shape[1]))
            y0 = int(place[1] * (FRAME[1] - small.shape[0]))
            frame[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
            frames.append(frame)
    return frames


def quantize(src: Path, dest: Path, frames: list[np.ndarray]) -> None:
    """Quantise the float ONNX ``src`` into ``dest`` with ranges from ``frames``."""
    from onnxruntime.quantization import (
        CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    blobs = [blob_for(f, p)[0] for f in frames for p in DEFAULT_PASSES]

    class Blobs(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(blobs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            blob = next(self._it, None)
            return None if blob is None else {"data": blob}

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(dest), Blobs(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    print(f"{dest}: {dest.stat().st_size} bytes from {len(blobs)} calibration blobs "
          f"({len(frames)} frames)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=100, help="wild-dev tune photos to calibrate on")
    ap.add_argument("--out", type=Path, default=REPO / "models" / "ssd_res10_int8.onnx")
    ap.add_argument("--manifest", action="store_true",
                    help="also write the file's sha256 and size into models/manifest.json")
    args = ap.parse_args(argv)
    if not (WILD / "labels.csv").is_file():
        raise SystemExit(f"wild-dev not found at {WILD} (set FER_SHARED_DIR)")
    quantize(resolve_model(SSD_ONNX), args.out, calibration_frames(args.photos))
    if args.manifest:
        from fer_ros.core.model_files import add_entry, make_entry

        entry = make_entry(args.out, REPO / "models", name="ssd_onnx_int8",
                           kind="face-detector-ssd-onnx", description=(
                               "The ResNet-10 SSD's ONNX form (ssd_onnx) quantised to int8 "
                               "(QDQ: int8 per-channel weights, uint8 activations, MinMax "
                               "ranges from wild-dev tune frames) by scripts/quantize_ssd.py"))
        add_entry(REPO / "models" / "manifest.json", entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
