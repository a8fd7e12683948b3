"""A ROS install made by ``rosdep install`` + ``colcon build``: the pip-only packages (openvino,
onnx, mcap) and those whose rosdep keys may be skipped (onnxruntime, rosbags, matplotlib) are
hidden from import in the child processes (test/hide_modules/sitecustomize.py on PYTHONPATH).
The node with default parameters must still answer over DDS and say which SSD runtime it
fell back to; the CLIs must say in one line what to install, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, SHARED_DIR, child_env, stop_process

HIDE_DIR = REPO_ROOT / "test" / "hide_modules"
HIDDEN = "openvino,onnxruntime,onnx,rosbags,mcap,matplotlib"
SAMPLES = SHARED_DIR / "samples"


def hidden_env(**extra: str | None) -> dict[str, str]:
    """The child environment with the optional packages hidden."""
    path = os.pathsep.join(filter(None, [str(HIDE_DIR), os.environ.get("PYTHONPATH")]))
    return child_env(**{"PYTHONPATH": path, "FER_TEST_HIDE_MODULES": HIDDEN, **extra})


def console_script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def assert_one_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_the_blocker_hides_exactly_the_named_packages():
    code = ("import importlib\n"
            "for m in ('openvino', 'onnxruntime', 'onnx', 'rosbags', 'mcap', 'matplotlib', "
            "'cv2', 'numpy', 'yaml'):\n"
            "    try:\n        importlib.import_module(m); print(m, 'ok')\n"
            "    except ModuleNotFoundError: print(m, 'hidden')\n")
    out = subprocess.run([sys.executable, "-c", code], env=hidden_env(), capture_output=True,
                         text=True, timeout=120).stdout.split("\n")
    assert [line for line in out if line.endswith("hidden")] == [
        f"{m} hidden" for m in HIDDEN.split(",")]
    assert {"cv2 ok", "numpy ok", "yaml ok"} <= set(out)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/samples is absent")
def test_node_with_defaults_answers_and_logs_its_fallback(ros):
    pytest.importorskip("fer_msgs.msg", reason="fer_msgs is not built (run `make setup`)")
    from test_emotion_node import Exchange, sample

    # defaults but confirm_hits 1: one image is asked, and faces are published once confirmed
    node = subprocess.Popen([sys.executable, "-m", "fer_ros.node.emotion_node", "--ros-args",
                             "-p", "confirm_hits:=1"],
                            env=hidden_env(), cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        answer = Exchange(ros, "image_raw", "emotions").ask(sample("fer_justin.jpg"), node)
    finally:
        out, err = stop_process(node)
    assert [e.label for e in answer.emotions] == ["happy"]
    log = out + err
    assert ("detector ssd (int8, ssd_runtime auto -> opencv (openvino is not installed; "
            "onnxruntime is not installed") in log, log
    assert "classifier_runtime auto -> torch (onnxruntime is not installed)" in log, log
    assert node.returncode == 0 and "Traceback" not in log, log


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/samples is absent")
def test_fer_detect_falls_back_and_says_so():
    proc = subprocess.run([console_script("fer-detect"), str(SAMPLES / "fer_justin.jpg")],
                          env=hidden_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "1 face: happy" in proc.stdout
    assert proc.stderr.strip().splitlines() == [
        "fer-detect: note: ssd_runtime auto -> opencv (openvino is not installed; onnxruntime "
        "is not installed; the slowest of the three)",
        "fer-detect: note: classifier_runtime auto -> torch (onnxruntime is not installed)"]


def test_fer_bag_says_what_to_install_in_one_line(tmp_path):
    info = subprocess.run([console_script("fer-bag"), "info", str(tmp_path)], env=hidden_env(),
                          capture_output=True, text=True, timeout=120)
    assert_one_line(info, "fer-bag info: ", "rosbags (>= ", "pip install 'rosbags>=")
    video = SAMPLES / "fer_woman2.mp4"
    if video.is_file():
        # rosbags from its rosdep key (python3-rosbags-pip), mcap (no key) missing
        no_mcap = ",".join(m for m in HIDDEN.split(",") if m != "rosbags")
        made = subprocess.run([console_script("fer-bag"), "from-video", str(video),
                               str(tmp_path / "bag")], env=hidden_env(FER_TEST_HIDE_MODULES=no_mcap),
                              capture_output=True, text=True, timeout=120)
        assert_one_line(made, "fer-bag from-video: ", "mcap (>= ", "pip install 'mcap>=")


def test_fer_models_says_what_to_install_in_one_line(tmp_path, shared_models_dir):
    """A fresh checkout whose SSD ONNX graph is not made yet: making it needs onnx. The
    checkout is a copy of fer_ros + the manifest run by an interpreter whose prefix holds no
    installed fer_ros models (a bare venv, the project's packages on PYTHONPATH)."""
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO_ROOT / "fer_ros", checkout / "fer_ros",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (checkout / "models").mkdir()
    shutil.copy(REPO_ROOT / "models" / "manifest.json", checkout / "models")
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True,
                   timeout=120)
    site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    path = os.pathsep.join([str(HIDE_DIR), str(checkout), site])
    proc = subprocess.run([str(bare / "bin" / "python"), "-m", "fer_ros.cli.models", "fetch",
                           "ssd_onnx"], cwd=str(checkout),
                          env=hidden_env(PYTHONPATH=path, AMENT_PREFIX_PATH=None,
                                         FER_MODEL_DIR=None,
                                         FER_MODEL_MIRROR=str(shared_models_dir)),
                          capture_output=True, text=True, timeout=300)
    assert_one_line(proc, "fer-models: error: ", "onnx (>= ", "pip install 'onnx>=")
