"""metadata.yaml and recorded QoS as each distro's ``ros2 bag record`` writes them.

Kept although rosbags has QoS and metadata code (its Qos, parse_qos and dump_qos_v9 are used
here): its Writer writes versions 8/9 only and its metadata.yaml parser is inside its
folder reader (unbounded YAML). Humble writes version 5 (QoS as a YAML string of rmw enum
integers, no type hashes, no custom_data / ros_distro), Jazzy version 9 (QoS as a list of rmw
names); Humble's reader refuses the version-9 list, Jazzy reads both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2.metadata import dump_qos_v9, parse_qos

from .errors import BagError
from .safe_yaml import loads, short


@dataclass(frozen=True)
class Layout:
    distro: str
    metadata_version: int
    sqlite_schema_version: int


LAYOUTS = {"jazzy": Layout("jazzy", 9, 4), "humble": Layout("humble", 5, 3)}
SENSOR_DATA = Qos(QosHistory.KEEP_LAST, 5, QosReliability.BEST_EFFORT, QosDurability.VOLATILE,
                  QosTime(0, 0), QosTime(0, 0), QosLiveliness.SYSTEM_DEFAULT, QosTime(0, 0), False)


def layout_for(distro: str) -> Layout:
    if distro not in LAYOUTS:
        raise BagError(f"unknown --ros-distro {distro!r}: use one of {', '.join(LAYOUTS)}")
    return LAYOUTS[distro]


@dataclass
class TopicMeta:
    name: str
    msgtype: str
    qos: list[Qos] = field(default_factory=list)
    type_hash: str = ""
    count: int = 0
    serialization_format: str = "cdr"
    definition: Any = None  # rosbags MessageDefinition embedded in the bag (reader)


@dataclass
class FileMeta:
    path: str
    start_ns: int
    duration_ns: int
    count: int


@dataclass
class BagMeta:
    version: int
    storage: str
    files: list[str]
    topics: list[TopicMeta]
    compression_format: str = ""
    compression_mode: str = ""
    ros_distro: str = ""


def dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def qos_dicts(profiles: list[Qos], layout: Layout) -> list[dict[str, Any]]:
    """The profiles as rosbag2 writes them: rmw names (v9) or enum integers (before)."""
    dicts = dump_qos_v9(profiles)
    if layout.metadata_version < 9:
        for d, q in zip(dicts, profiles):
            d.update(history=q.history.value, reliability=q.reliability.value,
                     durability=q.durability.value, liveliness=q.liveliness.value)
    return dicts


def qos_text(profiles: list[Qos], layout: Layout) -> str:
    """The QoS string rosbag2 stores (in the storage; before v9 in metadata.yaml too)."""
    return dump(qos_dicts(profiles, layout)).rstrip("\n") if profiles else ""


def metadata_document(layout: Layout, storage: str, files: list[FileMeta],
                      topics: list[TopicMeta]) -> dict[str, Any]:
    """``{"rosbag2_bagfile_information": ...}`` with the keys, order and types rosbag2's
    ``convert<BagMetadata>::encode`` writes for ``layout``."""
    full = [f for f in files if f.count]
    start = min((f.start_ns for f in full), default=0)
    end = max((f.start_ns + f.duration_ns for f in full), default=0)
    entries = []
    for t in topics:
        meta: dict[str, Any] = {"name": t.name, "type": t.msgtype,
                                "serialization_format": t.serialization_format,
                                "offered_qos_profiles": qos_dicts(t.qos, layout)
                                if layout.metadata_version >= 9 else qos_text(t.qos, layout)}
        if layout.metadata_version >= 7:
            meta["type_description_hash"] = t.type_hash
        entries.append({"topic_metadata": meta, "message_count": t.count})
    info: dict[str, Any] = {
        "version": layout.metadata_version, "storage_identifier": storage,
        "duration": {"nanoseconds": end - start},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": sum(f.count for f in files), "topics_with_message_count": entries,
        "compression_format": "", "compression_mode": "",
        "relative_file_paths": [f.path for f in files],
        "files": [{"path": f.path, "starting_time": {"nanoseconds_since_epoch": f.start_ns},
                   "duration": {"nanoseconds": f.duration_ns}, "message_count": f.count}
                  for f in files]}
    if layout.metadata_version >= 9:
        info.update(custom_data={}, ros_distro=layout.distro)
    return {"rosbag2_bagfile_information": info}


def parse_profiles(value: Any) -> list[Qos]:
    """Profiles from a metadata value: a YAML list (v9) or a string holding one (v < 9)."""
    if isinstance(value, str):
        value = loads(value, "offered_qos_profiles") if value else []
    if value and not isinstance(value, list):
        raise BagError("offered_qos_profiles is not a list of QoS profiles")
    try:
        return parse_qos(value or [])
    except (KeyError, TypeError, AttributeError) as exc:
        raise BagError(f"offered_qos_profiles: bad QoS profile ({type(exc).__name__}: "
                       f"{short(exc, 80)})") from None


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
    topics = []
    for entry in _get(info, "topics_with_message_count", list, where):
        meta = _get(entry, "topic_metadata", dict, where)
        qos = parse_profiles(meta.get("offered_qos_profiles")) if version >= 4 else []
        type_hash = meta.get("type_description_hash", "") if version >= 7 else ""
        topics.append(TopicMeta(_get(meta, "name", str, where), _get(meta, "type", str, where),
                                qos, str(type_hash or ""), _get(entry, "message_count", int, where),
                                _get(meta, "serialization_format", str, where)))
    for key, sub in (("duration", "nanoseconds"), ("starting_time", "nanoseconds_since_epoch")):
        _get(_get(info, key, dict, where), sub, int, where)
    _get(info, "message_count", int, where)
    return BagMeta(version, _get(info, "storage_identifier", str, where),
                   [str(p) for p in _get(info, "relative_file_paths", list, where)], topics,
                   str(info.get("compression_format") or ""),
                   str(info.get("compression_mode") or ""), str(info.get("ros_distro") or ""))
