"""``--help`` on every console script: usage and parameters on stdout, exit 0, no node started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import child_env
from fer_ros.node.node_help import ParamLine, help_text, wants_help

BIN = Path(sys.prefix) / "bin"
# script: parameter names its help must list ("" for the plain argparse tools)
NODES = {
    "emotion_node": ("detector", "input_transport", "classifier_model", "autostart"),
    "image_source": ("input", "fps", "transport", "max_frames"),
    "result_sink": ("out_dir", "record_video", "idle_timeout_s"),
}
TOOLS = ("fer-detect", "fer-models", "fer-bag", "fer-demo")


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / script), *args], cwd=cwd, env=child_env(),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("script", sorted(NODES))
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_node_help_prints_usage_and_parameters_and_starts_nothing(script, flag, tmp_path):
    result = _run(script, flag, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {script} [-h] [--ros-args")
    for name in NODES[script]:
        assert f"\n  {name} (" in result.stdout, name
    assert "ROS parameters" in result.stdout
    # no node: nothing logged, no output folder (result_sink makes ./out on start)
    assert result.stderr == ""
    assert list(tmp_path.iterdir()) == []


def test_emotion_node_help_shows_yaml_defaults_and_choices(tmp_path):
    out = _run("emotion_node", "--help", cwd=tmp_path).stdout
    from fer_ros import params

    defaults = params.load_defaults()
    assert f"  detector (string, default {defaults['detector']})" in out
    assert "(one of: raw, compressed)" in out
    assert f"  autostart (bool, default {str(defaults['autostart']).lower()})" in out


@pytest.mark.parametrize("script", TOOLS)
def test_tool_help_exits_zero(script, tmp_path):
    result = _run(script, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ")


def test_help_after_ros_args_belongs_to_ros():
    assert wants_help(["--help"])
    assert wants_help(["-h", "--ros-args", "-p", "input:=a.mp4"])
    assert not wants_help(["--ros-args", "-p", "input:=a.mp4", "--help"])
    assert not wants_help(["--ros-args", "-p", "out_dir:=-h"])
    assert not wants_help([])


def test_help_text_writes_defaults_as_ros_values():
    text = help_text("x", "Does x.", [ParamLine("on", True, "switch"), ParamLine("name", "", "n"),
                                      ParamLine("rate", 30.0, "r"), ParamLine("n", 3, "count")],
                     "x --ros-args -p on:=false")
    assert text.splitlines()[0].startswith("usage: x [-h]")
    assert "  on (bool, default true)\n      switch" in text
    assert "  name (string, default '')" in text
    assert "  rate (double, default 30.0)" in text
    assert "  n (integer, default 3)" in text
    assert text.endswith("example: x --ros-args -p on:=false\n")
