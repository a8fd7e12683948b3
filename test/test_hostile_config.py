"""Hostile checkpoints, model paths, params files and parameter names (issue 14.5): from the
node process, ``fer-detect`` and ``fer-bag evaluate`` alike, one line naming the problem, exit
code 2, no traceback. The checkpoints are the shipped fer7.pt with one field edited."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
import torch

from conftest import REPO_ROOT, child_env

SAMPLE = REPO_ROOT.parent / "shared" / "samples" / "fer_justin.jpg"


def _edit(change: Callable[[dict], None]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        ckpt = torch.load(REPO_ROOT / "models" / "fer7.pt", map_location="cpu", weights_only=True)
        change(ckpt)
        path = tmp / "hostile.pt"
        torch.save(ckpt, path)
        return path
    return make


def _set(key: str, value) -> Callable[[dict], None]:
    def change(ckpt: dict) -> None:
        target = ckpt
        *parents, last = key.split(".")
        for name in parents:
            target = target[name]
        target[last] = value
    return change


def _nan_weight(ckpt: dict) -> None:
    ckpt["model"]["features.0.0.weight"][0, 0, 0, 0] = math.nan


def _overflowing_weights(ckpt: dict) -> None:  # finite weights whose activations overflow
    for name, tensor in ckpt["model"].items():
        if name.endswith(".0.weight") and name.startswith("features."):
            tensor.mul_(1e20)


def _without_mean(ckpt: dict) -> None:
    del ckpt["normalization"]["mean"]


def _file(content: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "corrupt.pt"
        path.write_bytes(content)
        return path
    return make


def _long_component(tmp: Path) -> Path:
    return tmp / ("m" * 300 + ".pt")


def _directory(tmp: Path) -> Path:
    path = tmp / "folder.pt"
    path.mkdir()
    return path


def _fifo(tmp: Path) -> Path:
    path = tmp / "fifo.pt"
    os.mkfifo(path)
    return path


HOSTILE_MODELS = {  # id: (make the model path in a folder, what the one line must say)
    "unknown_arch": (_edit(_set("arch.name", "resnet")), "unknown architecture 'resnet'"),
    "dropout_2": (_edit(_set("arch.dropout", 2.0)), "arch dropout must be a number in [0, 1), got 2.0"),
    "widths_abc": (_edit(_set("arch.widths", ["abc"])), "arch widths must be a list of 1 to 8 integers"),
    "input_size_0": (_edit(_set("input_size", 0)), "input_size must be an integer from 16"),
    "no_mean": (_edit(_without_mean), "normalization must hold 'mean' and 'std'"),
    "int_labels": (_edit(_set("labels", list(range(7)))),
                   "labels must be a list of 2 or more non-empty strings, got [0, 1, 2"),
    "six_labels": (_edit(_set("labels", ["a", "b", "c", "d", "e", "f"])),
                   "6 labels but the network has 7 outputs"),
    "nan_weight": (_edit(_nan_weight), "weights contain NaN or infinite values (features.0.0.weight)"),
    "std_0": (_edit(_set("normalization.std", 0.0)), "normalization std must be > 0, got 0.0"),
    "nan_temperature": (_edit(_set("temperature", math.nan)),
                        "temperature must be a finite number > 0, got nan"),
    "negative_temperature": (_edit(_set("temperature", -0.74)),
                             "temperature must be a finite number > 0, got -0.74"),
    "overflowing_weights": (_edit(_overflowing_weights),
                            "the classifier gives non-finite probabilities on a blank face crop"),
    "corrupt": (_file(b"PK\x03\x04 not a checkpoint" * 10), "is unreadable or corrupt"),
    "long_component": (_long_component, "a path component is longer than 255 characters"),
    "directory": (_directory, "is a directory, not a regular file"),
    "fifo": (_fifo, "is a FIFO, not a regular file"),
    "device": (lambda tmp: Path("/dev/null"), "/dev/null: is a character device, not a regular file"),
}


def start_node(*ros_args: str) -> subprocess.Popen[str]:
    """The node as users start it (``python -m fer_ros.node.emotion_node``)."""
    return subprocess.Popen([sys.executable, "-m", "fer_ros.node.emotion_node", "--ros-args",
                             *ros_args], env=child_env(), cwd=str(REPO_ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    """Waits for a started node to exit by itself (killed after ``timeout``)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_node(*ros_args: str) -> subprocess.CompletedProcess[str]:
    return finish(start_node(*ros_args))


def assert_one_line(output: str, expected: str) -> str:
    """Exactly one line says ``expected``; it is the only error line; no traceback."""
    assert "Traceback" not in output, output[-3000:]
    said = [line for line in output.splitlines() if expected in line]
    assert len(said) == 1, output[-3000:]
    errors = [line for line in output.splitlines()
              if "ERROR" in line or line.startswith("emotion_node:")]
    assert errors == said, output[-3000:]
    return said[0]


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory) -> Path:
    """A two-frame bag of real photos for ``fer-bag evaluate``."""
    from fer_ros.cli import bag as cli

    frames = tmp_path_factory.mktemp("frames")
    image = cv2.imread(str(SAMPLE)) if SAMPLE.is_file() else np.full((120, 160, 3), 90, np.uint8)
    for k in range(2):
        cv2.imwrite(str(frames / f"{k}.png"), image)
    bag = tmp_path_factory.mktemp("bag") / "photos"
    assert cli.main(["from-video", str(frames), str(bag), "--fps", "5", "-q"]) == 0
    return bag


