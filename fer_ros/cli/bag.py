"""``fer-bag``: make, play, record and evaluate rosbag2 bags for fer_ros (no ros2 CLI needed).

BAG is a rosbag2 folder, a folder of storage files without metadata.yaml, or one .mcap / .db3
file. Bad input is one line on stderr and exit code 2; a run that cannot finish exit code 1;
Ctrl-C exit code 130. See docs/bags.md.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Callable

from ..deps import missing_module_message
from ..bag import DEFAULT_CACHE_BYTES, FLUSH_INTERVAL_S
from ..bag.errors import BagError

PROG = "fer-bag"


def _positive(kind: type) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0 (got {text})")
        return value
    return parse


STORAGE = dict(choices=["mcap", "sqlite3"], default="mcap", help="bag storage (default mcap)")
DISTRO = dict(choices=["jazzy", "humble"], default="jazzy",
              help="lay the bag out as this distro's ros2 bag does (default jazzy: metadata "
                   "version 9, read by Jazzy, not Humble; humble: version 5, read by Humble "
                   "and Jazzy)")


def _quiet(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help=what)


def _qos_flags(p: argparse.ArgumentParser, what: str) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--reliable", dest="qos_override", action="store_const",
                       const="reliable", help=f"publish {what} reliable (default: the QoS "
                                              "recorded in the bag)")
    group.add_argument("--best-effort", dest="qos_override", action="store_const",
                       const="best_effort", help=f"publish {what} best effort")


def _add_from_video(sub) -> None:
    p = sub.add_parser("from-video", help="a video file (or image folder) as a bag of images")
    p.add_argument("video")
    p.add_argument("out_bag")
    p.add_argument("--topic", help="default /camera/image_raw (/camera/image_raw/compressed "
                                   "with --compressed)")
    p.add_argument("--fps", type=_positive(float), help="stamp spacing (default: the video's rate)")
    p.add_argument("--compressed", action="store_true",
                   help="sensor_msgs/CompressedImage (JPEG) instead of Image bgr8")
    p.add_argument("--jpeg-quality", type=int, default=90, choices=range(1, 101), metavar="1..100")
    p.add_argument("--encoding", default="bgr8", metavar="ENCODING",
                   help="raw image encoding, as that camera would send it (default bgr8; e.g. "
                        "yuv422_yuy2 as usb_cam, bayer_rggb8, nv12)")
    p.add_argument("--storage", **STORAGE)
    p.add_argument("--frame-id", default="camera")
    p.add_argument("--max-frames", type=_positive(int), help="stop after this many frames")
    p.add_argument("--start-time", type=float, help="stamp of the first frame, s since the epoch "
                                                    "(default: now)")
    p.add_argument("--ros-distro", **DISTRO)
    _quiet(p, "no progress bar")


def _add_play(sub) -> None:
    p = sub.add_parser("play", help="publish a bag's messages at the recorded timing")
    p.add_argument("bag")
    p.add_argument("--rate", type=_positive(float), default=1.0, help="speed factor (default 1)")
    p.add_argument("--loop", action="store_true", help="play again and again (Ctrl-C stops)")
    p.add_argument("--topics", nargs="+", metavar="TOPIC",
                   help="only these topics (as named in the bag; a missing leading / is added "
                        "when that name is not in the bag)")
    _qos_flags(p, "every topic")
    _quiet(p, "no progress bar")
    p.add_argument("--wait-for-subscribers", type=_positive(float), nargs="?", const=30.0,
                   metavar="S", help="first wait (up to S s, default 30) for a subscriber on "
                                     "every topic")
    p.add_argument("--clock", type=_positive(float), nargs="?", const=40.0, metavar="HZ",
                   help="publish /clock from the recording's time, HZ times a second (default "
                        "40), for nodes with use_sim_time (as ros2 bag play --clock)")


def _add_record(sub) -> None:
    p = sub.add_parser("record", help="record live topics into a bag (Ctrl-C stops)")
    p.add_argument("out_bag")
    p.add_argument("topics", nargs="+", metavar="TOPIC")
    p.add_argument("--duration", type=_positive(float), help="stop after S seconds")
    p.add_argument("--storage", **STORAGE)
    p.add_argument("--discovery-timeout", type=_positive(float), default=10.0, metavar="S",
                   help="wait this long for the topics to appear (default 10)")
    p.add_argument("--ros-distro", **DISTRO)
    p.add_argument("--max-cache-size", type=_positive(int), default=DEFAULT_CACHE_BYTES,
                   metavar="BYTES", help="bytes buffered before they are written: mcap chunk "
                   f"size / sqlite3 transaction (default {DEFAULT_CACHE_BYTES})")
    p.add_argument("--flush-interval", type=_positive(float), default=FLUSH_INTERVAL_S,
                   metavar="S", help="write and fsync what is buffered at least this often, "
                   f"which bounds what a crash loses (default {FLUSH_INTERVAL_S:g})")
    _quiet(p, "no status lines")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="play a bag into the emotion node and report")
    p.add_argument("bag")
    p.add_argument("--image-topic", help="image topic of the bag (default: its only one)")
    p.add_argument("--labels", metavar="CSV", help="expected labels: rows 'frame index or stamp, "
                                                   "label' -> accuracy and confusion matrix")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--out", type=Path, help="folder for results/ (bag), frames.csv, report.json, "
                                            "node.log (default out/evaluate-<time>)")
    p.add_argument("--no-spawn", action="store_true",
                   help="use a running emotion node (subscribed to the bag's image topic)")
    p.add_argument("--emotions-topic", default="/emotions",
                   help="with --no-spawn: the node's output topic (default /emotions)")
    p.add_argument("--rate", type=_positive(float), default=1.0, help="speed factor (default 1)")
    p.add_argument("--max-frames", type=_positive(int), help="play only the first N images")
    p.add_argument("-p", "--param", dest="node_params", action="append", default=[],
                   metavar="NAME:=VALUE", help="parameter for the started node (repeatable)")
    p.add_argument("--params-file", help="ROS params file for the started node")
    p.add_argument("--compare", nargs=2, metavar=("A.yaml", "B.yaml"),
                   help="evaluate the bag twice, with each params file, and compare side by side")
    p.add_argument("--startup-timeout", type=_positive(float), default=120.0, metavar="S",
                   help="wait this long for the node to become active (default 120)")
    _qos_flags(p, "the images")
    p.add_argument("--lockstep", action="store_true",
                   help="publish each image only once the previous one is answered (every "
                        "frame evaluated; fps = node throughput)")
    _quiet(p, "no progress bar")


def _add_info_reindex(sub) -> None:
    p = sub.add_parser("info", help="topics, types, counts and duration of a bag")
    p.add_argument("bag")

    p = sub.add_parser("reindex", help="repair a recording cut short: indexed mcap copy, "
                                       "recovered sqlite3, metadata.yaml")
    p.add_argument("bag", help="the bag folder")
    p.add_argument("--ros-distro", choices=["jazzy", "humble"],
                   help="metadata.yaml layout (default: jazzy when the bag has type hashes)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0].split(": ", 1)[1])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_from_video, _add_play, _add_record, _add_evaluate, _add_info_reindex):
        add(sub)
    return parser


def cmd_from_video(args: argparse.Namespace) -> int:
    from ..bag.from_video import video_to_bag

    info = video_to_bag(args.video, args.out_bag, topic=args.topic, fps=args.fps,
                        compressed=args.compressed, storage=args.storage, frame_id=args.frame_id,
                        encoding=args.encoding, max_frames=args.max_frames, jpeg_quality=args.jpeg_quality,
                        start_ns=None if args.start_time is None else round(args.start_time * 1e9),
                        progress=not args.quiet, distro=args.ros_distro)
    print(f"{info.path}: {info.frames} x {info.msgtype} on {info.topic} at {info.fps:g} frames/s "
          f"({args.storage}, {args.ros_distro} layout)")
    return 0


def _notes(reader) -> None:
    for note in reader.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)


def cmd_play(args: argparse.Namespace) -> int:
    from ..bag.reader import open_bag
    from ..bag_transport.player import BagPlayer
    from ..bag_transport.session import RosSession

    with open_bag(args.bag) as reader:
        _notes(reader)
        topics = reader.select(args.topics)
        with RosSession("fer_bag_play") as session:
            player = BagPlayer(session, reader, topics, rate=args.rate,
                               qos_override=args.qos_override, clock_hz=args.clock)
            if args.wait_for_subscribers and not player.wait_for_subscribers(args.wait_for_subscribers):
                print(f"{PROG}: no subscriber on some topics after {args.wait_for_subscribers:g} s;"
                      " playing anyway", file=sys.stderr)
            t0 = time.monotonic()
            try:
                count = player.play(loop=args.loop, progress=not args.quiet)
            except KeyboardInterrupt:
                count = player.published
            except BagError as exc:
                raise type(exc)(f"{exc} ({player.published} messages were published)") from None
            print(f"published {count} messages in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from ..bag_transport.recorder import record

    counts = record(args.out_bag, args.topics, storage=args.storage, duration=args.duration,
                    discovery_timeout=args.discovery_timeout, progress=not args.quiet,
                    distro=args.ros_distro, max_cache=args.max_cache_size,
                    flush_interval=args.flush_interval)
    if not args.quiet:
        print(f"{args.out_bag}: " + ", ".join(f"{t} {n}" for t, n in counts.items()),
              file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.evaluate import EvalOptions, evaluate
    from ..evaluation.stats import format_table

    out = args.out or Path("out") / time.strftime("evaluate-%Y%m%d-%H%M%S")
    if args.compare and args.params_file:
        raise BagError("--compare gives the two params files: drop --params-file")
    opts = EvalOptions(
        bag=args.bag, out=out, image_topic=args.image_topic, labels=args.labels,
        spawn=not args.no_spawn, rate=args.rate, max_frames=args.max_frames,
        emotions_topic=args.emotions_topic, node_params=args.node_params,
        params_file=args.params_file, startup_timeout=args.startup_timeout,
        qos_override=args.qos_override, lockstep=args.lockstep, progress=not args.quiet)
    if args.compare:
        return _compare(args, opts, out)
    report = evaluate(opts)
    if args.json:
        print(json.dumps(report))
    else:
        mode = "lockstep" if args.lockstep else f"rate {args.rate:g}"
        print(format_table(report, f"fer-bag evaluate {args.bag} ({mode})"))
        print(f"  results: {out}/ (report.html, report.json, plots, frames.csv, results bag"
              + (", node.log)" if opts.spawn else ")"))
    return 0


def _compare(args: argparse.Namespace, opts, out: Path) -> int:
    from ..evaluation.compare import compare, format_compare
    from ..bag.errors import BagRunError

    doc = compare(opts, *args.compare)
    print(json.dumps(doc) if args.json else format_compare(doc)
          + f"\n  results: {out}/compare.html, compare.json and one folder per configuration")
    empty = [n for n, c in doc["configs"].items() if not c["report"]["frames_answered"]]
    if empty:
        raise BagRunError(f"configuration {empty[0]} answered none of the frames (see "
                          f"{doc['configs'][empty[0]]['out']}/report.html)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from ..bag.reader import open_bag
    from ..bag.play_qos import play_policies
    from ..bag.typestore import msg_class

    with open_bag(args.bag) as reader:
        _notes(reader)
        meta = reader.meta
        layout = (f"metadata version {meta.version}" + (f", {meta.ros_distro}" if meta.ros_distro
                                                       else "")) if meta else "no metadata.yaml"
        compression = (f", {meta.compression_mode} compression {meta.compression_format}"
                       if meta and meta.compression_mode not in ("", "none") else "")
        print(f"bag: {args.bag}  storage: {reader.storage} ({layout}{compression})  files: "
              f"{', '.join(p.name for p in reader.files)}")
        print(f"messages: {reader.message_count}  duration: {reader.duration_ns / 1e9:.3f} s")
        for topic in reader.topics.values():
            try:
                msg_class(topic.msgtype)
                note = ""
            except BagError:
                note = "  (type not installed: play skips it)"
            reliability, durability = play_policies(topic.qos)
            print(f"  {topic.name}  {topic.msgtype}  {topic.count} messages  "
                  f"plays {reliability}/{durability}{note}")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from ..bag.reindex import reindex

    for line in reindex(Path(args.bag), args.ros_distro):
        print(f"{args.bag}: {line}")
    return 0


COMMANDS = {"from-video": cmd_from_video, "play": cmd_play, "record": cmd_record,
            "evaluate": cmd_evaluate, "info": cmd_info, "reindex": cmd_reindex}


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        return COMMANDS[args.command](args)
    except BagError as exc:
        print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except ImportError as exc:  # an optional package (rosbags, mcap, ...) is missing
        message = missing_module_message(exc)
        if message is None:
            raise
        print(f"{PROG} {args.command}: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
