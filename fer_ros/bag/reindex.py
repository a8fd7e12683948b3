"""``fer-bag reindex``: make a recording cut short whole again, as ``ros2 bag reindex`` does.

Kept because rosbags has no reindex. An mcap file without summary/footer is rewritten with the
``mcap`` library (chunk indexes, summary, footer; the cut original is kept as
``<name>.mcap.cut``); a .db3 with a hot journal is recovered by SQLite. Then metadata.yaml is
written from what the storage files hold.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .errors import BagError
from .metadata import FileMeta, Layout, TopicMeta, dump, layout_for, metadata_document
from .reader import STORAGE_SUFFIXES, BagReader, _natural
from .recovery import CLOSING, McapCut, mcap_cut, recover_sqlite


def repair_mcap(path: Path, cut: McapCut, out: Path) -> int:
    """Copies the complete records of ``path`` into a new, indexed ``out``; returns the
    message count."""
    from mcap.records import Channel, Header, Message, Metadata, Schema
    from mcap.stream_reader import StreamReader
    from mcap.writer import CompressionType, Writer

    prefix = out.with_name(out.name + ".prefix")  # the complete records, closed
    with path.open("rb") as src, prefix.open("wb") as dst:
        left = cut.data_end
        while left > 0 and (block := src.read(min(left, 1 << 20))):
            dst.write(block)
            left -= len(block)
        dst.write(CLOSING)
    compression = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4}.get(
        cut.compression, CompressionType.NONE)
    schemas: dict[int, int] = {}
    channels: dict[int, int] = {}
    count = 0
    try:
        with prefix.open("rb") as src, out.open("xb") as dst:
            writer = Writer(dst, compression=compression)
            for record in StreamReader(src).records:
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
                    writer.add_message(channels[record.channel_id], record.log_time,
                                       record.data, record.publish_time, record.sequence)
                    count += 1
                elif isinstance(record, Metadata):
                    writer.add_metadata(record.name, record.metadata)
            writer.finish()
            dst.flush()
            os.fsync(dst.fileno())
    finally:
        prefix.unlink(missing_ok=True)
    return count


def _mcap_type_hashes(file: Path) -> dict[str, str]:
    """{topic: RIHS01 hash} from the channel metadata (rosbags does not expose it for mcap)."""
    from mcap.reader import make_reader

    with file.open("rb") as f:
        summary = make_reader(f).get_summary()
    return {c.topic: c.metadata.get("topic_type_hash", "")
            for c in (summary.channels.values() if summary else [])}


def write_metadata(bag: Path, files: list[Path], layout: Layout | None = None,
                   hashes: dict[str, str] | None = None) -> str:
    """Writes ``bag``/metadata.yaml for what ``files`` hold (the layout: jazzy when they have
    type hashes, else humble); returns a line saying so."""
    metas, topics = [], {}
    for file in files:
        known = dict(hashes or {}, **(_mcap_type_hashes(file) if file.suffix == ".mcap" else {}))
        with BagReader(file) as reader:
            metas.append(FileMeta(file.name, reader.start_ns, reader.duration_ns,
                                  reader.message_count))
            for t in reader.topics.values():
                meta = topics.setdefault(t.name, TopicMeta(t.name, t.msgtype, t.qos,
                                                           t.type_hash or known.get(t.name, "")))
                meta.count += t.count
    if layout is None:
        hashed = any(t.type_hash.startswith("RIHS01_") for t in topics.values())
        layout = layout_for("jazzy" if hashed else "humble")
    doc = metadata_document(layout, STORAGE_SUFFIXES[files[0].suffix], metas,
                            list(topics.values()))
    tmp = bag / ".metadata.yaml.tmp"
    tmp.write_text(dump(doc))
    os.replace(tmp, bag / "metadata.yaml")
    return (f"metadata.yaml: {sum(m.count for m in metas)} messages in {len(files)} file(s), "
            f"{len(topics)} topic(s) ({layout.distro} layout)")


def reindex(bag: Path, distro: str | None = None) -> list[str]:
    """Repairs the storage files of ``bag`` and writes its metadata.yaml; returns one line
    per thing done. BagError (one line) when it cannot."""
    try:
        return _reindex(bag, distro)
    except (OSError, sqlite3.Error) as exc:  # a read-only folder, a full disk, a broken .db3
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise BagError(f"{bag}: cannot reindex: {reason}") from None


def _reindex(bag: Path, distro: str | None) -> list[str]:
    if not bag.is_dir():
        raise BagError(f"{bag}: give the bag folder (the one holding the .mcap / .db3 files)")
    files = sorted((p for p in bag.iterdir() if p.suffix in STORAGE_SUFFIXES and p.is_file()),
                   key=_natural)
    if not files:
        raise BagError(f"{bag}: no .mcap or .db3 file in the folder")
    if len({p.suffix for p in files}) > 1:
        raise BagError(f"{bag}: both .mcap and .db3 files; keep one kind")
    done = []
    for file in files:
        if file.suffix == ".db3":
            done += [note for note in recover_sqlite(file, None)[1:] if note]
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
    done.append(write_metadata(bag, files, layout_for(distro) if distro else None))
    from .writer import RESERVE_NAME

    (bag / RESERVE_NAME).unlink(missing_ok=True)  # the killed recorder's disk-full reserve
    return done
