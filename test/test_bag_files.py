"""fer-bag on bags laid out as rosbag2 writes them, written here with `mcap` and `sqlite3`
directly (not with fer-bag's writer): QoS that differs between metadata.yaml and the storage,
unknown types, topics without a leading "/", split, zstd per file / per message, lz4 chunks,
storage files without metadata.yaml, Humble-era sqlite3, hostile and corrupt files.

The helpers here (``Rosbag2Topic``, ``write_mcap``, ``write_db3``, ``write_metadata``) follow
rosbag2's storage plugins (jazzy and humble branches); other bag tests import them.
"""

from __future__ import annotations

import resource
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")
pytest.importorskip("mcap", reason="mcap is not installed (run `make setup`)")

import zstandard  # noqa: E402
from mcap.reader import make_reader  # noqa: E402
from mcap.writer import CompressionType, Writer as McapWriter  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from conftest import REPO_ROOT, child_env  # noqa: E402
from fer_ros.cli import bag as cli  # noqa: E402
from fer_ros.bag.errors import BagError  # noqa: E402
from fer_ros.bag.reader import BagReader  # noqa: E402
from fer_ros.bag.typestore import typestore  # noqa: E402

INF = {"sec": 9223372036, "nsec": 854775807}
ZERO = {"sec": 0, "nsec": 0}
RMW = {"reliable": 1, "best_effort": 2, "transient_local": 1, "volatile": 2}


def qos_v9(reliability: str = "reliable", durability: str = "volatile", depth: int = 10) -> list:
    """One offered profile as Jazzy writes it (rmw names)."""
    return [{"history": "keep_last", "depth": depth, "reliability": reliability,
             "durability": durability, "deadline": INF, "lifespan": INF,
             "liveliness": "automatic", "liveliness_lease_duration": INF,
             "avoid_ros_namespace_conventions": False}]


def qos_int_string(reliability: str = "reliable", durability: str = "volatile",
                   depth: int = 0) -> str:
    """One offered profile as Humble writes it: a YAML string with enum integers."""
    return ("- history: 3\n  depth: %d\n  reliability: %d\n  durability: %d\n  deadline:\n"
            "    sec: 0\n    nsec: 0\n  lifespan:\n    sec: 0\n    nsec: 0\n  liveliness: 1\n"
            "  liveliness_lease_duration:\n    sec: 0\n    nsec: 0\n"
            "  avoid_ros_namespace_conventions: false"
            % (depth, RMW[reliability], RMW[durability]))


@dataclass
class Rosbag2Topic:
    name: str
    msgtype: str
    messages: list[tuple[int, bytes]] = field(default_factory=list)
    reliability: str = "reliable"
    durability: str = "volatile"
    depth: int = 10
    msgdef: str | None = None     # None: the real definition from the typestore
    type_hash: str | None = None

    def definition(self) -> str:
        if self.msgdef is not None:
            return self.msgdef
        return typestore().generate_msgdef(self.msgtype, ros_version=2)[0]

    def hash(self) -> str:
        if self.type_hash is not None:
            return self.type_hash
        return typestore().hash_rihs01(self.msgtype)

    def qos_v9(self) -> list:
        return qos_v9(self.reliability, self.durability, self.depth)


def image_bytes(i: int, encoding: str = "bgr8", width: int = 8, height: int = 6) -> bytes:
    channels = {"bgr8": 3, "32FC1": 4, "mono8": 1, "yuv422_yuy2": 2}[encoding]
    msg = Image(height=height, width=width, encoding=encoding, step=width * channels)
    msg.data = bytes((i + k) % 256 for k in range(width * height * channels))
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + i // 10, (i % 10) * 100_000_000
    msg.header.frame_id = "camera"
    return serialize_message(msg)


def string_bytes(i: int) -> bytes:
    return serialize_message(String(data=f"hello {i}"))


def images(n: int, **kw) -> list[tuple[int, bytes]]:
    return [(1000 * 10**9 + i * 100_000_000, image_bytes(i, **kw)) for i in range(n)]


