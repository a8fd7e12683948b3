"""``fer-detect``: facial expressions in image and video files, without ROS.

    fer-detect [--json] [--annotate OUT_DIR] [--detector ssd|yunet] [--checkpoint PATH]
               [--threshold X] INPUT...

Defaults come from config/emotion.yaml (fer_ros.params). With --json, one JSON object per
image or video frame is printed per line (schema in docs/core.md); otherwise one short line
per input. A bad input is reported on stderr as one line and the others are still processed;
the exit code is then 2 (also for a bad option or a missing model), else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from ..core.drawing import draw_results
from ..core.errors import FerError, ImageError, one_line_error
from ..core import image_headers
from ..core.file_checks import file_problem
from ..core.image_codec import check_size, decode_image_file
from ..core.detector import threshold_param
from ..core.factory import build_pipeline
from ..core.pipeline import EmotionPipeline
from ..core.types import FaceResult
from ..deps import check_required
from ..node.process import native_log
from ..progress import Progress
from ..params import load_defaults, validate

PROG = "fer-detect"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pnm"}


class InputError(Exception):
    """One input cannot be read; reported as one line, the other inputs go on."""


def parse_args(argv: list[str] | None, defaults: dict[str, Any]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Find faces and their expressions in images and videos (no ROS needed).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per image / video frame per line")
    p.add_argument("--annotate", metavar="OUT_DIR", type=Path,
                   help="write annotated images (and .mp4 for videos) to OUT_DIR")
    p.add_argument("--detector", default=defaults["detector"],
                   help=f"face detector: ssd, yunet or ssd_tf (default {defaults['detector']})")
    p.add_argument("--checkpoint", default=defaults["classifier_model"], metavar="PATH",
                   help="classifier: shipped model name or .pt path "
                        f"(default {defaults['classifier_model']})")
    p.add_argument("--threshold", type=float, default=None, metavar="X",
                   help="detector score threshold 0..1 (default: the detector's own, "
                        f"ssd {defaults['ssd_threshold']}, yunet {defaults['yunet_threshold']})")
    p.add_argument("--runtime", default=defaults["ssd_runtime"],
                   help=f"runtime of the SSD: auto, openvino, onnxruntime or opencv "
                        f"(default {defaults['ssd_runtime']})")
    p.add_argument("--precision", default=defaults["ssd_precision"],
                   help=f"form of the SSD: int8 or float (default {defaults['ssd_precision']})")
    return p.parse_args(argv)


def _error(msg: str) -> None:
    print(f"{PROG}: error: {msg}", file=sys.stderr, flush=True)


def _frame_record(source: str, frame: int, bgr: np.ndarray, results: list[FaceResult],
                  labels: list[str]) -> dict[str, Any]:
    return {"source": source, "frame": frame, "width": int(bgr.shape[1]),
            "height": int(bgr.shape[0]), "faces": [r.as_dict(labels) for r in results]}


def _summary_faces(results: list[FaceResult]) -> str:
    if not results:
        return "no faces"
    parts = [f"{r.label} {r.confidence:.2f} at {r.box.as_list()}" for r in results]
    return f"{len(results)} face{'s' if len(results) != 1 else ''}: " + ", ".join(parts)


def _out_path(out_dir: Path, src: Path, suffix: str) -> Path:
    return out_dir / f"{src.stem}.annotated{suffix}"


def _frames(cap: cv2.VideoCapture) -> Iterator[np.ndarray]:
    while True:
        ok, frame = cap.read()
        if not ok or frame is None:
            return
        yield frame


MAX_FILE_BYTES = 1 << 30  # an image file of 1 GiB or more is not read


def read_image(path: Path) -> np.ndarray:
    """Decode an image file with the core's header checks (decompression bombs are refused
    before any decoder allocates): JPEG, PNG, GIF, WebP, BMP, TIFF or PNM."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES)
            if f.read(1):
                raise InputError(f"{path}: larger than {MAX_FILE_BYTES >> 30} GiB, not read")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return decode_image_file(data)
    except ImageError as exc:
        raise InputError(f"{path}: not a readable image: {exc}") from None


def process_image(path: Path, pipeline: EmotionPipeline, args: argparse.Namespace) -> None:
    bgr = read_image(path)
    results = pipeline.process_image(bgr)  # one photo: no tracking, a second-stage check
    if args.annotate:
        out = _out_path(args.annotate, path, path.suffix.lower() if path.suffix.lower()
                        in {".jpg", ".jpeg", ".png", ".bmp"} else ".png")
        if not cv2.imwrite(str(out), draw_results(bgr, results)):
            raise InputError(f"{path}: cannot write {out}")
    if args.json:
        print(json.dumps(_frame_record(str(path), 0, bgr, results, pipeline.labels)), flush=True)
    else:
        print(f"{path}: {bgr.shape[1]}x{bgr.shape[0]}, {_summary_faces(results)}", flush=True)


