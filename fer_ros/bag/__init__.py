"""``fer-bag``: rosbag2 bags for fer_ros without the rosbag2 C++ tools.

Bags are laid out as ``ros2 bag record`` lays them out (metadata.yaml plus .mcap / .db3 files,
Jazzy or Humble layout: layout.py), written with the ``mcap`` library and ``sqlite3``
(writer.py) and read file by file with the pure-Python ``rosbags`` reader, by topic name
(reader.py). Messages travel over DDS with rclpy, already serialised (CDR bytes in, CDR bytes
out, no decode in between).

What is kept here although ``rosbags`` (pinned) reads and writes rosbag2, and why:

* writer.py, storage_mcap.py, storage_sqlite.py: rosbags' Writer writes metadata versions 8/9
  only (no Humble layout), commits a .db3 once, at close (a crash loses the whole recording),
  and has no flush timer or disk-full cut-back.
* layout.py, qos.py: metadata.yaml and QoS in both layouts, parsed through safe_yaml.py
  (rosbags loads metadata.yaml unbounded), and recorded offers adapted for playing as rosbag2
  does.
* reader.py: rosbags' folder reader yields nothing when metadata.yaml's QoS differs from the
  storage file's; rosbag2 plays such bags, so fer-bag reads file by file.
* recovery.py, reindex.py: rosbags refuses an mcap file without footer and reads a .db3 with
  ``immutable=1`` (past a hot journal): a recording cut short needs both.
"""
