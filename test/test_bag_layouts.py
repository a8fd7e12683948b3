"""Which ROS 2 distros read the bags fer-bag writes: checked by reading them back the way each
distro's rosbag2 reads them.

The readers below restate, field by field, what rosbag2 does on its ``humble`` and ``jazzy``
branches (the C++ is not installable here):
* metadata.yaml: ``convert<BagMetadata>::decode`` and ``convert<TopicMetadata>::decode``
  (rosbag2_storage metadata_io.cpp on humble, yaml.hpp on jazzy) with yaml-cpp's conversion
  rules (``as<std::string>()`` fails on a sequence, ``as<int>()`` on a non-number);
* QoS: Humble's ``convert<Rosbag2QoS>::decode`` (integers only) and Jazzy's
  ``convert<rclcpp::QoS>::decode`` (integers or rmw names, auto-detected);
* sqlite3: the SELECTs of each distro's SqliteStorage (topics, messages, schema, metadata,
  message_definitions);
* mcap: channel metadata ``offered_qos_profiles`` / ``topic_type_hash`` and the ``rosbag2``
  metadata record as rosbag2_storage_mcap reads them, and every message decoded with the
  independent ``mcap`` + ``mcap-ros2-support`` readers.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")
mcap_ros2 = pytest.importorskip("mcap_ros2.decoder", reason="mcap-ros2-support is not installed")

from mcap.reader import make_reader  # noqa: E402

from fer_ros.cli import bag as cli  # noqa: E402
from fer_ros.bag.typestore import typestore  # noqa: E402

RMW_NAMES = {
    "history": {"system_default", "keep_last", "keep_all", "unknown"},
    "reliability": {"system_default", "reliable", "best_effort", "best_available", "unknown"},
    "durability": {"system_default", "transient_local", "volatile", "best_available", "unknown"},
    "liveliness": {"system_default", "automatic", "manual_by_topic", "best_available", "unknown"},
}


class Refused(Exception):
    """What a yaml-cpp TypedBadConversion / rosbag2 runtime_error would be."""


def as_str(node: Any) -> str:
    if isinstance(node, (list, dict)) or node is None:
        raise Refused(f"as<std::string>() on {type(node).__name__}")
    return str(node)


def as_int(node: Any) -> int:
    if isinstance(node, bool) or not isinstance(node, int):
        raise Refused(f"as<int>() on {node!r}")
    return node


def get(node: Any, key: str) -> Any:
    if not isinstance(node, dict) or key not in node:
        raise Refused(f"node[{key!r}] is undefined")
    return node[key]


def time_ok(node: Any) -> None:
    as_int(get(node, "sec")), as_int(get(node, "nsec"))


def humble_qos(text: str) -> list[dict]:
    """Humble: YAML::Load(string).as<std::vector<Rosbag2QoS>>(), policies as<int>()."""
    profiles = yaml.safe_load(text) if text else []
    if not isinstance(profiles, list):
        raise Refused("QoS string is not a sequence")
    for p in profiles:
        for key in ("history", "depth", "reliability", "durability", "liveliness"):
            as_int(get(p, key))
        for key in ("deadline", "lifespan", "liveliness_lease_duration"):
            time_ok(get(p, key))
        get(p, "avoid_ros_namespace_conventions")
    return profiles


def jazzy_qos(profiles: Any) -> list[dict]:
    """Jazzy: each profile's history as<int>() or an rmw name decides the format."""
    if not isinstance(profiles, list):
        raise Refused("offered_qos_profiles is not a sequence")
    for p in profiles:
        named = not isinstance(get(p, "history"), int)
        for key in ("history", "reliability", "durability", "liveliness"):
            value = get(p, key)
            if named and value not in RMW_NAMES[key] or not named and not isinstance(value, int):
                raise Refused(f"{key}: {value!r}")
        as_int(get(p, "depth"))
        for key in ("deadline", "lifespan", "liveliness_lease_duration"):
            time_ok(get(p, key))
    return profiles


def read_metadata(doc: Any, distro: str) -> dict:
    """convert<BagMetadata>::decode of ``distro``; returns the decoded fields."""
    m = get(doc, "rosbag2_bagfile_information")
    version = as_int(get(m, "version"))
    as_str(get(m, "storage_identifier"))
    as_int(get(get(m, "duration"), "nanoseconds"))
    as_int(get(get(m, "starting_time"), "nanoseconds_since_epoch"))
    as_int(get(m, "message_count"))
    topics = []
    for entry in get(m, "topics_with_message_count"):
        t = get(entry, "topic_metadata")
        name, msgtype = as_str(get(t, "name")), as_str(get(t, "type"))
        as_str(get(t, "serialization_format"))
        qos = []
        if distro == "humble" and version >= 4:
            qos = humble_qos(as_str(get(t, "offered_qos_profiles")))
        elif distro == "jazzy" and version >= 9:
            qos = jazzy_qos(get(t, "offered_qos_profiles"))
        elif distro == "jazzy" and version >= 4:
            qos = jazzy_qos(yaml.safe_load(as_str(get(t, "offered_qos_profiles"))) or [])
        if distro == "jazzy" and version >= 7:
            as_str(get(t, "type_description_hash"))
        topics.append((name, msgtype, as_int(get(entry, "message_count")), qos))
    files = [as_str(f) for f in get(m, "relative_file_paths")]
    if version >= 3:
        as_str(get(m, "compression_format")), as_str(get(m, "compression_mode"))
    if version >= 5:
        for f in get(m, "files"):
            as_str(get(f, "path"))
            as_int(get(get(f, "starting_time"), "nanoseconds_since_epoch"))
            as_int(get(get(f, "duration"), "nanoseconds"))
            as_int(get(f, "message_count"))
    if distro == "jazzy" and version >= 6:
        custom = get(m, "custom_data")
        if custom is not None and not isinstance(custom, dict):
            raise Refused("custom_data is not a map")
    if distro == "jazzy" and version >= 8:
        as_str(get(m, "ros_distro"))
    return {"version": version, "topics": topics, "files": files}


