"""The emotion node as a child process of ``fer-bag evaluate`` (log captured to a file)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any

from ..ros_env import dds_env
from ..bag.errors import BagError, BagRunError

ACTIVE_LINE = "waiting for"  # logged by the node once active (image subscription created)
CONFIG_EXIT_CODE = 2  # the node refused a parameter, params file or model (one line said why)
REFUSAL_MARKERS = ("configure failed: ", "emotion_node: ")


class NodeProcess:
    """``python -m fer_ros.node.emotion_node --ros-args ...``; its stderr goes to ``log_path``."""

    def __init__(self, ros_args: list[str], log_path: Path) -> None:
        env = dds_env()
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "0")
        self.cmd = [sys.executable, "-m", "fer_ros.node.emotion_node", "--ros-args", *ros_args]
        self.log_path = log_path
        self.tail: deque[str] = deque(maxlen=20)
        self.active = threading.Event()
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(self.cmd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, name="node_log", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._log.write(line)
            self._log.flush()
            if line.strip():
                self.tail.append(line.strip())
            if ACTIVE_LINE in line:
                self.active.set()

    def check_alive(self) -> None:
        """Raises if the node has exited: BagError (exit code 2) with the node's own one-line
        reason when it refused its configuration (its exit code 2: a bad parameter, params
        file or model), else BagRunError with its last log line."""
        if self.proc.poll() is not None:
            self._reader.join(timeout=2.0)
            if self.proc.returncode == CONFIG_EXIT_CODE:
                raise BagError(f"the emotion node refused its configuration: {self.refusal()} "
                               f"(log: {self.log_path})")
            last = self.tail[-1] if self.tail else "no output"
            raise BagRunError(f"the emotion node exited with code {self.proc.returncode}: {last} "
                              f"(log: {self.log_path})")

    def refusal(self) -> str:
        """The node's reason for refusing its configuration: its "configure failed: ..." or
        "emotion_node: ..." line without the ROS log prefix (else its last line)."""
        for line in reversed(self.tail):
            for marker in REFUSAL_MARKERS:
                if marker in line:
                    return line[line.index(marker) + len(marker):].strip()
        return self.tail[-1] if self.tail else "no output"

    def stop(self, timeout: float = 10.0) -> None:
        """Ctrl-C (the node shuts down cleanly), then terminate, then kill."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=3.0)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self._reader.join(timeout=2.0)
        self._log.close()


def start_node(node_params: list[str], params_file: str | None, ns: str, compressed: bool,
               log: Path) -> NodeProcess:
    """The emotion node under namespace ``ns``, with these parameters."""
    args = ["-r", f"__ns:={ns}"]
    if compressed:
        args += ["-p", "input_transport:=compressed"]
    for p in node_params:
        args += ["-p", p]
    if params_file:
        args += ["--params-file", params_file]
    return NodeProcess(args, log)


def wait_ready(session: Any, publisher: Any, node: NodeProcess | None, image_name: str,
                emotions_topic: str, timeout: float) -> None:
    """Until the node subscribes to the images and publishes emotions; BagRunError if not."""
    ready = session.wait_until(
        lambda: (publisher.get_subscription_count() > 0
                 and session.node.count_publishers(emotions_topic) > 0),
        timeout, abort=node.check_alive if node else None)
    if not ready:
        what = "the emotion node started" if node else "no emotion node"
        raise BagRunError(
            f"{what} did not subscribe to {image_name} and publish {emotions_topic} within "
            f"{timeout:g} s" + (f" (log: {node.log_path})" if node else
                                ": start one, or drop --no-spawn"))
