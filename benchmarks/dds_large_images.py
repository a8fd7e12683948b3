"""Large images over Fast DDS between two processes, with and without config/fastdds_large_images.xml.

Publishes W x H bgr8 sensor_msgs/Image at RATE Hz from one process to a subscriber in another
(QoS qos_profile_sensor_data = best effort, or --reliable) and prints, per setting, frames
delivered / sent and the mean / p95 latency (header stamp to callback, same machine clock).

Usage: .venv/bin/python benchmarks/dds_large_images.py [--frames 300] [--rate 30]
       [--width 640] [--height 480] [--reliable] [--runs 1]
Each run uses a fresh random ROS_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST.
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

PROFILE = Path(__file__).resolve().parents[1] / "config" / "fastdds_large_images.xml"
PROFILE_VARS = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
TOPIC = "fer_bench/image"


def qos(reliable: bool):
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    if reliable:
        return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    return qos_profile_sensor_data


def run_publisher(args: argparse.Namespace) -> None:
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init(args=[])
    node = rclpy.create_node("fer_bench_image_publisher")
    pub = node.create_publisher(Image, TOPIC, qos(args.reliable))
    deadline = time.monotonic() + 20.0
    while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    if pub.get_subscription_count() < 1:
        sys.exit("publisher: no subscriber matched within 20 s")
    time.sleep(1.0)  # the subscriber side matches this writer a moment later
    msg = Image()
    msg.height, msg.width, msg.encoding, msg.step = args.height, args.width, "bgr8", args.width * 3
    msg.data = np.random.default_rng(0).integers(0, 255, args.width * args.height * 3, np.uint8).tobytes()
    start = time.monotonic()
    for i in range(args.frames):
        now = time.time()
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), int((now % 1) * 1e9)
        msg.header.frame_id = str(i)
        pub.publish(msg)
        time.sleep(max(0.0, start + (i + 1) / args.rate - time.monotonic()))
    time.sleep(1.0)
    rclpy.shutdown()


def run_subscriber(args: argparse.Namespace) -> None:
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init(args=[])
    node = rclpy.create_node("fer_bench_image_subscriber")
    latencies: dict[str, float] = {}

    def on_image(msg: Image) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        latencies.setdefault(msg.header.frame_id, time.time() - stamp)

    sub = node.create_subscription(Image, TOPIC, on_image, qos(args.reliable))
    deadline = time.monotonic() + args.frames / args.rate + 30.0
    matched = False
    while time.monotonic() < deadline and len(latencies) < args.frames:
        rclpy.spin_once(node, timeout_sec=0.05)
        if sub.get_publisher_count() > 0:
            matched = True
        elif matched:  # the publisher has finished and left
            break
    print(json.dumps(sorted(latencies.values())), flush=True)
    rclpy.shutdown()


def measure(args: argparse.Namespace, with_profile: bool) -> dict[str, float]:
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(random.SystemRandom().randint(1, 101)),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", RMW_IMPLEMENTATION="rmw_fastrtps_cpp")
    env.pop("ROS_LOCALHOST_ONLY", None)
    for var in PROFILE_VARS:
        if with_profile:
            env[var] = str(PROFILE)
        else:
            env.pop(var, None)
    common = [f"--frames={args.frames}", f"--rate={args.rate}", f"--width={args.width}",
              f"--height={args.height}"] + (["--reliable"] if args.reliable else [])
    me = [sys.executable, __file__]
    sub = subprocess.Popen(me + ["--role=sub"] + common, env=env, stdout=subprocess.PIPE, text=True)
    pub = subprocess.Popen(me + ["--role=pub"] + common, env=env)
    pub.wait()
    out, _ = sub.communicate(timeout=60)
    if pub.returncode != 0 or sub.returncode != 0:
        sys.exit(f"benchmark child failed (publisher {pub.returncode}, subscriber {sub.returncode})")
    lat = json.loads(out.strip().splitlines()[-1])
    return {
        "delivered": len(lat),
        "mean_ms": 1000 * sum(lat) / len(lat) if lat else float("nan"),
        "p95_ms": 1000 * lat[int(0.95 * (len(lat) - 1))] if lat else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["main", "pub", "sub"], default="main", help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--reliable", action="store_true", help="RELIABLE instead of sensor-data QoS")
    parser.add_argument("--runs", type=int, default=1, help="runs per setting")
    args = parser.parse_args()
    if args.role == "pub":
        return run_publisher(args)
    if args.role == "sub":
        return run_subscriber(args)

    qos_name = "reliable" if args.reliable else "best_effort (qos_profile_sensor_data)"
    mb = args.width * args.height * 3 / 1e6
    print(f"{args.width}x{args.height} bgr8 ({mb:.2f} MB) at {args.rate:g} Hz, {args.frames} frames, {qos_name}")
    for with_profile in (False, True):
        name = "with fastdds_large_images.xml" if with_profile else "Fast DDS defaults            "
        for _ in range(args.runs):
            r = measure(args, with_profile)
            print(f"{name}: delivered {r['delivered']:4d}/{args.frames} "
                  f"({100 * r['delivered'] / args.frames:5.1f} %), latency mean {r['mean_ms']:6.1f} ms, "
                  f"p95 {r['p95_ms']:6.1f} ms", flush=True)


if __name__ == "__main__":
    main()
