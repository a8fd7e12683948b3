"""The emotion node: camera images in, fer_msgs/EmotionArray and an annotated image out
(and, with ``hri_output``, ROS4HRI face topics: the outputs are modules under
fer_ros/node/outputs/ behind one interface).

A lifecycle node. ``configure`` loads and checks the models; ``activate`` subscribes and
starts the worker. With ``autostart`` (default) it does both on start, so a plain run works.
Latest frame wins: the subscription callback only stores the newest message, a worker thread
processes whatever is newest when it is free, and frames replaced before being processed are
counted as skipped. There is never more than one worker: deactivate tells the worker to stop
(it finishes the frame it is in, without publishing it), and activate waits up to
``WORKER_WAIT_S`` for it, or fails saying so.
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
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CompressedImage, Image

from fer_ros.node.process import native_log, stderr_throttle
from fer_ros.core.errors import ConfigError, ImageError, one_line_error
from fer_ros.core.detector import threshold_param
from fer_ros.core.factory import build_pipeline, build_smoother, detector_description, live_params
from fer_ros.core.pipeline import EmotionPipeline
from fer_ros.node import conversions, shutdown, startup_checks
from fer_ros.node.diagnostics import diagnostic_status
from fer_ros.node.frame_stats import FrameStats
from fer_ros.node.keyed_throttle import KeyedThrottle
from fer_ros.node.latest_frame import LatestSlot
from fer_ros.node.outputs import Frame, Output, build_outputs, refusal
from fer_ros.node.ros_params import current_values, declare_all, deferred_change_message
from fer_ros.deps import check_required
from fer_ros.params import SPECS, load_defaults, validate

# Parameters applied to a running pipeline at once; the others take effect at the next configure.
LIVE_PARAMS = live_params()
WARN_THROTTLE_S = 5.0
WORKER_NAME = "fer_worker"
WORKER_WAIT_S = 2.0  # activate waits this long for a previous worker still finishing a frame
SHUTDOWN_WAIT_S = 1.0  # at exit, the worker's frame may take this long before the publishers go
IDLE_WORKER_WAIT_S = 0.05  # deactivate waits this long (a worker not in a frame ends at once)
# Camera input: best effort like camera drivers. Only the newest frame matters (the callback
# keeps the newest in a one-frame slot), but the depth is 5, not 1: Fast DDS 2.14 (Jazzy) leaks
# a sample (with its payload, a whole image) when a full KEEP_LAST history receives a sample
# stamped earlier than every sample it holds, which happens all the time with several
# publishers on the topic and depth 1 (3 x 640x480 at 30 Hz: +220 MB in 3 min). With depth 5
# it would take a sample delayed past 5 newer ones (docs/robustness.md;
# benchmarks/multi_publisher_memory.py).
IMAGE_QUEUE_DEPTH = 5
IMAGE_QOS = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST,
                       depth=IMAGE_QUEUE_DEPTH, durability=DurabilityPolicy.VOLATILE)


class EmotionNode(LifecycleNode):
    """Facial-expression recognition on an image topic (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("emotion_node", **kwargs)
        declare_all(self, load_defaults())
        startup_checks.warn_unknown_overrides(self)  # e.g. a misspelt -p name
        self.params = validate(current_values(self))  # ConfigError: refused at start
        _refuse_outputs(self.params)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.pipeline: EmotionPipeline | None = None
        self.stats = FrameStats()
        self._slot: LatestSlot[Any] = LatestSlot()
        self._worker: threading.Thread | None = None  # the running or a stopping worker
        self._generation = 0  # a worker runs while its generation is current
        self._publish_lock = threading.Lock()  # the worker's publishing vs deactivate
        self._in_frame = threading.Event()  # set while the worker processes a frame
        self._sub = None
        self._outputs: list[Output] = []  # built at activate: emotions, annotated image, ...
        self._state = "unconfigured"
        self._last_error = ""
        self._bad_throttle = KeyedThrottle(WARN_THROTTLE_S)  # one warning per encoding / format
        native_log.install(lambda line: self.get_logger().warning(line))
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = None
        self._start_diagnostics_timer()

    # ----- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.params = validate(current_values(self))
            _refuse_outputs(self.params)
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
            f"models loaded in {time.monotonic() - t0:.2f} s: detector "
            f"{detector_description(self.params, self.pipeline.detector)}, "
            f"classifier {self.params['classifier_model']} ({len(self.pipeline.labels)} classes: "
            f"{', '.join(self.pipeline.labels)}; classifier_runtime "
            f"{getattr(self.pipeline.classifier, 'runtime', '?')}), "
            f"image conversion by {conversions.CONVERTER}")
        self._state = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        busy = self._previous_worker_busy()
        if busy:
            self.get_logger().error(f"cannot activate: {busy}")
            self._last_error = busy
            return TransitionCallbackReturn.FAILURE
        outputs = build_outputs(lambda: self.params)
        for output in outputs:
            output.open(self)
        self._outputs = outputs
        if self.params["input_transport"] == "compressed":
            # image_transport's convention: <the base topic, remapped> + /compressed, so
            # `-r image_raw:=/camera/image_raw` subscribes /camera/image_raw/compressed
            msg_type, topic = CompressedImage, self.resolve_topic_name("image_raw") + "/compressed"
        else:
            msg_type, topic = Image, "image_raw"
        self._sub = self.create_subscription(
            msg_type, topic, self._on_image, IMAGE_QOS,
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos),
            qos_overriding_options=QoSOverridingOptions.with_default_policies(),
        )
        self._slot.reopen()
        self._worker = threading.Thread(target=self._work, args=(self._generation,),
                                        name=WORKER_NAME, daemon=True)
        self._worker.start()
        self._state = "active"
        topics = [topic for output in outputs for topic in output.topics()]
        self.get_logger().info(f"waiting for {msg_type.__name__} on {self._sub.topic_name}; "
                               f"publishing {', '.join(topics)} ({WORKER_NAME} threads: "
                               f"{workers_alive()})")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker(wait_s=IDLE_WORKER_WAIT_S)
        if self._worker is not None and self._in_frame.is_set():
            self.get_logger().info(f"{WORKER_NAME} is finishing a frame; it stops after it "
                                   "without publishing")
        if self._sub is not None:
            self.destroy_subscription(self._sub)
        with self._publish_lock:  # the stopping worker no longer publishes (generation)
            for output in self._outputs:
                output.close(self)
            self._sub = None
            self._outputs = []
        self._state = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.pipeline is not None:
            self.pipeline.close()  # the schedule's full-detection thread
        self.pipeline = None
        self._state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker(wait_s=0.0)
        self._state = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def _stop_worker(self, wait_s: float = SHUTDOWN_WAIT_S) -> None:
        """Tell the worker to stop (it finishes its frame without publishing) and wait up to
        ``wait_s`` for it; a worker still running stays in ``self._worker`` until it ends."""
        with self._publish_lock:
            self._generation += 1
        self._slot.close()
        self.stats.reset_waiting()
        worker = self._worker
        if worker is not None:
            worker.join(timeout=wait_s)
            if not worker.is_alive():
                self._worker = None

    def _previous_worker_busy(self) -> str:
        """"" when no worker runs (waiting up to WORKER_WAIT_S for a stopping one), else why
        a new one cannot start."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout=WORKER_WAIT_S)
            if worker.is_alive():
                return (f"the previous {WORKER_NAME} is still processing a frame after "
                        f"{WORKER_WAIT_S:g} s; activate again when it has finished")
            self._worker = None
        return ""

    # ----- frames ----------------------------------------------------------------------------
    def _on_image(self, msg: Image | CompressedImage) -> None:
        """Subscription callback: store the newest message only (never blocks on the model)."""
        self.stats.on_received()
        self._slot.put(msg)

    def _work(self, generation: int) -> None:
        """Worker thread: process the newest frame whenever one is waiting, while
        ``generation`` is current."""
        while generation == self._generation:
            msg = self._slot.take(timeout=0.5)
            if msg is None or generation != self._generation:
                continue
            self.stats.on_taken()
            self._in_frame.set()
            t0 = time.perf_counter()
            try:
                self._process(msg, generation)
            except ImageError as exc:
                self.stats.on_bad(str(exc), (time.perf_counter() - t0) * 1000.0)
                self._warn_bad(msg, exc)
            except Exception as exc:  # the node must survive anything a message can cause
                self.stats.on_error()
                self._last_error = f"{type(exc).__name__}: {exc}"
                self.get_logger().error(f"error while processing a frame: {self._last_error}",
                                        throttle_duration_sec=WARN_THROTTLE_S)
            finally:
                self._in_frame.clear()

    def _warn_bad(self, msg: Image | CompressedImage, exc: ImageError) -> None:
        """One warning every WARN_THROTTLE_S per encoding (raw) or format (compressed)."""
        key = msg.format if isinstance(msg, CompressedImage) else msg.encoding
        if self._bad_throttle.ready(str(key)[:64]):
            self.get_logger().warning(f"skipping a bad image: {exc}")

    def _process(self, msg: Image | CompressedImage, generation: int) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            return
        t0 = time.perf_counter()
        if isinstance(msg, CompressedImage):
            bgr = conversions.compressed_to_bgr(msg)
        else:
            bgr = conversions.image_to_bgr(msg)
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        results = pipeline.process(bgr, stamp_s=stamp if stamp > 0 else None)
        frame = Frame(msg.header, bgr, results, pipeline.labels)
        # deactivate bumps the generation, then closes the outputs, under this lock; each
        # output renders outside it (drawing, cropping) and publishes under it
        with self._publish_lock:
            if generation != self._generation or not self._outputs:
                self.stats.on_abandoned()  # deactivated meanwhile: nobody to answer
                return
            wanted = [output for output in self._outputs if output.wanted()]
        rendered = [(output, output.render(frame)) for output in wanted]
        with self._publish_lock:
            if generation != self._generation:
                self.stats.on_abandoned()
                return
            for output, messages in rendered:
                output.send(messages)
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
            _refuse_outputs({**self.params, **checked})
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        live = LIVE_PARAMS
        if self.pipeline is not None and self.pipeline.tracker is None:
            live = LIVE_PARAMS - {"smoothing_time_constant_s"}  # smoothing is per track
        message = deferred_change_message(self.params, checked, live)
        new_period = checked.get("diagnostics_period_s", self.params["diagnostics_period_s"])
        period_changed = new_period != self.params["diagnostics_period_s"]
        self.params.update(checked)
        self._apply_live(checked)
        if period_changed:
            self._start_diagnostics_timer()
        if message and self.pipeline is not None:
            if live is not LIVE_PARAMS and "smoothing_time_constant_s" in message:
                message += " (smoothing works per track: it needs tracking:=true)"
            self.get_logger().info(message)
        return SetParametersResult(successful=True)

    def _apply_live(self, changed: dict[str, Any]) -> None:
        """Push threshold-like changes into the running pipeline."""
        p = self.pipeline
        if p is None:
            return
        clf = p.classifier
        for name, attr in ((threshold_param(self.params["detector"]), "score_threshold"),
                           ("nms_threshold", "nms_threshold"), ("min_face_size", "min_size")):
            for det in p.detectors:  # the schedule's worker thread has its own
                if name in changed and hasattr(det, attr):
                    setattr(det, attr, changed[name])
        if "crop_margin" in changed:
            clf.crop_margin = changed["crop_margin"]
        if "flip_tta" in changed:
            clf.flip_tta = changed["flip_tta"]
        if "smoothing_time_constant_s" in changed and p.tracker is not None:
            # a new smoother (or none for 0): its track-expiry time follows the time constant
            p.smoother = build_smoother(self.params, p.labels)

    def _start_diagnostics_timer(self) -> None:
        """(Re)create the diagnostics timer with the current ``diagnostics_period_s``: a change
        takes effect at once, from the next period."""
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
        self._diag_timer = self.create_timer(self.params["diagnostics_period_s"],
                                             self._publish_diagnostics)

    def _publish_diagnostics(self) -> None:
        try:
            snap = self.stats.snapshot()
            snap["frames_skipped"] = self._slot.dropped
            snap["workers_alive"] = workers_alive()
            pipeline = self.pipeline
            if pipeline is not None:
                snap.update(pipeline.stats())  # frame schedule and face checks
            _, _, reasons = self.stats.refusals()
            status = diagnostic_status(self.get_fully_qualified_name(), self._state, snap,
                                       self.params, self._last_error, reasons)
            self._last_error = ""
            msg = DiagnosticArray(status=[status])
            msg.header.stamp = self.get_clock().now().to_msg()
            self._diag_pub.publish(msg)
        except Exception as exc:  # diagnostics must never take the node down
            self.get_logger().error(f"diagnostics failed: {exc}", throttle_duration_sec=30.0)


def _refuse_outputs(params: dict[str, Any]) -> None:
    """ConfigError (one line) when an output the parameters ask for cannot run here."""
    problem = refusal(params)
    if problem:
        raise ConfigError(problem)


def workers_alive() -> int:
    """How many worker threads of this process are alive (never more than one)."""
    return sum(t.name == WORKER_NAME and t.is_alive() for t in threading.enumerate())


def main(args: list[str] | None = None) -> int:
    """``emotion_node`` console script (``ros2 run fer_ros emotion_node``): 0 on a clean stop
    (SIGINT/SIGTERM, once or more; see fer_ros/node/shutdown.py), 2 on invalid parameters or
    a failed configure."""
    stop = shutdown.install()
    stop.defer()
    stderr_throttle.install()  # type support prints one line per malformed message
    try:
        check_required()  # e.g. Debian's OpenCV or torch older than fer_ros needs
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
                return 0 if stop.requested else 2  # on_configure has logged why
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
