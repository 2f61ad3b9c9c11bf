"""Sound direction of arrival (no ROS): the audio front end, classic methods
(pyroomacoustics), streaming over AudioBlocks."""
