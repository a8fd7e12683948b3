"""``fer-bag``: rosbag2 bags for fer_ros without the rosbag2 C++ tools.

Bags are written and read with the pure-Python ``rosbags`` library (standard rosbag2 layout:
metadata.yaml plus an mcap or sqlite3 file, readable by ``ros2 bag``); messages travel over DDS
with rclpy, already serialised (CDR bytes in, CDR bytes out, no decode in between).
"""
