"""ROS 2 bags (MCAP, sqlite3 readable) through the ``rosbags`` library, no ROS."""
