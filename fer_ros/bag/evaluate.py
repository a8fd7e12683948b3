"""``fer-bag evaluate``: play a bag into the emotion node and measure what comes back.

1. The image topic of the bag is chosen (``image_topic``, or the bag's only image topic).
2. The node is started in a private namespace (``/fer_bag_eval_<pid>``, so nothing else on the
   domain mixes in), or with ``spawn=False`` a running node is used (images are published on
   the bag's topic name, answers read from ``emotions_topic``). Playing starts once the node is
   active and discovered: its image subscription and its emotions publisher (both created on
   activation) are matched.
3. The images are played at the recorded timing / ``rate``. Recorded stamps are in the past,
   so each image is **restamped with the current time when it is published** (8 bytes of the
   CDR header, no decode); a map new stamp -> frame index (saved as frames.csv with the
   original stamps) ties each answer, whose header is copied from its image, to its frame.
   Latency = receipt of the answer - that stamp (same host, same clock).
   With ``lockstep`` the next image goes out only once the previous one is answered (or after
   LOCKSTEP_TIMEOUT_S), so every frame is evaluated however slow the machine; fps is then the
   node's throughput, not its real-time rate at the bag's frame rate.
4. The node's answers are recorded, as received, into ``out/results`` (a rosbag2 bag).
5. The report (stats.summarize) is saved as ``out/report.json`` and returned.
"""

from __future__ import annotations

import csv
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Connection

from .bagfile import header_stamp_ns, open_bag, topic_connections, with_header_stamp
from .errors import BagError, BagRunError
from .node_process import NodeProcess
from .player import SUBSCRIBER_GRACE_S, BagPlayer
from .recorder import BagRecorder, absolute
from .session import RosSession
from .stats import Answer, load_labels, summarize
from .typestore import EMOTION_ARRAY, IMAGE_TYPES, typestore

LOCKSTEP_TIMEOUT_S = 10.0  # lockstep: give up on one frame's answer after this long
SETTLE_S = 2.0       # after the last image, wait this long without a new answer
MAX_SETTLE_S = 30.0  # ... but no longer than this in all


@dataclass
class EvalOptions:
    bag: str
    out: Path
    image_topic: str | None = None
    labels: str | None = None
    spawn: bool = True
    rate: float = 1.0
    max_frames: int | None = None
    emotions_topic: str = "/emotions"
    node_params: list[str] = field(default_factory=list)   # "name:=value" for the spawned node
    params_file: str | None = None
    startup_timeout: float = 120.0
    reliable: bool = False
    lockstep: bool = False   # publish the next image only once the previous one is answered
    progress: bool = True


def image_connection(reader, topic: str | None) -> Connection:
    """The one image connection to play; BagError when missing or ambiguous."""
    if topic:
        conns = topic_connections(reader, [topic])
        bad = [c for c in conns if c.msgtype not in IMAGE_TYPES]
        if bad:
            raise BagError(f"topic {bad[0].topic} has type {bad[0].msgtype}, not "
                           "sensor_msgs/msg/Image or CompressedImage")
    else:
        conns = [c for c in reader.connections if c.msgtype in IMAGE_TYPES]
        topics = sorted({c.topic for c in conns})
        if not topics:
            raise BagError(f"{reader.path}: no sensor_msgs/msg/Image or CompressedImage topic "
                           f"(topics: {', '.join(sorted({c.topic for c in reader.connections}))})")
        if len(topics) > 1:
            raise BagError(f"{reader.path} has several image topics ({', '.join(topics)}): "
                           "choose one with --image-topic")
    if len({c.msgtype for c in conns}) > 1:
        raise BagError(f"topic {conns[0].topic} has several types in the bag")
    return conns[0]


def _original_stamps(reader, conn: Connection, limit: int | None) -> list[int]:
    stamps = []
    for _, _, data in reader.messages([conn]):
        if limit and len(stamps) >= limit:
            break
        stamps.append(header_stamp_ns(data))
    return stamps


class _Restamper:
    """Player transform: stamp = now (unique, increasing); remembers stamp -> frame index."""

    def __init__(self) -> None:
        self.frame_of: dict[int, int] = {}
        self.rows: list[tuple[int, int, int]] = []  # frame, original stamp, published stamp
        self._last = 0

    def __call__(self, conn: Connection, index: int, data: bytes) -> bytes:
        now = max(time.time_ns(), self._last + 1)
        self._last = now
        self.frame_of[now] = index
        self.rows.append((index, header_stamp_ns(data), now))
        return with_header_stamp(data, now)


