"""Throttle the lines native libraries print to stderr once per bad message.

ROS 2's generated type support (``rosidl_typesupport_fastrtps_c/cpp``) prints
``sequence size exceeds remaining buffer`` (and ``failed to create array for field 'data'``,
without a newline) with a bare ``fprintf(stderr, ...)`` for every malformed CDR message it is
handed, from whichever thread takes the message. Nothing in Python sees those calls, so
:func:`install` puts a pipe behind file descriptor 2 for the whole process and a reader thread
copies what arrives to the real stderr, line by line:

- a line matching :data:`NOISY` is written the first time; identical ones within
  THROTTLE_S seconds are counted and held back, and the next one written after the window
  carries ``(+N identical lines held back)``;
- every other line (ROS log lines, Python tracebacks, anything unknown) passes unchanged and
  in order;
- a partial line (no newline yet) is passed on after PARTIAL_S, so nothing sits in the pipe.

:func:`uninstall` (also run by ``fer_ros.node.shutdown.exit_now``) points fd 2 back at the
real stderr, lets the reader drain the pipe and prints how many lines were held back in all.
The decoder capture in :mod:`fer_ros.node.process.native_log` works on top of this (it saves and
restores whatever fd 2 is).
"""

from __future__ import annotations

import atexit
import codecs
import os
import re
import select
import sys
import threading
import time

THROTTLE_S = 5.0
PARTIAL_S = 0.2
# per-message complaints of the generated type support and Fast CDR
NOISY = re.compile(
    r"(sequence size exceeds remaining buffer|failed to create array for field|"
    r"Not enough memory in the buffer stream|Fast CDR exception|"
    r"Fail in deserializ|error deserializ)")
# a whole line, or a type-support message printed without its newline
_TOKEN = re.compile(r"failed to create array for field '[^'\n]*'(?!\n)|[^\n]*\n")


class _Filter:
    """The reader thread and its counters (see the module docstring)."""

    def __init__(self) -> None:
        self.real_fd = os.dup(2)
        read_fd, write_fd = os.pipe()
        self.read_fd = read_fd
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self.held_total = 0
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="fer_stderr_throttle",
                                        daemon=True)
        self._thread.start()

    def _write(self, text: str) -> None:
        data = text.encode("utf-8", "replace")
        while data:
            try:
                data = data[os.write(self.real_fd, data):]
            except InterruptedError:
                continue
            except OSError:
                return  # the real stderr is gone: nothing more can be said

    def emit(self, text: str) -> None:
        """:meth:`line`, falling back to passing ``text`` on: the reader must never stop, or
        the writers would block on a full pipe."""
        try:
            self.line(text)
        except Exception:
            self._write(text)

    def line(self, text: str) -> None:
        """One complete line (with its newline, or a flushed partial one)."""
        if NOISY.search(text) is None:
            self._write(text)
            return
        key = text.strip()
        now = time.monotonic()
        if now - self._last.get(key, -float("inf")) < THROTTLE_S:
            self._held[key] = self._held.get(key, 0) + 1
            self.held_total += 1
            return
        self._last[key] = now
        held = self._held.pop(key, 0)
        extra = f" (+{held} identical lines held back)" if held else ""
        self._write(f"{key}{extra}\n")

    def _run(self) -> None:
        pending = ""
        since = 0.0
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            try:
                ready, _, _ = select.select([self.read_fd], [], [], PARTIAL_S)
                if not ready:
                    if pending and time.monotonic() - since >= PARTIAL_S:
                        self.emit(pending)
                        pending = ""
                    continue
                chunk = os.read(self.read_fd, 65536)
            except InterruptedError:
                continue
            except OSError:
                break
            if not chunk:
                break  # every writer is gone: uninstall() restored fd 2
            if not pending:
                since = time.monotonic()
            pending += decoder.decode(chunk)
            pos = 0
            while (token := _TOKEN.match(pending, pos)) is not None and token.end() > pos:
                self.emit(token.group())
                pos = token.end()
            pending = pending[pos:]
        if pending:
            self.emit(pending)
        os.close(self.read_fd)

    def close(self, timeout_s: float) -> None:
        """fd 2 back to the real stderr; drain the pipe (at most ``timeout_s``)."""
        os.dup2(self.real_fd, 2)  # the pipe's last write end: the reader sees end-of-file
        self._thread.join(timeout_s)
        held = sum(self._held.values())
        if held:
            self._write(f"fer_ros: {held} more repeated native stderr lines held back at exit\n")


_FILTER: _Filter | None = None
_LOCK = threading.Lock()


def _flush_python_stderr() -> None:
    """Python's buffered stderr out before fd 2 changes (closed or absent: nothing to do)."""
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):
        pass


def install() -> bool:
    """Route fd 2 through the throttle (idempotent). False where it cannot be done (no fd 2)."""
    global _FILTER
    with _LOCK:
        if _FILTER is not None:
            return True
        _flush_python_stderr()
        try:
            _FILTER = _Filter()
        except OSError:
            return False
        atexit.register(uninstall)  # an uncaught exception's traceback is drained too
        return True


def uninstall(timeout_s: float = 1.0) -> None:
    """Undo :func:`install` and drain what is still in the pipe (idempotent)."""
    global _FILTER
    with _LOCK:
        if _FILTER is None:
            return
        _flush_python_stderr()
        _FILTER.close(timeout_s)
        _FILTER = None


def held_back() -> int:
    """How many lines the throttle has held back so far (0 when not installed)."""
    return _FILTER.held_total if _FILTER is not None else 0
