"""Writing one rosbag2 ``.mcap`` storage file (profile ros2) with the ``mcap`` library.

What rosbag2's mcap plugin writes (rosbag2_storage_mcap/src/mcap_storage.cpp): a Schema per
type (encoding ``ros2msg``, the concatenated .msg text), a Channel per topic (encoding ``cdr``,
metadata ``offered_qos_profiles`` and, from Jazzy on, ``topic_type_hash``), messages with log
time = receive time, and on Jazzy a ``rosbag2`` Metadata record holding metadata.yaml.

Writes go through ``_CheckedFile``: every byte is written or an OSError is raised (no silent
short writes). A write error (e.g. a full disk) leaves the file cut back to its last complete
record and closed with a DataEnd + Footer without summary, a valid MCAP file that readers
scan; ``tally`` then counts only the messages that are in the file.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from mcap.writer import CompressionType, Writer

from .layout import Layout
from .qos import Qos, profiles_string
from .storage_tally import DEFAULT_CACHE_BYTES, Tally

LIBRARY = "fer_ros fer-bag (mcap python)"
COMPRESSION = {None: CompressionType.NONE, "none": CompressionType.NONE,
               "zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4}
MAGIC = b"\x89MCAP0\r\n"
# DataEnd (op 0x0F, crc 0) + Footer (op 0x02, no summary) + magic
_CLOSING = (b"\x0f" + struct.pack("<QI", 4, 0) + b"\x02" + struct.pack("<QQQI", 20, 0, 0, 0)
            + MAGIC)


class _CheckedFile:
    """A write-only file that writes every byte or raises OSError; knows its offset."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.offset = 0

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            if n <= 0:
                raise OSError(28, "No space left on device")
            view = view[n:]
            self.offset += n
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def cut(self, offset: int) -> None:
        os.ftruncate(self.fd, offset)
        os.lseek(self.fd, offset, os.SEEK_SET)
        self.offset = offset

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.fsync(self.fd)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = -1


class McapStorage:
    """One .mcap file; topic ids are channel ids. Not thread-safe."""

    def __init__(self, path: Path, layout: Layout, compression: str | None = None,
                 chunk_size: int = DEFAULT_CACHE_BYTES) -> None:
        self.path, self.layout = path, layout
        self._file = _CheckedFile(path)
        self._writer = Writer(self._file, chunk_size=chunk_size,
                              compression=COMPRESSION[compression])
        self._writer.start(profile="ros2", library=LIBRARY)
        self._schemas: dict[str, int] = {}
        self._good = self._file.tell()        # end of the last complete record
        self.tally = Tally()  # messages on disk / in the chunk being built
        self.failed = False

    def add_topic(self, name: str, msgtype: str, msgdef: str, qos: list[Qos],
                  type_hash: str) -> int:
        if msgtype not in self._schemas:
            self._schemas[msgtype] = self._writer.register_schema(
                msgtype, "ros2msg", msgdef.encode())
        metadata = {"offered_qos_profiles": profiles_string(qos, named=self.layout.named_qos)}
        if self.layout.type_hashes:
            metadata["topic_type_hash"] = type_hash
        return self._writer.register_channel(name, "cdr", self._schemas[msgtype], metadata)

    def write(self, topic_id: int, stamp_ns: int, data: bytes) -> None:
        before = self._file.tell()
        self._writer.add_message(topic_id, log_time=stamp_ns, data=bytes(data),
                                 publish_time=stamp_ns)
        self.tally.add(topic_id, stamp_ns)
        if self._file.tell() != before:  # a chunk (holding every pending message) was written
            self.tally.commit()
        self._good = self._file.tell()

    def flush(self) -> None:
        """Writes the chunk being built (if it holds messages) and syncs the file to disk, so
        a crash (SIGKILL, power cut) cannot lose what was written before."""
        if not self.tally.pending:
            return
        self._writer.flush()
        self.tally.commit()
        self._good = self._file.tell()
        os.fdatasync(self._file.fd)

    def close(self, metadata_yaml: str | None) -> None:
        """Writes the last chunk, the ``rosbag2`` metadata record (Jazzy) and the summary."""
        if metadata_yaml is not None:
            self._writer.add_metadata("rosbag2", {"serialized_metadata": metadata_yaml})
        self._writer.finish()
        self.tally.commit()
        self._file.close()

    def close_after_error(self) -> None:
        """Cuts the file back to its last complete record and closes it (DataEnd + Footer)."""
        self.failed = True
        self.tally.drop_pending()
        self._file.cut(self._good)
        self._file.write(_CLOSING)
        self._file.close()
