"""Validated inputs shared by the nodes: an audio stream subscription, and QoS
matched to whatever publishers a topic has."""

from __future__ import annotations

import time
from collections.abc import Callable

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Bool

from av_perception.audio.chunk import AudioBlock, StreamChecker
from av_perception.msg import AudioChunk
from av_perception.ros.messages import chunk_to_block, image_to_array
from av_perception.ros.node import AvNode
from av_perception.ros.qos import AUDIO, LATCHED, SENSOR


class AudioInput:
    """Subscribes to an AudioChunk topic and hands valid blocks to ``on_block``.

    Checks each chunk against the configured array (channel count, sample
    rate) and the stream before it (gaps, overlaps, sample-rate changes,
    stamps going backwards or jumping). A chunk that cannot be used is dropped
    and counted under its reason; gaps and stamp jumps are counted as events
    and the chunk is used; the chunks a gap stands for are counted as ``lost``
    (they never reached this node: transport, or the subscription queue
    overflowed because the node fell behind).

    A publisher that pauses on purpose (:meth:`AvNode.enable_switch`) says so
    on ``<topic>/enabled`` (std_msgs/Bool, latched): while paused the input
    reports the pause instead of going stale, and the gap the pause leaves in
    the stream is not counted as lost (the stream check starts afresh).

    Args:
        node: the owning node (its /diagnostics reports this input).
        topic: input topic (relative, remappable).
        on_block: called with each valid :class:`AudioBlock`.
        channels: expected channel count (0: any, fixed by the first chunk).
        sample_rate: expected sample rate [Hz] (0: any, fixed by the first chunk).
        qos: subscription QoS: :data:`~av_perception.ros.qos.AUDIO` (lossless
            over seconds of backlog) or ``AUDIO_LIVE`` (fresh: a bounded,
            short backlog; when behind, the oldest chunks are overwritten).
        continuous: the chunks form one stream (first_sample and stamps are
            checked for gaps); False for one chunk per event (echo windows),
            where only the channel count and sample rate are checked.
    """

    def __init__(self, node: AvNode, topic: str, on_block: Callable[[AudioBlock], None],
                 channels: int = 0, sample_rate: int = 0, stale_after: float = 0.0,
                 qos: QoSProfile = AUDIO, continuous: bool = True) -> None:
        self.node = node
        self.topic = topic
        self.on_block = on_block
        self.continuous = continuous
        self._config = (channels, sample_rate)
        self.checker = StreamChecker(channels=channels, sample_rate=sample_rate)
        self.stats = node.input(topic, stale_after=stale_after)
        self.subscription = node.create_subscription(
            AudioChunk, topic, node.guard(topic, self._on_msg), qos)
        self._paused_since_last = False
        self.enabled_subscription = node.create_subscription(
            Bool, f'{topic}/enabled', self._on_enabled, LATCHED)

    def _on_enabled(self, msg: Bool) -> None:
        self.stats.set_paused(not msg.data, time.monotonic())
        if not msg.data:
            self._paused_since_last = True

    def _on_msg(self, msg: AudioChunk) -> None:
        block = chunk_to_block(msg)
        if self.stats.paused or self._paused_since_last or not self.continuous:
            # data again after a pause (its resume may still be on its way), or
            # events that are not a stream: start the stream check afresh
            self.stats.set_paused(False, time.monotonic())
            self._paused_since_last = False
            self.checker = StreamChecker(*self._config)
        for event in self.checker.check(block):
            if event.fatal:
                raise event.error()
            if event.missing:  # whole chunks of this size never arrived
                self.stats.on_lost(-(-event.missing // block.frames), event.detail)
            if self.stats.on_event(event.kind, event.detail):
                self.node.get_logger().warning(
                    f'{self.topic}: {event.kind}: {event.detail} (counted in /diagnostics; '
                    'further ones of this kind are not logged)')
        self.on_block(block)


class ImageInput:
    """Subscribes to a camera image topic (sensor-data QoS: receives from best
    effort and reliable publishers) and hands decoded arrays to ``on_image``.

    Accepted encodings: rgb8, bgr8, mono8 (converted to ``want``), or any of
    :data:`av_perception.image.ENCODINGS` when ``want`` is None. An image with
    an unsupported encoding, a step that does not fit, or too little data is
    dropped and counted under its reason.

    Args:
        node: the owning node.
        topic: input topic (relative, remappable).
        on_image: called with (array, header) for each valid image.
        want: 'rgb8' or 'bgr8' to get (H, W, 3) uint8 whatever the camera sends.
    """

    def __init__(self, node: AvNode, topic: str, on_image: Callable, want: str | None = 'rgb8',
                 stale_after: float = 0.0) -> None:
        self.node = node
        self.topic = topic
        self.want = want
        self.on_image = on_image
        self.stats = node.input(topic, stale_after=stale_after)
        self.subscription = node.create_subscription(
            Image, topic, node.guard(topic, self._on_msg), SENSOR)

    def _on_msg(self, msg: Image) -> None:
        self.on_image(image_to_array(msg, want=self.want), msg.header)


def qos_matching_publishers(node: Node, topic: str, depth: int = 100) -> QoSProfile | None:
    """A subscription QoS that receives from every current publisher of
    ``topic`` (as rosbag2 chooses it), or None while the topic has none.

    Reliable unless some publisher is best effort; transient local only if
    every publisher is (so latched topics such as /tf_static are replayed to
    a late subscriber).
    """
    infos = node.get_publishers_info_by_topic(topic)
    if not infos:
        return None
    best_effort = any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos)
    latched = all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
