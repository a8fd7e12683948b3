"""Native decoder messages (libjpeg, libpng, libwebp, OpenCV's own log) caught and throttled.

The C libraries behind ``cv2.imdecode`` print straight to file descriptor 2, once per corrupt
image, so a stream of bad images floods the log. :func:`install` makes the core's image codec
run each decode inside ``captured(what)``, which points fd 2 at an
in-memory file while one decode runs (a lock makes decodes take turns), then:

- lines that are not a decoder's (another thread wrote to stderr meanwhile) are written back
  to the real stderr at once, unchanged;
- decoder lines go to ``sink`` (default: stderr), at most one every THROTTLE_S seconds, with
  the number of lines held back since the last one.

The last decoder line is kept on the returned object (``first_line``) so that the caller can
put it into its own one-line error.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

THROTTLE_S = 5.0
# what the decoders print: libjpeg ("Corrupt JPEG data: ...", "Premature end of JPEG file",
# "Invalid SOS parameters ..."), libpng ("libpng warning: ...", "libpng error: ..."), OpenCV's
# log ("[ WARN:0@1.2] global ...", "[ERROR:0@1.2] ..."), libwebp / libtiff messages
NATIVE_LINE = re.compile(
    r"^(\[ ?(WARN|ERROR|INFO):\d+@[^\]]*\]|libpng |Corrupt JPEG|Premature end|Invalid |Not a JPEG|"
    r"Bogus |Unsupported |Warning|JPEG |Quantization|Huffman|TIFF|.*: Not a TIFF)")


@dataclass
class Captured:
    first_line: str = ""
    lines: int = 0


class _Throttle:
    """At most one line per THROTTLE_S to ``sink``; counts the ones held back."""

    def __init__(self) -> None:
        self.sink: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
        self.total = 0
        self._held = 0
        self._last = -float("inf")

    def __call__(self, what: str, lines: list[str]) -> None:
        self.total += len(lines)
        now = time.monotonic()
        if now - self._last < THROTTLE_S:
            self._held += len(lines)
            return
        more = len(lines) - 1 + self._held
        extra = f" (+{more} more native decoder lines held back)" if more else ""
        self._last, self._held = now, 0
        self.sink(f"fer_ros: native decoder message while {what}: {lines[0]}{extra}")


THROTTLE = _Throttle()
_LOCK = threading.Lock()


def set_sink(sink: Callable[[str], None]) -> None:
    """Send the throttled decoder lines to ``sink`` (e.g. a ROS logger's warning)."""
    THROTTLE.sink = sink


def install(sink: Callable[[str], None] | None = None) -> None:
    """Catch the decoder lines of every image decode in this process (the core's codec
    leaves fd 2 alone unless told); ``sink`` as in :func:`set_sink`."""
    from fer_ros.core import image_codec

    if sink is not None:
        set_sink(sink)
    image_codec.set_native_capture(captured)


@contextmanager
def captured(what: str) -> Iterator[Captured]:
    """Run the body with fd 2 captured (see the module docstring)."""
    result = Captured()
    with _LOCK:
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError, OSError):
            pass
        memfd = os.memfd_create("fer_native_stderr", os.MFD_CLOEXEC)
        saved = os.dup(2)
        os.dup2(memfd, 2)
        try:
            yield result
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.lseek(memfd, 0, os.SEEK_SET)
            text = os.read(memfd, 1 << 20).decode("utf-8", "replace")
            os.close(memfd)
            _sort(text, what, result)


def _sort(text: str, what: str, result: Captured) -> None:
    native, other = [], []
    for line in text.splitlines():
        if line.strip():
            (native if NATIVE_LINE.match(line) else other).append(line)
    if other:
        os.write(2, ("\n".join(other) + "\n").encode())
    if native:
        result.first_line = native[0].strip()
        result.lines = len(native)
        THROTTLE(what, native)
