"""Memory of the emotion node over lifecycle reconfigures: configure/cleanup N times over DDS.

Starts ``python -m fer_ros.node.emotion_node --ros-args -p autostart:=false`` as a child
process and drives it through the standard lifecycle service ``/emotion_node/change_state``
(lifecycle_msgs/srv/ChangeState, what ``ros2 lifecycle set`` calls) from an rclpy client in
this process: configure, cleanup, CYCLES times. Prints the node's VmRSS before the first
configure, after the first cycle (the baseline: allocators and lazy imports settled), every
10 cycles, and at the end, then the growth after the first cycle and per cycle. Target:
growth < 20 MB over 50 cycles. A final line repeats everything as JSON.

Usage: .venv/bin/python benchmarks/reconfigure_memory.py [--cycles 50] [--node-arg NAME:=VALUE ...]
       [--source DIR]   (run the node from another checkout's fer_ros, e.g. for a before/after)
Uses a random ROS_DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and
config/fastdds_large_images.xml, as benchmarks/soak.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from soak import ros_environment, rss_mb, stop_node  # noqa: E402

NODE = "/emotion_node"


def run(args: argparse.Namespace) -> dict[str, Any]:
    ros_environment()
    import rclpy
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    env = dict(os.environ)
    source = Path(args.source).resolve() if args.source else REPO_ROOT  # `-m` imports from cwd
    env["PYTHONPATH"] = os.pathsep.join([str(source), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    node_args = ["-p", "autostart:=false"] + [a for pair in args.node_arg for a in ("-p", pair)]
    log = tempfile.TemporaryFile(mode="w+")
    node = subprocess.Popen([sys.executable, "-m", "fer_ros.node.emotion_node", "--ros-args",
                             *node_args], cwd=str(source), env=env, stdout=subprocess.DEVNULL,
                            stderr=log, text=True)
    rclpy.init(args=[])  # not sys.argv: "--node-arg a:=b" would read as a remap rule
    me = rclpy.create_node("fer_reconfigure_memory")
    client = me.create_client(ChangeState, f"{NODE}/change_state")

    def change(transition_id: int, label: str) -> None:
        future = client.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
        rclpy.spin_until_future_complete(me, future, timeout_sec=120.0)
        if not future.done() or not future.result().success:
            log.seek(0)
            sys.exit(f"reconfigure_memory: {label} failed: {log.read()[-2000:]}")

    series: list[tuple[int, float]] = []
    try:
        deadline = time.monotonic() + 120.0
        while not client.wait_for_service(timeout_sec=0.5):
            if node.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                sys.exit(f"reconfigure_memory: no {NODE}/change_state: {log.read()[-2000:]}")
        time.sleep(1.0)
        series.append((0, rss_mb(node.pid)))
        print(f"unconfigured: RSS {series[-1][1]:.1f} MB", flush=True)
        t0 = time.monotonic()
        for cycle in range(1, args.cycles + 1):
            change(Transition.TRANSITION_CONFIGURE, f"configure {cycle}")
            change(Transition.TRANSITION_CLEANUP, f"cleanup {cycle}")
            if cycle in (1, 2, 5) or cycle % 10 == 0 or cycle == args.cycles:
                series.append((cycle, rss_mb(node.pid)))
                print(f"after {cycle:3d} configure/cleanup cycles: RSS {series[-1][1]:.1f} MB",
                      flush=True)
        seconds = time.monotonic() - t0
    finally:
        stop_node(node)
        me.destroy_node()
        rclpy.shutdown()
    first = dict(series)[1]
    end = series[-1][1]
    growth = end - first
    return {"cycles": args.cycles, "seconds": round(seconds, 1),
            "source": str(args.source or REPO_ROOT.name),
            "rss_mb": {str(c): round(v, 1) for c, v in series},
            "growth_after_first_cycle_mb": round(growth, 1),
            "growth_per_cycle_mb": round(growth / max(args.cycles - 1, 1), 2),
            "target_growth_mb": 20.0, "within_target": growth < 20.0,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--node-arg", action="append", default=[], metavar="NAME:=VALUE",
                        help="parameter for the node (repeatable)")
    parser.add_argument("--source", help="a checkout whose fer_ros the node runs from "
                                         "(PYTHONPATH), e.g. the previous version")
    args = parser.parse_args()
    result = run(args)
    print(f"RSS {result['rss_mb']['1']} -> {result['rss_mb'][str(args.cycles)]} MB over "
          f"{args.cycles - 1} more cycles: {result['growth_after_first_cycle_mb']:+.1f} MB "
          f"({result['growth_per_cycle_mb']:+.2f} MB/cycle; target < 20 MB over 50), "
          f"load average {result['load_average']}")
    print(json.dumps(result))
    return 0 if result["within_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