def write_mcap(path: Path, topics: list[Rosbag2Topic], compression: str = "none",
               jazzy: bool = True, metadata: str | None = None) -> None:
    """One .mcap as rosbag2_storage_mcap writes it: profile ros2, ros2msg schemas, cdr
    channels with offered_qos_profiles (+ topic_type_hash on Jazzy), log time = receive time."""
    kinds = {"none": CompressionType.NONE, "zstd": CompressionType.ZSTD,
             "lz4": CompressionType.LZ4}
    with path.open("wb") as f:
        w = McapWriter(f, compression=kinds[compression], chunk_size=4096)
        w.start(profile="ros2", library="rosbag2 (test)")
        schemas, channels = {}, {}
        for t in topics:
            if t.msgtype not in schemas:
                schemas[t.msgtype] = w.register_schema(t.msgtype, "ros2msg", t.definition().encode())
            meta = {"offered_qos_profiles": yaml.safe_dump(t.qos_v9(), sort_keys=False)
                    if jazzy else qos_int_string(t.reliability, t.durability, t.depth)}
            if jazzy:
                meta["topic_type_hash"] = t.hash()
            channels[t.name] = w.register_channel(t.name, "cdr", schemas[t.msgtype], meta)
        for stamp, name, data in sorted((s, t.name, d) for t in topics for s, d in t.messages):
            w.add_message(channels[name], log_time=stamp, data=data, publish_time=stamp)
        if metadata is not None:
            w.add_metadata("rosbag2", {"serialized_metadata": metadata})
        w.finish()


