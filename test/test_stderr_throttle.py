"""fer_ros.node.process.stderr_throttle: fd-2 lines of native code (type support's per-message
complaints) throttled, everything else passed on unchanged and in order, nothing lost at exit.
Each case runs in a child process, whose real stderr is the pipe the test reads."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import REPO_ROOT


def child_stderr(body: str) -> list[str]:
    code = "import os, sys, time\nfrom fer_ros.node.process import stderr_throttle\n" + textwrap.dedent(body)
    run = subprocess.run([sys.executable, "-c", code], cwd=str(REPO_ROOT), capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stderr.splitlines()


def test_repeated_type_support_lines_are_held_back_and_counted():
    lines = child_stderr("""
        assert stderr_throttle.install()
        for i in range(500):
            os.write(2, b"sequence size exceeds remaining buffer\\n")
            if i == 250:
                os.write(2, b"[WARN] [1.0] [emotion_node]: a log line\\n")
        time.sleep(0.5)
        print("held", stderr_throttle.held_back(), file=sys.stderr, flush=True)
        stderr_throttle.uninstall()
        """)
    cdr = [ln for ln in lines if "sequence size exceeds" in ln]
    assert cdr == ["sequence size exceeds remaining buffer"], lines
    assert "[WARN] [1.0] [emotion_node]: a log line" in lines
    assert "held 499" in lines
    assert lines[-1] == "fer_ros: 499 more repeated native stderr lines held back at exit"


def test_the_next_line_after_the_window_says_how_many_were_held():
    lines = child_stderr("""
        stderr_throttle.THROTTLE_S = 0.3
        stderr_throttle.install()
        for _ in range(20):
            os.write(2, b"sequence size exceeds remaining buffer\\n")
        time.sleep(0.6)
        os.write(2, b"sequence size exceeds remaining buffer\\n")
        time.sleep(0.3)
        stderr_throttle.uninstall()
        """)
    assert lines == ["sequence size exceeds remaining buffer",
                     "sequence size exceeds remaining buffer (+19 identical lines held back)"]


def test_message_without_newline_is_split_from_the_next_line():
    lines = child_stderr("""
        stderr_throttle.install()
        for _ in range(50):
            os.write(2, b"failed to create array for field 'data'")
        os.write(2, b"[ERROR] [2.0] [emotion_node]: real error\\n")
        stderr_throttle.uninstall()
        """)
    assert lines.count("failed to create array for field 'data'") == 1, lines
    assert "[ERROR] [2.0] [emotion_node]: real error" in lines


def test_other_output_passes_unchanged_in_order_and_a_traceback_survives_exit():
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent("""
            import os, sys
            from fer_ros.node.process import stderr_throttle
            stderr_throttle.install()
            for i in range(3):
                print(f"line {i}", file=sys.stderr)
            os.write(2, "partial ü".encode())
            os.write(2, b" end\\n")
            raise RuntimeError("boom")
            """)], cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert lines[:4] == ["line 0", "line 1", "line 2", "partial ü end"], lines
    assert "Traceback (most recent call last):" in lines and lines[-1] == "RuntimeError: boom"


def test_partial_line_is_passed_on_without_waiting_for_a_newline():
    lines = child_stderr("""
        stderr_throttle.install()
        os.write(2, b"no newline yet")
        time.sleep(stderr_throttle.PARTIAL_S * 3)
        os.write(2, b"\\n")
        stderr_throttle.uninstall()
        """)
    assert lines == ["no newline yet"]
