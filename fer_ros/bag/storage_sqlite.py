"""Writing one rosbag2 ``.db3`` storage file with the schema of the chosen distro.

The tables are rosbag2's (rosbag2_storage_sqlite3 ``SqliteStorage::initialize``): schema 3
(Humble) has ``schema``, ``metadata``, ``topics(id, name, type, serialization_format,
offered_qos_profiles)`` and ``messages(id, topic_id, timestamp, data)``; schema 4 (Jazzy) adds
``topics.type_description_hash`` and ``message_definitions``. Jazzy stores metadata.yaml in the
``metadata`` table at close. Messages are committed in transactions of ``max_cache`` bytes
and by the recorder's flush timer; a write error (a full disk) rolls back only the open
transaction, so ``tally`` counts what the file holds. Use from one thread.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .layout import Layout
from .qos import Qos, profiles_string
from .storage_tally import DEFAULT_CACHE_BYTES, Tally


_SCHEMA = """
CREATE TABLE schema(schema_version INTEGER PRIMARY KEY, ros_distro TEXT NOT NULL);
CREATE TABLE metadata(id INTEGER PRIMARY KEY, metadata_version INTEGER NOT NULL,
                      metadata TEXT NOT NULL);
CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
                    serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL{hash});
{definitions}
CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL,
                      timestamp INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX timestamp_idx ON messages (timestamp ASC);
"""
_DEFINITIONS = """CREATE TABLE message_definitions(id INTEGER PRIMARY KEY,
    topic_type TEXT NOT NULL, encoding TEXT NOT NULL, encoded_message_definition TEXT NOT NULL,
    type_description_hash TEXT NOT NULL);"""


class SqliteStorage:
    """One .db3 file; topic ids are ``topics.id``."""

    def __init__(self, path: Path, layout: Layout, max_cache: int = DEFAULT_CACHE_BYTES) -> None:
        self.path, self.layout, self.max_cache = path, layout, max_cache
        jazzy = layout.sqlite_schema_version >= 4
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.executescript(_SCHEMA.format(
            hash=", type_description_hash TEXT NOT NULL" if jazzy else "",
            definitions=_DEFINITIONS if jazzy else ""))
        self.db.execute("INSERT INTO schema (schema_version, ros_distro) VALUES (?, ?)",
                        (layout.sqlite_schema_version, layout.distro))
        self._types: set[str] = set()
        self.tally = Tally()
        self._batch_bytes = 0
        self.failed = False

    def add_topic(self, name: str, msgtype: str, msgdef: str, qos: list[Qos],
                  type_hash: str) -> int:
        self._commit()
        qos_text = profiles_string(qos, named=self.layout.named_qos)
        if self.layout.sqlite_schema_version >= 4:
            cur = self.db.execute(
                "INSERT INTO topics (name, type, serialization_format, offered_qos_profiles, "
                "type_description_hash) VALUES (?, ?, 'cdr', ?, ?)",
                (name, msgtype, qos_text, type_hash))
            if msgtype not in self._types:
                self.db.execute(
                    "INSERT INTO message_definitions (topic_type, encoding, "
                    "encoded_message_definition, type_description_hash) VALUES (?, ?, ?, ?)",
                    (msgtype, "ros2msg", msgdef, type_hash))
        else:
            cur = self.db.execute(
                "INSERT INTO topics (name, type, serialization_format, offered_qos_profiles) "
                "VALUES (?, ?, 'cdr', ?)", (name, msgtype, qos_text))
        self._types.add(msgtype)
        return int(cur.lastrowid)

    def write(self, topic_id: int, stamp_ns: int, data: bytes) -> None:
        if not self.db.in_transaction:
            self.db.execute("BEGIN")
        self.db.execute("INSERT INTO messages (timestamp, topic_id, data) VALUES (?, ?, ?)",
                        (stamp_ns, topic_id, bytes(data)))
        self.tally.add(topic_id, stamp_ns)
        self._batch_bytes += len(data)
        if self._batch_bytes >= self.max_cache:
            self._commit()

    def flush(self) -> None:
        """Commits the open transaction (the recorder calls this on a timer)."""
        self._commit()

    def _commit(self) -> None:
        if self.db.in_transaction:
            self.db.execute("COMMIT")
        self._batch_bytes = 0
        self.tally.commit()

    def close(self, metadata_yaml: str | None) -> None:
        self._commit()
        if metadata_yaml is not None:
            self.db.execute("INSERT INTO metadata (metadata_version, metadata) VALUES (?, ?)",
                            (self.layout.metadata_version, metadata_yaml))
        self.db.close()

    def close_after_error(self) -> None:
        """Drops the open batch (sqlite rolls it back) and closes the file."""
        self.failed = True
        self.tally.drop_pending()
        try:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        self.db.close()
