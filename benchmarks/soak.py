"""Soak test of the emotion node: a camera-like stream for minutes, then the numbers.

Starts ``python -m fer_ros.node.emotion_node`` as a child process, publishes W x H bgr8
sensor_msgs/Image at RATE Hz (best effort, like a camera driver; the input, default
../shared/samples/fer_woman2.mp4, is looped and letterboxed; each frame is stamped with the
wall clock) for SECONDS, and prints:
  answered ratio       EmotionArray answers / frames published (latest frame wins: the node
                       answers what it can and skips the rest)
  latency              answer arrival - publish time of the answered frame: p50 / p95 / max
  RSS                  the node's VmRSS 10 s in (start), at the end, and the maximum seen
  node counters        from its /diagnostics: received, processed, skipped, bad, errors,
                       processing time p50 / p95
A final line repeats everything as JSON. Exit status 1 if the node died.

Usage: .venv/bin/python benchmarks/soak.py [--seconds 300] [--rate 30] [--width 640]
       [--height 480] [--input VIDEO_OR_IMAGE] [--node-arg NAME:=VALUE ...]
Uses a random ROS_DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and
config/fastdds_large_images.xml (set before rclpy starts, inherited by the node).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

REPO_ROOT = Path(__file__).resolve().parents[1]
PROFILE = REPO_ROOT / "config" / "fastdds_large_images.xml"
SHARED_DIR = Path(os.environ.get("FER_SHARED_DIR", REPO_ROOT.parent / "shared"))
WARMUP_S = 10.0  # RSS "start" is taken this long after publishing begins


def ros_environment() -> None:
    """Isolated, localhost-only Fast DDS with the large-image profile, for us and the node."""
    os.environ.update(
        ROS_DOMAIN_ID=os.environ.get("FER_SOAK_ROS_DOMAIN_ID",
                                     str(random.SystemRandom().randint(1, 101))),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        FASTRTPS_DEFAULT_PROFILES_FILE=str(PROFILE), FASTDDS_DEFAULT_PROFILES_FILE=str(PROFILE))
    os.environ.pop("ROS_LOCALHOST_ONLY", None)
    ament = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join([sys.prefix] + [p for p in ament
                                                                       if p != sys.prefix])


def status_mb(pid: int, key: str) -> float:
    """A /proc/PID/status memory value (VmRSS, VmHWM, ...) in MB; NaN if absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    return status_mb(pid, "VmRSS")


def stop_node(node: "subprocess.Popen[str]", timeout: float = 15.0) -> str:
    """SIGTERM the node process if it still runs, wait (kill after ``timeout``); its stderr
    if that was piped, else ""."""
    if node.poll() is None:
        node.terminate()
    try:
        _, err = node.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        node.kill()
        _, err = node.communicate()
    return err or ""


