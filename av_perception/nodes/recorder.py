"""Node ``recorder``: writes chosen topics to an MCAP bag (rosbags).

Any message type installed in the environment can be recorded: the node
subscribes with ``raw=True`` and writes the CDR bytes as they arrive, with
the receive time, into a ROS 2 bag that ``ros2 bag play`` and this package's
training pipeline both read. New topics are picked up as they appear. The
subscription QoS matches the publishers (best effort where a publisher is,
transient local for latched topics such as /tf_static), as rosbag2 does.

On Ctrl-C or SIGTERM the bag is closed and readable and holds every message
that was received.
"""

from __future__ import annotations

import time
from datetime import datetime

import rclpy.logging

from av_perception.bag.io import BagWriter
from av_perception.errors import ConfigError, InputError
from av_perception.ros.inputs import qos_matching_publishers
from av_perception.paths import inside
from av_perception.ros.messages import import_message
from av_perception.ros.node import AvNode
from av_perception.ros.spin import node_main

DEFAULT_EXCLUDE = ['/rosout', '/parameter_events']


#: Topics this node publishes (besides /diagnostics); see nodes/__init__.py.
PUBLISHES = ()  # writes a bag


class RecorderNode(AvNode):
    """Records topics to a bag."""

    def __init__(self, **kwargs) -> None:
        super().__init__('recorder', **kwargs)
        default_out = f'bags/av_perception_{datetime.now():%Y%m%d_%H%M%S}'
        out = self.param('output', default_out, 'Bag folder to create (must not exist), '
                         'relative to output_dir; it may not lead out of output_dir.',
                         read_only=True)
        out_dir = self.param('output_dir', '.', 'Folder bags are written under (relative: to '
                             'the current directory).', read_only=True)
        topics = self.param('topics', [], 'Topics to record (relative names resolve in the '
                            "node's namespace); empty: every topic.", array_type=str,
                            read_only=True)
        exclude = self.param('exclude', list(DEFAULT_EXCLUDE), 'Topics never recorded.',
                             array_type=str, read_only=True)
        period = self.param('discovery_period', 0.5, 'How often to look for new topics [s].',
                            lo=0.05, hi=10.0, read_only=True)
        self.topics = {self.resolve_topic_name(t) for t in topics}
        self.exclude = {self.resolve_topic_name(t) for t in exclude}
        try:
            self.writer = BagWriter(inside(out_dir, out))
        except (ConfigError, InputError) as exc:  # leaves output_dir; exists already
            raise ConfigError(f'recorder: parameter \'output\': {exc}') from None
        self.monitor.set_fact('output', str(self.writer.path))
        self._subs: dict[str, object] = {}
        self._skipped: set[str] = set()
        self._discover()
        self._timer = self.create_timer(period, self._discover)
        self.get_logger().info(f'recording {sorted(self.topics) or "all topics"} to '
                               f'{self.writer.path}')

    def _discover(self) -> None:
        for topic, types in self.get_topic_names_and_types():
            if topic in self._subs or topic in self._skipped or topic in self.exclude:
                continue
            if self.topics and topic not in self.topics:
                continue
            if len(types) != 1:
                self._skipped.add(topic)
                self.drop(topic, 'type', f'expected one type on the topic, got {types}')
                continue
            try:
                cls = import_message(types[0])
                self.writer.add_topic(topic, types[0])
            except InputError as exc:
                self._skipped.add(topic)
                self.drop(topic, exc.kind, f'expected {exc.expected}, got {exc.got}')
                continue
            qos = qos_matching_publishers(self, topic)
            if qos is None:  # publisher gone again
                continue
            stats = self.input(topic)

            def on_msg(data: bytes, topic=topic, stats=stats) -> None:
                start = time.monotonic()
                stats.on_receive(start)
                self.writer.write_cdr(topic, self.get_clock().now().nanoseconds, data)
                stats.on_processed(time.monotonic() - start)

            self._subs[topic] = self.create_subscription(cls, topic, on_msg, qos, raw=True)
            self.get_logger().info(f'recording {topic} [{types[0]}]')

    def destroy_node(self) -> None:
        """Close the bag (finalized and readable) before the node goes."""
        if getattr(self, 'writer', None) is None:  # construction failed; rclpy destroys it
            super().destroy_node()
            return
        self.writer.close()
        total = sum(self.writer.counts.values())
        received = sum(self.input(t).received for t in self._subs)
        # Not the node's logger: the context may be shut down already (SIGINT),
        # and a node logger would try to publish on /rosout.
        rclpy.logging.get_logger(self.get_name()).info(
            f'bag closed: {self.writer.path} ({total} messages written of {received} '
            'received)')
        super().destroy_node()


def main(argv=None) -> int:
    return node_main(RecorderNode, argv)