def check_image_headers(path: Path) -> None:
    """A file handed to the video reader that is really an image format (an animated GIF,
    WebP, ...) gets the image header checks first, so a bomb never reaches the decoder."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return
        data = path.read_bytes()
    except OSError:
        return  # the video reader says why
    fmt = image_headers.image_format(data)
    if fmt is None:
        return
    try:
        for width, height in image_headers.declared_sizes(data, fmt):
            check_size(width, height, f"image ({fmt.upper()} header)")
    except ImageError as exc:
        raise InputError(f"{path}: not a readable image: {exc}") from None


def process_video(path: Path, pipeline: EmotionPipeline, args: argparse.Namespace) -> None:
    check_image_headers(path)
    cap = cv2.VideoCapture(str(path))
    writer = None
    progress: Progress | None = None
    try:
        if not cap.isOpened():
            raise InputError(f"{path}: not a readable image or video")
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        progress = Progress(total, path.name, enabled=sys.stderr.isatty())
        counts: Counter[str] = Counter()
        frames = faces = 0
        t0 = time.monotonic()
        for index, bgr in enumerate(_frames(cap)):
            stamp = index / fps if fps > 0 else None
            results = pipeline.process(bgr, stamp)
            frames, faces = frames + 1, faces + len(results)
            counts.update(r.label for r in results)
            if args.annotate:
                if writer is None:
                    out = _out_path(args.annotate, path, ".mp4")
                    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"),
                                             fps if fps > 0 else 30.0, (bgr.shape[1], bgr.shape[0]))
                    if not writer.isOpened():
                        raise InputError(f"{path}: cannot write {out}")
                writer.write(draw_results(bgr, results))
            if args.json:
                print(json.dumps(_frame_record(str(path), index, bgr, results, pipeline.labels)),
                      flush=False)
            progress.update(frames)
        progress.close()
        progress = None
        if frames == 0:
            raise InputError(f"{path}: not a readable image or video (no frames decoded)")
        if args.json:
            sys.stdout.flush()
        else:
            rate = frames / max(time.monotonic() - t0, 1e-9)
            common = ", ".join(f"{k} {v / max(faces, 1):.0%}" for k, v in counts.most_common(3))
            print(f"{path}: video, {frames} frames, {faces / frames:.2f} faces/frame"
                  + (f" ({common})" if common else "") + f", {rate:.1f} frames/s", flush=True)
    finally:
        if progress is not None:  # end the bar's line before an error message
            progress.close()
        cap.release()
        if writer is not None:
            writer.release()


def _restart(pipeline: EmotionPipeline) -> None:
    """Forget tracks and smoothing state of the previous video."""
    if pipeline.tracker is not None:
        pipeline.tracker.reset(restart_ids=True)
    if pipeline.smoother is not None:
        pipeline.smoother.reset()
    if pipeline.schedule is not None:
        pipeline.schedule.reset()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fer-detect`` console script; returns the exit code."""
    # Our one-line errors replace OpenCV's and FFmpeg's own log lines (override via the env).
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    if hasattr(cv2, "utils") and hasattr(cv2.utils, "logging"):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    native_log.install()  # a corrupt image is one line of ours, not libjpeg's
    try:
        check_required()  # e.g. Debian's OpenCV or torch older than fer_ros needs
        defaults = load_defaults()
    except FerError as exc:
        _error(str(exc))
        return 2
    args = parse_args(argv, defaults)
    try:
        chosen = {"detector": args.detector, "classifier_model": args.checkpoint,
                  "ssd_runtime": args.runtime, "ssd_precision": args.precision}
        if args.threshold is not None:
            chosen[threshold_param(args.detector)] = args.threshold
        params = {**defaults, **validate(chosen)}
        pipeline = build_pipeline(params)
        choice = getattr(getattr(pipeline.detector, "runtime", None), "choice", "")
        if choice.startswith("auto") and not choice.startswith("auto -> openvino"):
            print(f"fer-detect: note: ssd_runtime {choice}", file=sys.stderr)  # a fallback
        choice = getattr(pipeline.classifier, "runtime", "")
        if choice.startswith("auto") and choice != "auto -> onnxruntime":
            print(f"fer-detect: note: classifier_runtime {choice}", file=sys.stderr)
        pipeline.warm_up()  # first frame not slow; refuses a model with non-finite outputs
        if args.annotate:
            args.annotate.mkdir(parents=True, exist_ok=True)
    except Exception as exc:  # a bad option or model file: one line, never a traceback
        _error(one_line_error(exc))
        return 2
    # Images are independent: no tracking/smoothing. Each video starts fresh tracks.
    video = pipeline
    still = EmotionPipeline(pipeline.detector, pipeline.classifier)
    failed = 0
    for name in args.inputs:
        path = Path(name)
        try:
            problem = file_problem(path)
            if problem is not None:
                raise InputError(f"{path}: {problem}")
            if path.suffix.lower() in IMAGE_SUFFIXES:
                process_image(path, still, args)
            else:
                _restart(video)
                process_video(path, video, args)
        except (InputError, FerError) as exc:
            failed += 1
            _error(str(exc))
        except KeyboardInterrupt:
            _error("interrupted")
            return 130
        except BrokenPipeError:  # e.g. `fer-detect --json ... | head`: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0 if not failed else 2
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
