"""Node ``static_frames``: the robot's fixed frames on /tf_static.

Publishes, as robot_state_publisher would for fixed joints, the transforms
named in its parameters (transient local, so late subscribers get them):

    static_frames:
      ros__parameters:
        frames: [mic_array, camera_link]
        mic_array: {parent: base_link, xyz: [0.0, 0.0, 0.30], rpy: [0.0, 0.0, 0.0]}
        camera_link: {parent: base_link, xyz: [0.10, 0.0, 0.25], rpy: [0.0, 0.0, 0.0]}
        optical_frames: [camera_link]   # adds camera_link -> camera_link_optical

Translations in metres, roll/pitch/yaw in radians (REP 103).
"""

from __future__ import annotations

from av_perception.geometry.frames import OPTICAL_RPY, StaticFrame, check_tree
from av_perception.ros.node import AvNode
from av_perception.ros.spin import node_main
from av_perception.ros.tf import StaticTfBroadcaster


#: Topics this node publishes (besides /diagnostics); see nodes/__init__.py.
PUBLISHES = ('/tf_static',)


class StaticFramesNode(AvNode):
    """Publishes the configured fixed transforms on /tf_static."""

    def __init__(self, **kwargs) -> None:
        super().__init__('static_frames', **kwargs)
        names = self.param('frames', [], 'Child frames to publish, each with <name>.parent, '
                           '<name>.xyz [m] and <name>.rpy [rad].', array_type=str,
                           read_only=True)
        optical = self.param('optical_frames', [], 'Frames that get an optical child frame '
                             '<name>_optical (z forward, x right, y down).', array_type=str,
                             read_only=True)
        frames = []
        for child in names:
            parent = self.param(f'{child}.parent', 'base_link', f'Parent frame of {child}.',
                                read_only=True)
            xyz = self.param(f'{child}.xyz', [0.0, 0.0, 0.0],
                             f'Origin of {child} in {parent} [m].', read_only=True)
            rpy = self.param(f'{child}.rpy', [0.0, 0.0, 0.0],
                             f'Roll, pitch, yaw of {child} in {parent} [rad].', read_only=True)
            frames.append(StaticFrame.from_rpy(parent, child, xyz, rpy))
        for body in optical:
            frames.append(StaticFrame.from_rpy(body, f'{body}_optical', (0, 0, 0), OPTICAL_RPY))
        check_tree(frames)
        self.frames = frames
        self._tf = StaticTfBroadcaster(self)
        self._tf.send_frames(frames, self.get_clock().now().nanoseconds)
        self.monitor.set_fact('frames', ', '.join(f'{f.parent}->{f.child}' for f in frames))
        self.get_logger().info(f'publishing {len(frames)} static frames on /tf_static')


def main(argv=None) -> int:
    return node_main(StaticFramesNode, argv)
