"""``fer-bag reindex``: make a recording cut short whole again, as ``ros2 bag reindex`` does.

For each storage file of the bag folder: an mcap file without summary/footer is rewritten
(its complete records copied with the ``mcap`` library's reader and writer, which adds the
chunk indexes, summary and footer that seeking readers need; the cut original is kept beside
it as ``<name>.mcap.cut``); a .db3 with a hot journal is recovered by SQLite. Then
metadata.yaml is written from what the storage files hold.
"""

from __future__ import annotations

import io
import os
import sqlite3
import struct
from pathlib import Path

import yaml

from .errors import BagError
from .layout import FileMeta, TopicMeta, layout_for, metadata_document
from .reader import STORAGE_SUFFIXES, BagReader, _natural
from .recovery import MAGIC, McapCut, mcap_cut, recover_sqlite
from .writer import RESERVE_NAME

# DataEnd (op 0x0F, crc 0) + Footer (op 0x02, no summary) + magic: ends the copied prefix so
# the mcap StreamReader sees a whole file
_CLOSING = (b"\x0f" + struct.pack("<QI", 4, 0) + b"\x02" + struct.pack("<QQQI", 20, 0, 0, 0)
            + MAGIC)


class _Prefix(io.RawIOBase):
    """The first ``end`` bytes of a file followed by ``tail`` (read-only stream)."""

    def __init__(self, path: Path, end: int, tail: bytes) -> None:
        self._f, self._left, self._tail = path.open("rb"), end, tail

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        if self._left > 0:
            n = self._f.readinto(memoryview(buf)[:min(len(buf), self._left)])
            self._left -= n
            return n
        n = min(len(buf), len(self._tail))
        buf[:n], self._tail = self._tail[:n], self._tail[n:]
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


def repair_mcap(path: Path, cut: McapCut, out: Path) -> int:
    """Copies the complete records of ``path`` into a new, indexed ``out``; returns the
    message count."""
    from mcap.records import Channel, Header, Message, Metadata, Schema
    from mcap.stream_reader import StreamReader
    from mcap.writer import CompressionType, Writer

    compression = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4}.get(
        cut.compression, CompressionType.NONE)
    schemas: dict[int, int] = {}
    channels: dict[int, int] = {}
    count = 0
    with _Prefix(path, cut.data_end, _CLOSING) as src, out.open("xb") as dst:
        writer = Writer(dst, compression=compression)
        for record in StreamReader(io.BufferedReader(src)).records:
            if isinstance(record, Header):
                writer.start(profile=record.profile, library=record.library)
            elif isinstance(record, Schema) and record.id not in schemas:
                schemas[record.id] = writer.register_schema(record.name, record.encoding,
                                                            record.data)
            elif isinstance(record, Channel) and record.id not in channels:
                channels[record.id] = writer.register_channel(
                    record.topic, record.message_encoding, schemas.get(record.schema_id, 0),
                    record.metadata)
            elif isinstance(record, Message) and record.channel_id in channels:
                writer.add_message(channels[record.channel_id], record.log_time, record.data,
                                   record.publish_time, record.sequence)
                count += 1
            elif isinstance(record, Metadata):
                writer.add_metadata(record.name, record.metadata)
        writer.finish()
        dst.flush()
        os.fsync(dst.fileno())
    return count


def _mcap_type_hashes(file: Path) -> dict[str, str]:
    """{topic: RIHS01 hash} from the channel metadata (rosbags does not expose it for mcap)."""
    from mcap.reader import make_reader

    with file.open("rb") as f:
        summary = make_reader(f).get_summary()
    channels = summary.channels.values() if summary else []
    return {c.topic: c.metadata.get("topic_type_hash", "") for c in channels}


def _storage_files(bag: Path) -> list[Path]:
    if not bag.is_dir():
        raise BagError(f"{bag}: give the bag folder (the one holding the .mcap / .db3 files)")
    files = sorted((p for p in bag.iterdir() if p.suffix in STORAGE_SUFFIXES and p.is_file()),
                   key=_natural)
    if not files:
        raise BagError(f"{bag}: no .mcap or .db3 file in the folder")
    if len({p.suffix for p in files}) > 1:
        raise BagError(f"{bag}: both .mcap and .db3 files; keep one kind")
    return files


def reindex(bag: Path, distro: str | None = None) -> list[str]:
    """Repairs the storage files of ``bag`` and writes its metadata.yaml; returns one line
    per thing done. BagError (one line) when it cannot."""
    try:
        return _reindex(bag, distro)
    except (OSError, sqlite3.Error) as exc:  # a read-only folder, a full disk, a broken .db3
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise BagError(f"{bag}: cannot reindex: {reason}") from None


def _reindex(bag: Path, distro: str | None) -> list[str]:
    done = []
    files = _storage_files(bag)
    for file in files:
        if file.suffix == ".db3":
            _, note = recover_sqlite(file, None)
            if note:
                done.append(note)
            continue
        try:
            cut = mcap_cut(file)
        except ValueError as exc:
            raise BagError(f"{file}: not an mcap file ({exc})") from None
        if cut is None:
            continue
        tmp = file.with_name(file.name + ".reindex-tmp")
        tmp.unlink(missing_ok=True)
        try:
            count = repair_mcap(file, cut, tmp)
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            raise BagError(f"{file}: cannot rewrite it: {exc}") from None
        os.replace(file, file.with_name(file.name + ".cut"))
        os.replace(tmp, file)
        done.append(f"{file.name}: rewrote {count} messages with a summary and index (the cut "
                    f"original is {file.name}.cut)")
    metas, topics, hashes = [], {}, False
    for file in files:
        mcap_hashes = _mcap_type_hashes(file) if file.suffix == ".mcap" else {}
        with BagReader(file) as reader:
            metas.append(FileMeta(file.name, reader.start_ns, reader.duration_ns,
                                  reader.message_count))
            for t in reader.topics.values():
                type_hash = t.type_hash or mcap_hashes.get(t.name, "")
                meta = topics.setdefault(t.name, TopicMeta(t.name, t.msgtype, t.qos, type_hash))
                meta.count += t.count
                hashes |= type_hash.startswith("RIHS01_")
    layout = layout_for(distro or ("jazzy" if hashes else "humble"))
    doc = metadata_document(layout, STORAGE_SUFFIXES[files[0].suffix], metas, list(topics.values()))
    tmp = bag / ".metadata.yaml.tmp"
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    os.replace(tmp, bag / "metadata.yaml")
    (bag / RESERVE_NAME).unlink(missing_ok=True)  # the killed recorder's disk-full reserve
    total = sum(m.count for m in metas)
    done.append(f"metadata.yaml: {total} messages in {len(files)} file(s), {len(topics)} "
                f"topic(s) ({layout.distro} layout)")
    return done
