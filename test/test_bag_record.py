"""``fer-bag record`` under faults: a disk that fills up while recording (the file-size limit
of the recording process, so the test needs no special mount), and a writer slower than the
topics (the queue is bounded, drops are counted)."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")

from rclpy.serialization import deserialize_message  # noqa: E402
from rosbags.rosbag2 import Reader  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from conftest import REPO_ROOT, child_env, stop_process  # noqa: E402
from fer_ros.bag_transport import recorder as recorder_module  # noqa: E402
from fer_ros.bag_transport.recorder import WriterThread  # noqa: E402

LIMIT_BYTES = 3 * 1024 * 1024
CAMERA = """
import rclpy
from sensor_msgs.msg import Image

rclpy.init()
node = rclpy.create_node("fake_camera")
pub = node.create_publisher(Image, "/camera/image_raw", 100)  # reliable
i = 0
print("publishing", flush=True)
try:
    while rclpy.ok():
        msg = Image(height=66, width=100, encoding="bgr8", step=300, data=bytes([i % 256]) * 19800)
        msg.header.stamp.sec, msg.header.frame_id = i, "cam"
        pub.publish(msg)
        i += 1
        rclpy.spin_once(node, timeout_sec=0.01)
except KeyboardInterrupt:
    pass
"""


def _file_size_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT_BYTES, LIMIT_BYTES))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_record_on_a_full_disk_stops_in_one_line_and_leaves_a_readable_bag(tmp_path, storage,
                                                                           python_child):
    camera = python_child(CAMERA)
    assert camera.stdout.readline().strip() == "publishing"
    bag = tmp_path / "full"
    rec = subprocess.Popen([sys.executable, "-m", "fer_ros.cli.bag", "record", str(bag),
                            "/camera/image_raw", "--storage", storage, "--duration", "600",
                            "--discovery-timeout", "60", "-q"],
                           env=child_env(), cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, preexec_fn=_file_size_limit)
    try:
        _, err = rec.communicate(timeout=120)  # it stops by itself, long before --duration
    finally:
        stop_process(rec)
    assert rec.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    # the OS says EFBIG ("File too large"); sqlite reports it as "disk I/O error"
    assert "cannot write" in lines[0] and ("File too large" in lines[0]
                                           or "disk I/O error" in lines[0]), err
    assert f"fer-bag info {bag}" in lines[0]
    assert sorted(p.name for p in bag.iterdir()) == sorted(
        ["metadata.yaml", f"full_0.{'mcap' if storage == 'mcap' else 'db3'}"])
    info = subprocess.run([sys.executable, "-m", "fer_ros.cli.bag", "info", str(bag)],
                          env=child_env(), cwd=str(REPO_ROOT), capture_output=True, text=True,
                          timeout=60)
    assert info.returncode == 0, info.stderr
    with Reader(bag) as reader:  # rosbags' own folder reader agrees with metadata.yaml
        (conn,) = reader.connections
        messages = [deserialize_message(bytes(d), Image) for _, _, d in reader.messages()]
        assert len(messages) == conn.msgcount == reader.message_count > 20
    assert f"/camera/image_raw  sensor_msgs/msg/Image  {len(messages)} messages" in info.stdout
    first = messages[0].header.stamp.sec
    assert [m.header.stamp.sec for m in messages] == list(range(first, first + len(messages)))
    assert all(bytes(m.data) == bytes([m.header.stamp.sec % 256]) * 19800 for m in messages)


def test_writer_queue_is_bounded_and_drops_are_counted(tmp_path, monkeypatch):
    monkeypatch.setattr(recorder_module, "MAX_QUEUED_BYTES", 10_000)
    writer = WriterThread(tmp_path / "slow", "mcap")
    topic = writer.call(lambda w: w.add_topic("/x", "std_msgs/msg/String"))
    gate = threading.Event()
    writer._queue.put((lambda w: gate.wait(), None, [], 0))  # a disk that does not keep up
    data = b"\x00\x01\x00\x00" + (992).to_bytes(4, "little") + b"a" * 992
    accepted = sum(writer.write(topic, 1000 + i, data) for i in range(50))
    assert accepted == 10 and writer.dropped == 40  # 10 x 1 kB fit in 10 kB
    gate.set()
    writer.close()
    assert writer.error is None
    with Reader(Path(tmp_path / "slow")) as reader:
        assert reader.message_count == 10
