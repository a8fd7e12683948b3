"""Opening bags (``open_bag``) and the CDR header-stamp helpers.

Every message type fer-bag restamps (sensor_msgs/Image, CompressedImage, fer_msgs/EmotionArray)
starts with a std_msgs/Header, so in its CDR bytes the stamp is at a fixed place: after the
4-byte encapsulation header come ``int32 sec`` and ``uint32 nanosec``. Reading and rewriting
those 8 bytes needs no decode of the (large) rest of the message.
"""

from __future__ import annotations

import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .reader import BagReader

_LE_STAMP = struct.Struct("<iI")
_BE_STAMP = struct.Struct(">iI")


@contextmanager
def open_bag(path: str | Path) -> Iterator[BagReader]:
    """An open BagReader; BagError (one line) when ``path`` is not a readable bag."""
    reader = BagReader(path)
    try:
        yield reader
    finally:
        reader.close()


def header_stamp_ns(data: bytes | memoryview) -> int:
    """The header stamp (ns) of a serialised message whose first field is a std_msgs/Header."""
    sec, nsec = (_BE_STAMP if data[1] in (0, 2) else _LE_STAMP).unpack_from(data, 4)
    return sec * 1_000_000_000 + nsec


def with_header_stamp(data: bytes | memoryview, stamp_ns: int) -> bytearray:
    """A copy of serialised ``data`` with its header stamp replaced by ``stamp_ns``."""
    out = bytearray(data)
    packer = _BE_STAMP if out[1] in (0, 2) else _LE_STAMP
    packer.pack_into(out, 4, stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000)
    return out
