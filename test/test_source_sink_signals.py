"""``image_source`` and ``result_sink`` (started as ``ros2 run`` starts them) stop on SIGINT and
SIGTERM as the emotion node does: exit code 0, no traceback, no RCLError. The signal lands at a
random moment (seeded) once the process is up: while it publishes, sleeps between frames or
waits for subscribers; or during the imports, before the node exists. Four processes run at a
time to keep the test short."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")

from ament_index_python.packages import get_package_prefix  # noqa: E402

from conftest import SHARED_DIR, child_env  # noqa: E402

VIDEO = SHARED_DIR / "samples" / "fer_woman2.mp4"
BAD = re.compile(r"Traceback|RCLError|\bERROR\b|Segmentation fault|Aborted")
AT_ONCE = 4

# A test run started with SIGINT ignored (a background job of a script) would hand that on to
# the children, which rightly keep ignoring it; the signals tested here need it handled.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _command(name: str, tmp_path, i: int) -> list[str]:
    exe = os.path.join(get_package_prefix("fer_ros"), "lib", "fer_ros", name)
    if name == "image_source":
        params = [f"input:={VIDEO}", "fps:=30.0", "width:=640", "height:=480", "loop:=true",
                  f"reliable:={'true' if i % 2 else 'false'}"]
    else:
        params = [f"out_dir:={tmp_path / f'sink{i}'}"]
    args = [exe, "--ros-args", "-r", f"__node:={name}_{i}"]
    for p in params:
        args += ["-p", p]
    return args


def _up(proc: subprocess.Popen, ready: str | Path) -> str:
    """Waits until the process is up: it printed ``ready``, or the file ``ready`` exists."""
    lines, deadline = [], time.monotonic() + 90
    while time.monotonic() < deadline:
        if isinstance(ready, Path):
            if ready.is_file():
                return ""
            time.sleep(0.05)
            continue
        line = proc.stdout.readline()
        lines.append(line)
        if not line or ready in line:
            break
    assert isinstance(ready, Path) or ready in lines[-1], "".join(lines)
    return "".join(lines)


def _storm(name: str, tmp_path, signals: list[signal.Signals], ready, seed: int) -> None:
    rng = random.Random(seed)
    failures = []
    env = child_env()
    for start in range(0, len(signals), AT_ONCE):
        batch = []
        for i, sig in enumerate(signals[start:start + AT_ONCE], start):
            proc = subprocess.Popen(_command(name, tmp_path, i), env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            batch.append((i, sig, proc))
        heads = {}
        for i, sig, proc in batch:
            heads[i] = _up(proc, ready(i) if callable(ready) else ready)
            time.sleep(rng.uniform(0.0, 1.0))
            proc.send_signal(sig)
        for i, sig, proc in batch:
            try:
                out, _ = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            out = heads[i] + out
            if proc.returncode != 0 or BAD.search(out):
                failures.append(f"run {i} {sig.name}: exit {proc.returncode}\n{out[-1500:]}")
    assert not failures, "\n".join(failures)


@pytest.mark.skipif(not VIDEO.is_file(), reason="../shared/samples is absent")
def test_image_source_exits_cleanly_on_10_sigterms_and_10_sigints(tmp_path):
    signals = [signal.SIGTERM, signal.SIGINT] * 10
    _storm("image_source", tmp_path, signals, "publishing", seed=26)


def test_result_sink_exits_cleanly_on_sigterm_and_sigint_and_writes_its_summary(tmp_path):
    signals = [signal.SIGTERM, signal.SIGINT] * 2
    _storm("result_sink", tmp_path, signals, lambda i: tmp_path / f"sink{i}" / "results.jsonl",
           seed=27)
    for i in range(len(signals)):
        assert (tmp_path / f"sink{i}" / "summary.json").is_file()


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (Python has none by default)."""
    with open(f"/proc/{pid}/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    return bool(mask >> (signal.SIGTERM - 1) & 1)


def _rclpy_loaded(pid: int) -> bool:
    with open(f"/proc/{pid}/maps") as f:
        return "_rclpy_pybind11" in f.read()


@pytest.mark.parametrize("name, sig", [("image_source", signal.SIGINT),
                                       ("result_sink", signal.SIGTERM)])
def test_a_stop_signal_during_the_imports_exits_0_at_once(tmp_path, name, sig):
    """The console script takes the stop signals over before importing the node (OpenCV,
    rclpy: about a second): a signal then ends it with 0 and no KeyboardInterrupt traceback."""
    proc = subprocess.Popen(_command(name, tmp_path, 0), env=child_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while proc.poll() is None and not _catches_sigterm(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.002)
    importing = proc.poll() is None and not _rclpy_loaded(proc.pid)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=20)
    assert importing, "the stop signals were taken over only after rclpy was loaded"
    assert proc.returncode == 0 and not BAD.search(out), out
