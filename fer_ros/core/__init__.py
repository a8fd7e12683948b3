"""ROS-free inference core: detectors, classifier, pipeline, drawing, image helpers.

Nothing in this sub-package imports rclpy or ROS message types.
"""
