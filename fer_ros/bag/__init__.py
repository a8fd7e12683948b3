"""``fer-bag``: rosbag2 bags for fer_ros without the rosbag2 C++ tools, on the pinned ``rosbags``
(reading, QoS, metadata, typestore, CDR); each kept module says in one line what rosbags lacks.
"""
