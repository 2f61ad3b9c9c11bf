"""Node ``sim_world``: the simulated robot, live, so every node of the package
runs with no hardware.

Renders one scene of the simulated world (the same code as
``av-perception simulate``) and plays it in real time, back and forth
along the robot's path (:func:`path_index`):

- ``camera/image_raw`` (rgb8) + ``camera/camera_info`` at ``camera_rate``;
- ``audio/raw`` (4-mic array) and ``audio/binaural`` as continuous
  AudioChunks of ``chunk_seconds``, stamped at their first sample;
- ``audio/echo``: one chirp echo every slot (``slot_seconds``), first sample
  at the emission instant;
- ground truth: ``gt/depth``, ``gt/camera_info``, ``gt/source_mask``,
  ``gt/pose`` with every frame; ``gt/occupancy`` every slot;
  ``gt/sound_direction`` (SoundSourceArray) per array with every audio
  chunk: the sources sounding in it, id = scene source index + 1, empty
  when none sounds;
- the robot's fixed frames on ``/tf_static``, and its (perfect) wheel
  odometry ``odom -> base_link`` on ``/tf`` with every camera frame.

The robot holds each pose of its path for most of a slot and turns or drives
to the next one in the slot's last ``move_fraction`` (camera frames follow
the motion; the audio of a slot is rendered at the slot's pose). Audio and
echoes are rendered once at start-up (about a second per slot on one core)
and then replayed as the robot goes back and forth along the path: every
move is then one the generator made (a turn of up to 45 deg or a drive of
up to 0.5 m); looping would jump from the last pose to the first, a move
no robot makes in one camera frame.
"""

from __future__ import annotations

import math
import threading
import time

from rclpy.qos import QoSProfile

from av_perception.bag.io import stamp_ns
from av_perception.bag.messages import Messages
from av_perception.ros.messages import import_message
from av_perception.ros.node import AvNode
from av_perception.ros.qos import AUDIO, RELIABLE
from av_perception.ros.spin import node_main
from av_perception.geometry.frames import yaw_quaternion
from av_perception.ros.tf import StaticTfBroadcaster, TfBroadcaster, transform
from av_perception.sim.bags import (TOPICS, audio_chunk_messages, frame_messages,
                                    slot_event_messages, static_frames)
from av_perception.sim.scene import SceneParams, describe, generate_scene
from av_perception.robot import load_robot
from av_perception.sim.world import SceneSimulator, interpolate


#: Topics this node publishes (besides /diagnostics); see nodes/__init__.py.
PUBLISHES = tuple(t.lstrip('/') for t in TOPICS
                  if t not in ('/tf_static', '/audio/teacher')) + ('/tf', '/tf_static')


