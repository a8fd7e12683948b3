"""Two "hosts" on one machine for DDS tests: network namespaces joined by a veth pair.

Each side is a network namespace (its own interfaces: lo and one end of the veth, 10.231.0.x/24)
plus a mount namespace with a private tmpfs on /dev/shm, held open by a ``sleep`` process; every
process of a side is started inside both with ``nsenter``. So Fast DDS sees two hosts: its host
id (Fast DDS 2.x, src/cpp/utils/Host.hpp) hashes the host name and the IPv4 addresses, which
differ per side, and no shared-memory segment can be opened across sides, so camera frames
really cross the veth as UDP/TCP, as between two machines.

Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), ``ip`` and ``ss`` (iproute2), ``unshare`` and
``nsenter`` (util-linux); :func:`unavailable` says why not when they are missing. Only addresses inside the namespaces
made here are used; :meth:`TwoHosts.close` removes the namespaces (and with them the veth).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

SUBNET = "10.231.0.{}/24"
_COUNT = itertools.count()
SHM_SIZE = "256m"
# one line once the side's /dev/shm is mounted; the holder then sleeps until killed
_HOLDER = ("mount -t tmpfs -o size={size},mode=1777 fer_shm /dev/shm && echo ready "
           "&& exec sleep 86400")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def unavailable() -> str:
    """Why two hosts cannot be made here ("" when they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "unshare", "nsenter", "ss") if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    try:
        with TwoHosts("probe"):
            pass
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        err = getattr(exc, "stderr", "") or str(exc)
        return f"cannot make two network namespaces with their own /dev/shm: {err.strip()}"
    return ""


