"""Node memory with several publishers on its input topic (issue 14.4).

Starts ``python -m fer_ros.node.emotion_node`` and N publisher processes (default 3, each its
own DDS participant, like N cameras on one topic), each publishing a W x H bgr8 photo
(default ../shared/samples/fer_justin.jpg, letterboxed) at RATE Hz best effort, stamped with
the wall clock. Prints the node's VmRSS every EVERY seconds, from WARMUP seconds (default 10:
the first frames processed, buffers and pools filled) after all publishers run, its growth
since that first sample, the growth over the second half of the run (does it
level off?), the node's frame counters from /diagnostics, and a final JSON line.

Usage: .venv/bin/python benchmarks/multi_publisher_memory.py [--publishers 3] [--rate 30]
       [--seconds 300] [--every 30] [--warmup 10] [--width 640] [--height 480] [--input IMAGE]
       [--node-arg NAME:=VALUE ...]
The node's input QoS can be overridden as any ROS user would, e.g. the depth of 1 that leaks
with Fast DDS 2.14 (see docs/robustness.md):
       --node-arg qos_overrides./image_raw.subscription.depth:=1
With ``--bare-depth N`` a bare rclpy subscriber (best effort, KEEP_LAST N, its callback keeps
only the newest message, as the node's does) stands in for the node: the mechanism without
fer_ros.
Uses a random ROS_DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and
config/fastdds_large_images.xml in every process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak import (REPO_ROOT, SHARED_DIR, ros_environment, rss_mb, start_node,  # noqa: E402
                  stop_node, wait_for_node, watch_diagnostics)

PUBLISHER = r"""
import sys, time
import cv2, rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from fer_ros.node.conversions import bgr_to_image
from fer_ros.core.frame_reader import letterbox

path, width, height, rate, index = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
rclpy.init(args=[])
node = rclpy.create_node(f"fer_camera_{index}")
pub = node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
msg = bgr_to_image(letterbox(cv2.imread(path), width, height), Header(frame_id=f"camera_{index}"))
print("ready", flush=True)
due = time.monotonic()
try:
    while rclpy.ok():
        now = time.monotonic()
        if now < due:
            rclpy.spin_once(node, timeout_sec=due - now)
            continue
        due = max(due + 1.0 / rate, now - 1.0 / rate)
        stamp = time.time()
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int((stamp % 1) * 1e9)
        pub.publish(msg)
except Exception:  # SIGTERM at the end of the benchmark
    pass
"""


BARE_SUBSCRIBER = r"""
import sys, rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

rclpy.init(args=[])
node = rclpy.create_node("emotion_node")
latest, count = [None], [0]

def on_image(msg):
    latest[0] = msg
    count[0] += 1

def report():
    status = DiagnosticStatus(name="fer_ros: /emotion_node", values=[
        KeyValue(key="frames_received", value=str(count[0])), KeyValue(key="frames_processed", value="0"),
        KeyValue(key="input_rate_hz", value="-")])
    pub.publish(DiagnosticArray(status=[status]))

qos = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST, depth=int(sys.argv[1]))
node.create_subscription(Image, "image_raw", on_image, qos)
pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
node.create_timer(1.0, report)
try:
    rclpy.spin(node)
except BaseException:  # SIGTERM at the end of the benchmark
    pass