def write_db3(path: Path, topics: list[Rosbag2Topic], schema: int = 4) -> None:
    """One .db3 with rosbag2_storage_sqlite3's tables (schema 4 = Jazzy, 3 = Humble)."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema(schema_version INTEGER PRIMARY KEY, ros_distro TEXT NOT NULL)")
    db.execute("CREATE TABLE metadata(id INTEGER PRIMARY KEY, metadata_version INTEGER NOT NULL, "
               "metadata TEXT NOT NULL)")
    extra = ", type_description_hash TEXT NOT NULL" if schema >= 4 else ""
    db.execute("CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT "
               f"NULL, serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL{extra})")
    if schema >= 4:
        db.execute("CREATE TABLE message_definitions(id INTEGER PRIMARY KEY, topic_type TEXT NOT "
                   "NULL, encoding TEXT NOT NULL, encoded_message_definition TEXT NOT NULL, "
                   "type_description_hash TEXT NOT NULL)")
    db.execute("CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL, "
               "timestamp INTEGER NOT NULL, data BLOB NOT NULL)")
    db.execute("INSERT INTO schema VALUES (?, ?)", (schema, "jazzy" if schema >= 4 else "humble"))
    for i, t in enumerate(topics, 1):
        if schema >= 4:
            db.execute("INSERT INTO topics VALUES (?, ?, ?, 'cdr', ?, ?)",
                       (i, t.name, t.msgtype, yaml.safe_dump(t.qos_v9(), sort_keys=False), t.hash()))
            db.execute("INSERT INTO message_definitions (topic_type, encoding, "
                       "encoded_message_definition, type_description_hash) VALUES (?,?,?,?)",
                       (t.msgtype, "ros2msg", t.definition(), t.hash()))
        else:
            db.execute("INSERT INTO topics VALUES (?, ?, ?, 'cdr', ?)",
                       (i, t.name, t.msgtype, qos_int_string(t.reliability, t.durability, t.depth)))
        for stamp, data in t.messages:
            db.execute("INSERT INTO messages (topic_id, timestamp, data) VALUES (?, ?, ?)",
                       (i, stamp, data))
    db.commit()
    db.close()


def write_metadata(folder: Path, storage: str, files: list[str], topics: list[Rosbag2Topic],
                   version: int = 9, compression_mode: str = "", qos_override: dict | None = None,
                   counts: dict[str, int] | None = None) -> None:
    """metadata.yaml as rosbag2's convert<BagMetadata>::encode writes it; ``qos_override``
    {topic: depth} writes another depth than the storage holds (an edited metadata.yaml)."""
    entries = []
    for t in topics:
        depth = (qos_override or {}).get(t.name, t.depth)
        meta = {"name": t.name, "type": t.msgtype, "serialization_format": "cdr",
                "offered_qos_profiles": qos_v9(t.reliability, t.durability, depth) if version >= 9
                else qos_int_string(t.reliability, t.durability, depth)}
        if version >= 7:
            meta["type_description_hash"] = t.hash()
        entries.append({"topic_metadata": meta,
                        "message_count": (counts or {}).get(t.name, len(t.messages))})
    stamps = [s for t in topics for s, _ in t.messages] or [0]
    info = {"version": version, "storage_identifier": storage,
            "duration": {"nanoseconds": max(stamps) - min(stamps)},
            "starting_time": {"nanoseconds_since_epoch": min(stamps)},
            "message_count": sum(len(t.messages) for t in topics),
            "topics_with_message_count": entries,
            "compression_format": "zstd" if compression_mode else "",
            "compression_mode": compression_mode.upper() if compression_mode else "",
            "relative_file_paths": files,
            "files": [{"path": f, "starting_time": {"nanoseconds_since_epoch": min(stamps)},
                       "duration": {"nanoseconds": 0}, "message_count": 0} for f in files]}
    if version >= 8:
        info["custom_data"] = None
        info["ros_distro"] = "jazzy"
    (folder / "metadata.yaml").write_text(yaml.safe_dump({"rosbag2_bagfile_information": info},
                                                         sort_keys=False))


def read_all(path: Path, names: list[str] | None = None) -> list[tuple[str, int, bytes]]:
    with BagReader(path) as bag:
        return [(t.name, s, bytes(d)) for t, s, d in bag.messages(bag.select(names))]


# ----- point 1: QoS in metadata.yaml differs from the storage's --------------------------

@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_metadata_qos_that_differs_from_the_storage_still_plays_every_message(tmp_path, storage):
    talker = Rosbag2Topic("/topic", "std_msgs/msg/String",
                          [(10**9 + i, string_bytes(i)) for i in range(20)], depth=5)
    bag = tmp_path / "talker"
    bag.mkdir()
    name = "talker_0.mcap" if storage == "mcap" else "talker_0.db3"
    (write_mcap if storage == "mcap" else write_db3)(bag / name, [talker])
    write_metadata(bag, storage, [name], [talker], qos_override={"/topic": 1})
    got = read_all(bag)
    assert [(t, s) for t, s, _ in got] == [("/topic", 10**9 + i) for i in range(20)]
    assert [d for _, _, d in got] == [d for _, d in talker.messages]
    with BagReader(bag) as reader:  # the QoS played is the one metadata.yaml says
        assert reader.topics["/topic"].qos[0].depth == 1


def test_humble_era_sqlite3_bag_reads_with_its_integer_qos_strings(tmp_path):
    topics = [Rosbag2Topic("/topic", "std_msgs/msg/String",
                           [(10**9 + i, string_bytes(i)) for i in range(10)], depth=0),
              Rosbag2Topic("/parameter_events", "rcl_interfaces/msg/ParameterEvent",
                           durability="volatile")]
    bag = tmp_path / "humble"
    bag.mkdir()
    write_db3(bag / "humble_0.db3", topics, schema=3)
    write_metadata(bag, "sqlite3", ["humble_0.db3"], topics, version=5)
    with BagReader(bag) as reader:
        assert reader.meta.version == 5
        assert [(t.name, t.count) for t in reader.topics.values()] == [
            ("/topic", 10), ("/parameter_events", 0)]
        assert reader.topics["/topic"].qos[0].reliability.name == "RELIABLE"
    assert len(read_all(bag)) == 10


# ----- point 6: topics without "/", storage files without metadata.yaml -------------------

def test_topic_named_without_leading_slash_can_be_selected(tmp_path):
    topics = [Rosbag2Topic("AAA", "std_msgs/msg/String", [(5, string_bytes(1))]),
              Rosbag2Topic("/bbb", "std_msgs/msg/String", [(6, string_bytes(2))])]
    bag = tmp_path / "names"
    bag.mkdir()
    write_mcap(bag / "names_0.mcap", topics)
    write_metadata(bag, "mcap", ["names_0.mcap"], topics)
    assert [t for t, _, _ in read_all(bag, ["AAA"])] == ["AAA"]
    assert [t for t, _, _ in read_all(bag, ["bbb"])] == ["/bbb"]  # "/" added when needed
    with pytest.raises(BagError, match="topic /AAA is not in the bag"):
        read_all(bag, ["/AAA"])


def test_storage_files_without_metadata_yaml_are_read_directly(tmp_path, capsys):
    cam = Rosbag2Topic("/cam", "sensor_msgs/msg/Image", images(6))
    crashed = tmp_path / "crashed"  # a recording that stopped before writing metadata.yaml
    crashed.mkdir()
    write_db3(crashed / "crashed_0.db3", [cam])
    assert len(read_all(crashed)) == 6
    assert cli.main(["info", str(crashed)]) == 0
    out = capsys.readouterr()
    assert "no metadata.yaml" in out.err and "/cam  sensor_msgs/msg/Image  6 messages" in out.out
    split = tmp_path / "split"  # two mcap files, no metadata.yaml: natural file order
    split.mkdir()
    for k, part in enumerate((cam.messages[:3], cam.messages[3:])):
        write_mcap(split / f"split_{k}.mcap", [Rosbag2Topic("/cam", cam.msgtype, part)])
    (split / "split_1.mcap").rename(split / "split_10.mcap")  # 10 sorts after 0 naturally
    assert [s for _, s, _ in read_all(split)] == [s for s, _ in cam.messages]
    lone = tmp_path / "lone.mcap"
    write_mcap(lone, [cam], compression="lz4")
    assert [d for _, _, d in read_all(lone)] == [d for _, d in cam.messages]


# ----- split and compressed bags ------------------------------------------------------------

@pytest.mark.parametrize("mode", ["split-zstd-chunks", "file", "message"])
def test_split_and_compressed_bags(tmp_path, mode):
    cam = Rosbag2Topic("/cam", "sensor_msgs/msg/Image", images(10), reliability="best_effort")
    bag = tmp_path / mode
    bag.mkdir()
    halves = (cam.messages[:5], cam.messages[5:])
    files = []
    for k, part in enumerate(halves):
        name = f"{mode}_{k}.mcap"
        if mode == "message":  # every message's data zstd-compressed by rosbag2_compression
            part = [(s, zstandard.ZstdCompressor().compress(d)) for s, d in part]
        write_mcap(bag / name, [Rosbag2Topic("/cam", cam.msgtype, part)],
                   compression="zstd" if mode == "split-zstd-chunks" else "none")
        if mode == "file":  # the whole storage file zstd-compressed: x.mcap.zstd
            raw = (bag / name).read_bytes()
            (bag / name).unlink()
            name += ".zstd"
            (bag / name).write_bytes(zstandard.ZstdCompressor().compress(raw))
        files.append(name)
    write_metadata(bag, "mcap", files, [cam], compression_mode="" if "split" in mode else mode)
    got = read_all(bag)
    assert [(s, d) for _, s, d in got] == cam.messages


# ----- issue 14.7: hostile and corrupt files -------------------------------------------------

LAUGHS = """rosbag2_bagfile_information:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
  version: 9
  relative_file_paths: [laughs_0.mcap]
  storage_identifier: mcap
  compression_mode: file
  compression_format: *i
