"""``BagReader``: every message of a bag folder (metadata.yaml version 1-9, split, zstd per
file or per message), of a folder of storage files without metadata.yaml, or of one file.

Each storage file is read with rosbags' single-file Reader and tied to topics by name; kept
because rosbags' folder reader yields nothing when metadata.yaml's QoS differs from the
storage's (rosbag2 plays such bags) and decompresses without a size bound.
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Iterator

from rosbags.rosbag2 import Reader

from .errors import BagError
from .metadata import BagMeta, TopicMeta, parse_metadata
from .recovery import CutMcapReader, recover_sqlite
from .safe_yaml import load_file, short

STORAGE_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}
MAX_MESSAGE_BYTES = 1 << 30       # a zstd-compressed message may not expand beyond 1 GiB
MAX_FILE_EXPANSION = 64 << 30     # nor a zstd-compressed storage file beyond 64 GiB


def _natural(path: Path) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.name)]


Topic = TopicMeta


def _one_line(exc: BaseException) -> str:
    return short(str(exc) or type(exc).__name__)


class _Reader(Reader):
    """rosbags' single-file reader that also reads an mcap file cut short (recovery.py)."""

    STORAGE_PLUGINS = {**Reader.STORAGE_PLUGINS, ".mcap": CutMcapReader}


