"""Command-line tools of fer_ros (ROS-free): ``fer-detect``."""
