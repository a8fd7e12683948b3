"""``fer-bag record``: live topics into a rosbag2 bag, as the CDR bytes that arrived.

rosbags has no ROS side (no subscribing, no graph discovery), so this is fer_ros's own.
Like ``ros2 bag record``: types from the graph (registered in the typestore, so definitions and
hashes are real), ``raw=True`` subscriptions stamped with their receive time, the publishers'
offered QoS kept. One writer thread takes a queue bounded to ``MAX_QUEUED_BYTES`` (past it,
drops are counted) and flushes at least every ``flush_interval`` s, which bounds what a crash
loses; a write error (a full disk) stops ``record`` with a one-line BagRunError.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from ..bag import DEFAULT_CACHE_BYTES, FLUSH_INTERVAL_S
from ..bag.errors import BagError, BagRunError
from ..bag.typestore import ensure_type, msg_class, typestore
from ..bag.writer import BagWriter
from .qos import from_rclpy
from .session import RosSession

# on_message(topic, receive time ns, cdr bytes), called once the message is queued for writing
OnMessage = Callable[[str, int, bytes], None]
MAX_QUEUED_BYTES = 256 * 1024 * 1024


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


class WriterThread:
    """Owns a BagWriter: every call on it runs in this one thread (sqlite3 requires it)."""

    def __init__(self, path: str | Path, storage: str, distro: str = "jazzy",
                 max_cache: int = DEFAULT_CACHE_BYTES,
                 flush_interval: float = FLUSH_INTERVAL_S) -> None:
        self.flush_interval = flush_interval
        self._queue: queue.Queue = queue.Queue()
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self.error: str | None = None      # the first write error (the bag is closed then)
        self.dropped = 0                   # messages not written: queue full or writer failed
        self._queued_bytes = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(path, storage, distro, max_cache),
                                        name="fer_bag_writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:
            raise self._open_error

    def _run(self, path: str | Path, storage: str, distro: str, max_cache: int) -> None:
        try:
            writer = BagWriter(path, storage, distro, max_cache=max_cache)
        except BaseException as exc:  # reported by __init__ in the caller's thread
            self._open_error = exc
            return
        finally:
            self._ready.set()
        self.writer = writer
        last_flush = time.monotonic()
        while True:
            try:
                item = self._queue.get(
                    timeout=max(0.0, last_flush + self.flush_interval - time.monotonic()))
            except queue.Empty:
                item = None
            if time.monotonic() - last_flush >= self.flush_interval:
                last_flush = time.monotonic()
                if self.error is None:
                    try:
                        writer.flush()
                    except BaseException as exc:
                        self.error = str(exc)
            if item is None:
                continue
            job, done, box, size = item
            with self._lock:
                self._queued_bytes -= size
            try:
                if self.error is None or job is _close:
                    box.append(job(writer))
                else:
                    self.dropped += size > 0
                    box.append(None)
            except BaseException as exc:
                if self.error is None:
                    self.error = str(exc)
                box.append(exc)
            if done is not None:
                done.set()
            if job is _close:
                return

    def call(self, job: Callable[[BagWriter], Any]) -> Any:
        """Runs ``job(writer)`` in the writer thread and returns its result."""
        done, box = threading.Event(), []
        self._queue.put((job, done, box, 0))
        done.wait()
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def write(self, topic: int, stamp_ns: int, data: bytes) -> bool:
        """Queues one message; False (dropped, counted) if the queue is full or writing failed."""
        size = max(1, len(data))
        with self._lock:
            if self.error is not None or self._queued_bytes + size > MAX_QUEUED_BYTES:
                self.dropped += 1
                return False
            self._queued_bytes += size
        self._queue.put((lambda w: w.write(topic, stamp_ns, data), None, [], size))
        return True

    def close(self) -> None:
        """Writes what is queued, closes the bag (metadata.yaml) and ends the thread."""
        self.call(_close)
        self._thread.join()


def _close(writer: BagWriter) -> None:
    writer.close()


class BagRecorder:
    """Subscribes to topics and writes every message, in arrival order, to a new bag."""

    def __init__(self, session: RosSession, path: str | Path, storage: str = "mcap",
                 on_message: OnMessage | None = None, distro: str = "jazzy",
                 max_cache: int = DEFAULT_CACHE_BYTES,
                 flush_interval: float = FLUSH_INTERVAL_S) -> None:
        self.session, self.on_message = session, on_message
        self.path = Path(path)
        self.counts: dict[str, int] = {}
        self._writer = WriterThread(path, storage, distro, max_cache, flush_interval)  # BagError if the path is unusable
        self._lock = threading.Lock()
        self._subs = []
        self._closed = False

    @property
    def error(self) -> str | None:
        return self._writer.error

    @property
    def dropped(self) -> int:
        return self._writer.dropped

    def add(self, topic: str, msgtype: str, qos: QoSProfile | None = None) -> Any:
        """Records ``topic`` (offered QoS of its publishers kept in the bag); the subscription
        QoS matches those publishers unless given. Returns the subscription."""
        store = typestore()
        ensure_type(store, msgtype)
        cls = msg_class(msgtype)
        infos = self.session.node.get_publishers_info_by_topic(topic)
        offered = [from_rclpy(i.qos_profile) for i in infos]
        topic_id = self._writer.call(lambda w: w.add_topic(topic, msgtype, offered))
        qos = qos or subscription_qos([i.qos_profile for i in infos])
        self.counts[topic] = 0

        def callback(data: bytes, topic: str = topic, topic_id: int = topic_id) -> None:
            now = time.time_ns()
            with self._lock:
                if self._closed:
                    return
                if self._writer.write(topic_id, now, data):
                    self.counts[topic] += 1
            if self.on_message is not None:
                self.on_message(topic, now, data)

        sub = self.session.node.create_subscription(cls, topic, callback, qos, raw=True)
        self._subs.append(sub)
        return sub

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
           discovery_timeout: float = 10.0, progress: bool = True,
           distro: str = "jazzy", max_cache: int = DEFAULT_CACHE_BYTES,
           flush_interval: float = FLUSH_INTERVAL_S) -> dict[str, int]:
    """Records until ``duration`` s pass, Ctrl-C / SIGTERM, or a write error (BagRunError
    after the bag is closed); returns messages per topic."""
    if duration is not None and duration <= 0:
        raise BagError(f"--duration must be > 0 (got {duration:g})")
    with RosSession("fer_bag_record") as session:
        types = resolve_types(session, topics, discovery_timeout)
        for topic, msgtype in types.items():  # unknown types fail before the bag is created
            ensure_type(typestore(), msgtype)
            msg_class(msgtype)
        recorder = BagRecorder(session, out_bag, storage, distro=distro, max_cache=max_cache,
                               flush_interval=flush_interval)
        try:
            for topic, msgtype in types.items():
                recorder.add(topic, msgtype)
            if progress:
                print(f"recording {', '.join(f'{t} ({m})' for t, m in types.items())} to "
                      f"{out_bag}" + (f" for {duration:g} s" if duration else "; Ctrl-C stops"),
                      file=sys.stderr, flush=True)
            deadline = time.monotonic() + duration if duration else None
            try:
                while (deadline is None or time.monotonic() < deadline) and not recorder.error:
                    time.sleep(0.05)
            except KeyboardInterrupt:
                pass
        finally:
            recorder.close()
        if recorder.error:
            raise BagRunError(f"{recorder.error}; recording stopped, the bag holds what was "
                              f"written before (fer-bag info {out_bag})")
        if recorder.dropped and progress:
            print(f"fer-bag record: warning: {recorder.dropped} messages dropped (the disk did "
                  "not keep up)", file=sys.stderr)
    return dict(recorder.counts)
