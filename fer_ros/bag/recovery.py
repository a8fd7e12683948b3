"""Reading storage files of a recording cut short (SIGKILL, power cut, the OOM killer).

Kept because rosbags refuses an mcap file without summary and footer (``CutMcapReader`` scans
its data section up to the last complete record instead) and opens a .db3 with ``immutable=1``,
past a hot journal (``recover_sqlite`` first lets SQLite roll the cut transaction back).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path

from rosbags.rosbag2.storage_mcap import McapReader

MAGIC = b"\x89MCAP0\r\n"
_DATA_END, _FOOTER, _CHUNK = 0x0F, 0x02, 0x06
_LAST_OPCODE = 0x10       # opcodes 0x01..0x10 are the MCAP spec's records
_MAXSIZE = 2**63 - 1
# DataEnd (op 0x0F, crc 0) + Footer (op 0x02, no summary) + magic: closes a cut file
CLOSING = (b"\x0f" + struct.pack("<QI", 4, 0) + b"\x02" + struct.pack("<QQQI", 20, 0, 0, 0)
           + MAGIC)


@dataclass
class McapCut:
    """Where the complete records of an mcap file without footer end."""

    data_start: int      # after the magic and the Header record
    data_end: int        # end of the last complete record
    size: int            # file size (the bytes past data_end are an unfinished record)
    compression: str     # of the first chunk ("" when none or no chunk)
    records: list[int]   # offsets of the complete records (to step back past a bad one)


def mcap_cut(path: Path) -> McapCut | None:
    """None for an mcap file that ends with its footer; else where its complete records end.
    ValueError when it is not an mcap file at all."""
    size = path.stat().st_size
    with path.open("rb") as f:
        if f.read(8) != MAGIC:
            raise ValueError("File magic is invalid.")
        if size >= 8 + 37:
            f.seek(size - 8)
            if f.read(8) == MAGIC:
                return None
        f.seek(8)
        head = f.read(9)
        if len(head) < 9 or head[0] != 0x01:
            raise ValueError("the file was cut before its Header record")
        data_start = 8 + 9 + struct.unpack("<Q", head[1:])[0]
        offset, compression, records = data_start, "", []
        while offset + 9 <= size:
            f.seek(offset)
            head = f.read(9)
            op, length = head[0], struct.unpack("<Q", head[1:])[0]
            if not 0x01 <= op <= _LAST_OPCODE or op in (_DATA_END, _FOOTER):
                break  # zeros from a power cut, or the summary that was being written
            if offset + 9 + length > size:
                break
            if op == _CHUNK and not compression:
                body = f.read(min(length, 64))
                (n,) = struct.unpack_from("<I", body, 32)
                compression = body[36:36 + n].decode(errors="replace") or "none"
            records.append(offset)
            offset += 9 + length
    return McapCut(min(data_start, size), max(offset, min(data_start, size)), size,
                   "" if compression == "none" else compression, records)


def close_cut_mcap(path: Path) -> None:
    """Cuts an mcap file without footer back to its last complete record and closes it with
    DataEnd + Footer (no summary): a valid file that readers scan."""
    cut = mcap_cut(path)
    if cut is not None:
        with path.open("r+b") as f:
            f.truncate(cut.data_end)
            f.seek(cut.data_end)
            f.write(CLOSING)
            f.flush()
            os.fsync(f.fileno())


class CutMcapReader(McapReader):
    """rosbags' mcap reader, which also reads a file without summary and footer (``cut`` set)."""

    cut: McapCut | None = None

    def _open(self) -> None:
        try:
            cut = mcap_cut(Path(self.path))
        except ValueError:
            cut = None  # rosbags says what is wrong
        if cut is None:
            super()._open()
            return
        self.cut = cut
        self.data_start, self.data_end = cut.data_start, cut.data_end
        while True:
            try:
                self.meta_scan()
                break
            except Exception:  # a record whose bytes a power cut left as zeros (or garbage)
                failed_at = self.bio.tell()
                earlier = [r for r in cut.records if r < min(failed_at, self.data_end)]
                if not earlier:
                    raise
                self.data_end = cut.data_end = earlier[-1]
                self.schemas.clear()
                self.channels.clear()
                self.connections.clear()
        stats = self.statistics
        assert stats is not None
        counts = stats.channel_message_counts
        self.connections = [c._replace(msgcount=counts.get(c.id, 0)) for c in self.connections]
        n = stats.message_count
        self.metadata = self.metadata._replace(
            duration=stats.end_time - stats.start_time + 1 if n else 0,
            start_time=stats.start_time if n else _MAXSIZE,
            end_time=stats.end_time + 1 if n else 0, message_count=n)


def _side_files(db: Path) -> list[Path]:
    """The rollback journal / WAL that a cut SQLite transaction leaves beside ``db``."""
    return [p for p in (db.with_name(db.name + "-journal"), db.with_name(db.name + "-wal"))
            if p.is_file() and p.stat().st_size > 0]


def recover_sqlite(db: Path, scratch: Path | None) -> tuple[Path, str | None]:
    """(the .db3 to read, a note or None). With a hot journal or a WAL beside ``db``, SQLite
    rolls the cut transaction back (or checkpoints the WAL) in place when the folder is
    writable, else in a copy made in ``scratch``."""
    sides = _side_files(db)
    if not sides:
        return db, None
    target, where = db, "in place"
    if not (os.access(db, os.W_OK) and os.access(db.parent, os.W_OK)):
        if scratch is None:
            raise PermissionError(f"{db.name} has an unfinished transaction and is read-only")
        target, where = scratch / db.name, "in a temporary copy"
        shutil.copyfile(db, target)
        for side in sides:
            shutil.copyfile(side, scratch / side.name)
    con = sqlite3.connect(target)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # rolls a hot journal back
        if any(s.name.endswith("-wal") for s in sides):
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    # a journal SQLite did not find hot (its header never reached the disk) stays: the file
    # was consistent already, and there is nothing to say
    left = {p.name for p in _side_files(target)}
    sides = [s for s in sides if s.name not in left]
    if not sides:
        return target, None
    kinds = " and ".join("a hot journal" if s.name.endswith("-journal") else "a WAL"
                         for s in sides)
    return target, (f"{db.name}: recording cut short ({kinds}): SQLite recovered the last "
                    f"committed state {where}")
