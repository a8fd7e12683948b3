"""``BagWriter``: a new rosbag2 bag folder (metadata.yaml + one .mcap or .db3 file).

Laid out as the chosen distro's ``ros2 bag record`` lays it out (see layout.py), with the
real message definitions and RIHS01 type hashes from the typestore. The writer is robust to a
full disk: at open it sets aside ``RESERVE_BYTES`` in a hidden file; on a write error it stops
writing, frees that space, cuts the storage file back to what is complete and writes
metadata.yaml for it, so the bag stays readable. ``error`` then says what happened.
Not thread-safe: use it from one thread.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from .errors import BagError
from .layout import FileMeta, TopicMeta, layout_for, metadata_document
from .qos import Qos
from .storage_mcap import COMPRESSION, McapStorage
from .storage_sqlite import SqliteStorage
from .storage_tally import DEFAULT_CACHE_BYTES
from .typestore import ensure_type, typestore

STORAGES = ("mcap", "sqlite3")
EXTENSIONS = {"mcap": ".mcap", "sqlite3": ".db3"}
RESERVE_NAME = ".fer-bag-reserve"
RESERVE_BYTES = 1024 * 1024


class BagWriter:
    """Opens ``path`` (must not exist); ``add_topic``, ``write``, then ``close``."""

    def __init__(self, path: str | Path, storage: str = "mcap", distro: str = "jazzy",
                 compression: str | None = None, max_cache: int = DEFAULT_CACHE_BYTES) -> None:
        path = Path(path)
        if storage not in STORAGES:
            raise BagError(f"unknown storage {storage!r}: use one of {', '.join(STORAGES)}")
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
        self.error: str | None = None
        self.closed = False
        try:
            path.mkdir()
        except OSError as exc:
            raise BagError(f"{path}: cannot create the bag folder: {exc.strerror}") from None
        try:
            self._reserve()
            self._storage = (McapStorage(self.file, self.layout, compression, max_cache)
                             if storage == "mcap"
                             else SqliteStorage(self.file, self.layout, max_cache))
        except OSError as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise BagError(f"{path}: cannot write the bag: {exc.strerror or exc}") from None

    def _reserve(self) -> None:
        with (self.path / RESERVE_NAME).open("wb") as f:
            f.write(b"\0" * RESERVE_BYTES)
            f.flush()
            os.fsync(f.fileno())

    def add_topic(self, name: str, msgtype: str, qos: list[Qos] | None = None) -> int:
        """Registers a topic (its type from the typestore); returns its id for ``write``."""
        store = typestore()
        ensure_type(store, msgtype)
        msgdef, _ = store.generate_msgdef(msgtype, ros_version=2)
        type_hash = store.hash_rihs01(msgtype)
        self._check()
        try:
            topic_id = self._storage.add_topic(name, msgtype, msgdef, list(qos or []), type_hash)
        except Exception as exc:  # OSError from the file, sqlite3.Error from sqlite
            self._fail(exc)
            raise BagError(f"{self.path}: {self.error}") from None
        self.topics.append(TopicMeta(name, msgtype, list(qos or []), type_hash))
        self._ids.append(topic_id)
        return len(self._ids) - 1

    def write(self, topic: int, stamp_ns: int, data: bytes | memoryview) -> None:
        """Writes one message; BagError (and the bag closed, readable) on a write error."""
        self._check()
        try:
            self._storage.write(self._ids[topic], stamp_ns, data)
        except Exception as exc:  # OSError from the file, sqlite3.Error from sqlite
            self._fail(exc)
            raise BagError(f"{self.path}: {self.error}") from None

    def flush(self) -> None:
        """Puts every message written so far on disk (BagError, bag closed, on a write error)."""
        self._check()
        try:
            self._storage.flush()
        except Exception as exc:
            self._fail(exc)
            raise BagError(f"{self.path}: {self.error}") from None

    def _check(self) -> None:
        if self.error:
            raise BagError(f"{self.path}: {self.error}")
        if self.closed:
            raise BagError(f"{self.path}: the bag is closed")

    def _fail(self, exc: BaseException) -> None:
        """After a write error: free the reserve, keep what is complete, write metadata."""
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        self.error = f"cannot write {self.file.name}: {reason}"
        (self.path / RESERVE_NAME).unlink(missing_ok=True)
        try:
            self._storage.close_after_error()
        except Exception:
            pass
        self._write_metadata(pending=False)
        self.closed = True

    @property
    def message_count(self) -> int:
        """Messages written so far (including those still buffered)."""
        return sum(self._storage.tally.totals(pending=True)[0].values())

    def _document(self, pending: bool) -> dict:
        counts, span = self._storage.tally.totals(pending)
        for meta, topic_id in zip(self.topics, self._ids):
            meta.count = counts.get(topic_id, 0)
        total = sum(t.count for t in self.topics)
        lo, hi = span if span and total else (0, 0)
        file = FileMeta(self.file.name, lo, hi - lo, total)
        return metadata_document(self.layout, self.storage_id, [file], self.topics)

    def _write_metadata(self, pending: bool) -> None:
        text = yaml.safe_dump(self._document(pending), sort_keys=False, default_flow_style=False)
        tmp = self.path / ".metadata.yaml.tmp"
        try:
            tmp.write_text(text)
            os.replace(tmp, self.path / "metadata.yaml")
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            self.error = (self.error or "") + f"; metadata.yaml not written: {exc.strerror}"

    def close(self) -> None:
        """Finishes the storage file and writes metadata.yaml (the bag is complete)."""
        if self.closed:
            return
        inner = None
        if self.layout.metadata_version >= 9:  # Jazzy keeps metadata.yaml in the storage too
            inner = yaml.safe_dump(self._document(pending=True)["rosbag2_bagfile_information"],
                                   sort_keys=False, default_flow_style=False)
        try:
            self._storage.close(inner)
        except Exception as exc:
            self._fail(exc)
            return
        (self.path / RESERVE_NAME).unlink(missing_ok=True)
        self._write_metadata(pending=False)
        self.closed = True

    def abort(self) -> None:
        """Closes and removes the bag folder (a run that failed leaves no partial bag)."""
        try:
            if not self.closed:
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
