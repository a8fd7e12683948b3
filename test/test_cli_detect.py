"""`fer-detect`: JSON schema, human-readable output, annotation, videos, exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from fer_ros.cli.detect import main
from fer_ros.progress import Progress
from fer_ros.core.errors import ModelError

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "samples"


@pytest.fixture(scope="module", autouse=True)
def _needs_models_and_samples():
    if not SAMPLES.is_dir():
        pytest.skip(f"samples {SAMPLES} are absent (../shared beside the repo is needed)")
    from fer_ros.core.model_files import resolve_model

    try:
        for name in ("ssd_weights", "ssd_config", "yunet", "fer7"):
            resolve_model(name)
    except ModelError as exc:
        pytest.skip(f"models unavailable: {exc}")


def s(name: str) -> str:
    return str(SAMPLES / name)


@pytest.fixture(scope="module")
def short_video(tmp_path_factory) -> Path:
    """The first 6 frames of the sample video (the whole clip takes too long in a test)."""
    cap = cv2.VideoCapture(s("fer_woman2.mp4"))
    frames = [cap.read()[1] for _ in range(6)]
    cap.release()
    assert all(f is not None for f in frames)
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def _json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _check_schema(rec: dict) -> None:
    assert set(rec) == {"source", "frame", "width", "height", "faces"}
    assert isinstance(rec["source"], str) and isinstance(rec["frame"], int)
    assert isinstance(rec["width"], int) and isinstance(rec["height"], int)
    for face in rec["faces"]:
        assert {"bbox", "score", "label", "confidence", "probabilities"} <= set(face)
        assert set(face) <= {"bbox", "score", "label", "confidence", "probabilities", "track_id"}
        x, y, w, h = face["bbox"]
        assert all(isinstance(v, int) for v in face["bbox"])
        assert 0 <= x and 0 <= y and x + w <= rec["width"] and y + h <= rec["height"]
        assert 0 <= face["score"] <= 1 and 0 <= face["confidence"] <= 1
        probs = face["probabilities"]
        assert face["label"] in probs and len(probs) in (6, 7)
        assert abs(sum(probs.values()) - 1) < 0.01
        assert face["label"] == max(probs, key=probs.get)


def test_json_for_images(capsys):
    code = main(["--json", s("dlib_2008_002506.jpg"), s("fer_justin.jpg"), s("fer_no-faces.jpg")])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    recs = _json_lines(out)
    assert [r["source"] for r in recs] == [s("dlib_2008_002506.jpg"), s("fer_justin.jpg"),
                                           s("fer_no-faces.jpg")]
    for r in recs:
        _check_schema(r)
        assert r["frame"] == 0
    assert [len(r["faces"]) for r in recs] == [3, 1, 0]
    assert (recs[0]["width"], recs[0]["height"]) == (500, 375)
    assert recs[1]["faces"][0]["label"] == "happy"
    assert len(recs[1]["faces"][0]["probabilities"]) == 7


def test_human_readable_lines(capsys):
    assert main([s("dlib_2008_002506.jpg"), s("fer_no-faces.jpg")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{s('dlib_2008_002506.jpg')}: 500x375, 3 faces: ")
    assert lines[1].endswith("no faces")


def test_options_ssd_threshold_checkpoint(capsys, tmp_path):
    assert main(["--json", "--detector", "yunet", "--threshold", "0.6",
                 s("dlib_2008_002506.jpg")]) == 0
    assert len(_json_lines(capsys.readouterr().out)[0]["faces"]) == 3
    assert main(["--json", "--threshold", "1.0", s("dlib_2008_002506.jpg")]) == 0
    assert _json_lines(capsys.readouterr().out)[0]["faces"] == []
    from fer_ros.core.model_files import resolve_model

    assert main(["--json", "--checkpoint", str(resolve_model("fer7")), s("fer_justin.jpg")]) == 0
    assert _json_lines(capsys.readouterr().out)[0]["faces"][0]["label"] == "happy"


def test_annotate_images_and_video(capsys, tmp_path, short_video):
    out_dir = tmp_path / "out"
    code = main(["--json", "--annotate", str(out_dir), s("dlib_2008_002506.jpg"), str(short_video)])
    out, err = capsys.readouterr()
    assert code == 0, err
    recs = _json_lines(out)
    assert len(recs) == 1 + 6
    video = [r for r in recs if r["source"] == str(short_video)]
    assert [r["frame"] for r in video] == list(range(6))
    for r in video:
        _check_schema(r)
        assert (r["width"], r["height"]) == (596, 336)
        assert len(r["faces"]) == (1 if r["frame"] >= 2 else 0)  # published once in 3 frames
    image = cv2.imread(str(out_dir / "dlib_2008_002506.annotated.jpg"))
    assert image is not None and image.shape == (375, 500, 3)
    cap = cv2.VideoCapture(str(out_dir / "clip.annotated.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    cap.release()


def test_video_summary_line(capsys, short_video):
    assert main([str(short_video)]) == 0
    out, err = capsys.readouterr()
    # 4 of 6: the face is published once seen in 3 frames (confirm_hits)
    assert out.startswith(f"{short_video}: video, 6 frames, 0.67 faces/frame")
    assert err == ""  # no progress bar when stderr is not a terminal


def test_bad_inputs_are_reported_and_the_rest_processed(capsys, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not really a jpeg")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 100)
    code = main(["--json", str(tmp_path / "missing.jpg"), str(corrupt), s("fer_justin.jpg"),
                 str(junk)])
    out, err = capsys.readouterr()
    assert code == 2
    assert [r["source"] for r in _json_lines(out)] == [s("fer_justin.jpg")]
    errors = err.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("fer-detect: error: ") for e in errors)
    assert "missing.jpg: no such file" in errors[0]
    assert "corrupt.jpg: not a readable image" in errors[1]
    assert "junk.mp4: not a readable image or video" in errors[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--detector", "haar"], "detector='haar': must be one of: ssd, yunet, ssd_tf"),
        (["--threshold", "2"], "ssd_threshold=2.0 is out of range"),
        (["--checkpoint", "/nonexistent/model.pt"], "classifier checkpoint not found"),
        (["--checkpoint", "fer99"], "unknown classifier 'fer99' (known: fer6, fer7, fer7_fer2013, fer7_photo, ferplus8)"),
    ],
)
def test_setup_errors_exit_2_with_one_line(capsys, args, message):
    assert main([*args, s("fer_justin.jpg")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err


def test_console_script_exit_code_and_no_traceback(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 100)
    proc = subprocess.run(
        [sys.executable, "-m", "fer_ros.cli.detect", "--json", str(tmp_path / "nope.png"),
         str(junk), s("fer_no-faces.jpg")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    # exactly our two lines: no traceback, no OpenCV/FFmpeg log noise
    assert proc.stderr.splitlines() == [f"fer-detect: error: {tmp_path / 'nope.png'}: no such file",
                                        f"fer-detect: error: {junk}: not a readable image or video"]
    assert json.loads(proc.stdout)["faces"] == []


def test_decompression_bombs_are_one_line_each_and_the_rest_processed(tmp_path):
    from image_bombs import bombs

    suffix = {"jpeg": ".jpg", "png": ".png", "gif": ".gif", "webp": ".webp", "bmp": ".bmp",
              "tiff": ".tif", "pnm": ".ppm"}
    paths = []
    for name, data in bombs().items():
        path = tmp_path / f"{name}{suffix[name.split('_')[0]]}"
        path.write_bytes(data)
        paths.append(path)
    proc = subprocess.run(
        [sys.executable, "-m", "fer_ros.cli.detect", "--json", *map(str, paths),
         s("fer_justin.jpg")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    errors = proc.stderr.splitlines()
    assert len(errors) == len(paths), errors
    for path, line in zip(paths, errors):
        assert line.startswith(f"fer-detect: error: {path}: not a readable image: "), line
    assert [r["source"] for r in _json_lines(proc.stdout)] == [s("fer_justin.jpg")]


def test_progress_bar_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = Progress(4, "clip.mp4", enabled=stream.isatty(), stream=stream)  # as fer-detect does
        for done in range(1, 5):
            bar.update(done)
        bar.close()
    assert pipe.getvalue() == ""
    text = tty.getvalue()
    assert text.startswith("\rclip.mp4 [") and "4/4" in text and text.endswith("\n")