def read_db3(path: Path, distro: str) -> list[tuple[str, int, bytes]]:
    """The SELECTs each distro's SqliteStorage runs; returns (topic, stamp, data)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        schema = db.execute("SELECT schema_version FROM schema").fetchone()[0]
        if distro == "humble":
            rows = db.execute("SELECT name, type, serialization_format, offered_qos_profiles "
                              "FROM topics ORDER BY id").fetchall()
            for _, _, _, qos in rows:
                humble_qos(qos)
        else:
            columns = "id, name, type, serialization_format, offered_qos_profiles" + (
                ", type_description_hash" if schema >= 4 else "")
            for row in db.execute(f"SELECT {columns} FROM topics ORDER BY id"):
                jazzy_qos(yaml.safe_load(row[4]) or [])
            if schema >= 4:
                defs = db.execute("SELECT topic_type, encoding, encoded_message_definition, "
                                  "type_description_hash FROM message_definitions ORDER BY id").fetchall()
                assert defs and all(d[1] == "ros2msg" and d[3].startswith("RIHS01_") for d in defs)
            for (text,) in db.execute("SELECT metadata FROM metadata ORDER BY id"):
                read_metadata({"rosbag2_bagfile_information": yaml.safe_load(text)}, "jazzy")
        return [(name, stamp, bytes(data)) for data, stamp, name, _ in db.execute(
            "SELECT data, timestamp, topics.name, messages.id FROM messages JOIN topics ON "
            "messages.topic_id = topics.id ORDER BY messages.timestamp, messages.id")]
    finally:
        db.close()


def read_mcap(path: Path, distro: str, written_as: str) -> list[tuple[str, int, Any]]:
    """Channel metadata as each distro's mcap plugin reads it, and every message decoded by
    mcap-ros2-support (independent of rosbags and of fer-bag)."""
    with path.open("rb") as f:
        reader = make_reader(f, decoder_factories=[mcap_ros2.DecoderFactory()])
        summary = reader.get_summary()
        assert reader.get_header().profile == "ros2"
        for channel in summary.channels.values():
            assert channel.message_encoding == "cdr"
            assert summary.schemas[channel.schema_id].encoding == "ros2msg"
            qos = channel.metadata["offered_qos_profiles"]
            if distro == "humble":
                humble_qos(qos)
            else:
                jazzy_qos(yaml.safe_load(qos))
            if written_as == "jazzy":  # Jazzy writes the type hash; Humble does not know it
                schema = summary.schemas[channel.schema_id]
                assert channel.metadata["topic_type_hash"] == typestore().hash_rihs01(schema.name)
            else:
                assert "topic_type_hash" not in channel.metadata
        records = {m.name: m.metadata for m in reader.iter_metadata()}
        assert ("rosbag2" in records) == (written_as == "jazzy")
        if distro == "jazzy" and "rosbag2" in records:  # Jazzy decodes it when present
            inner = yaml.safe_load(records["rosbag2"]["serialized_metadata"])
            read_metadata({"rosbag2_bagfile_information": inner}, "jazzy")
        return [(channel.topic, message.log_time, decoded)
                for _, channel, message, decoded in reader.iter_decoded_messages()]


@pytest.fixture(scope="module")
def frames_folder(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(4)]
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:02d}.png"), frame)
    return folder, frames


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("distro", ["jazzy", "humble"])
def test_bags_fer_bag_writes_read_back_as_each_distro_reads_them(tmp_path, frames_folder,
                                                                  storage, distro):
    folder, frames = frames_folder
    bag = tmp_path / "bag"
    assert cli.main(["from-video", str(folder), str(bag), "--fps", "10", "--storage", storage,
                     "--ros-distro", distro, "--start-time", "2000", "-q"]) == 0
    doc = yaml.safe_load((bag / "metadata.yaml").read_text())
    readers = ["humble", "jazzy"] if distro == "humble" else ["jazzy"]
    for reader in readers:  # a Humble-layout bag opens on Humble and on Jazzy
        meta = read_metadata(doc, reader)
        assert meta["topics"][0][:3] == ("/camera/image_raw", "sensor_msgs/msg/Image", 4)
        qos = meta["topics"][0][3][0]
        assert qos["reliability"] in (2, "best_effort") and qos["depth"] == 5
        storage_file = bag / meta["files"][0]
        if storage == "sqlite3":
            messages = read_db3(storage_file, reader)
            from rclpy.serialization import deserialize_message
            from sensor_msgs.msg import Image

            decoded = [deserialize_message(d, Image) for _, _, d in messages]
        else:
            messages = read_mcap(storage_file, reader, distro)
            decoded = [d for _, _, d in messages]
        assert [s for _, s, _ in messages] == [2000 * 10**9 + k * 10**8 for k in range(4)]
        for msg, frame in zip(decoded, frames, strict=True):
            assert (msg.encoding, msg.width, msg.height) == ("bgr8", 32, 24)
            assert np.array_equal(np.frombuffer(bytes(msg.data), np.uint8).reshape(24, 32, 3), frame)
    if distro == "jazzy":  # and Humble's reader really refuses the Jazzy layout
        with pytest.raises(Refused, match="as<std::string>"):
            read_metadata(doc, "humble")