class BagReader:
    """Open with ``with BagReader(path) as bag:``; ``bag.topics``, ``bag.messages(...)``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.meta: BagMeta | None = None
        self.notes: list[str] = []          # things a user should know (one line each)
        self.topics: dict[str, Topic] = {}
        self.files: list[Path] = []
        self._stack = ExitStack()
        self._readers: list[Reader] = []
        self.storage = ""
        self._message_zstd = False
        try:
            self._open()
        except BagError:
            self._stack.close()
            raise
        except Exception as exc:  # rosbags ReaderError, sqlite/apsw errors, OSError, ...
            self._stack.close()
            raise BagError(f"{self.path}: cannot read the bag: {_one_line(exc)}") from None

    def _open(self) -> None:
        path = self.path
        if not path.exists():
            raise BagError(f"{path}: no such bag (give a rosbag2 folder with metadata.yaml, "
                           "or a .mcap / .db3 file)")
        if path.is_dir() and (path / "metadata.yaml").is_file():
            self.meta = parse_metadata(load_file(path / "metadata.yaml"), str(path / "metadata.yaml"))
            self.storage = self.meta.storage
            if self.storage not in STORAGE_SUFFIXES.values():
                raise BagError(f"{path}: storage {short(self.storage, 40)!r} is not one fer-bag "
                               "reads (mcap, sqlite3)")
            files = [path / Path(p).name for p in self.meta.files]
            missing = [f.name for f in files if not f.is_file()]
            if missing:
                raise BagError(f"{path}: metadata.yaml lists {missing[0]}, which is not in the "
                               "folder")
            mode = self.meta.compression_mode.lower()
            if mode not in ("", "none", "file", "message"):
                raise BagError(f"{path}: unknown compression mode {short(mode, 20)!r}")
            if mode in ("file", "message") and self.meta.compression_format != "zstd":
                raise BagError(f"{path}: compression format "
                               f"{short(self.meta.compression_format, 20)!r} is not supported "
                               "(rosbag2 writes zstd)")
            self._message_zstd = mode == "message"
            if mode == "file":
                files = self._decompress_files(files)
        elif path.is_dir():
            files = sorted((p for p in path.iterdir()
                            if p.suffix in STORAGE_SUFFIXES and p.is_file()), key=_natural)
            if not files:
                raise BagError(f"{path}: not a rosbag2 bag (no metadata.yaml, and no .mcap or "
                               ".db3 file in the folder)")
            kinds = {STORAGE_SUFFIXES[p.suffix] for p in files}
            if len(kinds) > 1:
                raise BagError(f"{path}: no metadata.yaml and both .mcap and .db3 files: give "
                               "one storage file")
            self.storage = kinds.pop()
            self.notes.append(f"{path}: no metadata.yaml; rebuilt it from the storage files "
                              f"({', '.join(p.name for p in files)}); `fer-bag reindex` writes it")
        elif path.suffix in STORAGE_SUFFIXES:
            files, self.storage = [path], STORAGE_SUFFIXES[path.suffix]
        else:
            raise BagError(f"{path}: not a rosbag2 bag (expected a folder, a .mcap or a .db3 "
                           "file)")
        self.files = files
        for file in files:
            if file.suffix == ".db3":
                file = self._recover_sqlite(file)
            reader = _Reader(file)
            try:
                reader.open()
            except Exception as exc:
                raise BagError(f"{file}: cannot read the storage file: {_one_line(exc)}") from None
            self._stack.callback(reader.close)
            self._readers.append(reader)
            cut = getattr(reader.storage, "cut", None)
            if cut is not None:
                self.notes.append(
                    f"{file.name}: recording cut short (no summary/footer): read "
                    f"{reader.message_count} messages up to its last complete record "
                    f"({cut.data_end} of {cut.size} bytes); `fer-bag reindex` repairs it")
        self._collect_topics()

    def _recover_sqlite(self, file: Path) -> Path:
        """A .db3 whose recording was cut mid-transaction, as SQLite recovers it."""
        scratch = None
        if not (os.access(file, os.W_OK) and os.access(file.parent, os.W_OK)):
            scratch = Path(self._stack.enter_context(
                tempfile.TemporaryDirectory(prefix="fer-bag-")))
        target, note = recover_sqlite(file, scratch)
        if note:
            self.notes.append(note)
        return target

    def _decompress_files(self, files: list[Path]) -> list[Path]:
        """Per-file zstd compression (``x.mcap.zstd``): expanded into a temporary folder."""
        import zstandard

        tmp = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="fer-bag-")))
        out = []
        for file in files:
            target = tmp / (file.name[:-5] if file.name.endswith(".zstd") else file.name)
            written = 0
            with file.open("rb") as src, target.open("wb") as dst:
                reader = zstandard.ZstdDecompressor().stream_reader(src)
                while chunk := reader.read(1 << 20):
                    written += len(chunk)
                    if written > MAX_FILE_EXPANSION:
                        raise BagError(f"{file}: expands beyond {MAX_FILE_EXPANSION >> 30} GiB; "
                                       "refused")
                    dst.write(chunk)
            out.append(target)
        return out

    def _collect_topics(self) -> None:
        declared = {t.name: t for t in (self.meta.topics if self.meta else [])}
        for name, t in declared.items():
            self.topics[name] = Topic(name, t.msgtype, list(t.qos), t.type_hash)
        for reader in self._readers:
            for conn in reader.connections:
                topic = self.topics.get(conn.topic)
                if topic is None:
                    topic = self.topics[conn.topic] = Topic(conn.topic, conn.msgtype)
                    if self.meta is not None:
                        self.notes.append(f"topic {conn.topic} is in {Path(reader.path).name} "
                                          "but not in metadata.yaml; playing it anyway")
                elif topic.msgtype != conn.msgtype:
                    raise BagError(f"topic {conn.topic} has type {topic.msgtype} in metadata.yaml "
                                   f"but {conn.msgtype} in {Path(reader.path).name}")
                topic.count += conn.msgcount
                if not topic.qos:
                    topic.qos = list(conn.ext.offered_qos_profiles or [])
                if not topic.type_hash and conn.digest.startswith("RIHS01_"):
                    topic.type_hash = conn.digest
                if topic.definition is None and conn.msgdef.data:
                    topic.definition = conn.msgdef

    @property
    def message_count(self) -> int:
        return sum(t.count for t in self.topics.values())

    @property
    def start_ns(self) -> int:
        starts = [r.start_time for r in self._readers if r.message_count]
        return min(starts) if starts else 0

    @property
    def duration_ns(self) -> int:
        ends = [r.end_time for r in self._readers if r.message_count]
        return max(0, max(ends) - 1 - self.start_ns) if ends else 0

    def select(self, names: list[str] | None) -> list[Topic]:
        """The topics named (exactly, or with a leading "/" added); all when ``names`` is
        empty. BagError naming the first one that is not in the bag."""
        if not names:
            return list(self.topics.values())
        chosen = []
        for name in names:
            key = name if name in self.topics else "/" + name.lstrip("/")
            if key not in self.topics:
                raise BagError(f"topic {name} is not in the bag (topics: "
                               f"{', '.join(sorted(self.topics))})")
            if self.topics[key] not in chosen:
                chosen.append(self.topics[key])
        return chosen

    def messages(self, topics: list[Topic] | None = None) -> Iterator[tuple[Topic, int, bytes]]:
        """(topic, receive stamp ns, CDR bytes) of the given topics, file by file in time
        order; a corrupt file ends the iteration with a BagError of one line."""
        wanted = {t.name for t in (topics if topics is not None else self.topics.values())}
        decompress = self._zstd_message if self._message_zstd else None
        for reader in self._readers:
            conns = [c for c in reader.connections if c.topic in wanted]
            if not conns:
                continue
            index = 0
            stream = reader.messages(conns)
            while True:
                try:
                    item = next(stream)
                except StopIteration:
                    break
                except Exception as exc:
                    raise BagError(f"{Path(reader.path).name}: cannot read beyond message "
                                   f"{index} (corrupt or truncated file): {_one_line(exc)}") from None
                conn, stamp, data = item
                index += 1
                yield self.topics[conn.topic], stamp, decompress(data) if decompress else data

    @staticmethod
    def _zstd_message(data: bytes) -> bytes:
        import zstandard

        try:
            return zstandard.ZstdDecompressor().decompress(bytes(data),
                                                           max_output_size=MAX_MESSAGE_BYTES)
        except zstandard.ZstdError as exc:
            raise BagError(f"a zstd-compressed message cannot be decompressed: "
                           f"{_one_line(exc)}") from None

    def close(self) -> None:
        self._stack.close()
        self._readers.clear()

    def __enter__(self) -> "BagReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


open_bag = BagReader  # an open reader as a context manager; BagError when not a bag
