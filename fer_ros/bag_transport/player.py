"""``fer-bag play``: publish a bag's CDR bytes at their recorded timing, with no decode.

rosbags reads bags but has no ROS side (no publishing, no /clock), so this is fer_ros's own.
Each topic plays with its recorded QoS adapted as ``ros2 bag play`` does (qos.play_profile)
or ``qos_override``; a topic whose type has no Python package is skipped with one warning, as
``ros2 bag play`` does; with ``clock_hz``, ``/clock`` follows the bag.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, Iterable

from rclpy.duration import Duration
from rclpy.qos import QoSProfile, ReliabilityPolicy

from ..progress import Progress
from ..bag.errors import BagError
from ..bag.reader import BagReader, Topic
from ..bag.typestore import msg_class, register_embedded, typestore
from .qos import play_profile
from .session import RosSession

# transform(topic, index on its topic, cdr bytes) -> the bytes to publish
Transform = Callable[[Topic, int, bytes], bytes]
SUBSCRIBER_GRACE_S = 0.5  # after matching, let the subscriber side finish matching too


def warn(text: str) -> None:
    print(f"fer-bag: warning: {text}", file=sys.stderr, flush=True)


class ClockPublisher:
    """``/clock`` (rosgraph_msgs/Clock) from the recording's time while it plays, ``hz`` times
    a second, as ``ros2 bag play --clock`` does, so nodes with ``use_sim_time`` follow the bag.
    QoS as rclcpp's ClockQoS (best effort, depth 1; rclpy's TimeSource subscribes so)."""

    def __init__(self, session: RosSession, hz: float, rate: float) -> None:
        from rosgraph_msgs.msg import Clock

        self._msg, self._rate, self._period = Clock(), rate, 1.0 / hz
        self.pub = session.node.create_publisher(
            Clock, "/clock", QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        self._origin: tuple[int, float] | None = None   # (bag ns, monotonic s) of one instant
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fer_bag_clock", daemon=True)
        self._thread.start()

    def start_at(self, bag_ns: int) -> None:
        """The bag's time is ``bag_ns`` now (a pass starts); publishes it at once."""
        with self._lock:
            self._origin = (bag_ns, time.monotonic())
        self._publish()

    def _publish(self) -> None:
        with self._lock:
            if self._origin is None:
                return
            bag_ns, wall = self._origin
            now = bag_ns + round((time.monotonic() - wall) * self._rate * 1e9)
            self._msg.clock.sec, self._msg.clock.nanosec = divmod(now, 1_000_000_000)
            self.pub.publish(self._msg)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self._publish()
            except Exception:  # the context is going away: playing is over
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)


class BagPlayer:
    """Publishers for ``topics`` of an open ``reader``; ``play()`` sends the messages."""

    def __init__(self, session: RosSession, reader: BagReader, topics: Iterable[Topic],
                 rate: float = 1.0, qos_override: str | None = None,
                 topic_names: dict[str, str] | None = None, clock_hz: float | None = None) -> None:
        if rate <= 0:
            raise BagError(f"--rate must be > 0 (got {rate})")
        self.session, self.reader, self.rate = session, reader, rate
        self.topics: list[Topic] = []
        self.publishers = {}
        self.skipped: list[Topic] = []
        warnings = []
        for topic in topics:
            try:
                cls = msg_class(topic.msgtype)
            except BagError as exc:
                embedded = register_embedded(typestore(), topic.msgtype, topic.definition)
                warnings.append(f"topic {topic.name} ({topic.count} messages): {exc}"
                                + ("; the bag embeds its definition, but rclpy needs the "
                                   "generated package to publish it" if embedded else ""))
                self.skipped.append(topic)
                continue
            name = (topic_names or {}).get(topic.name, topic.name)
            self.publishers[topic.name] = session.node.create_publisher(
                cls, name, play_profile(topic.qos, qos_override))
            self.topics.append(topic)
        if not self.topics:
            raise BagError(f"nothing to play: {warnings[0]}" if warnings else
                           f"{reader.path}: the bag has no topics")
        for text in warnings:
            warn(f"skipping {text}")
        self.published = 0
        self.clock = ClockPublisher(session, clock_hz, rate) if clock_hz else None

    @property
    def total(self) -> int:
        return sum(t.count for t in self.topics)

    def wait_for_subscribers(self, timeout: float) -> bool:
        """Waits until every publisher has a subscriber (True) or ``timeout`` s pass (False)."""
        ok = self.session.wait_until(
            lambda: all(p.get_subscription_count() > 0 for p in self.publishers.values()), timeout)
        if ok:
            time.sleep(SUBSCRIBER_GRACE_S)
        return ok

    def play(self, loop: bool = False, limit: int | None = None, transform: Transform | None = None,
             progress: bool = True, status: Callable[[], str] | None = None,
             after_publish: Callable[[int], bool | None] | None = None) -> int:
        """Publishes at recorded timing / rate; ``limit`` caps messages per pass. Returns the
        number published (all passes). ``after_publish(count)`` may block (lockstep playing:
        later messages then go out as soon as it returns, never earlier than their time) and
        stops playing by returning False. Ctrl-C stops it (KeyboardInterrupt propagates)."""
        total = min(self.total, limit) if limit else self.total
        bar = Progress(None if loop else total, "play", enabled=progress)
        try:
            while self._one_pass(limit, transform, bar, status, after_publish) and loop:
                pass
        finally:
            bar.close()
            if self.clock is not None:
                self.clock.close()
            self._flush()
        return self.published

    def _one_pass(self, limit: int | None, transform: Transform | None, bar: Progress,
                  status: Callable[[], str] | None,
                  after_publish: Callable[[int], bool | None] | None) -> bool:
        t0_bag: int | None = None
        t0_wall = time.monotonic()
        index: dict[str, int] = {}
        sent = 0
        for topic, stamp, data in self.reader.messages(self.topics):
            if limit and sent >= limit:
                break
            if t0_bag is None:
                t0_bag = stamp
                if self.clock is not None:
                    self.clock.start_at(stamp)
            delay = t0_wall + (stamp - t0_bag) / 1e9 / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            i = index.get(topic.name, 0)
            index[topic.name] = i + 1
            payload = transform(topic, i, data) if transform else data
            self.publishers[topic.name].publish(bytes(payload))
            sent += 1
            self.published += 1
            bar.update(self.published, status() if status else "")
            if after_publish is not None and after_publish(self.published) is False:
                return False
        return True

    def _flush(self) -> None:
        """Gives reliable subscribers the time to receive what was sent (up to 3 s)."""
        for pub in self.publishers.values():
            if pub.qos_profile.reliability == ReliabilityPolicy.RELIABLE:
                pub.wait_for_all_acked(Duration(seconds=3))
