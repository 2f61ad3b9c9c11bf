"""ROS 2 glue: the node framework, message conversions, QoS, TF and bags.

Everything under here imports rclpy; the library beside it does not.
"""