def looped_frames(source: str, width: int, height: int) -> Iterator[Any]:
    """The input's frames letterboxed to width x height, forever."""
    from fer_ros.core.frame_reader import FrameReader, letterbox

    reader = FrameReader(source)
    while True:
        count = 0
        for frame in reader.frames():
            count += 1
            yield letterbox(frame, width, height)
        if count == 0:
            sys.exit(f"soak: no frames in {source}")


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def start_node(node_args: list[str]) -> "subprocess.Popen[str]":
    """The emotion node as a child process, ``NAME:=VALUE`` parameters, stderr piped."""
    params = [a for pair in node_args for a in ("-p", pair)]
    return subprocess.Popen([sys.executable, "-m", "fer_ros.node.emotion_node", "--ros-args",
                             *params], cwd=str(REPO_ROOT), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def watch_diagnostics(me: Any) -> dict[str, str]:
    """A dict that always holds the node's latest /diagnostics values (plus level, message)."""
    from diagnostic_msgs.msg import DiagnosticArray

    diag: dict[str, str] = {}

    def on_diag(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "fer_ros: /emotion_node":
                diag.clear()
                diag.update({kv.key: kv.value for kv in status.values},
                            level=str(status.level[0]), message=status.message)

    me.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    return diag


def wait_for_node(me: Any, pub: Any, diag: dict[str, str], node: "subprocess.Popen[str]",
                  timeout: float, who: str) -> None:
    """Spin until the node subscribes to ``pub``'s topic and reports diagnostics (it loads
    its models first); exit with its stderr if it dies, or after ``timeout`` seconds."""
    import rclpy

    deadline = time.monotonic() + timeout
    while (pub.get_subscription_count() < 1 or not diag) and time.monotonic() < deadline:
        if node.poll() is not None:
            sys.exit(f"{who}: the node exited with {node.returncode}: {node.stderr.read()[-2000:]}")
        rclpy.spin_once(me, timeout_sec=0.1)
    if pub.get_subscription_count() < 1:
        sys.exit(f"{who}: the node did not subscribe within {timeout:g} s")


def stream(me: Any, pub: Any, node: "subprocess.Popen[str]",
           args: argparse.Namespace) -> dict[str, Any]:
    """Publish the looped input at ``args.rate`` for ``args.seconds``, stamped with the wall
    clock; sample the node's RSS every 5 s from WARMUP_S on."""
    import rclpy
    from std_msgs.msg import Header

    from fer_ros.node.conversions import bgr_to_image

    frames = looped_frames(args.input, args.width, args.height)
    header = Header(frame_id="soak_camera")
    published: dict[tuple[int, int], float] = {}
    rss_series: list[float] = []
    start = time.monotonic()
    next_rss = start + WARMUP_S
    i = 0
    while (now := time.monotonic()) - start < args.seconds and node.poll() is None:
        due = start + i / args.rate
        if now < due:
            rclpy.spin_once(me, timeout_sec=min(due - now, 0.005))
            continue
        if now - due > 2 / args.rate:  # fell behind: skip ahead rather than burst
            i = int((now - start) * args.rate)
        stamp = time.time()
        header.stamp.sec, header.stamp.nanosec = int(stamp), int((stamp % 1) * 1e9)
        pub.publish(bgr_to_image(next(frames), header))
        published[(header.stamp.sec, header.stamp.nanosec)] = time.monotonic()
        i += 1
        if now >= next_rss:
            rss_series.append(rss_mb(node.pid))
            next_rss += 5.0
    return {"published": published, "rss_series": rss_series, "start": start,
            "end": time.monotonic()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    ros_environment()
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from fer_msgs.msg import EmotionArray

    node = start_node(args.node_arg)
    rclpy.init(args=[])
    me = rclpy.create_node("fer_soak")
    answers: list[tuple[tuple[int, int], float, int]] = []

    def on_answer(msg: EmotionArray) -> None:
        answers.append(((msg.header.stamp.sec, msg.header.stamp.nanosec), time.monotonic(),
                        len(msg.emotions)))

    pub = me.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    me.create_subscription(EmotionArray, "emotions", on_answer,
                           QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    diag = watch_diagnostics(me)
    try:
        wait_for_node(me, pub, diag, node, 120.0, "soak")  # model loading on a busy machine
        fed = stream(me, pub, node, args)
        fed["streaming"] = dict(diag)  # the health while fed (the last message before stopping)
        settle = fed["end"] + 3.0  # the answer to the last frame(s), and one more diagnostics
        while time.monotonic() < settle:
            rclpy.spin_once(me, timeout_sec=0.05)
        alive = node.poll() is None
        rss_end = rss_mb(node.pid) if alive else float("nan")
    finally:
        err = stop_node(node)
        me.destroy_node()
        rclpy.shutdown()
    return summary(args, fed, answers, diag, rss_end, alive, err)


def summary(args: argparse.Namespace, fed: dict[str, Any], answers: list, diag: dict[str, str],
            rss_end: float, alive: bool, err: str) -> dict[str, Any]:
    """The soak's numbers (see the module docstring)."""
    import numpy as np

    published, start, end, streaming = fed["published"], fed["start"], fed["end"], fed["streaming"]
    rss_series = fed["rss_series"]
    rss_start = rss_series[0] if rss_series else float("nan")
    rss_max = max(rss_series + [rss_end]) if rss_series else rss_end
    answered = [(key, t, n) for key, t, n in answers if key in published]
    latencies = [t - published[key] for key, t, _ in answered]
    return {
        "seconds": round(end - start, 1), "rate_hz": args.rate,
        "size": f"{args.width}x{args.height}", "input": Path(args.input).name,
        "published": len(published), "published_hz": round(len(published) / (end - start), 1),
        "answered": len(answered),
        "answered_ratio": round(len(answered) / max(1, len(published)), 3),
        "answered_hz": round(len(answered) / (end - start), 2),
        "latency_ms": {"p50": round(1000 * percentile(latencies, 50), 1),
                       "p95": round(1000 * percentile(latencies, 95), 1),
                       "max": round(1000 * max(latencies), 1) if latencies else float("nan"),
                       "max_at_s": round(answered[int(np.argmax(latencies))][1] - start, 1)
                       if latencies else float("nan")},
        "faces_per_answer": round(sum(n for *_, n in answered) / max(1, len(answered)), 2),
        "rss_mb": {"start": round(rss_start, 1), "end": round(rss_end, 1), "max": round(rss_max, 1)},
        "node": {**{k: diag.get(k) for k in ("frames_received", "frames_processed",
                                             "frames_skipped", "frames_bad", "errors")},
                 # processing times of the last window while fed (not of the idle tail)
                 **{k: streaming.get(k) for k in ("processing_ms_p50", "processing_ms_p95")}},
        "node_status_while_fed": f"level {streaming.get('level')}: {streaming.get('message')}",
        "node_alive": alive,
        "node_stderr_errors": sum("ERROR" in line for line in err.splitlines()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="how long to publish")
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--input", default=str(SHARED_DIR / "samples" / "fer_woman2.mp4"),
                        help="video, image or image folder (looped)")
    parser.add_argument("--node-arg", action="append", default=[], metavar="NAME:=VALUE",
                        help="a node parameter (repeatable)")
    args = parser.parse_args()
    if not Path(args.input).exists():
        sys.exit(f"soak: input {args.input} not found (pass --input, or put ../shared beside the repo)")
    r = run(args)
    print_report(r)
    return 0 if r["node_alive"] else 1


def print_report(r: dict[str, Any]) -> None:
    lat, rss, n = r["latency_ms"], r["rss_mb"], r["node"]
    print(f"soak: {r['seconds']} s of {r['size']} bgr8 at {r['rate_hz']:g} Hz ({r['input']} looped)")
    print(f"published {r['published']} ({r['published_hz']} Hz), answered {r['answered']} "
          f"(ratio {r['answered_ratio']}, {r['answered_hz']} Hz, {r['faces_per_answer']} faces each)")
    print(f"latency p50 {lat['p50']} ms, p95 {lat['p95']} ms, max {lat['max']} ms "
          f"(at {lat['max_at_s']} s)")
    print(f"RSS start ({WARMUP_S:g} s) {rss['start']} MB, end {rss['end']} MB, max {rss['max']} MB")
    print(f"node: received {n['frames_received']}, processed {n['frames_processed']}, skipped "
          f"{n['frames_skipped']}, bad {n['frames_bad']}, errors {n['errors']}, processing p50 "
          f"{n['processing_ms_p50']} ms p95 {n['processing_ms_p95']} ms; alive {r['node_alive']}, "
          f"ERROR log lines {r['node_stderr_errors']}; diagnostics while fed: "
          f"{r['node_status_while_fed']}")
    print(json.dumps(r))


if __name__ == "__main__":
    sys.exit(main())
