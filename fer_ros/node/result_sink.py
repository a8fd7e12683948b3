"""``result_sink``: record the emotion node's output to ``OUT_DIR`` and summarise it.

Writes ``results.jsonl`` (one line per fer_msgs/EmotionArray) and ``annotated.mp4`` (from
``annotated_image``), then, on exit, ``summary.json``: frames, faces, label histogram, output
rate and latency (image stamp -> receipt here, same-host clocks) percentiles.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from fer_msgs.msg import EmotionArray
from fer_ros.core.errors import ImageError
from fer_ros.node import shutdown
from fer_ros.node.process import rclpy_private
from fer_ros.node.conversions import image_to_bgr

PARAMS = {
    "out_dir": ("out", "Folder for results.jsonl, annotated.mp4 and summary.json"),
    "record_video": (True, "Subscribe to annotated_image and write annotated.mp4"),
    "video_fps": (30.0, "Frame rate written into annotated.mp4"),
    "idle_timeout_s": (0.0, "Exit this long after the last message (once one arrived); 0 = never"),
}


def stamp_s(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class ResultSink(Node):
    """Subscribes to ``emotions`` (and ``annotated_image``) and records them."""

    def __init__(self) -> None:
        super().__init__("result_sink")
        for name, (default, text) in PARAMS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=text))
        self.p = {name: self.get_parameter(name).value for name in PARAMS}
        self.out = Path(self.p["out_dir"])
        self.out.mkdir(parents=True, exist_ok=True)
        self.jsonl = open(self.out / "results.jsonl", "w")
        self.writer: cv2.VideoWriter | None = None
        self.latencies_ms: list[float] = []
        self.labels: Counter[str] = Counter()
        self.frames = self.faces = self.video_frames = 0
        self.first = self.last = 0.0
        self.subs = [self.create_subscription(EmotionArray, "emotions", self._on_emotions, 100)]
        if self.p["record_video"]:
            self.subs.append(self.create_subscription(Image, "annotated_image", self._on_image,
                                                      qos_profile_sensor_data))
        self.ready = False

    def check_ready(self) -> None:
        """Print ``result_sink: ready`` once every subscription has matched a publisher (so
        a demo can start its source without losing the first answers)."""
        if not self.ready and all(s.get_publisher_count() > 0 for s in self.subs):
            self.ready = True
            print("result_sink: ready", flush=True)

    def _on_emotions(self, msg: EmotionArray) -> None:
        now = time.time()
        latency = (now - stamp_s(msg.header)) * 1000.0
        self.first = self.first or now
        self.last = now
        self.frames += 1
        self.faces += len(msg.emotions)
        self.latencies_ms.append(latency)
        self.labels.update(e.label for e in msg.emotions)
        record = {
            "stamp": round(stamp_s(msg.header), 6), "frame_id": msg.header.frame_id,
            "latency_ms": round(latency, 2),
            "faces": [{"id": e.id, "bbox": [e.roi.x_offset, e.roi.y_offset, e.roi.width, e.roi.height],
                       "score": round(e.detection_score, 4), "label": e.label,
                       "confidence": round(e.confidence, 4),
                       "probabilities": dict(zip(msg.labels, (round(p, 4) for p in e.probabilities)))}
                      for e in msg.emotions],
        }
        self.jsonl.write(json.dumps(record) + "\n")

    def _on_image(self, msg: Image) -> None:
        try:
            bgr = image_to_bgr(msg)
        except ImageError as exc:
            self.get_logger().warning(f"annotated image skipped: {exc}", throttle_duration_sec=5.0)
            return
        if self.writer is None:
            path = str(self.out / "annotated.mp4")
            self.writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"),
                                          self.p["video_fps"], (bgr.shape[1], bgr.shape[0]))
            self._size = (bgr.shape[1], bgr.shape[0])
        if (bgr.shape[1], bgr.shape[0]) != self._size:
            bgr = cv2.resize(bgr, self._size)
        self.writer.write(bgr)
        self.video_frames += 1

    def idle(self) -> bool:
        timeout = self.p["idle_timeout_s"]
        return bool(timeout and self.last and time.time() - self.last > timeout)

    def summary(self) -> dict:
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        span = self.last - self.first
        return {
            "frames_out": self.frames, "annotated_frames": self.video_frames, "faces": self.faces,
            "faces_per_frame": round(self.faces / self.frames, 3) if self.frames else 0.0,
            "label_histogram": dict(self.labels.most_common()),
            "fps": round((self.frames - 1) / span, 2) if span > 0 else 0.0,
            "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 2),
                           "p95": round(float(np.percentile(lat, 95)), 2),
                           "max": round(float(lat.max()), 2)},
        }

    def close(self) -> dict:
        self.jsonl.close()
        if self.writer is not None:
            self.writer.release()
        summary = self.summary()
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        return summary


def main(args: list[str] | None = None) -> int:
    """``result_sink`` console script; prints the summary as one JSON line on exit. SIGINT and
    SIGTERM stop it cleanly (exit 0, summary written; see fer_ros.node.shutdown)."""
    stop = shutdown.install()
    stop.defer()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = ResultSink()
        while rclpy.ok() and not stop.requested and not node.idle():
            rclpy.spin_once(node, timeout_sec=0.1)
            node.check_ready()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except rclpy_private.rcl_error():
        if not stop.requested:  # rcl can fail while a stop signal is being handled
            raise
    finally:
        if node is not None:
            summary = node.close()
            print(json.dumps(summary), flush=True)
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