@dataclass
class Side:
    """One host: a network namespace name and the pid holding its mount namespace."""

    name: str
    address: str
    holder: subprocess.Popen[str] | None = None
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def shm_files(self) -> set[str]:
        """The names in this host's own /dev/shm."""
        assert self.holder is not None
        out = subprocess.run(["nsenter", f"--target={self.holder.pid}", "--mount", "--", "ls",
                              "-A", "/dev/shm"], capture_output=True, text=True, timeout=10)
        return set(out.stdout.split())

    def udp_receive_buffers(self) -> list[int]:
        """The receive buffer (bytes, as the kernel reports it: twice the setsockopt value) of
        every UDP socket on this host, from ``ss``."""
        assert self.holder is not None
        out = subprocess.run(["nsenter", f"--target={self.holder.pid}", "--net", "--", "ss",
                              "-uanm"], capture_output=True, text=True, timeout=10).stdout
        return [int(x) for x in re.findall(r"\brb(\d+)", out)]

    def popen(self, argv: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen[str]:
        """Start ``argv`` on this host (its network and its /dev/shm)."""
        assert self.holder is not None
        proc = subprocess.Popen(["nsenter", f"--target={self.holder.pid}", "--net", "--mount",
                                 "--", *argv], env=env, text=True, **kwargs)
        self.procs.append(proc)
        return proc


class TwoHosts:
    """``robot`` (10.231.0.1) and ``server`` (10.231.0.2), joined by a veth pair (MTU 1500)."""

    def __init__(self, tag: str = "") -> None:
        base = f"fer{tag}{os.getpid()}x{next(_COUNT)}"
        self.robot = Side(f"{base}r", SUBNET.format(1))
        self.server = Side(f"{base}s", SUBNET.format(2))

    def __enter__(self) -> TwoHosts:
        try:
            self._up()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _up(self) -> None:
        r, s = self.robot, self.server
        _ip("netns", "add", r.name)
        _ip("netns", "add", s.name)
        _ip("link", "add", "fer0", "netns", r.name, "mtu", "1500", "type", "veth",
            "peer", "name", "fer0", "netns", s.name, "mtu", "1500")
        for side in (r, s):
            _ip("-n", side.name, "addr", "add", side.address, "dev", "fer0")
            _ip("-n", side.name, "link", "set", "lo", "up")
            _ip("-n", side.name, "link", "set", "fer0", "up")
            # DDS discovery multicasts to 239.255.0.1: route it over the veth
            _ip("-n", side.name, "route", "add", "224.0.0.0/4", "dev", "fer0")
            side.holder = subprocess.Popen(
                ["ip", "netns", "exec", side.name, "unshare", "--mount", "--propagation",
                 "private", "sh", "-c", _HOLDER.format(size=SHM_SIZE)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert side.holder.stdout is not None
            line = side.holder.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"{side.name}: private /dev/shm failed: "
                                   f"{side.holder.stderr.read() if side.holder.stderr else ''}")

    def close(self) -> None:
        """Stop every process started here and remove both namespaces (and the veth)."""
        for side in (self.robot, self.server):
            for proc in side.procs + ([side.holder] if side.holder else []):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                try:
                    proc.communicate(timeout=5)
                except (subprocess.TimeoutExpired, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", side.name], capture_output=True, timeout=10)


def ros_args(params: dict) -> list[str]:
    """``--ros-args -p k:=v ...`` (bools as true/false)."""
    out = ["--ros-args"]
    for key, value in params.items():
        out += ["-p", f"{key}:={str(value).lower() if isinstance(value, bool) else value}"]
    return out


def _node(name: str) -> list[str]:
    return [sys.executable, "-m", f"fer_ros.node.{name}"]


# on the server: the node's last diagnostics values (frames received / skipped, processing
# time), printed as one JSON line on SIGTERM; tells transport losses from frames the node skipped
_DIAG_LISTENER = """
import json, signal, rclpy
from diagnostic_msgs.msg import DiagnosticArray
rclpy.init()
node, last = rclpy.create_node("fer_diag_listener"), {}
def keep(msg):
    for status in msg.status:
        if "emotion" in status.name:
            last.update({kv.key: kv.value for kv in status.values})
node.create_subscription(DiagnosticArray, "/diagnostics", keep, 10)
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda *a: (print(json.dumps(last), flush=True), exit(0)))
rclpy.spin(node)
"""


# the transport alone: answers every image at once with an empty EmotionArray carrying its
# header, and reports frames received like the emotion node's diagnostics (argv[1]: raw or
# compressed). A measuring instrument for benchmarks/offboard_transports.py, not a node of ours.
ECHO_NODE = """
import signal, sys, rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from fer_msgs.msg import EmotionArray
rclpy.init()
node, count = rclpy.create_node("fer_header_echo"), [0]
out = node.create_publisher(EmotionArray, "emotions", 10)
diag = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
def answer(msg):
    count[0] += 1
    out.publish(EmotionArray(header=msg.header))
def report():
    values = [KeyValue(key="frames_received", value=str(count[0])),
              KeyValue(key="frames_skipped", value="0")]
    diag.publish(DiagnosticArray(status=[DiagnosticStatus(name="emotion_echo", values=values)]))
compressed = sys.argv[1] == "compressed"
node.create_subscription(CompressedImage if compressed else Image,
                         "image_raw/compressed" if compressed else "image_raw", answer,
                         qos_profile_sensor_data)
node.create_timer(0.5, report)
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda *a: sys.exit(0))
print("header echo: waiting for images", file=sys.stderr, flush=True)
rclpy.spin(node)
"""


def _wait_line(proc: subprocess.Popen[str], pipe, text: str, timeout: float,
               seen: list[str]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([pipe], [], [], 0.2)
        if ready:
            line = pipe.readline()
            seen.append(line)
            if text in line:
                return True
    return False


def run_camera_to_server(robot: Side, server: Side, env: dict[str, str], video: str,
                         out_dir: str, frames: int, transport: str = "raw",
                         node_params: dict | None = None, fps: float = 30.0,
                         while_running: Callable[[], object] | None = None,
                         echo: bool = False) -> dict:
    """The off-board setup: emotion_node on ``server``; result_sink, then image_source
    (``frames`` of ``video`` letterboxed to 640x480 at ``fps``, ``transport`` raw or
    compressed) on ``robot`` (the same Side for a same-host run). Returns result_sink's summary
    plus ``frames_in`` (published), ``node`` (the node's last diagnostics values), ``results``
    (path of results.jsonl) and ``node_exit`` (its exit code; None if it had to be killed).
    ``while_running`` is called once all three run. With ``echo`` the server runs
    :data:`ECHO_NODE` instead of the emotion node (the transport alone). Raises RuntimeError
    with the logs when a process fails."""
    log: list[str] = []
    if echo:
        command = [sys.executable, "-c", ECHO_NODE, transport]
    else:
        command = _node("emotion_node") + ros_args(
            {"input_transport": transport, "diagnostics_period_s": 0.5, **(node_params or {})})
    node = server.popen(command, env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not _wait_line(node, node.stderr, "waiting for", 120, log):
        raise RuntimeError("emotion_node did not start:\n" + "".join(log))
    threading.Thread(target=lambda: [log.append(x) for x in node.stderr], daemon=True).start()
    diag = server.popen([sys.executable, "-c", _DIAG_LISTENER], env,
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    sink = robot.popen(_node("result_sink") + ros_args(
        {"out_dir": out_dir, "idle_timeout_s": 2.0, "record_video": False}), env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not _wait_line(sink, sink.stdout, "result_sink: ready", 60, log):
        raise RuntimeError("result_sink did not match the node across hosts:\n" + "".join(log))
    source = robot.popen(_node("image_source") + ros_args(
        {"input": video, "fps": fps, "width": 640, "height": 480, "max_frames": frames,
         "transport": transport, "wait_for_subscribers": 1}), env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if while_running is not None:
        while_running()
    src_out, src_err = source.communicate(timeout=frames / fps + 60)
    if source.returncode != 0:
        raise RuntimeError(f"image_source failed ({source.returncode}):\n{src_err}")
    sink_out, sink_err = sink.communicate(timeout=60)
    time.sleep(1.0)  # one more diagnostics period
    # SIGTERM, not SIGINT: a caller started in the background (``cmd &``) passes SIGINT ignored
    diag.send_signal(signal.SIGTERM)
    diag_out, _ = diag.communicate(timeout=20)
    node.send_signal(signal.SIGTERM)
    try:
        node_exit: int | None = node.wait(timeout=20)
    except subprocess.TimeoutExpired:  # reported, not raised: the run's numbers are in
        node.kill()
        node_exit = None
        print("two_hosts: emotion_node still running 20 s after SIGTERM; its log ends:\n"
              + "".join(log[-20:]), file=sys.stderr)
    summary = json.loads(sink_out.strip().splitlines()[-1])
    lines = diag_out.strip().splitlines()
    summary["node"] = json.loads(lines[-1]) if lines else {}
    summary["frames_in"] = int(src_out.strip().split()[-2])
    summary["results"] = os.path.join(out_dir, "results.jsonl")
    summary["node_exit"] = node_exit
    return summary