def evaluate(opts: EvalOptions) -> dict[str, Any]:
    """Runs the evaluation; returns the report (also written to ``opts.out``/report.json)."""
    if opts.rate <= 0:
        raise BagError(f"--rate must be > 0 (got {opts.rate:g})")
    if not opts.spawn and (opts.node_params or opts.params_file):
        raise BagError("-p/--params-file set parameters of the node fer-bag starts: drop them or "
                       "--no-spawn")
    if opts.max_frames is not None and opts.max_frames <= 0:
        raise BagError(f"--max-frames must be > 0 (got {opts.max_frames})")
    with open_bag(opts.bag) as reader:
        conn = image_connection(reader, opts.image_topic)
        expected = None
        if opts.labels:
            expected = load_labels(opts.labels, _original_stamps(reader, conn, opts.max_frames))
        out = Path(opts.out)
        if (out / "results").exists():
            raise BagError(f"{out / 'results'} already exists: choose another --out folder")
        out.mkdir(parents=True, exist_ok=True)
        typestore()  # fer_msgs registered before anything is recorded
        compressed = conn.msgtype == "sensor_msgs/msg/CompressedImage"
        with RosSession("fer_bag_evaluate") as session:
            return _run(session, reader, conn, compressed, expected, out, opts)


def _run(session: RosSession, reader, conn: Connection, compressed: bool,
         expected: dict[int, str] | None, out: Path, opts: EvalOptions) -> dict[str, Any]:
    suffix = "image_raw/compressed" if compressed else "image_raw"
    if opts.spawn:
        ns = f"/fer_bag_eval_{os.getpid()}"
        image_topic, emotions_topic = f"{ns}/{suffix}", f"{ns}/emotions"
    else:
        image_topic, emotions_topic = conn.topic, absolute(opts.emotions_topic)

    received: list[tuple[int, bytes]] = []
    answered: set[int] = set()
    restamp = _Restamper()
    lock = threading.Lock()

    def on_answer(topic: str, receipt_ns: int, data: bytes) -> None:
        frame = restamp.frame_of.get(header_stamp_ns(data))
        with lock:
            received.append((receipt_ns, data))
            if frame is not None:
                answered.add(frame)

    def wait_for_answer(count: int) -> None:
        frame = restamp.rows[-1][0]
        session.wait_until(lambda: frame in answered, LOCKSTEP_TIMEOUT_S,
                           abort=node.check_alive if node else None)

    recorder = BagRecorder(session, out / "results", "mcap", on_message=on_answer)
    node: NodeProcess | None = None
    try:
        recorder.add(emotions_topic, EMOTION_ARRAY,
                     qos=QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        player = BagPlayer(session, reader, [conn], rate=opts.rate, reliable=opts.reliable,
                           topic_names={conn.topic: image_topic})
        publisher = player.publishers[conn.topic]
        if opts.spawn:
            args = ["-r", f"__ns:={ns}"]
            if compressed:
                args += ["-p", "input_transport:=compressed"]
            for p in opts.node_params:
                args += ["-p", p]
            if opts.params_file:
                args += ["--params-file", opts.params_file]
            node = NodeProcess(args, out / "node.log")
        ready = session.wait_until(
            lambda: (publisher.get_subscription_count() > 0
                     and session.node.count_publishers(emotions_topic) > 0),
            opts.startup_timeout, abort=node.check_alive if node else None)
        if not ready:
            what = "the emotion node started" if node else "no emotion node"
            raise BagRunError(
                f"{what} did not subscribe to {image_topic} and publish {emotions_topic} within "
                f"{opts.startup_timeout:g} s" + (f" (log: {node.log_path})" if node else
                                                 ": start one, or drop --no-spawn"))
        time.sleep(SUBSCRIBER_GRACE_S)
        published = player.play(limit=opts.max_frames, transform=restamp, progress=opts.progress,
                                 status=lambda: f"answered {len(answered)}",
                                 after_publish=wait_for_answer if opts.lockstep else None)
        _settle(lambda: len(answered), published)
    finally:
        if node is not None:
            node.stop()
        recorder.close()
    answers = _answers(received, restamp.frame_of)
    _write_frames_csv(out / "frames.csv", restamp.rows, {a.frame for a in answers})
    report = summarize(published, answers, expected)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def _settle(count, published: int) -> None:
    """Waits for the last answers: until all frames are answered or none came for SETTLE_S."""
    start = last_change = time.monotonic()
    seen = count()
    while seen < published and time.monotonic() - last_change < SETTLE_S \
            and time.monotonic() - start < MAX_SETTLE_S:
        time.sleep(0.05)
        if count() != seen:
            seen, last_change = count(), time.monotonic()


def _answers(received: list[tuple[int, bytes]], frame_of: dict[int, int]) -> list[Answer]:
    store = typestore()
    answers = []
    for receipt_ns, data in received:
        stamp = header_stamp_ns(data)
        frame = frame_of.get(stamp)
        if frame is None:
            continue  # not an answer to one of our frames
        msg = store.deserialize_cdr(data, EMOTION_ARRAY)
        answers.append(Answer(
            frame=frame, receipt_ns=receipt_ns, latency_ms=(receipt_ns - stamp) / 1e6,
            faces=[(e.label, int(e.roi.width) * int(e.roi.height)) for e in msg.emotions],
            labels=list(msg.labels)))
    return answers


def _write_frames_csv(path: Path, rows: list[tuple[int, int, int]], answered: set[int]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "original_stamp_ns", "published_stamp_ns", "answered"])
        for frame, original, new in rows:
            w.writerow([frame, original, new, int(frame in answered)])
