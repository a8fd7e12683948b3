"""What only a running process needs, not the ROS-free core: signals, stderr plumbing, rclpy internals."""
