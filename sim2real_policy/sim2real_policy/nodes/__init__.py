"""ROS 2 node wrappers: the only modules of this package that import rclpy."""
