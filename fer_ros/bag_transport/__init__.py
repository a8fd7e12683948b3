"""Bags over ROS topics (rclpy): record topics into a bag, play a bag onto topics, in one rclpy
session; the files themselves are ``fer_ros.bag``'s (ROS-free), as rosbag2 splits transport from
storage."""
