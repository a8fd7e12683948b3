"""The command-line tools: ``fer-detect``, ``fer-models``, ``fer-bag`` (its ROS commands load
rclpy only when run)."""
