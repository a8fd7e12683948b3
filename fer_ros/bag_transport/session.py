"""One rclpy context + node, spun by a background thread, for the fer-bag commands."""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from ..ros_env import dds_env


class RosSession:
    """Context manager: ``node`` is live and its callbacks run while the block runs.

    rclpy's own signal handlers are not installed: Ctrl-C reaches the command as
    KeyboardInterrupt, so it can close its bag or stop its child cleanly.
    """

    def __init__(self, name: str) -> None:
        os.environ.update(dds_env())  # before the DDS participant exists (large-image profile)
        self.context = rclpy.Context()
        # args=[]: our own command line (e.g. `-p detector:=yunet`) is not rcl's
        rclpy.init(args=[], context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="fer_bag_spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            while not self._stop.is_set() and self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except (ExternalShutdownException, rclpy.executors.ShutdownException):
            pass

    def wait_until(self, predicate: Callable[[], bool], timeout: float,
                   abort: Callable[[], None] | None = None) -> bool:
        """Polls ``predicate`` until true (True) or ``timeout`` s pass (False); ``abort()`` may
        raise to stop early (e.g. when a child process died)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            if abort is not None:
                abort()
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        if self.context.ok():
            rclpy.shutdown(context=self.context)

    def __enter__(self) -> "RosSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