@pytest.mark.parametrize("case", list(HOSTILE_MODELS))
def test_a_hostile_model_is_one_line_and_exit_2_everywhere(case, tmp_path, small_bag, capsys):
    make, expected = HOSTILE_MODELS[case]
    model = str(make(tmp_path))

    node_proc = start_node("-p", f"classifier_model:={model}", "-p", "detector:=yunet")
    from fer_ros.cli.detect import main as fer_detect

    capsys.readouterr()
    assert fer_detect(["--detector", "yunet", "--checkpoint", model, str(SAMPLE)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith("fer-detect: error: ") and expected in err

    from fer_ros.cli import bag as fer_bag

    assert fer_bag.main(["evaluate", str(small_bag), "--out", str(tmp_path / "eval"), "-q",
                         "-p", f"classifier_model:={model}", "-p", "detector:=yunet"]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("fer-bag evaluate: the emotion node refused its configuration: ")
    assert expected in err

    node = finish(node_proc)  # started first, runs meanwhile
    assert node.returncode == 2, (node.returncode, node.stderr[-3000:])
    line = assert_one_line(node.stdout + node.stderr, expected)
    assert "configure failed: " in line and "[emotion_node]" in line


def test_fer_detect_console_script_one_line_for_a_hostile_checkpoint(tmp_path):
    model = _edit(_set("arch.dropout", 2.0))(tmp_path)
    run = subprocess.run([sys.executable, "-m", "fer_ros.cli.detect", "--checkpoint", str(model),
                          str(SAMPLE)], env=child_env(), cwd=str(REPO_ROOT), capture_output=True,
                         text=True, timeout=180)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [f"fer-detect: error: {model}: arch dropout must be a "
                                       "number in [0, 1), got 2.0"]


def test_fer_detect_inputs_that_exist_but_are_not_files(tmp_path, capsys):
    from fer_ros.cli.detect import main as fer_detect

    fifo = tmp_path / "camera.jpg"
    os.mkfifo(fifo)
    long = tmp_path / ("x" * 300 + ".jpg")
    assert fer_detect(["--detector", "yunet", str(tmp_path), str(fifo), "/dev/null", str(long),
                       str(SAMPLE)]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"fer-detect: error: {tmp_path}: is a directory, not a regular file",
        f"fer-detect: error: {fifo}: is a FIFO, not a regular file",
        "fer-detect: error: /dev/null: is a character device, not a regular file",
        f"fer-detect: error: {long}: a path component is longer than 255 characters "
        f"(304: {'x' * 40}...)"]
    assert "fer_justin.jpg: " in out  # the good input is still processed


BAD_PARAMS_FILES = {  # id: (file content or None for a missing file, what the line must say)
    "missing": (None, "cannot read parameters file {path}: no such file"),
    "bad_yaml": ("/**:\n  ros__parameters:\n    ssd_threshold: [0.5\n",
                 "{path} is not valid YAML: did not find expected ',' or ']' at line 4, column 1"),
    "not_a_mapping": ("- ssd_threshold: 0.5\n", "{path} is not a ROS 2 params file"),
    "no_ros__parameters": ("/**:\n  ssd_threshold: 0.5\n",
                           "{path}: /**.ssd_threshold must be a mapping"),
    "aliases": ("/**:\n  ros__parameters:\n    a: &x 1\n    b: *x\n", "YAML aliases"),
    "directory": ("<dir>", "cannot read parameters file {path}: is a directory, not a regular file"),
}


def _params_file(tmp_path: Path, content: str | None) -> Path:
    path = tmp_path / "params.yaml"
    if content == "<dir>":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    return path


@pytest.mark.parametrize("case", list(BAD_PARAMS_FILES))
def test_a_bad_params_file_is_one_line_and_exit_2(case, tmp_path, small_bag, capsys):
    content, expected = BAD_PARAMS_FILES[case]
    path = _params_file(tmp_path, content)
    expected = expected.format(path=path)
    node_proc = start_node("--params-file", str(path))
    from fer_ros.cli import bag as fer_bag

    capsys.readouterr()
    assert fer_bag.main(["evaluate", str(small_bag), "--out", str(tmp_path / "eval"), "-q",
                         "--params-file", str(path)]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err, err

    node = finish(node_proc)
    assert node.returncode == 2
    lines = (node.stdout + node.stderr).splitlines()
    assert len(lines) == 1 and lines[0].startswith("emotion_node: ") and expected in lines[0], lines


def test_a_malformed_ros_argument_is_one_line_and_exit_2():
    node = run_node("-p", "ssd_threshold")
    assert node.returncode == 2
    assert node.stderr.splitlines() == [
        "emotion_node: invalid ROS arguments: Couldn't parse parameter override rule: "
        "'-p ssd_threshold'. Error: Expected lexeme type (22) not found, search ended at index 13"]


def test_a_misspelt_parameter_is_a_warning_naming_the_closest_real_names(tmp_path, small_bag,
                                                                        capsys):
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    trackin: false\n    use_sim_time: false\n")
    proc = subprocess.Popen([sys.executable, "-m", "fer_ros.node.emotion_node", "--ros-args",
                             "-p", "autostart:=false", "-p", "detector_treshold:=0.9",
                             "--params-file", str(params)], env=child_env(), cwd=str(REPO_ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:  # the warnings come during start-up; then stop the node
            lines.append(line)
            if "trackin" in line:
                break
        proc.send_signal(2)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    warned = [line for line in output.splitlines() if "unknown parameter" in line]
    assert len(warned) == 2 and all("[WARN]" in line for line in warned), output
    assert warned[0].endswith("unknown parameter 'detector_treshold' ignored (did you mean "
                              "'detector_threads' or 'yunet_threshold'?)")
    assert warned[1].endswith("unknown parameter 'trackin' ignored (did you mean 'tracking'?)")
    assert "use_sim_time" not in output and "Traceback" not in output

    from fer_ros.evaluation.node_params import check_node_params

    capsys.readouterr()
    assert check_node_params(["ssd_treshold:=0.9", "detector:=yunet"], [str(params)]) == [
        "unknown parameter 'ssd_treshold' ignored (did you mean 'ssd_threshold' or 'nms_threshold'?)",
        "unknown parameter 'trackin' ignored (did you mean 'tracking'?)"]
    assert capsys.readouterr().err.splitlines()[0] == (
        "fer-bag evaluate: warning: unknown parameter 'ssd_treshold' ignored (did you mean "
        "'ssd_threshold' or 'nms_threshold'?)")
    from fer_ros.cli import bag as fer_bag

    assert fer_bag.main(["evaluate", str(small_bag), "--out", str(tmp_path / "e"), "-q",
                         "-p", "detector"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["fer-bag evaluate: -p 'detector': expected NAME:=VALUE "
                                "(e.g. -p detector:=yunet)"]


def test_any_exception_while_configuring_is_one_line_with_its_type(tmp_path, capsys, monkeypatch):
    """Not only the package's own errors: an OSError from a hostile FER_MODEL_DIR (a path
    component over 255 characters) is one line naming its type, from the node and fer-detect."""
    from fer_ros.core.errors import ModelError, one_line_error

    assert one_line_error(ValueError("two\nlines")) == "ValueError: two lines"
    assert one_line_error(ModelError("own  message")) == "own message"
    model_dir = str(tmp_path / ("d" * 300))
    expected = "OSError: [Errno 36] File name too long"
    proc = subprocess.Popen([sys.executable, "-m", "fer_ros.node.emotion_node", "--ros-args",
                             "-p", "detector:=yunet"], env=child_env(FER_MODEL_DIR=model_dir),
                            cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    node = finish(proc)
    assert node.returncode == 2
    line = assert_one_line(node.stdout + node.stderr, expected)
    assert "configure failed: OSError: " in line

    from fer_ros.cli.detect import main as fer_detect

    monkeypatch.setenv("FER_MODEL_DIR", model_dir)
    capsys.readouterr()
    assert fer_detect(["--detector", "yunet", str(SAMPLE)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(f"fer-detect: error: {expected}")


PARAMS_FILE_LAYOUTS = {  # content: what rcl itself does with it (checked below as well)
    "/**:\n  ros__parameters:\n    ssd_threshold: 0.7\n    ids: []\n": True,
    "/robot1:\n  emotion_node:\n    ros__parameters:\n      detector: yunet\n": True,
    ("/**:\n  ros__parameters:\n    qos_overrides:\n      /image_raw:\n        subscription:\n"
     "          reliability: reliable\n"): True,
    "/**:\n  ros__parameters:\n    mixed: [1, 2.5]\n": False,
    "/**:\n  ros__parameters:\n    empty:\n": False,
    "/**:\n  ssd_threshold: 0.5\n": False,
}


@pytest.mark.parametrize("content", list(PARAMS_FILE_LAYOUTS))
def test_params_file_check_agrees_with_rcl(content, tmp_path):
    """check_params_file accepts what rcl accepts and refuses (in one line) what it refuses."""
    import rclpy

    from fer_ros.core.errors import ConfigError
    from fer_ros.params import check_params_file

    path = tmp_path / "p.yaml"
    path.write_text(content)
    context = rclpy.Context()
    try:
        rclpy.init(args=["probe", "--ros-args", "--params-file", str(path)], context=context)
        rcl_accepts = True
    except Exception:
        rcl_accepts = False
    finally:
        if context.ok():
            rclpy.shutdown(context=context)
    assert rcl_accepts == PARAMS_FILE_LAYOUTS[content]
    if rcl_accepts:
        check_params_file(path)
    else:
        with pytest.raises(ConfigError) as err:
            check_params_file(path)
        assert "\n" not in str(err.value) and str(path) in str(err.value)
