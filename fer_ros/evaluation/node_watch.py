"""The emotion node's own counters, read from its diagnostics (``/diagnostics``).

The node publishes a DiagnosticStatus named ``fer_ros: <node name>`` every
``diagnostics_period_s`` with cumulative ``frames_received``, ``frames_processed``,
``frames_bad`` (refused images) and ``errors``. ``fer-bag evaluate`` uses them to tell a node
that refuses every frame from one that is merely slow.
"""

from __future__ import annotations

import threading

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy

from ..bag_transport.session import RosSession

COUNTERS = ("frames_received", "frames_processed", "frames_bad", "errors")


class NodeWatch:
    """Latest counters of the node whose status is ``status_name`` (any fer_ros node if None:
    the first one heard from)."""

    def __init__(self, session: RosSession, status_name: str | None) -> None:
        self.name = status_name
        self.counters: dict[str, int] = {}
        self.message = ""
        self._lock = threading.Lock()
        self._sub = session.node.create_subscription(
            DiagnosticArray, "/diagnostics", self._on_diagnostics,
            QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if self.name is None and status.name.startswith("fer_ros: "):
                self.name = status.name
            if status.name != self.name:
                continue
            values = {kv.key: kv.value for kv in status.values}
            counters = {}
            for key in COUNTERS:
                try:
                    counters[key] = int(float(values.get(key, "0")))
                except ValueError:
                    counters[key] = 0
            with self._lock:
                self.counters, self.message = counters, status.message

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)

    @property
    def refused(self) -> int:
        """Frames the node refused (bad image) or failed on, so far."""
        c = self.snapshot()
        return c.get("frames_bad", 0) + c.get("errors", 0)