"""


def _limited_fer_bag(*args: str) -> subprocess.CompletedProcess[str]:
    """fer-bag in a child limited to 2 GiB of address space (a bomb would die there)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run([sys.executable, "-m", "fer_ros.cli.bag", *args], env=child_env(),
                          cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=120,
                          preexec_fn=limit)


def test_billion_laughs_metadata_is_refused_in_one_line(tmp_path):
    bag = tmp_path / "laughs"
    bag.mkdir()
    (bag / "metadata.yaml").write_text(LAUGHS)
    (bag / "laughs_0.mcap").write_bytes(b"")
    for command in ("info", "play"):
        run = _limited_fer_bag(command, str(bag))
        assert run.returncode == 2, run.stderr[-500:]
        assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr[-500:]
        assert "aliases expand to more than" in run.stderr and len(run.stderr) < 400


def test_corrupt_mcap_chunk_is_one_line_on_play_and_evaluate(tmp_path):
    cam = Rosbag2Topic("/cam", "sensor_msgs/msg/Image", images(40))
    bag = tmp_path / "corrupt"
    bag.mkdir()
    write_mcap(bag / "corrupt_0.mcap", [cam], compression="zstd")
    write_metadata(bag, "mcap", ["corrupt_0.mcap"], [cam])
    with (bag / "corrupt_0.mcap").open("rb") as f:
        chunks = make_reader(f).get_summary().chunk_indexes
    assert len(chunks) >= 3
    middle = chunks[len(chunks) // 2]
    data = bytearray((bag / "corrupt_0.mcap").read_bytes())
    end = middle.chunk_start_offset + middle.chunk_length
    data[end - 200:end - 100] = bytes(100)  # zeros inside that chunk's compressed records
    (bag / "corrupt_0.mcap").write_bytes(bytes(data))
    for args in (["play", str(bag), "-q"], ["evaluate", str(bag), "--out", str(tmp_path / "e"),
                                            "-q"]):
        run = _limited_fer_bag(*args)
        assert run.returncode == 2, run.stderr[-800:]
        assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr[-800:]
        assert "corrupt_0.mcap" in run.stderr and "corrupt or truncated" in run.stderr
    assert not (tmp_path / "e" / "node.log").exists()  # refused before any node was started
