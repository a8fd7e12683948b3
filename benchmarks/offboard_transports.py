"""fer_ros off the robot: which DDS transport carries a 30 Hz 640x480 camera to the node on
another computer. Prints one table row per option (markdown), to choose from.

Two "hosts" on this machine (test/two_hosts.py, needs root): network namespaces joined by a veth
pair (robot 10.231.0.1, server 10.231.0.2), each with its own /dev/shm, discovery over the
subnet (ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET). On the robot: image_source (the video,
letterboxed to 640x480, at 30 Hz, best effort) and result_sink; on the server: emotion_node.
The first row runs all three on one host (today's ``make demo``) as the baseline.

Columns: frames the node answered (result_sink received) and frames that reached the node (its
diagnostics ``frames_received``: the transport's share; the difference are frames the node
skipped while busy, latest frame wins), latency image stamp -> result on the robot (p50, p95),
the node's processing time per frame, and the load average while the row ran. The node is a
CPU job: on a loaded machine "answered" and latency say more about the CPU than the transport.

Usage: sudo .venv/bin/python benchmarks/offboard_transports.py [--frames 464] [--runs 1]
       [--only NAME ...] [-p detector:=yunet ...] [--echo]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "test"))

from two_hosts import TwoHosts, run_camera_to_server, unavailable  # noqa: E402

VIDEO = REPO_ROOT.parent / "shared" / "samples" / "fer_woman2.mp4"
SHM_PROFILE = REPO_ROOT / "config" / "fastdds_large_images.xml"
OFFBOARD_PROFILE = REPO_ROOT / "config" / "fastdds_offboard.xml"
PROFILE_VARS = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")

# name: (row title, input transport, profile or None, FASTDDS_BUILTIN_TRANSPORTS or None, hosts)
OPTIONS = {
    "same_host_shm": ("same host, shipped SHM profile (`make demo`)", "raw", SHM_PROFILE, None, 1),
    "raw_defaults": ("raw, Fast DDS defaults (UDP)", "raw", None, None, 2),
    "raw_shm_profile": ("raw, shipped SHM profile on both sides", "raw", SHM_PROFILE, None, 2),
    "raw_large_data": ("raw, `FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA` (TCP)", "raw", None,
                       "LARGE_DATA", 2),
    "raw_large_data_4mb": ("raw, `LARGE_DATA?max_msg_size=1MB&sockets_size=4MB`", "raw", None,
                           "LARGE_DATA?max_msg_size=1MB&sockets_size=4MB", 2),
    "compressed_defaults": ("compressed (JPEG), Fast DDS defaults (UDP)", "compressed", None,
                            None, 2),
    "raw_offboard": ("raw, `fastdds_offboard.xml` on both sides", "raw", OFFBOARD_PROFILE, None, 2),
    "compressed_offboard": ("compressed, `fastdds_offboard.xml` on both sides", "compressed",
                            OFFBOARD_PROFILE, None, 2),
}


def option_env(profile: Path | None, builtin: str | None, hosts: int) -> dict[str, str]:
    """The environment of every process of one option (both sides alike)."""
    env = {k: v for k, v in os.environ.items()
           if k not in PROFILE_VARS and k != "FASTDDS_BUILTIN_TRANSPORTS"}
    env.update(PYTHONUNBUFFERED="1", RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
               ROS_DOMAIN_ID=str(random.randint(1, 100)),
               ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET" if hosts == 2 else "LOCALHOST")
    prefix = str(Path(sys.prefix))
    others = [p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p and p != prefix]
    env["AMENT_PREFIX_PATH"] = os.pathsep.join([prefix, *others])
    if profile is not None:
        env.update({k: str(profile) for k in PROFILE_VARS})
    if builtin is not None:
        env["FASTDDS_BUILTIN_TRANSPORTS"] = builtin
    return env


def run_option(name: str, args: argparse.Namespace) -> str:
    title, transport, profile, builtin, hosts = OPTIONS[name]
    load0 = os.getloadavg()[0]
    with TwoHosts("bench") as two, tempfile.TemporaryDirectory() as out:
        server = two.server if hosts == 2 else two.robot
        s = run_camera_to_server(two.robot, server, option_env(profile, builtin, hosts),
                                 str(args.video), out, args.frames, transport, args.node_params,
                                 echo=args.echo)
    load = (load0 + os.getloadavg()[0]) / 2
    n, node = s["frames_in"], s["node"]
    received = int(node.get("frames_received", 0))
    processing = (f"{float(node['processing_ms_p50']):.0f} ms" if "processing_ms_p50" in node
                  else "-")
    return (f"| {title} | {s['frames_out']} ({s['frames_out'] / n:.0%}) | "
            f"{received} ({received / n:.0%}) | {s['latency_ms']['p50']:.0f} / "
            f"{s['latency_ms']['p95']:.0f} ms | {processing} | {load:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=464, help="frames to publish (464 = the "
                        "whole fer_woman2.mp4)")
    parser.add_argument("--runs", type=int, default=1, help="rows per option")
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--only", nargs="+", choices=sorted(OPTIONS), help="these options only")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="emotion_node parameter, e.g. -p detector:=yunet")
    parser.add_argument("--echo", action="store_true", help="the transport alone: the server "
                        "answers each image at once with its header (no face work), so answered "
                        "and latency show what DDS delivers when the server's CPU keeps up")
    args = parser.parse_args()
    args.node_params = dict(p.split(":=", 1) for p in args.param)
    # SIGTERM unwinds through TwoHosts.__exit__: no namespace or process is left behind
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    why_not = unavailable()
    if why_not:
        print(f"offboard_transports: {why_not}", file=sys.stderr)
        return 2
    if not args.video.is_file():
        print(f"offboard_transports: {args.video}: no such video", file=sys.stderr)
        return 2
    server = ("header echo (the transport alone)" if args.echo
              else f"emotion_node, parameters {args.node_params or 'defaults'}")
    print(f"{args.frames} frames of {args.video.name}, 640x480 at 30 Hz; server: {server}; "
          f"{os.cpu_count()} CPUs\n")
    print(f"| image path robot -> server | frames answered of {args.frames} | reached the node "
          "| latency p50 / p95 | node processing p50 | load avg |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.only or OPTIONS:
        for _ in range(args.runs):
            t0 = time.monotonic()
            try:
                print(run_option(name, args), flush=True)
            except RuntimeError as exc:
                lines = [x for x in str(exc).splitlines() if x.strip()]
                print(f"| {OPTIONS[name][0]} | failed: {lines[0]} {lines[-1][-160:]} | | | | |",
                      flush=True)
            print(f"  ({name}: {time.monotonic() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