"""


def input_depth(me) -> str:
    """The node's input subscription depth: its qos_overrides parameter, else the built-in
    default (fer_ros.node.emotion_node.IMAGE_QUEUE_DEPTH)."""
    import rclpy
    from rcl_interfaces.msg import ParameterType
    from rcl_interfaces.srv import GetParameters

    client = me.create_client(GetParameters, "/emotion_node/get_parameters")
    try:
        if not client.wait_for_service(timeout_sec=30.0):
            return "unknown (no parameter service)"
        future = client.call_async(GetParameters.Request(
            names=["qos_overrides./image_raw.subscription.depth"]))
        rclpy.spin_until_future_complete(me, future, timeout_sec=30.0)
        value = future.result().values[0] if future.done() else None
        if value is not None and value.type == ParameterType.PARAMETER_INTEGER:
            return f"{value.integer_value} (its qos_overrides./image_raw.subscription.depth parameter)"
        from fer_ros.node.emotion_node import IMAGE_QUEUE_DEPTH

        return f"{IMAGE_QUEUE_DEPTH} (default)"
    finally:
        me.destroy_client(client)


def start_publishers(args: argparse.Namespace) -> list[subprocess.Popen]:
    """``args.publishers`` publisher processes, each started and ready."""
    publishers = [subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, args.input, str(args.width), str(args.height),
         str(args.rate), str(i)], cwd=str(REPO_ROOT), stdout=subprocess.PIPE, text=True)
        for i in range(args.publishers)]
    for p in publishers:
        if p.stdout.readline().strip() != "ready":
            sys.exit("bench: a publisher did not start")
    return publishers


def sample_memory(me, node: subprocess.Popen, diag: dict[str, str],
                  args: argparse.Namespace) -> list[tuple[float, float]]:
    """(seconds, node RSS MB) every ``args.every`` s from ``args.warmup`` s on, printed as
    they come, until ``args.seconds`` or the node exits."""
    import rclpy

    series: list[tuple[float, float]] = []
    start = time.monotonic() + args.warmup
    next_sample = start
    while node.poll() is None:
        now = time.monotonic()
        if now >= next_sample:
            t = now - start
            rss = rss_mb(node.pid)
            series.append((t, rss))
            growth = rss - series[0][1]
            print(f"t={t:5.0f} s  node RSS {rss:7.1f} MB  ({growth:+6.1f} MB)  received "
                  f"{diag.get('frames_received')}  processed {diag.get('frames_processed')}  "
                  f"input {diag.get('input_rate_hz')} Hz", flush=True)
            if t >= args.seconds - 0.5:
                break
            next_sample += args.every
        rclpy.spin_once(me, timeout_sec=min(0.1, max(0.0, next_sample - time.monotonic())))
    return series


def stop_publishers(publishers: list[subprocess.Popen]) -> None:
    for p in publishers:
        p.terminate()
    for p in publishers:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def run(args: argparse.Namespace) -> dict:
    ros_environment()
    import rclpy
    from sensor_msgs.msg import Image

    if args.bare_depth:
        node = subprocess.Popen([sys.executable, "-c", BARE_SUBSCRIBER, str(args.bare_depth)],
                                cwd=str(REPO_ROOT), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    else:
        node = start_node(args.node_arg)
    publishers: list[subprocess.Popen] = []
    rclpy.init(args=[])
    me = rclpy.create_node("fer_memory_bench")
    diag = watch_diagnostics(me)
    probe = me.create_publisher(Image, "image_raw", 1)  # only to see the node subscribe
    try:
        wait_for_node(me, probe, diag, node, 180.0, "bench")  # model loading on a busy machine
        me.destroy_publisher(probe)
        depth = (f"{args.bare_depth} (bare rclpy subscriber)" if args.bare_depth
                 else input_depth(me))
        print(f"node input QoS depth: {depth}", flush=True)
        publishers = start_publishers(args)
        series = sample_memory(me, node, diag, args)
        alive = node.poll() is None
    finally:
        stop_publishers(publishers)
        err = stop_node(node)
        me.destroy_node()
        rclpy.shutdown()

    half = [rss for t, rss in series if t >= series[-1][0] / 2] if series else []
    return {
        "publishers": args.publishers, "rate_hz": args.rate, "size": f"{args.width}x{args.height}",
        "seconds": round(series[-1][0], 1) if series else 0.0,
        "node_args": args.node_arg, "node_input_depth": depth,
        "rss_mb": [round(r, 1) for _, r in series],
        "growth_mb": round(series[-1][1] - series[0][1], 1) if series else float("nan"),
        "growth_second_half_mb": round(half[-1] - half[0], 1) if half else float("nan"),
        "frames_received": diag.get("frames_received"),
        "frames_processed": diag.get("frames_processed"),
        "node_alive": alive,
        "node_stderr_errors": sum("ERROR" in line for line in err.splitlines()),
        "load_average": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishers", type=int, default=3)
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second, each")
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between RSS samples")
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds of publishing before the first RSS sample")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--input", default=str(SHARED_DIR / "samples" / "fer_justin.jpg"))
    parser.add_argument("--bare-depth", type=int, default=0, metavar="N",
                        help="a bare rclpy subscriber with depth N instead of the node")
    parser.add_argument("--node-arg", action="append", default=[], metavar="NAME:=VALUE",
                        help="a node parameter (repeatable)")
    result = run(parser.parse_args())
    print(json.dumps(result))
    return 0 if result["node_alive"] else 1


if __name__ == "__main__":
    sys.exit(main())
