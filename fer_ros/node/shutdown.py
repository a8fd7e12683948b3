"""Clean exit on SIGINT and SIGTERM for the emotion node: exit code 0, no traceback, no ERROR.

rclpy's own handlers shut the ROS context down inside the signal, while the worker thread may
be publishing ("publisher's context is invalid"), and a second signal (``ros2 launch`` without
a tty sends one) lands in the middle of the clean-up. So the node takes both signals over:

* :func:`install` (first thing in the process): until :meth:`StopSignals.defer`, when nothing
  of ROS exists yet (the ~2 s of imports), a signal ends the process at once with code 0;
* after :meth:`StopSignals.defer` a signal only sets :attr:`StopSignals.requested`; the main
  loop (:func:`spin_until_stopped`) sees it within ``period_s`` and the node shuts down in
  order (worker, node, context). Later signals are ignored: the shutdown is under way;
* the handlers are installed with SA_RESTART (``signal.siginterrupt(sig, False)``): Python's
  default lets a signal interrupt the system calls of native code with EINTR, and the model
  loaders and rcl treat that as a failure (a traceback when SIGTERM came during configure;
  ``RCLError: failed to initialize wait set`` from the executor). Python's own calls retry
  either way (PEP 475), and the handler still runs;
* :func:`spin_until_stopped` also takes an ``RCLError`` raised once a stop was requested as the
  stop (rcl can fail while the signal is being handled);
* :func:`exit_now` then ends the process without Python's own teardown, which is slow with
  torch and OpenCV loaded and restores the default handlers first (a late second signal
  then killed the process: exit code -2 or -15).

rclpy must be initialised with ``signal_handler_options=SignalHandlerOptions.NO``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any, NoReturn

from fer_ros.node.process import rclpy_private, stderr_throttle
from fer_ros.node.process.rclpy_private import release_state_machine  # noqa: F401  (the node's exit)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """SIGINT/SIGTERM -> a stop request (see the module docstring)."""

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._deferred = False
        self.signal_name = ""  # of the first signal received

    @property
    def requested(self) -> bool:
        """True once a stop signal has arrived."""
        return self._requested.is_set()

    def defer(self) -> None:
        """From now on a signal only requests a stop (call before creating ROS objects)."""
        self._deferred = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._requested.is_set():
            return  # second signal: the shutdown is already under way
        self.signal_name = signal.Signals(signum).name
        self._requested.set()
        if not self._deferred:
            raise SystemExit(0)  # still importing: nothing to clean up


_STOP: StopSignals | None = None


def install() -> StopSignals:
    """The process's StopSignals, handling SIGINT and SIGTERM from now on (idempotent). A
    signal the process was started with ignored (``nohup``, ``cmd &`` in a script) stays
    ignored, as Python itself does for SIGINT; off the main thread, where Python cannot set
    handlers, nothing is installed."""
    global _STOP
    if _STOP is None:
        _STOP = StopSignals()
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    signal.signal(signum, _STOP._handle)
                    signal.siginterrupt(signum, False)  # SA_RESTART: see the module docstring
    return _STOP


def spin_until_stopped(executor: Any, stop: StopSignals, period_s: float = 0.1) -> None:
    """Spin ``executor`` until a stop signal arrives or its context is shut down. Python runs
    signal handlers between waits, so a signal is seen within ``period_s``."""
    rcl_error = rclpy_private.rcl_error()
    context = executor.context
    while not stop.requested and context.ok():
        try:
            executor.spin_once(timeout_sec=period_s)
        except rcl_error:
            if not stop.requested:
                raise
            return  # a stop signal interrupted rcl: stopping was requested anyway


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` once ROS is shut down: flush Python's and C's output
    streams, then ``os._exit`` (no interpreter teardown, see the module docstring)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more to say
            pass
    ctypes.CDLL(None).fflush(None)  # rcutils logs through C stdio
    stderr_throttle.uninstall()  # drain what the throttle still holds
    os._exit(code)
