"""``fer-bag evaluate``: play a bag's images into the emotion node and measure the answers.

fer_ros's own tool (on bag_transport's player and recorder; nothing of it is in rosbags).
The node runs in a private namespace (or, with ``spawn=False``, a running node is used); once
it is active and matched, the images play at their timing / ``rate`` (``lockstep``: each once
the previous is answered or refused), each restamped with the time it is published (8 bytes of
the CDR header) so that an answer, whose header is its image's, names its frame. Answers are
recorded into ``out/results``; unanswered frames get the node's own refusal reason; the report
goes to ``out/report.json`` and ``report.html``. Nothing answered is a BagRunError.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rclpy.qos import QoSProfile, ReliabilityPolicy

from .answers import (Restamper, decode_answers, header_stamp_ns, nothing_answered, settle,
                      write_frames_csv)
from .node_params import check_node_params
from .node_process import NodeProcess, start_node, wait_ready
from .node_watch import NodeWatch
from .refusals import count_reasons
from .stats import Answer, load_labels, summarize
from ..bag.errors import BagError, BagRunError
from ..bag.reader import BagReader, Topic, open_bag
from ..bag.typestore import EMOTION_ARRAY, IMAGE_TYPES, typestore
from ..bag_transport.player import SUBSCRIBER_GRACE_S, BagPlayer
from ..bag_transport.recorder import BagRecorder, absolute
from ..bag_transport.session import RosSession

LOCKSTEP_TIMEOUT_S = 10.0  # lockstep: give up on one frame's answer after this long
STOP_AFTER_REFUSED = 5     # nothing answered and this many frames refused: stop playing
STOP_AFTER_SILENT = 3      # lockstep, nothing answered, this many frames timed out: stop


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
    qos_override: str | None = None   # "reliable" / "best_effort" for the played images
    lockstep: bool = False   # publish the next image only once the previous one is answered
    progress: bool = True
    plots: bool = True
    require_answers: bool = True  # nothing answered is a BagRunError (after the report)


@dataclass
class EvalResult:
    report: dict[str, Any]
    answers: list[Answer]
    expected: dict[int, str] | None
    out: Path


def image_topic(reader: BagReader, name: str | None) -> Topic:
    """The one image topic to play; BagError when missing or ambiguous."""
    if name:
        topic = reader.select([name])[0]
        if topic.msgtype not in IMAGE_TYPES:
            raise BagError(f"topic {topic.name} has type {topic.msgtype}, not "
                           "sensor_msgs/msg/Image or CompressedImage")
        return topic
    topics = [t for t in reader.topics.values() if t.msgtype in IMAGE_TYPES]
    if not topics:
        raise BagError(f"{reader.path}: no sensor_msgs/msg/Image or CompressedImage topic "
                       f"(topics: {', '.join(sorted(reader.topics)) or 'none'})")
    if len(topics) > 1:
        raise BagError(f"{reader.path} has several image topics "
                       f"({', '.join(sorted(t.name for t in topics))}): choose one with "
                       "--image-topic")
    return topics[0]


def _original_stamps(reader: BagReader, topic: Topic, limit: int | None) -> list[int]:
    stamps = []
    for _, _, data in reader.messages([topic]):
        if limit and len(stamps) >= limit:
            break
        stamps.append(header_stamp_ns(data))
    return stamps


def evaluate(opts: EvalOptions) -> dict[str, Any]:
    """Runs the evaluation; returns the report (also written to ``opts.out``/report.json)."""
    return run_evaluation(opts).report


def run_evaluation(opts: EvalOptions) -> EvalResult:
    """The evaluation with its answers; BagRunError (after writing the report) when the node
    answered nothing."""
    if opts.rate <= 0:
        raise BagError(f"--rate must be > 0 (got {opts.rate:g})")
    if not opts.spawn and (opts.node_params or opts.params_file):
        raise BagError("-p/--params-file set parameters of the node fer-bag starts: drop them or "
                       "--no-spawn")
    if opts.max_frames is not None and opts.max_frames <= 0:
        raise BagError(f"--max-frames must be > 0 (got {opts.max_frames})")
    check_node_params(opts.node_params, [opts.params_file] if opts.params_file else [])
    with open_bag(opts.bag) as reader:
        for note in reader.notes:  # e.g. a recording cut short, read up to its last record
            print(f"fer-bag: note: {note}", file=sys.stderr, flush=True)
        topic = image_topic(reader, opts.image_topic)
        if topic.count == 0:
            raise BagError(f"topic {topic.name} holds no messages: nothing to evaluate")
        stamps = _original_stamps(reader, topic, opts.max_frames)  # also finds a corrupt file
        expected = load_labels(opts.labels, stamps) if opts.labels else None
        out = Path(opts.out)
        if (out / "results").exists():
            raise BagError(f"{out / 'results'} already exists: choose another --out folder")
        out.mkdir(parents=True, exist_ok=True)
        typestore()  # fer_msgs registered before anything is recorded
        with RosSession("fer_bag_evaluate") as session:
            published, answers, rows, counters = _run(session, reader, topic, out, opts)
        answered = {a.frame for a in answers}
        unanswered = _unanswered_reasons(reader, topic, rows, answered)
    write_frames_csv(out / "frames.csv", rows, answers)
    report = summarize(published, answers, expected, unanswered, counters)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    if opts.plots:
        from .report_html import write_report_html

        write_report_html(out, report, answers, rows, expected, title=f"fer-bag evaluate {opts.bag}")
    result = EvalResult(report, answers, expected, out)
    if not answers and opts.require_answers:
        raise BagRunError(nothing_answered(report, published, out, opts.spawn))
    return result


def _unanswered_reasons(reader: BagReader, topic: Topic, rows: list[tuple[int, int, int]],
                        answered: set[int]) -> dict[str, int]:
    missing = {frame for frame, _, _ in rows} - answered
    if not missing:
        return {}

    def frames():
        for index, (_, _, data) in enumerate(reader.messages([topic])):
            if index in missing:
                yield data
            if index >= max(missing):
                break

    return dict(count_reasons(topic.msgtype, frames()))


def _run(session: RosSession, reader: BagReader, topic: Topic, out: Path,
         opts: EvalOptions) -> tuple[int, list[Answer], list[tuple[int, int, int]], dict | None]:
    compressed = topic.msgtype == "sensor_msgs/msg/CompressedImage"
    suffix = "image_raw/compressed" if compressed else "image_raw"
    if opts.spawn:
        ns = f"/fer_bag_eval_{os.getpid()}"
        image_name, emotions_topic = f"{ns}/{suffix}", f"{ns}/emotions"
        watch = NodeWatch(session, f"fer_ros: {ns}/emotion_node")
    else:
        image_name, emotions_topic = topic.name, absolute(opts.emotions_topic)
        watch = NodeWatch(session, None)

    received: list[tuple[int, bytes]] = []
    answered: set[int] = set()
    restamp = Restamper()
    lock = threading.Lock()
    silent = [0]  # lockstep frames that timed out without any answer

    def on_answer(_topic: str, receipt_ns: int, data: bytes) -> None:
        frame = restamp.frame_of.get(header_stamp_ns(data))
        with lock:
            received.append((receipt_ns, data))
            if frame is not None:
                answered.add(frame)

    def nothing_answered() -> bool:
        return not answered and (watch.refused - refused_before >= STOP_AFTER_REFUSED
                                 or silent[0] >= STOP_AFTER_SILENT)

    def after_publish(count: int) -> bool:
        if opts.lockstep:
            frame = restamp.rows[-1][0]
            before = watch.refused
            done = session.wait_until(lambda: frame in answered or watch.refused > before,
                                      LOCKSTEP_TIMEOUT_S, abort=node.check_alive if node else None)
            if not done and not answered:
                silent[0] += 1
        return not nothing_answered()

    node: NodeProcess | None = None
    recorder: BagRecorder | None = None
    try:
        player = BagPlayer(session, reader, [topic], rate=opts.rate,
                           qos_override=opts.qos_override, topic_names={topic.name: image_name})
        publisher = player.publishers[topic.name]
        if opts.spawn:
            node = start_node(opts.node_params, opts.params_file, ns, compressed, out / "node.log")
        wait_ready(session, publisher, node, image_name, emotions_topic, opts.startup_timeout)
        # the node's publisher exists now: the results bag keeps its offered QoS
        recorder = BagRecorder(session, out / "results", "mcap", on_message=on_answer)
        sub = recorder.add(emotions_topic, EMOTION_ARRAY,
                           qos=QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        session.wait_until(lambda: sub.get_publisher_count() > 0, 10.0)
        time.sleep(SUBSCRIBER_GRACE_S)
        refused_before = watch.refused
        published = player.play(limit=opts.max_frames, transform=restamp, progress=opts.progress,
                                status=lambda: f"answered {len(answered)}",
                                after_publish=after_publish)
        if not nothing_answered():
            settle(lambda: len(answered), published)
        if node is not None:
            node.check_alive()
    finally:
        if node is not None:
            node.stop()
        if recorder is not None:
            recorder.close()
    counters = watch.snapshot() or None
    return published, decode_answers(received, restamp.frame_of), restamp.rows, counters
