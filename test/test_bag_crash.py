"""Recordings cut short by SIGKILL (what a power cut or the OOM killer does), made by the real
``fer-bag record`` from a real camera process: every reader path reads them, ``fer-bag
reindex`` makes them whole for other readers (the ``mcap`` library's seeking reader, rosbags),
and the recorder's flush timer bounds what the kill loses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")

from mcap.reader import SeekingReader, make_reader  # noqa: E402
from rosbags.rosbag2 import Reader  # noqa: E402

from bag_crash import bag_indexes, fer_bag, record_and_kill, survival  # noqa: E402
from conftest import SHARED_DIR, child_env  # noqa: E402
from test_bag import classifier_args  # noqa: E402
from fer_ros.bag.errors import BagError  # noqa: E402
from fer_ros.bag.reader import BagReader  # noqa: E402
from fer_ros.bag.writer import BagWriter  # noqa: E402


VIDEO = SHARED_DIR / "samples" / "fer_woman2.mp4"


def _count_line(info_stdout: str) -> int:
    line = next(x for x in info_stdout.splitlines() if x.startswith("messages: "))
    return int(line.split()[1])


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_sigkilled_recording_is_read_played_and_reindexed(tmp_path, storage):
    env = child_env()
    cut = record_and_kill(tmp_path, storage, 3.0, env,
                          video=str(VIDEO) if VIDEO.is_file() else "")
    assert not (cut.bag / "metadata.yaml").exists()  # the recorder never got to write it

    info = fer_bag("info", str(cut.bag), env=env)
    assert info.returncode == 0 and "Traceback" not in info.stderr, info.stderr
    count = _count_line(info.stdout)
    indexes = bag_indexes(cut.bag)
    assert len(indexes) == count and indexes == sorted(indexes)
    kept, wanted = survival(cut, indexes)
    assert wanted >= 30 and kept >= 0.95 * wanted, (kept, wanted)
    assert "no metadata.yaml; rebuilt it" in info.stderr
    if storage == "mcap":
        assert f"recording cut short (no summary/footer): read {count} messages" in info.stderr

    if storage == "mcap":  # the node answers every frame of the cut recording
        ev = fer_bag("evaluate", str(cut.bag), "--lockstep", "--max-frames", "10", "--json",
                     "-q", "--out", str(tmp_path / "eval"), *classifier_args(tmp_path), env=env,
                     timeout=300)
        assert ev.returncode == 0, ev.stderr[-2000:]
        assert "recording cut short" in ev.stderr
        report = json.loads(ev.stdout)
        assert report["frames_published"] == report["frames_answered"] == 10

    play = fer_bag("play", str(cut.bag), "--rate", "20", "-q", env=env)
    assert play.returncode == 0, play.stderr
    assert f"published {count} messages" in play.stderr

    reindex = fer_bag("reindex", str(cut.bag), env=env)
    assert reindex.returncode == 0, reindex.stderr
    assert f"metadata.yaml: {count} messages in 1 file(s), 1 topic(s) (jazzy layout)" \
        in reindex.stdout
    with Reader(cut.bag) as reader:  # rosbags' folder reader: metadata.yaml + storage agree
        assert reader.message_count == count == sum(1 for _ in reader.messages())
        assert reader.connections[0].msgtype == "sensor_msgs/msg/Image"
    if storage == "mcap":
        assert (cut.bag / "cut_mcap_0.mcap.cut").is_file()  # the original is kept
        with (cut.bag / "cut_mcap_0.mcap").open("rb") as f:
            reader = make_reader(f)
            assert isinstance(reader, SeekingReader)
            assert reader.get_summary().statistics.message_count == count
            assert sum(1 for _ in reader.iter_messages()) == count
    info = fer_bag("info", str(cut.bag), env=env)
    assert info.returncode == 0 and "cut short" not in info.stderr, info.stderr
    assert _count_line(info.stdout) == count


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_flush_timer_puts_a_slow_topic_on_disk_before_the_kill(tmp_path, storage):
    """Small messages at 4 Hz never fill the 1 MiB cache: only the flush timer (0.5 s) writes
    them, so nearly all that came before the last second survive."""
    env = child_env()
    cut = record_and_kill(tmp_path, storage, 4.0, env, width=32, height=24, hz=4.0)
    info = fer_bag("info", str(cut.bag), env=env)
    assert info.returncode == 0, info.stderr
    kept, wanted = survival(cut, bag_indexes(cut.bag))
    assert wanted >= 8 and kept >= wanted - 1, (kept, wanted)


def test_sqlite_hot_journal_is_rolled_back_as_sqlite_does(tmp_path):
    """A transaction far larger than SQLite's page cache, cut by SIGKILL, leaves pages of it in
    the .db3 and a hot journal beside it; readers see the last committed state."""
    env = child_env()
    cut = record_and_kill(tmp_path, "sqlite3", 1.5, env, record_args=(
        "--max-cache-size", "500000000", "--flush-interval", "600"))
    db = cut.bag / "cut_sqlite3_0.db3"
    journal = db.with_name(db.name + "-journal")
    assert journal.is_file() and journal.stat().st_size > 0
    info = fer_bag("info", str(cut.bag), env=env)
    assert info.returncode == 0, info.stderr
    assert "cut_sqlite3_0.db3: recording cut short (a hot journal): SQLite recovered the last " \
           "committed state in place" in info.stderr
    assert not journal.exists()
    assert _count_line(info.stdout) == 0  # nothing was committed but the topic
    assert "/camera/image_raw  sensor_msgs/msg/Image  0 messages" in info.stdout


def _small_bag(folder: Path) -> Path:
    with BagWriter(folder / "whole", "mcap") as writer:
        topic = writer.add_topic("/chatter", "std_msgs/msg/String")
        for i in range(40):
            text = f"message {i:02d}".encode() + b"\0"
            data = b"\x00\x01\x00\x00" + len(text).to_bytes(4, "little") + text
            writer.write(topic, 1_000_000_000 + i * 10_000_000, data)
            if i % 5 == 4:
                writer.flush()  # a chunk per 5 messages, as the flush timer makes them
    return folder / "whole" / "whole_0.mcap"


def test_mcap_cut_at_any_byte_reads_its_complete_chunks(tmp_path):
    whole = _small_bag(tmp_path).read_bytes()
    counts = []
    for end in range(0, len(whole), 97):
        cut = tmp_path / f"cut{end}.mcap"
        cut.write_bytes(whole[:end] + b"\0" * 64 * (end % 2))  # odd: zeros of a power cut
        try:
            with BagReader(cut) as reader:
                counts.append(reader.message_count)
                assert len(list(reader.messages())) == reader.message_count
        except BagError as exc:
            assert end < 80, exc  # only a file cut inside its header is refused
            assert "cannot read the storage file" in str(exc)
    assert counts == sorted(counts) and counts[-1] >= 35 and set(counts) <= set(range(0, 41, 5))


def test_reindex_refuses_what_it_cannot_repair_in_one_line(tmp_path):
    env = child_env()
    (tmp_path / "empty").mkdir()
    out = fer_bag("reindex", str(tmp_path / "empty"), env=env)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0
    assert "no .mcap or .db3 file in the folder" in out.stderr
    whole = _small_bag(tmp_path)
    out = fer_bag("reindex", str(whole), env=env)
    assert out.returncode == 2 and "give the bag folder" in out.stderr
    shutil.copy(whole, tmp_path / "empty" / "x.mcap")
    out = fer_bag("reindex", str(tmp_path / "empty"), env=env)  # complete file: metadata only
    assert out.returncode == 0, out.stderr
    assert "metadata.yaml: 40 messages" in out.stdout and "rewrote" not in out.stdout
