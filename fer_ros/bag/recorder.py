"""``fer-bag record``: live topics into a rosbag2 bag, as the CDR bytes that arrived.

Types come from the ROS graph; each is registered in the rosbags typestore (from its .msg
file, see typestore.py) so the bag's metadata and mcap schemas are the real ones. Messages
are received with ``raw=True`` (no decode) and stamped with their receive time, like
``ros2 bag record``. The offered QoS of the publishers is kept in metadata.yaml.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import Writer

from .bagfile import new_writer, qos_from_rclpy
from .errors import BagError
from .session import RosSession
from .typestore import ensure_type, msg_class, typestore

# on_message(topic, receive time ns, cdr bytes), called after the message is written
OnMessage = Callable[[str, int, bytes], None]


def absolute(topic: str) -> str:
    return topic if topic.startswith("/") else "/" + topic


def resolve_types(session: RosSession, topics: list[str], timeout: float) -> dict[str, str]:
    """{topic: type} from the graph, waiting up to ``timeout`` s; BagError for a topic that has
    no publisher by then or has several types."""
    wanted = [absolute(t) for t in topics]
    graph: dict[str, list[str]] = {}

    def found() -> bool:
        graph.clear()
        graph.update(dict(session.node.get_topic_names_and_types()))
        return all(session.node.count_publishers(t) > 0 and t in graph for t in wanted)

    session.wait_until(found, timeout)
    types = {}
    for topic in wanted:
        if topic not in graph or session.node.count_publishers(topic) == 0:
            raise BagError(f"topic {topic} has no publisher (waited {timeout:g} s): check the "
                           "name and that its publisher runs in this ROS_DOMAIN_ID")
        if len(graph[topic]) != 1:
            raise BagError(f"topic {topic} has several types ({', '.join(graph[topic])}): "
                           "record it once its publishers agree")
        types[topic] = graph[topic][0]
    return types


class _WriterThread:
    """Owns a rosbags Writer: every call on it runs in this one thread (sqlite3 requires it)."""

    def __init__(self, path: str | Path, storage: str) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(path, storage),
                                        name="fer_bag_writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def _run(self, path: str | Path, storage: str) -> None:
        try:
            writer = new_writer(path, storage)
        except BaseException as exc:  # reported by __init__ in the caller's thread
            self._error = exc
            return
        finally:
            self._ready.set()
        while True:
            job, done, box = self._queue.get()
            try:
                box.append(job(writer))
            except BaseException as exc:
                box.append(exc)
            if done is not None:
                done.set()
            if job is _CLOSE:
                return

    def call(self, job: Callable[[Writer], Any]) -> Any:
        """Runs ``job(writer)`` in the writer thread and returns its result."""
        done, box = threading.Event(), []
        self._queue.put((job, done, box))
        done.wait()
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def post(self, job: Callable[[Writer], Any]) -> None:
        """Queues ``job(writer)`` without waiting."""
        self._queue.put((job, None, []))

    def close(self) -> None:
        self.call(_CLOSE)
        self._thread.join()


def _CLOSE(writer: Writer) -> None:  # noqa: N802 - a sentinel job
    writer.close()


class BagRecorder:
    """Subscribes to topics and writes every message, in arrival order, to a new bag."""

    def __init__(self, session: RosSession, path: str | Path, storage: str = "mcap",
                 on_message: OnMessage | None = None) -> None:
        self.session, self.on_message = session, on_message
        self.path = Path(path)
        self.counts: dict[str, int] = {}
        self._writer = _WriterThread(path, storage)  # BagError here if the path is unusable
        self._lock = threading.Lock()
        self._subs = []
        self._closed = False

    def add(self, topic: str, msgtype: str, qos: QoSProfile | None = None) -> None:
        """Records ``topic``; QoS matches its publishers unless given."""
        store = typestore()
        ensure_type(store, msgtype)
        cls = msg_class(msgtype)
        infos = self.session.node.get_publishers_info_by_topic(topic)
        offered = [qos_from_rclpy(i.qos_profile) for i in infos]
        conn = self._writer.call(lambda w: w.add_connection(
            topic, msgtype, typestore=store, offered_qos_profiles=offered))
        qos = qos or subscription_qos([i.qos_profile for i in infos])
        self.counts[topic] = 0

        def callback(data: bytes, topic: str = topic, conn=conn) -> None:
            now = time.time_ns()
            with self._lock:
                if self._closed:
                    return
                self._writer.post(lambda w: w.write(conn, now, data))
                self.counts[topic] += 1
            if self.on_message is not None:
                self.on_message(topic, now, data)

        self._subs.append(self.session.node.create_subscription(cls, topic, callback, qos, raw=True))

    def close(self) -> None:
        """Stops recording and writes metadata.yaml (the bag is complete afterwards)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for sub in self._subs:
            self.session.node.destroy_subscription(sub)
        self._writer.close()


def subscription_qos(offered: list) -> QoSProfile:
    """Reliable only if every publisher is; transient-local only if every publisher is."""
    reliable = bool(offered) and all(q.reliability == ReliabilityPolicy.RELIABLE for q in offered)
    latched = bool(offered) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
    return QoSProfile(
        depth=100,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def record(out_bag: str, topics: list[str], storage: str = "mcap", duration: float | None = None,
           discovery_timeout: float = 10.0, progress: bool = True) -> dict[str, int]:
    """Records until ``duration`` s pass or Ctrl-C / SIGTERM; returns messages per topic."""
    if duration is not None and duration <= 0:
        raise BagError(f"--duration must be > 0 (got {duration:g})")
    with RosSession("fer_bag_record") as session:
        types = resolve_types(session, topics, discovery_timeout)
        for topic, msgtype in types.items():  # unknown types fail before the bag is created
            ensure_type(typestore(), msgtype)
            msg_class(msgtype)
        recorder = BagRecorder(session, out_bag, storage)
        try:
            for topic, msgtype in types.items():
                recorder.add(topic, msgtype)
            if progress:
                print(f"recording {', '.join(f'{t} ({m})' for t, m in types.items())} to "
                      f"{out_bag}" + (f" for {duration:g} s" if duration else "; Ctrl-C stops"),
                      file=sys.stderr, flush=True)
            deadline = time.monotonic() + duration if duration else None
            try:
                while deadline is None or time.monotonic() < deadline:
                    time.sleep(0.05)
            except KeyboardInterrupt:
                pass
        finally:
            recorder.close()
    return dict(recorder.counts)
