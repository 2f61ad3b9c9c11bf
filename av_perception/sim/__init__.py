"""The simulated world (no ROS): procedurally generated indoor rooms, a robot
with a camera and three microphone heads, and everything rendered from one
scene description (images with pybullet, sound with pyroomacoustics)."""
