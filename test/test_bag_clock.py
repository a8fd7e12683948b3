"""``fer-bag play --clock``: /clock carries the recording's time over DDS, so a node with
``use_sim_time`` (here one in the test process, with rclpy's own TimeSource) reads the bag's
time, not the wall clock, while the bag plays in another process."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")

import rclpy  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from conftest import REPO_ROOT, child_env, stop_process  # noqa: E402
from fer_ros.bag.writer import BagWriter  # noqa: E402

START_NS = 1000 * 10**9          # the recording's time: 1000 s since the epoch, far from now
STEP_NS = 100_000_000
COUNT = 20                       # 1.9 s of bag time


def _bag(folder) -> None:
    with BagWriter(folder, "mcap") as writer:
        topic = writer.add_topic("/chatter", "std_msgs/msg/String")
        for i in range(COUNT):
            text = f"{i}".encode() + b"\0"
            writer.write(topic, START_NS + i * STEP_NS,
                         b"\x00\x01\x00\x00" + len(text).to_bytes(4, "little") + text)


def test_play_clock_drives_a_use_sim_time_node(tmp_path, ros):
    _bag(tmp_path / "talk")
    clocks: list[int] = []
    seen: list[tuple[int, int]] = []   # (message index, the sim-time node's now() then)
    ros.node.create_subscription(
        Clock, "/clock", lambda m: clocks.append(m.clock.sec * 10**9 + m.clock.nanosec),
        QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
    sim = rclpy.create_node("sim_time_listener", context=ros.context,
                            parameter_overrides=[Parameter("use_sim_time", value=True)])
    ros.executor.add_node(sim)
    sim.create_subscription(String, "/chatter", lambda m: seen.append(
        (int(m.data), sim.get_clock().now().nanoseconds)), 10)
    play = subprocess.Popen([sys.executable, "-m", "fer_ros.cli.bag", "play",
                             str(tmp_path / "talk"), "--clock", "20",
                             "--wait-for-subscribers", "60", "-q"],
                            env=child_env(), cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        ros.spin_until(lambda: play.poll() is not None and len(seen) >= COUNT, 90)
        ros.spin_until(lambda: False, 0.3)
    finally:
        _, err = stop_process(play)
        ros.executor.remove_node(sim)
        sim.destroy_node()
    assert play.returncode == 0, err
    assert f"published {COUNT} messages" in err
    assert len(seen) == COUNT, seen
    end_ns = START_NS + (COUNT - 1) * STEP_NS
    assert len(clocks) >= 15, clocks  # 20 Hz for 1.9 s
    assert clocks == sorted(clocks)
    assert START_NS <= clocks[0] and clocks[-1] <= end_ns + 2 * STEP_NS, (clocks[0], clocks[-1])
    # the node's clock is the bag's: message i arrives at about START + i * STEP
    for index, now in seen[1:]:
        assert abs(now - (START_NS + index * STEP_NS)) < 0.5e9, (index, now)
