"""ROS 2 adapters around the core: the emotion node, an image source and a result sink."""
