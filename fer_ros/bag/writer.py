"""``BagWriter``: a new bag folder (metadata.yaml + one .mcap or .db3) as the chosen distro's
``ros2 bag record`` lays it out, with the real definitions and RIHS01 hashes of the typestore.

Kept although rosbags has a Writer: it writes versions 8/9 only, commits a .db3 once, at close,
fixes mcap chunks at 1 MiB with no flush, always adds the Jazzy metadata record and no
``topic_type_hash``; a recording must survive a crash (``flush`` on the recorder's timer, then
fsync). On a write error (a full disk) the storage is cut back to what is complete and
metadata.yaml rebuilt from it (reindex.py); ``error`` says what happened. Use from one thread.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from . import DEFAULT_CACHE_BYTES
from .errors import BagError
from .metadata import FileMeta, Layout, TopicMeta, dump, layout_for, metadata_document, qos_text
from .recovery import close_cut_mcap
from .typestore import ensure_type, typestore

EXTENSIONS = {"mcap": ".mcap", "sqlite3": ".db3"}
COMPRESSION = {None: "NONE", "none": "NONE", "zstd": "ZSTD", "lz4": "LZ4"}  # mcap's names
RESERVE_NAME, RESERVE_BYTES = ".fer-bag-reserve", 1024 * 1024  # freed on a full disk


class _Mcap:
    """rosbag2_storage_mcap's records: a ``ros2msg`` Schema per type, a ``cdr`` Channel per
    topic (QoS, and type hash from Jazzy on), log time = receive time."""

    def __init__(self, path: Path, layout: Layout, compression: str | None, cache: int) -> None:
        self.path, self.layout, self.file = path, layout, path.open("xb")
        from mcap.writer import CompressionType, Writer  # optional: only mcap bags need it

        self.w = Writer(self.file, chunk_size=cache,
                        compression=CompressionType[COMPRESSION[compression]])
        self.w.start(profile="ros2", library="fer_ros fer-bag (mcap python)")
        self.schemas: dict[str, int] = {}

    def add_topic(self, name: str, msgtype: str, msgdef: str, qos: str, type_hash: str) -> int:
        if msgtype not in self.schemas:
            self.schemas[msgtype] = self.w.register_schema(msgtype, "ros2msg", msgdef.encode())
        meta = {"offered_qos_profiles": qos}
        if self.layout.metadata_version >= 9:
            meta["topic_type_hash"] = type_hash
        return self.w.register_channel(name, "cdr", self.schemas[msgtype], meta)

    def write(self, topic_id: int, stamp_ns: int, data: bytes) -> None:
        self.w.add_message(topic_id, log_time=stamp_ns, data=data, publish_time=stamp_ns)

    def flush(self) -> None:
        self.w.flush()
        os.fdatasync(self.file.fileno())

    def close(self, inner: str | None) -> None:
        if inner is not None:
            self.w.add_metadata("rosbag2", {"serialized_metadata": inner})
        self.w.finish()
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()

    def close_after_error(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass
        close_cut_mcap(self.path)


class _Sqlite:
    """rosbag2_storage_sqlite3's tables (schema 3, or 4 with type hashes and definitions),
    committed every ``cache`` bytes and on ``flush``."""

    def __init__(self, path: Path, layout: Layout, cache: int) -> None:
        self.layout, self.cache, self.batch = layout, cache, 0
        self.jazzy = layout.sqlite_schema_version >= 4
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.executescript(
            "CREATE TABLE schema(schema_version INTEGER PRIMARY KEY, ros_distro TEXT NOT NULL);"
            "CREATE TABLE metadata(id INTEGER PRIMARY KEY, metadata_version INTEGER NOT NULL, "
            "metadata TEXT NOT NULL);"
            "CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, "
            "serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL"
            + (", type_description_hash TEXT NOT NULL);" if self.jazzy else ");")
            + ("CREATE TABLE message_definitions(id INTEGER PRIMARY KEY, topic_type TEXT NOT "
               "NULL, encoding TEXT NOT NULL, encoded_message_definition TEXT NOT NULL, "
               "type_description_hash TEXT NOT NULL);" if self.jazzy else "")
            + "CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL, "
            "timestamp INTEGER NOT NULL, data BLOB NOT NULL);"
            "CREATE INDEX timestamp_idx ON messages (timestamp ASC);")
        self.db.execute("INSERT INTO schema VALUES (?, ?)",
                        (layout.sqlite_schema_version, layout.distro))
        self.types: set[str] = set()

    def add_topic(self, name: str, msgtype: str, msgdef: str, qos: str, type_hash: str) -> int:
        self.flush()
        values = (name, msgtype, "cdr", qos) + ((type_hash,) if self.jazzy else ())
        cur = self.db.execute(f"INSERT INTO topics VALUES (NULL{', ?' * len(values)})", values)
        if self.jazzy and msgtype not in self.types:
            self.db.execute("INSERT INTO message_definitions VALUES (NULL, ?, 'ros2msg', ?, ?)",
                            (msgtype, msgdef, type_hash))
        self.types.add(msgtype)
        return int(cur.lastrowid)

    def write(self, topic_id: int, stamp_ns: int, data: bytes) -> None:
        if not self.db.in_transaction:
            self.db.execute("BEGIN")
        self.db.execute("INSERT INTO messages (timestamp, topic_id, data) VALUES (?, ?, ?)",
                        (stamp_ns, topic_id, data))
        self.batch += len(data)
        if self.batch >= self.cache:
            self.flush()

    def flush(self) -> None:
        if self.db.in_transaction:
            self.db.execute("COMMIT")
        self.batch = 0

    def close(self, inner: str | None) -> None:
        self.flush()
        if inner is not None:
            self.db.execute("INSERT INTO metadata VALUES (NULL, ?, ?)",
                            (self.layout.metadata_version, inner))
        self.db.close()

    def close_after_error(self) -> None:
        try:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        self.db.close()


class BagWriter:
    """Opens ``path`` (must not exist); ``add_topic``, ``write``, then ``close``."""

    def __init__(self, path: str | Path, storage: str = "mcap", distro: str = "jazzy",
                 compression: str | None = None, max_cache: int = DEFAULT_CACHE_BYTES) -> None:
        path = Path(path)
        if storage not in EXTENSIONS:
            raise BagError(f"unknown storage {storage!r}: use one of {', '.join(EXTENSIONS)}")
        self.layout = layout_for(distro)
        if compression not in COMPRESSION:
            raise BagError(f"unknown mcap compression {compression!r}: use zstd, lz4 or none")
        if path.exists():
            raise BagError(f"{path} already exists: choose a new output bag path")
        if not path.parent.is_dir():
            raise BagError(f"{path.parent}: no such folder for the output bag")
        self.path, self.storage_id = path, storage
        self.file = path / f"{path.name}_0{EXTENSIONS[storage]}"
        self.topics: list[TopicMeta] = []
        self._ids: list[int] = []
        self._span: tuple[int, int] | None = None
        self.error: str | None = None
        self.closed = False
        try:
            path.mkdir()
        except OSError as exc:
            raise BagError(f"{path}: cannot create the bag folder: {exc.strerror}") from None
        try:
            with (path / RESERVE_NAME).open("wb") as f:
                f.write(b"\0" * RESERVE_BYTES)
                os.fsync(f.fileno())
            self._storage = (_Mcap(self.file, self.layout, compression, max_cache)
                             if storage == "mcap" else _Sqlite(self.file, self.layout, max_cache))
        except OSError as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise BagError(f"{path}: cannot write the bag: {exc.strerror or exc}") from None

    def _do(self, action, *args):  # noqa: ANN001, ANN202
        if self.error:
            raise BagError(f"{self.path}: {self.error}")
        if self.closed:
            raise BagError(f"{self.path}: the bag is closed")
        try:
            return action(*args)
        except Exception as exc:  # OSError from the file, sqlite3.Error from sqlite
            self._fail(exc)
            raise BagError(f"{self.path}: {self.error}") from None

    def add_topic(self, name: str, msgtype: str, qos: list | None = None) -> int:
        """Registers a topic (its type from the typestore); returns its id for ``write``."""
        store = typestore()
        ensure_type(store, msgtype)
        meta = TopicMeta(name, msgtype, list(qos or []), store.hash_rihs01(msgtype))
        msgdef, _ = store.generate_msgdef(msgtype, ros_version=2)
        self._ids.append(self._do(self._storage.add_topic, name, msgtype, msgdef,
                                  qos_text(meta.qos, self.layout), meta.type_hash))
        self.topics.append(meta)
        return len(self._ids) - 1

    def write(self, topic: int, stamp_ns: int, data: bytes | memoryview) -> None:
        """Writes one message; BagError (and the bag closed, readable) on a write error."""
        self._do(self._storage.write, self._ids[topic], stamp_ns, bytes(data))
        self.topics[topic].count += 1
        lo, hi = self._span or (stamp_ns, stamp_ns)
        self._span = (min(lo, stamp_ns), max(hi, stamp_ns))

    def flush(self) -> None:
        """Puts every message written so far on disk (BagError, bag closed, on a write error)."""
        self._do(self._storage.flush)

    def _fail(self, exc: BaseException) -> None:
        """After a write error: free the reserve, keep what is complete, write metadata."""
        from .reindex import write_metadata

        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        self.error = f"cannot write {self.file.name}: {reason}"
        self.closed = True
        (self.path / RESERVE_NAME).unlink(missing_ok=True)
        try:
            self._storage.close_after_error()
            write_metadata(self.path, [self.file], self.layout,
                           {t.name: t.type_hash for t in self.topics})
        except Exception as more:
            self.error += f"; metadata.yaml not written: {getattr(more, 'strerror', None) or more}"

    def _document(self) -> dict:
        lo, hi = self._span or (0, 0)
        file = FileMeta(self.file.name, lo, hi - lo, sum(t.count for t in self.topics))
        return metadata_document(self.layout, self.storage_id, [file], self.topics)

    def close(self) -> None:
        """Finishes the storage file and writes metadata.yaml (the bag is complete)."""
        if self.closed:
            return
        doc = self._document()
        inner = (dump(doc["rosbag2_bagfile_information"])  # Jazzy keeps it in the storage too
                 if self.layout.metadata_version >= 9 else None)
        try:
            self._do(self._storage.close, inner)
        except BagError:
            return  # error says why; metadata.yaml was written for what is on disk
        self.closed = True
        (self.path / RESERVE_NAME).unlink(missing_ok=True)
        tmp = self.path / ".metadata.yaml.tmp"
        tmp.write_text(dump(doc))
        os.replace(tmp, self.path / "metadata.yaml")

    def abort(self) -> None:
        """Closes and removes the bag folder (a run that failed leaves no partial bag)."""
        if not self.closed:
            try:
                self._storage.close_after_error()
            except Exception:
                pass
        self.closed = True
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
