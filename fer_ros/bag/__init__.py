"""``fer-bag``: rosbag2 bags for fer_ros without the rosbag2 C++ tools.

Bags are laid out as ``ros2 bag record`` lays them out (metadata.yaml plus .mcap / .db3 files,
Jazzy or Humble layout: layout.py), written with the ``mcap`` library and ``sqlite3``
(writer.py) and read file by file with the pure-Python ``rosbags`` reader, by topic name
(reader.py). Messages travel over DDS with rclpy, already serialised (CDR bytes in, CDR bytes
out, no decode in between).
"""
