"""``fer-bag play``: publish a bag's messages at their recorded timing, already serialised.

Each topic gets a publisher of its recorded type; the CDR bytes from the bag go out through
``Publisher.publish(bytes)`` with no decode. Images use the sensor-data QoS (best effort,
as camera drivers do) unless ``reliable``; other topics use the reliability and durability
they were recorded with (reliable when the bag does not say).
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosbags.interfaces import Connection, QosDurability, QosReliability
from rosbags.rosbag2 import Reader

from .errors import BagError
from ..progress import Progress
from .session import RosSession
from .typestore import IMAGE_TYPES, msg_class

# transform(connection, index on its topic, cdr bytes) -> the bytes to publish
Transform = Callable[[Connection, int, bytes], bytes]
SUBSCRIBER_GRACE_S = 0.5  # after matching, let the subscriber side finish matching too


def play_qos(conn: Connection, reliable: bool) -> QoSProfile:
    if reliable:
        return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    if conn.msgtype in IMAGE_TYPES:
        return qos_profile_sensor_data
    offered = list(getattr(conn.ext, "offered_qos_profiles", None) or [])
    if not offered:
        return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    q = offered[0]
    return QoSProfile(
        depth=max(10, int(q.depth)),
        reliability=(ReliabilityPolicy.BEST_EFFORT if q.reliability == QosReliability.BEST_EFFORT
                     else ReliabilityPolicy.RELIABLE),
        durability=(DurabilityPolicy.TRANSIENT_LOCAL if q.durability == QosDurability.TRANSIENT_LOCAL
                    else DurabilityPolicy.VOLATILE))


class BagPlayer:
    """Publishers for ``connections`` of an open ``reader``; ``play()`` sends the messages."""

    def __init__(self, session: RosSession, reader: Reader, connections: Iterable[Connection],
                 rate: float = 1.0, reliable: bool = False,
                 topic_names: dict[str, str] | None = None) -> None:
        if rate <= 0:
            raise BagError(f"--rate must be > 0 (got {rate})")
        self.session, self.reader, self.rate = session, reader, rate
        self.connections = list(connections)
        self.publishers = {}
        for conn in self.connections:
            if conn.topic in self.publishers:
                continue
            cls = msg_class(conn.msgtype)
            name = (topic_names or {}).get(conn.topic, conn.topic)
            self.publishers[conn.topic] = session.node.create_publisher(
                cls, name, play_qos(conn, reliable))
        self.published = 0

    @property
    def total(self) -> int:
        return sum(c.msgcount for c in self.connections)

    def wait_for_subscribers(self, timeout: float) -> bool:
        """Waits until every publisher has a subscriber (True) or ``timeout`` s pass (False)."""
        ok = self.session.wait_until(
            lambda: all(p.get_subscription_count() > 0 for p in self.publishers.values()), timeout)
        if ok:
            time.sleep(SUBSCRIBER_GRACE_S)
        return ok

    def play(self, loop: bool = False, limit: int | None = None, transform: Transform | None = None,
             progress: bool = True, status: Callable[[], str] | None = None,
             after_publish: Callable[[int], None] | None = None) -> int:
        """Publishes at recorded timing / rate; ``limit`` caps messages per pass. Returns the
        number published (all passes). ``after_publish(count)`` may block (lockstep playing:
        later messages then go out as soon as it returns, never earlier than their time).
        Ctrl-C stops it (KeyboardInterrupt propagates)."""
        total = min(self.total, limit) if limit else self.total
        bar = Progress(None if loop else total, "play", enabled=progress)
        try:
            while True:
                self._one_pass(limit, transform, bar, status, after_publish)
                if not loop:
                    break
        finally:
            bar.close()
            self._flush()
        return self.published

    def _one_pass(self, limit: int | None, transform: Transform | None, bar: Progress,
                  status: Callable[[], str] | None,
                  after_publish: Callable[[int], None] | None) -> None:
        t0_bag: int | None = None
        t0_wall = time.monotonic()
        index: dict[str, int] = {}
        sent = 0
        for conn, stamp, data in self.reader.messages(self.connections):
            if limit and sent >= limit:
                break
            if t0_bag is None:
                t0_bag = stamp
            delay = t0_wall + (stamp - t0_bag) / 1e9 / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            i = index.get(conn.topic, 0)
            index[conn.topic] = i + 1
            payload = transform(conn, i, data) if transform else data
            self.publishers[conn.topic].publish(bytes(payload))
            sent += 1
            self.published += 1
            if after_publish is not None:
                after_publish(self.published)
            bar.update(self.published, status() if status else "")

    def _flush(self) -> None:
        """Gives reliable subscribers the time to receive what was sent (up to 3 s)."""
        for pub in self.publishers.values():
            if pub.qos_profile.reliability == ReliabilityPolicy.RELIABLE:
                pub.wait_for_all_acked(Duration(seconds=3))
