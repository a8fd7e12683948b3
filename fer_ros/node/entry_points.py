"""Console-script entry point of the emotion node (``ros2 run fer_ros emotion_node``).

Takes SIGINT/SIGTERM over before the ~2 s of imports (torch, OpenCV, rclpy), so that Ctrl-C
right after start exits with code 0 instead of a KeyboardInterrupt traceback; see
:mod:`fer_ros.node.shutdown`.
"""

from __future__ import annotations

from fer_ros.node import shutdown


def emotion_node() -> int:
    """Install the stop-signal handlers, import and run the node, exit with its code."""
    shutdown.install()
    from fer_ros.node.emotion_node import main

    shutdown.exit_now(main())