class SimWorldNode(AvNode):
    """Plays a simulated scene in real time."""

    def __init__(self, **kwargs) -> None:
        super().__init__('sim_world', **kwargs)
        scene_id = self.param('scene_id', 0, 'Scene (room) to simulate.', lo=0, hi=10**6,
                              read_only=True)
        split = self.param('split', 'test', 'Rooms of the training, the held-out test or the '
                           'shifted split.', choices=['train', 'test', 'shift'], read_only=True)
        seed = self.param('seed', 0, 'Seed of the scene generator.', lo=0, hi=2**31 - 1,
                          read_only=True)
        poses = self.param('poses', 12, 'Poses on the robot\'s path (driven back and forth).',
                           lo=2, hi=200,
                           read_only=True)
        self.slot_seconds = self.param('slot_seconds', 0.5, 'Time at each pose; one echo per '
                                       'slot [s].', lo=0.2, hi=5.0, read_only=True)
        self.camera_rate = self.param('camera_rate', 10.0, 'Camera frame rate [Hz].', lo=1.0,
                                      hi=60.0, read_only=True)
        self.move_fraction = self.param('move_fraction', 0.2, 'Share of a slot spent moving '
                                        'to the next pose.', lo=0.0, hi=1.0, read_only=True)
        robot_file = self.param('robot', 'robots/sim.yaml', 'Robot description file.',
                                read_only=True)
        self.odom_frame = self.param('odom_frame', 'odom', 'Frame of the simulated wheel '
                                     'odometry on /tf ("" publishes none).', read_only=True)
        self.robot = load_robot(robot_file)
        self.scene = generate_scene(scene_id, split, seed, SceneParams(poses=poses))
        self.get_logger().info(f'scene {describe(self.scene)}')
        self.sim = SceneSimulator(self.scene, self.robot, slot_seconds=self.slot_seconds)
        self.m = Messages()
        self._pubs = {}
        for topic, msgtype in TOPICS.items():
            if topic in ('/tf_static', '/audio/teacher'):
                continue
            qos: QoSProfile = AUDIO if topic.startswith('/audio') else RELIABLE
            self._pubs[topic] = self.create_publisher(import_message(msgtype),
                                                      topic.lstrip('/'), qos)
        StaticTfBroadcaster(self).send_frames(static_frames(self.sim),
                                              self.get_clock().now().nanoseconds)
        self.tf = TfBroadcaster(self) if self.odom_frame else None
        self.slots = []
        self.ready = threading.Event()
        self._stop = False
        self._render = threading.Thread(target=self._render_all, daemon=True)
        self._render.start()
        self._start_ns: int | None = None
        self._next_frame = 0
        self._next_chunk = 0
        self._next_slot = 0
        self._chunks: list = []
        self._timer = self.create_timer(0.01, self._tick)
        self.monitor.set_fact('scene', describe(self.scene))

    # ------------------------------------------------------------------
    def _render_all(self) -> None:
        t = time.perf_counter()
        for k in range(len(self.scene.poses)):
            if self._stop:
                return
            self.slots.append(self.sim.slot(k))
            self.monitor.set_fact('slots_rendered', f'{k + 1}/{len(self.scene.poses)}')
        self.get_logger().info(f'rendered {len(self.slots)} slots in '
                               f'{time.perf_counter() - t:.1f} s; playing')
        self.ready.set()

    def _publish(self, topic: str, msg) -> None:
        """Publish a rosbags message as CDR bytes (same bytes as in a bag)."""
        self._pubs[topic].publish(bytes(self.m.store.serialize_cdr(msg, TOPICS[topic])))

    def _tick(self) -> None:
        if not self.ready.is_set():
            return
        now = self.get_clock().now().nanoseconds
        if self._start_ns is None:
            self._start_ns = now
        elapsed = now - self._start_ns
        n = len(self.slots)
        slot_ns = int(self.slot_seconds * 1e9)
        # one slot's events (echo, occupancy, directions) and audio chunks
        while self._next_slot * slot_ns <= elapsed:
            k = self._next_slot
            slot = self.slots[path_index(k, n)]
            stamp = self._start_ns + k * slot_ns
            self._chunks += [(self._restamp(topic, msg, slot, stamp, k), topic)
                             for topic, msg in audio_chunk_messages(self.m, self.sim, slot)]
            for topic, msg in slot_event_messages(self.m, self.sim, slot):
                self._publish(topic, self._restamp(topic, msg, slot, stamp, k))
            self._next_slot += 1
        # audio chunks are published when their last sample has been "heard"
        while self._chunks and stamp_ns(self._chunks[0][0]) + int(0.1 * 1e9) <= now:
            msg, topic = self._chunks.pop(0)
            self._publish(topic, msg)
        # camera frames along the (interpolated) path
        frame_ns = int(1e9 / self.camera_rate)
        while self._next_frame * frame_ns <= elapsed:
            t_ns = self._next_frame * frame_ns
            k, into = divmod(t_ns, slot_ns)
            a, b = self.scene.poses[path_index(k, n)], self.scene.poses[path_index(k + 1, n)]
            f = into / slot_ns
            start_move = 1.0 - self.move_fraction
            frac = 0.0 if f < start_move or self.move_fraction == 0 else (
                (f - start_move) / self.move_fraction)
            pose = interpolate(a, b, frac)
            view, mask = self.sim.frame(pose)
            for topic, msg in frame_messages(self.m, self.sim, self._start_ns + t_ns, pose,
                                             view.rgb, view.depth, mask):
                self._publish(topic, msg)
            if self.tf is not None:
                self._publish_odometry(pose, self._start_ns + t_ns)
            self._next_frame += 1

    def _publish_odometry(self, pose, stamp_ns: int) -> None:
        """odom -> base on /tf: the robot's motion since the path's first pose
        (perfect wheel odometry; the truth in the world frame is gt/pose)."""
        p0 = self.scene.poses[0]
        c, s = math.cos(-p0.yaw), math.sin(-p0.yaw)
        dx, dy = pose.x - p0.x, pose.y - p0.y
        self.tf.send([transform(self.odom_frame, self.robot.base_frame,
                                (c * dx - s * dy, s * dx + c * dy, 0.0),
                                yaw_quaternion(pose.yaw - p0.yaw), stamp_ns)])

    def _restamp(self, topic: str, msg, slot, slot_ns: int, k: int):
        """A pre-rendered slot's message moved to the live time line (its slot
        starting at ``slot_ns``): the robot goes back and forth, stamps and
        sample counters keep counting."""
        msg.header.stamp = self.m.time(stamp_ns(msg) + slot_ns - slot.stamp_ns)
        if topic == '/audio/echo':
            msg.first_sample = k  # the emission count
        elif topic in ('/audio/raw', '/audio/binaural'):
            msg.first_sample += (k - slot.index) * self.sim.slot_len
        return msg

    def destroy_node(self) -> None:
        self._stop = True
        self._render.join(timeout=10)
        self.sim.close()
        super().destroy_node()


def path_index(k: int, n: int) -> int:
    """The pose of slot ``k`` on a path of ``n`` poses driven back and forth:
    0, 1, ..., n-1, n-2, ..., 1, 0, 1, ... (n >= 2)."""
    i = k % (2 * n - 2)
    return i if i < n else 2 * n - 2 - i


def main(argv=None) -> int:
    return node_main(SimWorldNode, argv)
