"""Start-up checks of the emotion node's ROS arguments: one clear line instead of rcl's errors.

* :func:`init_ros`: every ``--params-file`` is checked first (fer_ros.params.check_params_file:
  missing, not a regular file, bad YAML, wrong layout -> one ConfigError line), then
  ``rclpy.init`` runs with its native stderr held back, so an argument rcl still refuses
  becomes one ConfigError line instead of rcl's ERROR log and a traceback.
* :func:`warn_unknown_overrides`: ``-p``/params-file names the node does not declare (a typo
  like ``detector_treshold``) are logged as warnings naming the closest real parameters.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

import rclpy
from rclpy.signals import SignalHandlerOptions

from fer_ros.core.errors import ConfigError
from fer_ros.node.process import rclpy_private
from fer_ros.params import check_params_file, is_ros_own, unknown_parameter_warning

_RCL_WHERE = re.compile(r",? at /\S+:\d+")  # rcl's ", at /project/src/parse.c:782" suffixes


def ros_arguments(argv: list[str]) -> list[str]:
    """The arguments inside ``--ros-args`` blocks (up to ``--`` or the next block)."""
    out: list[str] = []
    inside = False
    for arg in argv:
        if arg == "--ros-args":
            inside = True
        elif arg == "--":
            inside = False
        elif inside:
            out.append(arg)
    return out


def params_files(argv: list[str]) -> list[str]:
    """The files given with ``--params-file FILE`` among the ROS arguments."""
    args = ros_arguments(argv)
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--params-file"]


def init_ros(args: list[str] | None = None) -> None:
    """``rclpy.init`` (no signal handlers) after checking the params files; ConfigError in one
    line for anything rcl refuses."""
    argv = list(sys.argv if args is None else args)
    if ros_arguments(argv)[-1:] == ["--params-file"]:
        raise ConfigError("--params-file needs a file name")
    for path in params_files(argv):
        check_params_file(path)
    with _held_stderr() as held:
        try:
            rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        except Exception as exc:  # RCLError: bad arguments
            held.failed = True
            text = _RCL_WHERE.sub("", " ".join(str(exc).split()))
            raise ConfigError(f"invalid ROS arguments: "
                              f"{text.removeprefix('failed to initialize rcl: ')}") from None


class _held_stderr:
    """Native stderr (fd 2) goes to a temporary file inside the block; it is written out
    afterwards unless ``failed`` was set (rcl logs its own ERROR line before raising)."""

    def __enter__(self) -> "_held_stderr":
        self.failed = False
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        text = self._file.read()
        self._file.close()
        if text and not self.failed:
            os.write(2, text)


def warn_unknown_overrides(node) -> None:
    """Log a warning for each parameter override the node did not declare, naming the
    closest real names (rclpy itself ignores them silently)."""
    overrides = rclpy_private.parameter_overrides(node)
    for name in sorted(overrides):
        if not node.has_parameter(name) and not is_ros_own(name):
            node.get_logger().warning(unknown_parameter_warning(name))
