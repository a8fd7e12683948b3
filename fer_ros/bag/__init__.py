"""rosbag2 files without ROS (no rclpy): read, write, recover and reindex bags as each distro's
rosbag2 lays them out, on the pinned ``rosbags`` (reading, QoS, metadata, typestore, CDR); each
kept module says in one line what rosbags lacks. Topics are ``fer_ros.bag_transport``'s job.
"""

# recording defaults, here so that the command line can show them before rosbags/mcap load
DEFAULT_CACHE_BYTES = 1024 * 1024   # buffered before a chunk / transaction is written
FLUSH_INTERVAL_S = 0.5              # the recorder flushes this often: a crash loses no more
