"""sensor_msgs images <-> BGR arrays and core results -> fer_msgs/EmotionArray.

cv_bridge (vision_opencv) is used, where it is installed and passes a self-test, for the 8-bit
colour and mono encodings only (bgr8, rgb8, bgra8, rgba8, mono8); every other encoding (16-bit,
Bayer, YUV 4:2:2, nv12/nv21/nv24) goes to the core's ``image_codec``, which converts them all
the same way whichever cv_bridge is installed (ROS 2's cv_bridge converts no NV formats, the
ROS 1 PyPI port fails on numpy 2). Compressed images are always decoded by the core, which
checks their headers against decompression bombs. Both paths raise ImageError for bad input.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CompressedImage, Image, RegionOfInterest
from std_msgs.msg import Header

from fer_msgs.msg import Emotion, EmotionArray
from fer_ros.core import image_codec
from fer_ros.core.errors import ImageError
from fer_ros.core.types import FaceResult


def _load_cv_bridge():
    """A working CvBridge, or None (not installed, or broken with this numpy/OpenCV)."""
    try:
        from cv_bridge import CvBridge

        bridge = CvBridge()
        probe = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
        back = bridge.imgmsg_to_cv2(bridge.cv2_to_imgmsg(probe, "bgr8"), "bgr8")
        return bridge if np.array_equal(back, probe) else None
    except Exception:  # ImportError, or the ROS 1 PyPI port failing on numpy 2 / OpenCV 5
        return None


_BRIDGE = _load_cv_bridge()
BRIDGE_ENCODINGS = {"bgr8", "rgb8", "bgra8", "rgba8", "mono8"}
CONVERTER = "cv_bridge" if _BRIDGE is not None else "fer_ros.core.image_codec"


def image_to_bgr(msg: Image) -> np.ndarray:
    """A sensor_msgs/Image as a BGR uint8 array; ImageError for anything unusable."""
    if _BRIDGE is not None and msg.encoding in BRIDGE_ENCODINGS:
        try:
            _check_raw(msg)
            return image_codec.ensure_bgr(_BRIDGE.imgmsg_to_cv2(msg, "bgr8")).copy()
        except ImageError:
            raise
        except Exception as exc:
            raise ImageError(f"cv_bridge cannot convert the image: {exc}") from exc
    return image_codec.to_bgr(
        msg.data, msg.encoding, msg.width, msg.height, msg.step, bool(msg.is_bigendian)
    )


def _check_raw(msg: Image) -> None:
    """The core's size/step/data checks, before handing a message to cv_bridge."""
    needed = image_codec.raw_size(msg.encoding, msg.width, msg.height, msg.step)
    if len(msg.data) < needed:
        raise ImageError(
            f"{msg.encoding} image {msg.width}x{msg.height}, step {msg.step}: data has "
            f"{len(msg.data)} bytes, expected at least {needed}"
        )


def compressed_to_bgr(msg: CompressedImage) -> np.ndarray:
    """A sensor_msgs/CompressedImage (JPEG/PNG) as a BGR uint8 array."""
    return image_codec.decode_compressed(msg.data, msg.format)


def bgr_to_image(bgr: np.ndarray, header: Header, encoding: str = "bgr8") -> Image:
    """A sensor_msgs/Image carrying ``header``, in ``encoding`` (bgr8 by default; any of
    image_codec.ENCODINGS, as a camera in that encoding would send the frame)."""
    data, step = image_codec.from_bgr(bgr, encoding)
    msg = Image(header=header, height=int(bgr.shape[0]), width=int(bgr.shape[1]),
                encoding=encoding, is_bigendian=0, step=step)
    msg.data = data
    return msg


def results_to_msg(results: list[FaceResult], labels: list[str], header: Header) -> EmotionArray:
    """One EmotionArray for one image: header copied, labels in probability order."""
    out = EmotionArray(header=header, labels=list(labels))
    for r in results:
        out.emotions.append(Emotion(
            id=int(r.track_id),
            roi=RegionOfInterest(x_offset=int(r.box.x), y_offset=int(r.box.y),
                                 width=int(r.box.w), height=int(r.box.h), do_rectify=False),
            detection_score=float(r.score),
            label=r.label,
            confidence=float(r.confidence),
            probabilities=np.asarray(r.probabilities, dtype=np.float32).tolist(),
        ))
    return out
