"""Console-script entry points of the ROS nodes (``ros2 run fer_ros emotion_node`` etc.).

Each answers ``-h``/``--help`` (before ``--ros-args``) with usage and the node's parameters and
exits 0 without starting a node (see :mod:`fer_ros.node.node_help`).

Each node takes SIGINT/SIGTERM over before its ~1-2 s of imports (torch, OpenCV, rclpy), so
that Ctrl-C right after start exits with code 0 instead of a KeyboardInterrupt traceback; see
:mod:`fer_ros.node.shutdown`.
"""

from __future__ import annotations

import importlib
import sys

from fer_ros.node import node_help, shutdown

EMOTION_NODE_SUMMARY = """\
The fer_ros lifecycle node: subscribes to image_raw (sensor_msgs/Image) or, with
input_transport:=compressed, image_raw/compressed (sensor_msgs/CompressedImage); finds faces,
classifies each face's expression and publishes emotions (fer_msgs/EmotionArray),
annotated_image (sensor_msgs/Image) and /diagnostics. Defaults come from config/emotion.yaml;
--params-file FILE overrides them."""

IMAGE_SOURCE_SUMMARY = """\
Publishes the frames of a video, image, image folder or camera as image_raw
(sensor_msgs/Image) or image_raw/compressed (JPEG), stamped at publish time."""

RESULT_SINK_SUMMARY = """\
Records the emotion node's output: emotions -> OUT_DIR/results.jsonl, annotated_image ->
OUT_DIR/annotated.mp4, and on exit OUT_DIR/summary.json (frames, faces, labels, rate and
latency from image stamp to receipt), also printed as one JSON line."""


def _help_asked() -> bool:
    return node_help.wants_help(sys.argv[1:])


def emotion_node_help() -> str:
    """emotion_node's help: its parameters from fer_ros.params (one source of defaults)."""
    from fer_ros import params

    defaults = params.load_defaults()
    lines = [node_help.ParamLine(name, defaults[name], spec.description
                                 + (f" ({spec.constraints()})" if spec.constraints() else ""))
             for name, spec in params.SPECS.items()]
    return node_help.help_text("emotion_node", EMOTION_NODE_SUMMARY, lines,
                               "ros2 run fer_ros emotion_node --ros-args -p detector:=yunet "
                               "-r image_raw:=/camera/image_raw")


def emotion_node() -> int:
    """Install the stop-signal handlers, import and run the node, exit with its code."""
    if _help_asked():
        print(emotion_node_help(), end="")
        return 0
    shutdown.exit_now(_run("emotion_node"))


def _run(module: str) -> int:
    """Take the stop signals over (a signal from now on exits 0 at once), then import
    ``fer_ros.node.<module>`` and return its ``main()``: without this, a signal during the
    imports got Python's default handling (a KeyboardInterrupt traceback, or exit -15)."""
    shutdown.install()
    return importlib.import_module(f"fer_ros.node.{module}").main()


def _help_or_run(name: str, module: str, summary: str, example: str) -> int:
    """A plain ROS node's console script: help (its PARAMS table) and exit 0, or its main()."""
    if _help_asked():
        node = importlib.import_module(f"fer_ros.node.{module}")
        print(node_help.help_text(name, summary, node_help.lines_from_table(node.PARAMS),
                                  example), end="")
        return 0
    return _run(module)


def image_source() -> int:
    """``image_source``: help, or run the publisher."""
    return _help_or_run("image_source", "image_source", IMAGE_SOURCE_SUMMARY,
                        "image_source --ros-args -p input:=clip.mp4 -p fps:=30.0")


def result_sink() -> int:
    """``result_sink``: help, or run the recorder."""
    return _help_or_run("result_sink", "result_sink", RESULT_SINK_SUMMARY,
                        "result_sink --ros-args -p out_dir:=out -p idle_timeout_s:=3.0")
