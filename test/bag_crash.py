"""A recording cut short by SIGKILL, made by the real recorder: shared by test_bag_crash.py
and benchmarks/bag_crash.py.

A camera child publishes bgr8 images (reliable) at a fixed rate and logs ``index wall_ns``
per message; ``fer-bag record`` records them and is SIGKILLed (what a power cut or the OOM
killer does). ``survival`` then counts how many of the messages published more than
``margin_s`` before the kill (and after the recorder's first one) the cut bag holds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

CAMERA = """
import sys, time
import numpy as np
import rclpy
from sensor_msgs.msg import Image

width, height, hz, log_path = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
video = sys.argv[5] if len(sys.argv) > 5 else ""
frames = []
if video:
    import cv2
    from fer_ros.core.frame_reader import letterbox
    cap = cv2.VideoCapture(video)
    while len(frames) < 60:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(letterbox(frame, width, height).tobytes())
if not frames:
    frames = [np.full((height, width, 3), i * 4, np.uint8).tobytes() for i in range(60)]
rclpy.init()
node = rclpy.create_node("crash_camera")
pub = node.create_publisher(Image, "/camera/image_raw", 10)  # reliable
msg = Image(height=height, width=width, encoding="bgr8", step=3 * width)
log = open(log_path, "w")
print("publishing", flush=True)
period, due, i = 1.0 / hz, time.monotonic(), 0
try:
    while rclpy.ok():
        now = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
        msg.header.frame_id = str(i)
        msg.data = frames[i % len(frames)]
        pub.publish(msg)
        log.write(f"{i} {now}\\n")
        log.flush()
        i += 1
        due += period
        time.sleep(max(0.0, due - time.monotonic()))
except KeyboardInterrupt:
    pass
"""


@dataclass
class CutRecording:
    bag: Path
    storage: str
    kill_ns: int
    published: dict[int, int]     # index -> publish wall time (ns)


def fer_bag(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_ros.cli.bag", *args], env=env,
                          cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=timeout)


def record_and_kill(folder: Path, storage: str, seconds: float, env: dict[str, str],
                    width: int = 640, height: int = 480, hz: float = 30.0, video: str = "",
                    record_args: tuple[str, ...] = ()) -> CutRecording:
    """Records the camera for ``seconds`` (from the first byte of the storage file), then
    SIGKILLs the recorder; the camera is stopped afterwards."""
    log = folder / f"camera-{storage}.log"
    camera = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CAMERA), str(width),
                               str(height), str(hz), str(log), video], env=env,
                              cwd=str(REPO_ROOT), stdout=subprocess.PIPE, text=True)
    bag = folder / f"cut_{storage}"
    rec = None
    try:
        assert camera.stdout.readline().strip() == "publishing"
        rec = subprocess.Popen([sys.executable, "-m", "fer_ros.cli.bag", "record", str(bag),
                                "/camera/image_raw", "--storage", storage, "-q",
                                "--discovery-timeout", "60", *record_args],
                               env=env, cwd=str(REPO_ROOT), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        file = bag / f"cut_{storage}_0.{'mcap' if storage == 'mcap' else 'db3'}"
        deadline = time.monotonic() + 90
        while not (file.is_file() and file.stat().st_size > 20_000):
            assert rec.poll() is None, rec.stderr.read()
            assert time.monotonic() < deadline, "the recorder wrote nothing"
            time.sleep(0.05)
        time.sleep(seconds)
        kill_ns = time.time_ns()
        os.kill(rec.pid, signal.SIGKILL)
        rec.wait(timeout=10)
    finally:
        if rec is not None and rec.poll() is None:
            rec.kill()
        camera.send_signal(signal.SIGINT)
        try:
            camera.wait(timeout=10)
        except subprocess.TimeoutExpired:
            camera.kill()
    published = {}
    for line in log.read_text().splitlines():
        index, stamp = line.split()
        published[int(index)] = int(stamp)
    return CutRecording(bag, storage, kill_ns, published)


def survival(cut: CutRecording, indexes: list[int], margin_s: float = 1.0) -> tuple[int, int]:
    """(messages of the bag among those published between the recorder's first message and
    ``margin_s`` before the kill, how many were published then)."""
    if not indexes:
        return 0, len([i for i, t in cut.published.items() if t <= cut.kill_ns - margin_s * 1e9])
    first = min(indexes)
    wanted = {i for i, t in cut.published.items()
              if i >= first and t <= cut.kill_ns - margin_s * 1e9}
    return len(wanted & set(indexes)), len(wanted)


def bag_indexes(bag: Path) -> list[int]:
    """The camera's message indexes (header.frame_id) in the bag, read by fer-bag's reader."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from fer_ros.bag.reader import open_bag

    with open_bag(bag) as reader:
        return [int(deserialize_message(bytes(data), Image).header.frame_id)
                for _, _, data in reader.messages()]
