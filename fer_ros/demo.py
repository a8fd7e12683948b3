"""``fer-demo`` (``make demo``): the real ROS 2 graph over DDS on a video, images or a camera.

Starts three processes: ``emotion_node``, ``result_sink`` (writes OUT/annotated.mp4,
OUT/results.jsonl, OUT/summary.json) and ``image_source`` (publishes INPUT best effort; for a
rosbag2 folder ``fer-bag play`` replays its image topic instead), waits for the source to
finish, then prints a summary: frames in/out, faces, label histogram, output frames/s and
latency p50/p95.

``--isa avx2`` holds the node's oneDNN (torch, OpenVINO) to AVX2, as on an AVX2-only robot
CPU (see docs/performance.md); ``--isa both`` runs the demo natively, then held, into
OUT/native and OUT/avx2, and prints both summaries.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from fer_ros.ros_env import dds_env

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = REPO.parent / "shared" / "samples" / "fer_woman2.mp4"
AVX2_HOLD = {"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2",
             "ATEN_CPU_CAPABILITY": "avx2"}


def _script(name: str) -> list[str]:
    return [sys.executable, "-m", f"fer_ros.node.{name}"]


def _ros_args(params: dict, remaps: dict | None = None) -> list[str]:
    out = ["--ros-args"]
    for key, value in params.items():
        out += ["-p", f"{key}:={json.dumps(value) if isinstance(value, bool) else value}"]
    for src, dst in (remaps or {}).items():
        out += ["-r", f"{src}:={dst}"]
    return out


def bag_image_topic(path: str) -> tuple[str, bool, int] | None:
    """(image topic, compressed?, message count) of a rosbag2 folder; None if not a bag."""
    if not (Path(path) / "metadata.yaml").is_file():
        return None
    from fer_ros.bag.reader import open_bag
    from fer_ros.evaluation.evaluate import image_topic

    with open_bag(path) as reader:
        topic = image_topic(reader, None)
        return topic.name, topic.msgtype.endswith("CompressedImage"), int(topic.count)


def _stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_line(proc: subprocess.Popen, text: str, timeout: float,
                   stream: str = "stderr") -> bool:
    """Read ``proc``'s stderr (node logs) or stdout until a line contains ``text``."""
    pipe = getattr(proc, stream)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        line = pipe.readline()
        if line:
            if stream == "stderr":
                sys.stderr.write(line)
            if text in line:
                return True
    return False


def _forward(pipe, out) -> None:
    """Copy lines from a child's pipe to ``out`` until the child closes it."""
    for line in pipe:
        out.write(line)


def run_demo(args: argparse.Namespace) -> int:
    if not args.input:
        print("fer-demo: no input: pass --input (INPUT=... with make demo)", file=sys.stderr)
        return 2
    if not str(args.input).isdigit() and not Path(args.input).exists():
        print(f"fer-demo: {args.input}: no such file, folder or camera index", file=sys.stderr)
        return 2
    env = dds_env(isolate=True)
    env["PYTHONUNBUFFERED"] = "1"
    if args.isa == "avx2":
        env.update(AVX2_HOLD)
    out = Path(args.out)
    bag = bag_image_topic(args.input)
    node_params, remaps = dict(args.node_params), {}
    if bag is not None:  # replay the bag's image topic into the node (fer-bag play)
        topic, compressed, _ = bag
        node_params["input_transport"] = "compressed" if compressed else "raw"
        remaps["image_raw/compressed" if compressed else "image_raw"] = topic
    node = subprocess.Popen(_script("emotion_node") + _ros_args(node_params, remaps), env=env,
                            stderr=subprocess.PIPE, text=True)
    procs = [node]
    try:
        if not _wait_for_line(node, "waiting for", timeout=120):
            print("fer-demo: the emotion node did not start (see its log above)", file=sys.stderr)
            return 2
        # keep forwarding the node's log: an undrained pipe would block the node once full
        threading.Thread(target=_forward, args=(node.stderr, sys.stderr), daemon=True).start()
        sink = subprocess.Popen(_script("result_sink") + _ros_args(
            {"out_dir": str(out), "idle_timeout_s": 3.0, "video_fps": float(args.fps or 30.0)}),
            env=env, stdout=subprocess.PIPE, text=True)
        procs.append(sink)
        if bag is not None:
            command = [sys.executable, "-m", "fer_ros.cli.bag", "play", str(args.input),
                       "--topics", bag[0], "--wait-for-subscribers", "-q"]
        else:
            source_params = {"input": str(args.input), "fps": float(args.fps),
                             "width": args.width, "height": args.height,
                             "wait_for_subscribers": 1}
            if args.max_frames:
                source_params["max_frames"] = args.max_frames
            command = _script("image_source") + _ros_args(source_params)
        if not _wait_for_line(sink, "result_sink: ready", timeout=60, stream="stdout"):
            print("fer-demo: the result sink did not match the node's topics", file=sys.stderr)
            return 2
        t0 = time.monotonic()
        source = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if source.returncode != 0:
            sys.stderr.write(source.stderr)
            return 2
        published = bag[2] if bag is not None else int(source.stdout.strip().split()[-2])
        sink_out, _ = sink.communicate(timeout=60)
        summary = json.loads(sink_out.strip().splitlines()[-1])
    finally:
        for proc in procs:
            _stop(proc)
    summary = {"input": str(args.input), "frames_in": published, **summary,
               "answered_ratio": round(summary["frames_out"] / max(published, 1), 3),
               "source_seconds": round(wall, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\n{args.isa}: frames in {summary['frames_in']}, out {summary['frames_out']} "
          f"({summary['answered_ratio']:.0%}), {summary['fps']} frames/s, faces/frame "
          f"{summary['faces_per_frame']}, latency p50 {summary['latency_ms']['p50']} ms "
          f"p95 {summary['latency_ms']['p95']} ms")
    print(f"labels: {summary['label_histogram']}")
    print(f"wrote {out}/annotated.mp4, results.jsonl, summary.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(DEFAULT_INPUT) if DEFAULT_INPUT.exists() else "",
                        help="video, image, image folder, camera index or rosbag2 folder")
    parser.add_argument("--out", default="out", help="output folder (default: out)")
    parser.add_argument("--fps", type=float, default=30.0, help="publish rate (0 = native)")
    parser.add_argument("--width", type=int, default=640, help="letterbox width (0 = native)")
    parser.add_argument("--height", type=int, default=480, help="letterbox height (0 = native)")
    parser.add_argument("--max-frames", type=int, default=0)
    parser.add_argument("--isa", choices=("native", "avx2", "both"), default="native",
                        help="hold the node to AVX2 (as an AVX2-only CPU), or run both")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="emotion_node parameter, e.g. -p detector:=yunet")
    args = parser.parse_args(argv)
    args.node_params = dict(p.split(":=", 1) for p in args.param)
    if args.isa != "both":
        return run_demo(args)
    out = Path(args.out)
    for isa in ("native", "avx2"):
        code = run_demo(argparse.Namespace(**{**vars(args), "isa": isa, "out": str(out / isa)}))
        if code:
            return code
    for isa in ("native", "avx2"):
        summary = json.loads((out / isa / "summary.json").read_text())
        print(f"{isa:6s}: answered {summary['frames_out']}/{summary['frames_in']} "
              f"({summary['answered_ratio']:.1%}), latency p95 {summary['latency_ms']['p95']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
