"""The emotion node: camera images in, fer_msgs/EmotionArray and an annotated image out.

A lifecycle node. ``configure`` loads and checks the models; ``activate`` subscribes and
starts the worker. With ``autostart`` (default) it does both on start, so a plain run works.
Latest frame wins: the subscription callback only stores the newest message, a worker thread
processes whatever is newest when it is free, and frames replaced before being processed are
counted as skipped.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CompressedImage, Image

from fer_msgs.msg import EmotionArray
from fer_ros.core.drawing import draw_results
from fer_ros.core.errors import ConfigError, ImageError, one_line_error
from fer_ros.core.factory import build_pipeline, score_threshold_param
from fer_ros.core.pipeline import EmotionPipeline
from fer_ros.node import conversions, shutdown, startup_checks
from fer_ros.node.diagnostics import diagnostic_status
from fer_ros.node.frame_stats import FrameStats
from fer_ros.node.latest_frame import LatestSlot
from fer_ros.node.ros_params import current_values, declare_all, deferred_change_message
from fer_ros.params import SPECS, load_defaults, validate

# Parameters applied to a running pipeline at once; the others take effect at the next configure.
LIVE_PARAMS = {"ssd_threshold", "yunet_threshold", "nms_threshold", "min_face_size", "crop_margin", "flip_tta",
               "publish_annotated", "smoothing_time_constant_s", "diagnostics_warn_processing_ms",
               "diagnostics_warn_input_hz_min"}
WARN_THROTTLE_S = 5.0
# Camera input: best effort like camera drivers, and depth 1 since only the newest frame matters.
IMAGE_QOS = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST,
                       depth=1, durability=DurabilityPolicy.VOLATILE)


class EmotionNode(LifecycleNode):
    """Facial-expression recognition on an image topic (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("emotion_node", **kwargs)
        declare_all(self, load_defaults())
        startup_checks.warn_unknown_overrides(self)  # e.g. a misspelt -p name
        self.params = validate(current_values(self))  # ConfigError: refused at start
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.pipeline: EmotionPipeline | None = None
        self.stats = FrameStats()
        self._slot: LatestSlot[Any] = LatestSlot()
        self._worker: threading.Thread | None = None
        self._sub = self._emotions_pub = self._annotated_pub = None
        self._state = "unconfigured"
        self._last_error = ""
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(self.params["diagnostics_period_s"],
                                             self._publish_diagnostics)

    # ----- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.params = validate(current_values(self))
            t0 = time.monotonic()
            pipeline = build_pipeline(self.params)
            pipeline.warm_up()  # also checks the classifier gives finite probabilities
            self.pipeline = pipeline
        except Exception as exc:  # any failure is one line and a failed transition
            self.pipeline = None
            self._last_error = one_line_error(exc)
            self.get_logger().error(f"configure failed: {self._last_error}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(
            f"models loaded in {time.monotonic() - t0:.2f} s: detector {self.params['detector']}, "
            f"classifier {self.params['classifier_model']} ({len(self.pipeline.labels)} classes: "
            f"{', '.join(self.pipeline.labels)}), image conversion by {conversions.CONVERTER}")
        self._state = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._emotions_pub = self.create_publisher(EmotionArray, "emotions", 10)
        self._annotated_pub = self.create_publisher(Image, "annotated_image", qos_profile_sensor_data)
        compressed = self.params["input_transport"] == "compressed"
        msg_type, topic = (CompressedImage, "image_raw/compressed") if compressed else (Image, "image_raw")
        self._sub = self.create_subscription(
            msg_type, topic, self._on_image, IMAGE_QOS,
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos),
            qos_overriding_options=QoSOverridingOptions.with_default_policies(),
        )
        self._slot.reopen()
        self._worker = threading.Thread(target=self._work, name="fer_worker", daemon=True)
        self._worker.start()
        self._state = "active"
        outputs = self._emotions_pub.topic_name
        if self.params["publish_annotated"]:
            outputs += f" and {self._annotated_pub.topic_name}"
        self.get_logger().info(f"waiting for {msg_type.__name__} on {self._sub.topic_name}; "
                               f"publishing {outputs}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        if self._sub is not None:
            self.destroy_subscription(self._sub)
        for pub in (self._emotions_pub, self._annotated_pub):
            if pub is not None:
                self.destroy_publisher(pub)
        self._sub = self._emotions_pub = self._annotated_pub = None
        self._state = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.pipeline = None
        self._state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._state = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def _stop_worker(self) -> None:
        self._slot.close()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
            self._worker = None

    # ----- frames ----------------------------------------------------------------------------
    def _on_image(self, msg: Image | CompressedImage) -> None:
        """Subscription callback: store the newest message only (never blocks on the model)."""
        self.stats.on_received()
        self._slot.put(msg)

    def _work(self) -> None:
        """Worker thread: process the newest frame whenever one is waiting."""
        while True:
            msg = self._slot.take(timeout=0.5)
            if msg is None:
                if self._slot.closed:
                    return
                continue
            try:
                self._process(msg)
            except ImageError as exc:
                self.stats.on_bad()
                self.get_logger().warning(f"skipping a bad image: {exc}",
                                          throttle_duration_sec=WARN_THROTTLE_S)
            except Exception as exc:  # the node must survive anything a message can cause
                self.stats.on_error()
                self._last_error = f"{type(exc).__name__}: {exc}"
                self.get_logger().error(f"error while processing a frame: {self._last_error}",
                                        throttle_duration_sec=WARN_THROTTLE_S)

    def _process(self, msg: Image | CompressedImage) -> None:
        pipeline, emotions_pub = self.pipeline, self._emotions_pub
        if pipeline is None or emotions_pub is None:
            return
        t0 = time.perf_counter()
        if isinstance(msg, CompressedImage):
            bgr = conversions.compressed_to_bgr(msg)
        else:
            bgr = conversions.image_to_bgr(msg)
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        results = pipeline.process(bgr, stamp_s=stamp if stamp > 0 else None)
        emotions_pub.publish(conversions.results_to_msg(results, pipeline.labels, msg.header))
        annotated_pub = self._annotated_pub
        if (self.params["publish_annotated"] and annotated_pub is not None
                and annotated_pub.get_subscription_count() > 0):
            annotated_pub.publish(conversions.bgr_to_image(draw_results(bgr, results), msg.header))
        self.stats.on_processed((time.perf_counter() - t0) * 1000.0, len(results))

    def _on_incompatible_qos(self, info: Any) -> None:
        self.get_logger().warning(
            f"a publisher on {self._sub.topic_name if self._sub else 'the image topic'} has "
            f"incompatible QoS (policy {info.last_policy_kind}); its images cannot arrive. "
            "Cameras usually publish best effort; override with "
            "qos_overrides.<topic>.subscription.reliability")

    # ----- parameters and diagnostics --------------------------------------------------------
    def _on_set_parameters(self, changes: list) -> SetParametersResult:
        ours = {p.name: p.value for p in changes if p.name in SPECS}
        try:
            checked = validate(ours)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        message = deferred_change_message(self.params, checked, LIVE_PARAMS)
        self.params.update(checked)
        self._apply_live(checked)
        if message and self.pipeline is not None:
            self.get_logger().info(message)
        return SetParametersResult(successful=True)

    def _apply_live(self, changed: dict[str, Any]) -> None:
        """Push threshold-like changes into the running pipeline."""
        p = self.pipeline
        if p is None:
            return
        det, clf = p.detector, p.classifier
        for name, attr in ((score_threshold_param(self.params["detector"]), "score_threshold"),
                           ("nms_threshold", "nms_threshold"), ("min_face_size", "min_size")):
            if name in changed and hasattr(det, attr):
                setattr(det, attr, changed[name])
        if "crop_margin" in changed:
            clf.crop_margin = changed["crop_margin"]
        if "flip_tta" in changed:
            clf.flip_tta = changed["flip_tta"]
        if "smoothing_time_constant_s" in changed and p.smoother is not None:
            p.smoother.time_constant_s = changed["smoothing_time_constant_s"]

    def _publish_diagnostics(self) -> None:
        try:
            snap = self.stats.snapshot()
            snap["frames_skipped"] = self._slot.dropped
            status = diagnostic_status(self.get_fully_qualified_name(), self._state, snap,
                                       self.params, self._last_error)
            self._last_error = ""
            msg = DiagnosticArray(status=[status])
            msg.header.stamp = self.get_clock().now().to_msg()
            self._diag_pub.publish(msg)
        except Exception as exc:  # diagnostics must never take the node down
            self.get_logger().error(f"diagnostics failed: {exc}", throttle_duration_sec=30.0)


def main(args: list[str] | None = None) -> int:
    """``emotion_node`` console script (``ros2 run fer_ros emotion_node``): 0 on a clean stop
    (SIGINT/SIGTERM, once or more; see fer_ros/node/shutdown.py), 2 on invalid parameters or
    a failed configure."""
    stop = shutdown.install()
    stop.defer()
    try:
        startup_checks.init_ros(args)  # bad params files / ROS arguments: one line
    except ConfigError as exc:
        print(f"emotion_node: {exc}", file=sys.stderr)
        return 2
    try:
        return _run(stop)
    finally:
        if rclpy.ok():
            rclpy.shutdown()


def _run(stop: shutdown.StopSignals) -> int:
    """Create, start and spin the node until a stop signal; then stop it in order."""
    node = executor = None
    try:
        try:
            node = EmotionNode()
        except (ConfigError, ParameterException) as exc:
            print(f"emotion_node: invalid parameter: {exc}", file=sys.stderr)
            return 2
        if node.params["autostart"] and not stop.requested:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                return 2  # on_configure has logged why
            if not stop.requested:
                node.trigger_activate()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        shutdown.spin_until_stopped(executor, stop)
        if stop.requested:
            node.get_logger().info(f"{stop.signal_name}: shutting down")
        return 0
    except ExternalShutdownException:
        return 0
    finally:
        if node is not None:
            node._stop_worker()  # before the publishers go: no publish on a dead context
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
            shutdown.release_state_machine(node)


if __name__ == "__main__":
    shutdown.exit_now(main())
