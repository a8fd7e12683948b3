"""Opening rosbag2 bags with clear errors, and the CDR header-stamp helpers.

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

from rosbags.interfaces import Connection, Qos, QosDurability, QosHistory, QosLiveliness, \
    QosReliability, QosTime
from rosbags.rosbag2 import Reader, Writer
from rosbags.rosbag2.enums import StoragePlugin

from .errors import BagError

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
BAG_VERSION = 9  # the metadata version Jazzy's `ros2 bag record` writes
_LE_STAMP = struct.Struct("<iI")
_BE_STAMP = struct.Struct(">iI")


@contextmanager
def open_bag(path: str | Path) -> Iterator[Reader]:
    """An open rosbags Reader; BagError (one line) when ``path`` is not a readable bag."""
    path = Path(path)
    if not path.exists():
        raise BagError(f"{path}: no such bag (give a rosbag2 folder with metadata.yaml)")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise BagError(f"{path}: not a rosbag2 bag (no metadata.yaml in the folder)")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:  # rosbags raises ReaderError, KeyError, yaml errors, sqlite errors
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BagError(f"{path}: cannot read the bag: {detail}") from None
    try:
        yield reader
    finally:
        reader.close()


def topic_connections(reader: Reader, topics: list[str] | None) -> list[Connection]:
    """The connections of ``topics`` (all when None); BagError naming a missing topic."""
    if not topics:
        return list(reader.connections)
    available = sorted({c.topic for c in reader.connections})
    wanted = [t if t.startswith("/") else "/" + t for t in topics]
    missing = [t for t in wanted if t not in available]
    if missing:
        raise BagError(f"topic {missing[0]} is not in the bag (topics: {', '.join(available)})")
    return [c for c in reader.connections if c.topic in wanted]


def new_writer(path: str | Path, storage: str) -> Writer:
    """An opened Writer for a new bag folder; BagError if the folder exists."""
    path = Path(path)
    if path.exists():
        raise BagError(f"{path} already exists: choose a new output bag path")
    if storage not in STORAGES:
        raise BagError(f"unknown storage {storage!r}: use one of {', '.join(STORAGES)}")
    if not path.parent.is_dir():
        raise BagError(f"{path.parent}: no such folder for the output bag")
    writer = Writer(path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
    writer.open()
    return writer


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


def _qos_time(ns: int) -> QosTime:
    return QosTime(sec=ns // 1_000_000_000, nsec=ns % 1_000_000_000)


def sensor_data_qos() -> Qos:
    """What camera drivers offer (rclpy's qos_profile_sensor_data), for the bag's metadata."""
    return Qos(QosHistory.KEEP_LAST, 5, QosReliability.BEST_EFFORT, QosDurability.VOLATILE,
               _qos_time(0), _qos_time(0), QosLiveliness.SYSTEM_DEFAULT, _qos_time(0), False)


def qos_from_rclpy(profile) -> Qos:
    """An rclpy QoSProfile (e.g. from get_publishers_info_by_topic) as rosbags' Qos."""
    def dur(d) -> QosTime:
        return _qos_time(int(getattr(d, "nanoseconds", 0)))

    return Qos(QosHistory(int(profile.history)), int(profile.depth),
               QosReliability(int(profile.reliability)), QosDurability(int(profile.durability)),
               dur(profile.deadline), dur(profile.lifespan), QosLiveliness(int(profile.liveliness)),
               dur(profile.liveliness_lease_duration), bool(profile.avoid_ros_namespace_conventions))
