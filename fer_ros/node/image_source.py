"""``image_source``: publish frames from a video, image(s) or camera as sensor_msgs images.

Like image_tools' cam2image, useful on its own:
``image_source --ros-args -p input:=clip.mp4 -p fps:=30.0 -p width:=640 -p height:=480``.
Stamps are the publish time (as a camera driver would stamp them).
"""

from __future__ import annotations

import sys
import time

import cv2
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from fer_ros.core.errors import FerError
from fer_ros.node.conversions import bgr_to_image
from fer_ros.node import shutdown
from fer_ros.node.process import rclpy_private
from fer_ros.core.frame_reader import FrameReader, letterbox

RCLError = rclpy_private.rcl_error()

PARAMS = {  # name: (default, description)
    "input": ("", "Video file, image file, image folder or camera index (e.g. 0)"),
    "fps": (0.0, "Publish rate in Hz; 0 = the video's own rate (10 Hz for images)"),
    "loop": (False, "Start again at the end"),
    "width": (0, "Output width in px (with height: letterboxed); 0 = native"),
    "height": (0, "Output height in px (with width: letterboxed); 0 = native"),
    "frame_id": ("camera", "header.frame_id of the published images"),
    "transport": ("raw", "raw (image_raw, sensor_msgs/Image) or compressed (image_raw/compressed, JPEG)"),
    "reliable": (False, "Publish RELIABLE instead of BEST_EFFORT (the sensor-data default)"),
    "max_frames": (0, "Stop after this many frames; 0 = no limit"),
    "wait_for_subscribers": (0, "Wait until this many subscribers are matched before publishing"),
    "wait_timeout_s": (30.0, "Give up waiting for subscribers after this many seconds"),
}


class ImageSource(Node):
    """Publishes the frames of one source at a fixed rate."""

    def __init__(self, stop: shutdown.StopSignals | None = None) -> None:
        super().__init__("image_source")
        self.stop = stop
        for name, (default, text) in PARAMS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=text))
        p = {name: self.get_parameter(name).value for name in PARAMS}
        if not p["input"]:
            raise FerError("parameter input is empty: give a video, image, folder or camera index")
        if p["transport"] not in ("raw", "compressed"):
            raise FerError(f"parameter transport={p['transport']!r}: use raw or compressed")
        self.p = p
        self.reader = FrameReader(p["input"])
        self.rate_hz = p["fps"] or self.reader.native_fps or 10.0
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1 if not p["reliable"] else 10,
                         reliability=ReliabilityPolicy.RELIABLE if p["reliable"]
                         else ReliabilityPolicy.BEST_EFFORT)
        if p["transport"] == "compressed":
            self.pub = self.create_publisher(CompressedImage, "image_raw/compressed", qos)
        else:
            self.pub = self.create_publisher(Image, "image_raw", qos)
        self.published = 0

    def wait_for_subscribers(self) -> bool:
        want, deadline = self.p["wait_for_subscribers"], time.monotonic() + self.p["wait_timeout_s"]
        while self.pub.get_subscription_count() < want and not self._stopping():
            if time.monotonic() > deadline:
                self.get_logger().error(f"no {want} subscriber(s) on {self.pub.topic_name} "
                                        f"after {self.p['wait_timeout_s']} s")
                return False
            time.sleep(0.05)
        return True

    def run(self) -> None:
        """Publish every frame (looping if asked) at ``rate_hz``, on a drift-free schedule."""
        period, next_t = 1.0 / self.rate_hz, time.monotonic()
        self.get_logger().info(f"publishing {self.p['input']} on {self.pub.topic_name} "
                               f"at {self.rate_hz:.1f} Hz")
        while rclpy.ok() and not self._stopping():
            for frame in self.reader.frames():
                if self.p["width"] and self.p["height"]:
                    frame = letterbox(frame, self.p["width"], self.p["height"])
                delay = next_t - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                next_t = max(next_t + period, time.monotonic() - period)
                self.pub.publish(self._message(frame))
                self.published += 1
                if (self.p["max_frames"] and self.published >= self.p["max_frames"]
                        or not rclpy.ok() or self._stopping()):
                    return
            if not self.p["loop"]:
                return

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.requested

    def _message(self, frame) -> Image | CompressedImage:
        header = Header(frame_id=self.p["frame_id"], stamp=self.get_clock().now().to_msg())
        if self.p["transport"] == "compressed":
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
            msg = CompressedImage(header=header, format="jpeg")
            msg.data = buf.tobytes()
            return msg
        return bgr_to_image(frame, header)


def main(args: list[str] | None = None) -> int:
    """``image_source`` console script. SIGINT/SIGTERM stop it cleanly (exit 0, no traceback):
    the signal only requests the stop (fer_ros.node.shutdown), so no publish runs on a
    context that rclpy's own handler has already shut down."""
    stop = shutdown.install()
    stop.defer()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = ImageSource(stop)
        if not stop.requested and node.wait_for_subscribers():
            node.run()
            if not stop.requested:
                time.sleep(0.5)  # let best-effort/reliable transports flush the last frames
        print(f"image_source: published {node.published} frames", flush=True)
        return 0 if node.published or stop.requested else 1
    except FerError as exc:
        print(f"image_source: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    except RCLError:
        if stop.requested:  # rcl can fail while a stop signal is being handled
            return 0
        raise
    finally:
        if node is not None:
            node.reader.close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    sys.exit(main())
