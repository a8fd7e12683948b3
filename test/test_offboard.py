"""fer_ros across two hosts: the camera and the results consumer on a "robot", the emotion node
on a "server", each a network namespace with its own /dev/shm, joined by a veth pair
(test/two_hosts.py), discovery over the subnet, config/fastdds_offboard.xml on both sides.

Asserts the transport (JPEG 640x480 frames at 30 Hz, the recommended input, reach the node on the
other host) and the
answers (headers and faces of the results that came back). How many frames the node answers
also depends on its CPU (latest frame wins when it is busy): benchmarks/offboard_transports.py
measures that, with the machine's load beside it.
"""

from __future__ import annotations

import json
import os
import time

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")
pytest.importorskip("fer_msgs.msg", reason="fer_msgs is not built (run `make setup`)")

from conftest import REPO_ROOT, SHARED_DIR, child_env  # noqa: E402
from two_hosts import TwoHosts, run_camera_to_server, unavailable  # noqa: E402

WOMAN = SHARED_DIR / "samples" / "fer_woman2.mp4"
PROFILE = REPO_ROOT / "config" / "fastdds_offboard.xml"
FRAMES = 150  # 5 s at 30 Hz
PROFILE_BUFFER = 4194304  # the profile's UDP receiveBufferSize



def _rmem_max() -> int:
    with open("/proc/sys/net/core/rmem_max") as f:
        return int(f.read())


_WHY_NOT = unavailable()
pytestmark = [
    pytest.mark.skipif(bool(_WHY_NOT), reason=f"two hosts cannot be made here: {_WHY_NOT}"),
    pytest.mark.skipif(_rmem_max() < PROFILE_BUFFER, reason=(
        f"net.core.rmem_max={_rmem_max()} caps the profile's {PROFILE_BUFFER}-byte UDP buffers "
        "(a machine-wide sysctl; see docs/offboard.md to raise it)")),
    pytest.mark.skipif(not WOMAN.is_file(), reason=f"{WOMAN} is absent (../shared/samples)"),
]


def offboard_env() -> dict[str, str]:
    """What docs/offboard.md says to export on both computers."""
    return child_env(ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET",
                     FASTRTPS_DEFAULT_PROFILES_FILE=str(PROFILE),
                     FASTDDS_DEFAULT_PROFILES_FILE=str(PROFILE))


def test_camera_on_robot_node_on_server(tmp_path):
    buffers: list[int] = []
    shm: dict[str, set[str]] = {}

    def look_while_running() -> None:
        buffers.extend(hosts.server.udp_receive_buffers())
        shm.update(robot=hosts.robot.shm_files(), server=hosts.server.shm_files(),
                   machine=set(os.listdir("/dev/shm")))

    with TwoHosts() as hosts:
        started = time.time()
        summary = run_camera_to_server(
            hosts.robot, hosts.server, offboard_env(), str(WOMAN), str(tmp_path / "sink"),
            FRAMES, "compressed",
            # the fast detector, no annotated image back: this test is about the transport
            {"detector": "yunet", "publish_annotated": False},
            while_running=look_while_running)
        ended = time.time()
    # each host has its own /dev/shm: the node's Fast DDS segments are only on the server
    # (segments have random names; port files are named by port number, the same on both)
    server_segments = {f for f in shm["server"] if f.startswith("fastrtps_") and "port" not in f}
    assert server_segments, shm["server"]
    assert not server_segments & (shm["robot"] | shm["machine"])
    # the profile's socket buffers are in force on the server (the kernel reports 2x)
    assert max(buffers) >= PROFILE_BUFFER, buffers
    # the transport: >= 97 % of the 30 Hz frames reached the node on the other host
    assert summary["frames_in"] == FRAMES
    received = int(summary["node"]["frames_received"])
    assert received >= 0.97 * FRAMES, summary
    # every frame the node took was answered across the hosts (busy-skipped ones are not taken)
    answered = summary["frames_out"]
    assert answered >= received - int(summary["node"]["frames_skipped"]) - 1, summary
    assert answered >= 10, summary
    # the answers: the camera's header, in order, with the face of the video
    results = [json.loads(line) for line in open(summary["results"])]
    assert len(results) == answered
    assert {r["frame_id"] for r in results} == {"camera"}
    stamps = [r["stamp"] for r in results]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert started < stamps[0] and stamps[-1] < ended  # stamped by the camera during the run
    assert all(0 < r["latency_ms"] < 5000 for r in results)
    with_face = [r for r in results if r["faces"]]
    assert len(with_face) >= 0.8 * answered
    assert summary["node_exit"] == 0  # SIGTERM: a clean stop on the server too
    labels = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"}
    assert all(f["label"] in labels and 0.0 < f["confidence"] <= 1.0
               for r in with_face for f in r["faces"])


def test_namespaces_are_removed(tmp_path):
    hosts = TwoHosts("gone")
    with hosts:
        names = (hosts.robot.name, hosts.server.name)
        assert set(names) <= set(os.listdir("/run/netns"))
    assert not set(names) & set(os.listdir("/run/netns"))
