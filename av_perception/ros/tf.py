"""TF publishing without tf2_ros: TFMessage on /tf and /tf_static.

tf2_ros is not on PyPI; these publishers put the same messages on the same
topics with the same QoS as tf2_ros's broadcasters, so RViz and tf2 listeners
on a ROS install consume them unchanged.
"""

from __future__ import annotations

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from tf2_msgs.msg import TFMessage

from av_perception.geometry.frames import StaticFrame
from av_perception.ros.messages import ns_to_stamp
from av_perception.ros.qos import LATCHED, TF


def transform(parent: str, child: str, xyz, quat_xyzw, stamp_ns: int) -> TransformStamped:
    """A TransformStamped parent -> child (translation [m], quaternion x, y, z, w)."""
    t = TransformStamped()
    t.header.stamp = ns_to_stamp(stamp_ns)
    t.header.frame_id = parent
    t.child_frame_id = child
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (
        float(v) for v in xyz)
    (t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z,
     t.transform.rotation.w) = (float(v) for v in quat_xyzw)
    return t


class TfBroadcaster:
    """Publishes dynamic transforms on /tf (as tf2_ros.TransformBroadcaster)."""

    def __init__(self, node: Node, topic: str = '/tf') -> None:
        self._pub = node.create_publisher(TFMessage, topic, TF)

    def send(self, transforms: list[TransformStamped]) -> None:
        self._pub.publish(TFMessage(transforms=list(transforms)))


class StaticTfBroadcaster:
    """Publishes static transforms on /tf_static, transient local, the whole
    set in every message (as tf2_ros.StaticTransformBroadcaster), so a late
    subscriber gets all of them."""

    def __init__(self, node: Node, topic: str = '/tf_static') -> None:
        self._pub = node.create_publisher(TFMessage, topic, LATCHED)
        self._by_child: dict[str, TransformStamped] = {}

    def send(self, transforms: list[TransformStamped]) -> None:
        for t in transforms:
            self._by_child[t.child_frame_id] = t
        self._pub.publish(TFMessage(transforms=list(self._by_child.values())))

    def send_frames(self, frames: list[StaticFrame], stamp_ns: int) -> None:
        self.send([transform(f.parent, f.child, f.xyz, f.quat_xyzw, stamp_ns) for f in frames])
