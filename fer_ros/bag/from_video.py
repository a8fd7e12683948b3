"""``fer-bag from-video``: a video (or image folder) as a bag of camera images.

fer_ros's own tool (rosbags writes what it is given; the frames and messages are made here):
sensor_msgs/Image (bgr8 or another raw ``encoding``) or CompressedImage (JPEG), stamped evenly
at ``fps`` from ``start_ns``, header stamp = bag stamp, as a camera recorded on the same host.
Messages are serialised by rosbags' typestore, so a bag can be made without a ROS install.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import ImageError
from ..core.image_codec import from_bgr, raw_encoding
from ..core.frame_reader import FrameReader
from ..progress import Progress
from .errors import BagError
from .metadata import SENSOR_DATA
from .typestore import typestore
from .writer import BagWriter

COMPRESSED_FORMAT = "bgr8; jpeg compressed bgr8"  # what image_transport's compressed plugin sets
RAW, COMPRESSED = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"


@dataclass
class VideoBagInfo:
    path: Path
    topic: str
    msgtype: str
    frames: int
    fps: float
    start_ns: int


def frame_cdr(bgr: np.ndarray, stamp_ns: int, frame_id: str, compressed: bool,
              jpeg_quality: int, encoding: str = "bgr8") -> bytes:
    """One camera frame as a serialised sensor_msgs/Image (or CompressedImage, JPEG)."""
    store = typestore()
    types = store.types
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    header = types["std_msgs/msg/Header"](types["builtin_interfaces/msg/Time"](sec, nanosec),
                                          frame_id)
    if compressed:
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        if not ok:
            raise BagError("JPEG encoding failed")
        msg, msgtype = types["sensor_msgs/msg/CompressedImage"](header, COMPRESSED_FORMAT,
                                                                jpeg.ravel()), COMPRESSED
    else:
        data, step = from_bgr(bgr, encoding)
        msg, msgtype = types["sensor_msgs/msg/Image"](
            header, int(bgr.shape[0]), int(bgr.shape[1]), encoding, 0, step,
            np.frombuffer(data, np.uint8)), RAW
    return bytes(store.serialize_cdr(msg, msgtype))


def _frame_count(video: str) -> int:
    """Frames in a video file as its container says (0 when unknown or not a video)."""
    if not Path(video).is_file():
        return 0
    capture = cv2.VideoCapture(video)
    try:
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        capture.release()


def video_to_bag(video: str, out: str | Path, topic: str | None = None, fps: float | None = None,
                 compressed: bool = False, storage: str = "mcap", frame_id: str = "camera",
                 max_frames: int | None = None, start_ns: int | None = None,
                 jpeg_quality: int = 90, progress: bool = True,
                 distro: str = "jazzy", encoding: str = "bgr8") -> VideoBagInfo:
    """Writes the bag and returns what was written; BagError for unusable input or output."""
    if not compressed:
        try:
            raw_encoding(encoding)
        except ImageError as exc:
            raise BagError(f"--encoding: {exc}") from None
    try:
        reader = FrameReader(video)
    except ImageError as exc:
        raise BagError(str(exc)) from None
    rate = fps or reader.native_fps
    if not rate or rate <= 0:
        reader.close()
        raise BagError(f"{video} has no frame rate: pass --fps")
    topic = topic or ("/camera/image_raw/compressed" if compressed else "/camera/image_raw")
    topic = topic if topic.startswith("/") else "/" + topic
    msgtype = COMPRESSED if compressed else RAW
    start = time.time_ns() if start_ns is None else int(start_ns)
    total = _frame_count(video)
    if max_frames:
        total = min(total, max_frames) if total > 0 else max_frames
    try:
        writer = BagWriter(out, storage, distro)
    except BagError:
        reader.close()
        raise
    count = 0
    bar = Progress(total or None, "from-video", enabled=progress)
    try:
        topic_id = writer.add_topic(topic, msgtype, [SENSOR_DATA])
        for bgr in reader.frames():
            if max_frames and count >= max_frames:
                break
            stamp = start + round(count * 1e9 / rate)
            writer.write(topic_id, stamp,
                         frame_cdr(bgr, stamp, frame_id, compressed, jpeg_quality, encoding))
            count += 1
            bar.update(count)
        if count == 0:
            raise BagError(f"{video}: no frames could be read (no bag written)")
        writer.close()
        if writer.error:
            raise BagError(f"{out}: {writer.error}")
    except BaseException as exc:
        writer.abort()  # no partial bag
        if isinstance(exc, ImageError):
            raise BagError(f"{exc} (no bag written)") from None
        raise
    finally:
        reader.close()
        bar.close()
    return VideoBagInfo(Path(out), topic, msgtype, count, float(rate), start)
