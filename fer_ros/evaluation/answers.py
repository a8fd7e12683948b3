"""Matching the node's answers to the played frames, and what is written about them.

Each image is restamped with the time it is published; an answer's header is its image's, so
its stamp names the frame. The stamp is read and rewritten in the CDR bytes (``int32 sec,
uint32 nanosec`` right after the 4-byte encapsulation header), with no decode.
"""

from __future__ import annotations

import csv
import struct
import time
from pathlib import Path
from typing import Any

from ..bag.typestore import EMOTION_ARRAY, typestore
from .refusals import NOT_REFUSED, logged_refusals
from .stats import Answer, first_answers

_LE_STAMP, _BE_STAMP = struct.Struct("<iI"), struct.Struct(">iI")
SETTLE_S = 2.0       # after the last image, wait this long without a new answer
MAX_SETTLE_S = 30.0  # ... but no longer than this in all


def header_stamp_ns(data: bytes | memoryview) -> int:
    """The header stamp (ns) of CDR bytes whose first field is a std_msgs/Header."""
    sec, nsec = (_BE_STAMP if data[1] in (0, 2) else _LE_STAMP).unpack_from(data, 4)
    return sec * 1_000_000_000 + nsec


def with_header_stamp(data: bytes | memoryview, stamp_ns: int) -> bytearray:
    """A copy of CDR ``data`` with its header stamp replaced by ``stamp_ns``."""
    out = bytearray(data)
    packer = _BE_STAMP if out[1] in (0, 2) else _LE_STAMP
    packer.pack_into(out, 4, stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000)
    return out


class Restamper:
    """Player transform: stamp = now (unique, increasing); remembers stamp -> frame index."""

    def __init__(self) -> None:
        self.frame_of: dict[int, int] = {}
        self.rows: list[tuple[int, int, int]] = []  # frame, original stamp, published stamp
        self._last = 0

    def __call__(self, topic: Any, index: int, data: bytes) -> bytes:
        now = max(time.time_ns(), self._last + 1)
        self._last = now
        self.frame_of[now] = index
        self.rows.append((index, header_stamp_ns(data), now))
        return with_header_stamp(data, now)


def settle(count, published: int) -> None:
    """Waits for the last answers: until all frames are answered or none came for SETTLE_S."""
    start = last_change = time.monotonic()
    seen = count()
    while seen < published and time.monotonic() - last_change < SETTLE_S \
            and time.monotonic() - start < MAX_SETTLE_S:
        time.sleep(0.05)
        if count() != seen:
            seen, last_change = count(), time.monotonic()


def decode_answers(received: list[tuple[int, bytes]], frame_of: dict[int, int]) -> list[Answer]:
    store = typestore()
    answers = []
    for receipt_ns, data in received:
        stamp = header_stamp_ns(data)
        frame = frame_of.get(stamp)
        if frame is None:
            continue  # not an answer to one of our frames
        msg = store.deserialize_cdr(data, EMOTION_ARRAY)
        answers.append(Answer(
            frame=frame, receipt_ns=receipt_ns, latency_ms=(receipt_ns - stamp) / 1e6,
            faces=[(e.label, int(e.roi.width) * int(e.roi.height)) for e in msg.emotions],
            labels=list(msg.labels), track_ids=[int(e.id) for e in msg.emotions],
            probabilities=[[float(p) for p in e.probabilities] for e in msg.emotions]))
    return answers


def nothing_answered(report: dict[str, Any], published: int, out: Path, spawn: bool) -> str:
    reasons = report["frames_unanswered"]
    logged = logged_refusals(out / "node.log" if spawn else None)
    parts = []
    for reason, count in reasons.items():
        parts.append(f"{count} x {reason}" if reason == NOT_REFUSED
                     else f"{count} refused: {reason}")
    extra = [r for r in logged if r not in reasons]
    if extra:
        parts.append(f"node.log also says: {extra[0]}")
    where = f" (log: {out / 'node.log'})" if spawn else ""
    return (f"the emotion node answered none of the {published} frames played: "
            + "; ".join(parts) + where)


def write_frames_csv(path: Path, rows: list[tuple[int, int, int]], answers: list[Answer]) -> None:
    first = first_answers(answers)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "original_stamp_ns", "published_stamp_ns", "answered", "label",
                    "latency_ms"])
        for frame, original, new in rows:
            a = first.get(frame)
            w.writerow([frame, original, new, int(a is not None), a.main_label if a else "",
                        f"{a.latency_ms:.2f}" if a else ""])
