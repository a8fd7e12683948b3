"""fer_ros: facial-expression recognition for ROS 2 robots.

The ROS-free inference core lives in :mod:`fer_ros.core`; the ROS 2 node and tools in the
other modules of this package import rclpy lazily, so the core works without ROS.
"""

__version__ = "0.1.0"
