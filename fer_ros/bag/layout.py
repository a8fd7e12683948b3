"""How each ROS 2 distro lays out a rosbag2 bag, and metadata.yaml written / read that way.

Checked against rosbag2's own code (``rosbag2_storage/include/rosbag2_storage/yaml.hpp``,
``bag_metadata.hpp``, the sqlite3 and mcap storage plugins) on its ``humble`` and ``jazzy``
branches:

=====================  ================================  ==================================
                       humble                            jazzy
=====================  ================================  ==================================
metadata ``version``   5                                 9
offered_qos_profiles   YAML string, enum integers        YAML list, rmw names
type_description_hash  absent (added in version 7)       per topic (RIHS01)
custom_data/ros_distro absent (versions 6 / 8)           present
sqlite3 schema         3: schema, metadata, topics,      4: + topics.type_description_hash,
                       messages                          message_definitions table
mcap channel metadata  offered_qos_profiles (integers)   offered_qos_profiles (names),
                                                         topic_type_hash
=====================  ================================  ==================================

Humble's reader decodes ``offered_qos_profiles`` with ``as<std::string>()`` for every version
>= 4, so a version-9 list is a conversion error there; Jazzy reads both layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import BagError
from .qos import Qos, parse_profiles, profile_dicts, profiles_string
from .safe_yaml import short


@dataclass(frozen=True)
class Layout:
    distro: str
    metadata_version: int
    sqlite_schema_version: int

    @property
    def named_qos(self) -> bool:
        """QoS policies as rmw names (version 9) instead of enum integers."""
        return self.metadata_version >= 9

    @property
    def type_hashes(self) -> bool:
        return self.metadata_version >= 7


LAYOUTS = {"jazzy": Layout("jazzy", 9, 4), "humble": Layout("humble", 5, 3)}
DEFAULT_DISTRO = "jazzy"


def layout_for(distro: str) -> Layout:
    if distro not in LAYOUTS:
        raise BagError(f"unknown --ros-distro {distro!r}: use one of {', '.join(LAYOUTS)}")
    return LAYOUTS[distro]


@dataclass
class TopicMeta:
    """One topic of a bag: what metadata.yaml (or the storage) says about it."""

    name: str
    msgtype: str
    qos: list[Qos] = field(default_factory=list)
    type_hash: str = ""
    count: int = 0
    serialization_format: str = "cdr"


@dataclass
class FileMeta:
    path: str
    start_ns: int
    duration_ns: int
    count: int


@dataclass
class BagMeta:
    """The parts of metadata.yaml fer-bag uses."""

    version: int
    storage: str
    files: list[str]
    topics: list[TopicMeta]
    message_count: int
    start_ns: int
    duration_ns: int
    compression_format: str = ""
    compression_mode: str = ""
    ros_distro: str = ""


def metadata_document(layout: Layout, storage: str, files: list[FileMeta],
                      topics: list[TopicMeta], compression_format: str = "",
                      compression_mode: str = "") -> dict[str, Any]:
    """``{"rosbag2_bagfile_information": ...}`` with the keys, order and types rosbag2's
    ``convert<BagMetadata>::encode`` writes for ``layout``."""
    with_messages = [f for f in files if f.count]
    start = min((f.start_ns for f in with_messages), default=0)
    end = max((f.start_ns + f.duration_ns for f in with_messages), default=0)
    entries = []
    for t in topics:
        meta: dict[str, Any] = {"name": t.name, "type": t.msgtype,
                                "serialization_format": t.serialization_format}
        if layout.named_qos:
            meta["offered_qos_profiles"] = profile_dicts(t.qos, named=True)
        else:
            meta["offered_qos_profiles"] = profiles_string(t.qos, named=False)
        if layout.type_hashes:
            meta["type_description_hash"] = t.type_hash
        entries.append({"topic_metadata": meta, "message_count": t.count})
    info: dict[str, Any] = {
        "version": layout.metadata_version,
        "storage_identifier": storage,
        "duration": {"nanoseconds": end - start},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": sum(f.count for f in files),
        "topics_with_message_count": entries,
        "compression_format": compression_format,
        "compression_mode": compression_mode,
        "relative_file_paths": [f.path for f in files],
        "files": [{"path": f.path, "starting_time": {"nanoseconds_since_epoch": f.start_ns},
                   "duration": {"nanoseconds": f.duration_ns}, "message_count": f.count}
                  for f in files],
    }
    if layout.metadata_version >= 6:
        info["custom_data"] = {}
    if layout.metadata_version >= 8:
        info["ros_distro"] = layout.distro
    return {"rosbag2_bagfile_information": info}


def _get(node: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(node, dict) or key not in node:
        raise BagError(f"{where}: metadata key {key!r} is missing")
    value = node[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise BagError(f"{where}: metadata key {key!r} has a bad value ({short(value, 60)})")
    return value


def parse_metadata(doc: Any, where: str) -> BagMeta:
    """BagMeta from a loaded metadata.yaml (any version 1-9); BagError naming what is wrong."""
    info = _get(doc, "rosbag2_bagfile_information", dict, where)
    version = _get(info, "version", int, where)
    if not 1 <= version <= 9:
        raise BagError(f"{where}: metadata version {version} is not one fer-bag reads (1-9)")
    storage = _get(info, "storage_identifier", str, where)
    files = [str(p) for p in _get(info, "relative_file_paths", list, where)]
    topics = []
    for entry in _get(info, "topics_with_message_count", list, where):
        meta = _get(entry, "topic_metadata", dict, where)
        count = _get(entry, "message_count", int, where)
        qos = parse_profiles(meta.get("offered_qos_profiles")) if version >= 4 else []
        type_hash = meta.get("type_description_hash", "") if version >= 7 else ""
        topics.append(TopicMeta(_get(meta, "name", str, where), _get(meta, "type", str, where),
                                qos, str(type_hash or ""), count,
                                _get(meta, "serialization_format", str, where)))
    duration = _get(_get(info, "duration", dict, where), "nanoseconds", int, where)
    start = _get(_get(info, "starting_time", dict, where), "nanoseconds_since_epoch", int, where)
    return BagMeta(version, storage, files, topics, _get(info, "message_count", int, where),
                   start, duration, str(info.get("compression_format") or ""),
                   str(info.get("compression_mode") or ""), str(info.get("ros_distro") or ""))
