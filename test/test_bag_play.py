"""``fer-bag play`` on a camera bag laid out as a real driver's recording (written with `mcap`
directly): the image topic recorded reliable, metadata.yaml edited so its QoS differs from
the storage's, and topics of types that are not installed (rosbag2's ``/events/write_split``
with 0 messages, a vendor type with messages). Every image must reach a subscriber with the
default (reliable) QoS, in another process, with one warning per skipped topic."""

from __future__ import annotations

import subprocess
import sys
import zlib

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")
pytest.importorskip("mcap", reason="mcap is not installed (run `make setup`)")

from rclpy.serialization import deserialize_message  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from conftest import REPO_ROOT, child_env, stop_process  # noqa: E402
from test_bag_files import Rosbag2Topic, images, write_mcap, write_metadata  # noqa: E402

FRAMES = 30
RELIABLE_SINK = """
import sys, time, zlib
import rclpy
from sensor_msgs.msg import Image

rclpy.init()
node = rclpy.create_node("reliable_sink")
got = []
node.create_subscription(Image, "/camera/image_raw", got.append, 10)  # default QoS: reliable
print("ready", flush=True)
deadline = time.monotonic() + float(sys.argv[2])
while len(got) < int(sys.argv[1]) and time.monotonic() < deadline:
    rclpy.spin_once(node, timeout_sec=0.05)
for m in got:
    print(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec, zlib.crc32(bytes(m.data)), flush=True)
"""


def test_play_reliable_camera_bag_with_edited_metadata_and_unknown_types(tmp_path, python_child):
    cam = Rosbag2Topic("/camera/image_raw", "sensor_msgs/msg/Image",
                       images(FRAMES, width=64, height=48), reliability="reliable", depth=5)
    split = Rosbag2Topic("/events/write_split", "rosbag2_interfaces/msg/WriteSplitEvent",
                         msgdef="string closed_file\nstring opened_file\nstring node_name\n",
                         type_hash="RIHS01_" + "5e" * 32)
    vendor = Rosbag2Topic("/vendor/status", "vendor_msgs/msg/Status",
                          [(1000 * 10**9 + i, b"\x00\x01\x00\x00" + bytes([i, 0, 0, 0]))
                           for i in range(3)], msgdef="int32 code\n", type_hash="RIHS01_" + "0" * 64)
    bag = tmp_path / "camera"
    bag.mkdir()
    write_mcap(bag / "camera_0.mcap", [cam, split, vendor])
    write_metadata(bag, "mcap", ["camera_0.mcap"], [cam, split, vendor],
                   qos_override={"/camera/image_raw": 1})  # an edited metadata.yaml
    expected = [(deserialize_message(d, Image).header.stamp.sec * 10**9
                 + deserialize_message(d, Image).header.stamp.nanosec,
                 zlib.crc32(bytes(deserialize_message(d, Image).data))) for _, d in cam.messages]
    sink = python_child(RELIABLE_SINK, str(FRAMES), "90")
    assert sink.stdout.readline().strip() == "ready"
    played = subprocess.run([sys.executable, "-m", "fer_ros.cli.bag", "play", str(bag),
                             "--wait-for-subscribers", "60", "-q"], env=child_env(),
                            cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=120)
    assert played.returncode == 0, played.stderr
    warnings = [line for line in played.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 2, played.stderr
    assert "/events/write_split (0 messages)" in warnings[0]
    assert "/vendor/status (3 messages)" in warnings[1] and "embeds its definition" in warnings[1]
    assert f"published {FRAMES} messages" in played.stderr
    out, _ = stop_process(sink, timeout=60)
    got = [tuple(int(x) for x in line.split()) for line in out.splitlines() if line.strip()]
    assert got == expected  # every frame, in order, through a reliable subscription
