"""Node ``rotation``: a visual gyro learned from sight and sound.

Subscribes to ``camera/image_raw`` (sensor_msgs/Image rgb8, bgr8 or mono8,
sensor-data QoS), optionally ``camera/camera_info`` (its field of view must
match the model's) and ``audio/binaural`` (AudioChunk, 2 channels).

For each camera frame, the yaw since the previous frame comes from the
visual rotation model (ONNX Runtime) and is published at once. With
``use_audio`` the binaural direction network hears the segment
that starts at a frame's stamp (``audio_window`` of the model, 0.5 s; one
segment at a time, so at most one direction per segment) and publishes
the direction. With ``fuse_audio`` as well, the binaural directions of a
static source before and after the turn are fused into the yaw when a
source is heard (level above ``min_level_dbfs``) and it agrees with the
image; each twist then waits for its later frame's segment (0.5 s or
more: off by default, a gyro should not lag). Publishes, stamped with the
later frame's stamp:

- ``rotation/twist`` (geometry_msgs/TwistWithCovarianceStamped) in
  ``twist_frame``: angular.z = yaw / dt [rad/s], its variance from the
  model's confidence (sigma / dt)^2; the components it does not measure
  carry a variance of 1e6 (robot_localization: fuse only vyaw);
- /tf ``odom_frame`` -> ``base_frame``: the integrated yaw;
- with ``use_audio``, the binaural direction the network hears on a
  frame's segment, as sound_direction publishes directions:
  ``rotation/sound_direction`` (SoundSourceArray in the binaural head's
  frame, a tracked id per source, empty when silent),
  ``rotation/sound_direction/markers`` and, with ``publish_source_tf``, a
  /tf frame ``<source_tf_prefix><k>`` per source (``k`` = 0, 1, ... in
  order of track id: ``source_frames``).

Frames whose stamp goes backwards (or repeats) restart the pairing; a gap
longer than ``max_interval`` (dropped frames) also restarts it, since the
turn across it may exceed what the model sees (the integrated yaw keeps
its value). Both are counted in /diagnostics.
"""

from __future__ import annotations

import math

import numpy as np
from geometry_msgs.msg import TwistWithCovarianceStamped
from sensor_msgs.msg import CameraInfo
from visualization_msgs.msg import MarkerArray

from av_perception.arrays import load_array
from av_perception.audio.chunk import AudioBlock
from av_perception.direction.stream import DoaResult
from av_perception.direction.tracker import SourceTracker
from av_perception.errors import InputError
from av_perception.geometry.frames import StaticFrame
from av_perception.ros.inputs import AudioInput, ImageInput
from av_perception.ros.messages import header, stamp_to_ns
from av_perception.ros.node import AvNode
from av_perception.ros.qos import RELIABLE, SENSOR
from av_perception.ros.spin import node_main
from av_perception.ros.sound_sources import source_array, source_frames, source_markers
from av_perception.ros.tf import TfBroadcaster, transform
from av_perception.rotation.estimate import (MIN_LEVEL_DBFS, AudioHistory, BinauralDirection,
                                             VisualRotation, YawEstimate, check_same_contract,
                                             fuse)
from av_perception.rotation.features import grey_input, hfov_deg
from av_perception.msg import SoundSourceArray

#: Topics this node publishes (besides /diagnostics); see nodes/__init__.py.
PUBLISHES = ('rotation/twist', '/tf', 'rotation/sound_direction',
             'rotation/sound_direction/markers')  # the last two: use_audio

UNMEASURED_VARIANCE = 1e6


class RotationNode(AvNode):
    """Yaw rate and integrated yaw from camera frames (and binaural sound)."""

    def __init__(self, **kwargs) -> None:
        super().__init__('rotation', **kwargs)
        model = self.param('model', '', 'Visual rotation ONNX model ("": the shipped '
                           'models/rotation_visual.onnx).', read_only=True)
        audio_model = self.param('binaural_model', '', 'Binaural direction ONNX model ("": '
                                 'the shipped models/rotation_binaural.onnx).', read_only=True)
        self.use_audio = self.param('use_audio', True, 'Hear the binaural direction on a '
                                    'frame\'s segment and publish it (rotation/sound_direction).',
                                    read_only=True)
        self.fuse_audio = self.param('fuse_audio', False, 'With use_audio: fuse the binaural '
                                     'turn into the yaw; each twist then waits for the later '
                                     'frame\'s audio segment (0.5 s or more).', read_only=True)
        image_topic = self.param('image_topic', 'camera/image_raw', 'Camera image topic.',
                                 read_only=True)
        info_topic = self.param('camera_info_topic', 'camera/camera_info', 'CameraInfo topic '
                                '(its field of view is checked against the model\'s).',
                                read_only=True)
        audio_topic = self.param('audio_topic', 'audio/binaural', 'Binaural AudioChunk topic.',
                                 read_only=True)
        self.odom_frame = self.param('odom_frame', 'odom_rotation', 'Parent frame of the '
                                     'integrated yaw on /tf.', on_change=self._frames('odom'))
        self.base_frame = self.param('base_frame', 'base_link_rotation', 'Child frame of the '
                                     'integrated yaw on /tf.', on_change=self._frames('base'))
        self.twist_frame = self.param('twist_frame', 'base_link', 'Frame of rotation/twist.',
                                      on_change=self._frames('twist'))
        self.publish_tf = self.param('publish_tf', True, 'Publish the integrated yaw on /tf.',
                                     on_change='publish_tf')
        self.max_interval = self.param('max_interval', 1.0, 'Longest time between two frames '
                                       'that are still paired [s].', lo=0.01, hi=10.0,
                                       on_change='max_interval')
        self.min_level = self.param('min_level_dbfs', MIN_LEVEL_DBFS, 'Binaural segments '
                                    'quieter than this carry no direction [dBFS].', lo=-150.0,
                                    hi=0.0, on_change='min_level')
        self.hfov_tolerance = self.param('hfov_tolerance_deg', 5.0, 'Largest accepted '
                                         'difference between the camera\'s and the model\'s '
                                         'field of view [deg].', lo=0.0, hi=90.0,
                                         on_change='hfov_tolerance')
        self.publish_source_tf = self.param('publish_source_tf', False, 'With use_audio: '
                                            'publish a TF frame per heard source.',
                                            read_only=True)
        self.source_tf_prefix = self.param('source_tf_prefix', 'binaural_source_', 'Prefix '
                                           'of the per-source TF frames.', read_only=True)
        self.arrow_length = self.param('arrow_length', 1.0, 'Marker length at confidence 1 '
                                       '[m].', lo=0.05, hi=10.0, read_only=True)
        self.visual = VisualRotation(model or None)
        self.spec = self.visual.spec
        self.audio = (BinauralDirection(audio_model or None, array=self.spec.array)
                      if self.use_audio else None)
        if self.audio is not None:
            check_same_contract(self.visual, self.audio)
        self.monitor.set_fact('execution_provider', self.visual.model.provider)
        self.monitor.set_fact('model_id', self.visual.model.model_id)
        if self.audio is not None:
            self.monitor.set_fact('binaural_model_id', self.audio.model.model_id)
        self.get_logger().info(f'model {self.visual.model.path} on {self.visual.model.provider}')
        self.twist_pub = self.create_publisher(TwistWithCovarianceStamped, 'rotation/twist',
                                               RELIABLE)
        self.tf = TfBroadcaster(self)
        self.yaw = 0.0
        self.prev = None          # (stamp_ns, grey input, audio azimuth or None)
        self.pending = None       # a pair waiting for the later frame's audio (fuse_audio)
        self.heard = None         # the frame whose segment is awaited (without fuse_audio)
        self.camera_hfov = None
        self.history = AudioHistory(self.spec.sample_rate) if self.audio is not None else None
        self.image_topic = image_topic
        self.images = ImageInput(self, image_topic, self.on_image, want='rgb8')
        self.create_subscription(CameraInfo, info_topic, self.guard(info_topic, self.on_info),
                                 SENSOR)
        if self.audio is not None:
            head = load_array(self.spec.array)
            self.head_frame = head.frame_id
            self.tracker = SourceTracker.for_array(head, 'learned')
            self.dir_pub = self.create_publisher(SoundSourceArray, 'rotation/sound_direction',
                                                 RELIABLE)
            self.dir_markers = self.create_publisher(MarkerArray,
                                                     'rotation/sound_direction/markers',
                                                     RELIABLE)
            self.audio_topic = audio_topic
            self.audio_in = AudioInput(self, audio_topic, self.on_block, channels=2,
                                       sample_rate=self.spec.sample_rate)
        self._report_frames()

    def _frames(self, which: str):
        """on_change of a frame name parameter: set it, report the frames."""
        def change(name: str) -> None:
            if not name:
                raise ValueError('expected a frame name, got ""')
            setattr(self, f'{which}_frame', name)
            self._report_frames()
        return change

    def _report_frames(self) -> None:
        self.monitor.set_fact('frames', f'{self.odom_frame} -> {self.base_frame} (/tf), '
                                        f'twist in {self.twist_frame}')

    # ------------------------------------------------------------ inputs
    def on_info(self, msg: CameraInfo) -> None:
        if msg.width == 0 or msg.k[0] <= 0:
            raise InputError('camera_info', 'width > 0 and fx > 0',
                             f'width {msg.width}, fx {msg.k[0]}')
        self.camera_hfov = hfov_deg(np.reshape(msg.k, (3, 3)), msg.width)

    def on_image(self, image, hdr) -> None:
        if self.camera_hfov is not None and \
                abs(self.camera_hfov - self.spec.hfov_deg) > self.hfov_tolerance:
            raise InputError('intrinsics', f'a camera with a {self.spec.hfov_deg:.0f} deg '
                             'field of view (the model\'s)',
                             f'{self.camera_hfov:.1f} deg (camera_info)')
        stamp = stamp_to_ns(hdr.stamp)
        grey = grey_input(image, self.spec)
        if self.audio is not None and not self.fuse_audio and self.heard is None:
            self.heard = stamp
            self._try_audio()
        if self.pending is not None:       # its audio never came: publish it as it is
            self._publish(*self.pending[:3])
            self.pending = None
        prev, self.prev = self.prev, (stamp, grey, None)
        if prev is None:
            return
        dt = (stamp - prev[0]) * 1e-9
        if dt <= 0:
            # an event, not a drop: the frame is used, as the new first of a pair
            self.input(self.image_topic).on_event(
                'stamp_backwards', f'a stamp after the previous frame\'s, got '
                f'{dt * 1e3:.1f} ms after it: pairing restarts')
            return
        if dt > self.max_interval:
            self.input(self.image_topic).on_event(
                'gap', f'frames at most {self.max_interval} s apart, got {dt:.2f} s (dropped '
                'frames?): pairing restarts')
            return
        est = self.visual.estimate(prev[1], grey)
        if self.audio is None or not self.fuse_audio:
            self._publish(stamp, dt, est)
            return
        self.pending = (stamp, dt, est, prev[2])
        self._try_audio()

    def on_block(self, block: AudioBlock) -> None:
        self.history.push(block.samples, block.stamp_ns)
        self._try_audio()

    # ------------------------------------------------------------ fusion
    def _azimuth(self, stamp: int) -> float | None | bool:
        """The binaural azimuth of the segment from ``stamp``; None if silent,
        False if its audio has not arrived yet."""
        seg = self.history.segment(stamp, self.spec.audio_window)
        if seg is None:
            return None if self.history.expired(stamp) else False
        heard = self.audio.hear(seg, stamp, self.min_level)
        self._publish_direction(heard)
        return heard.sources[0].azimuth if heard.sources else None

    def _publish_direction(self, result: DoaResult) -> None:
        """The segment's binaural direction through the tracker, as
        sound_direction publishes directions."""
        hdr = header(result.stamp_ns, self.head_frame)
        sources = self.tracker.update(result)
        keys = [s.id for s in sources]
        self.dir_pub.publish(source_array(hdr, sources))
        self.dir_markers.publish(source_markers(hdr, sources, keys, 'rotation/sound_direction',
                                                self.arrow_length))
        if self.publish_source_tf and sources:
            self.tf.send(source_frames(self.head_frame, self.source_tf_prefix, sources,
                                       result.stamp_ns))

    def _try_audio(self) -> None:
        if not self.fuse_audio:     # hear the awaited frame's segment once it is complete
            if self.heard is not None and self._azimuth(self.heard) is not False:
                self.heard = None
            return
        if self.prev is not None and self.prev[2] is None:
            az = self._azimuth(self.prev[0])
            if az is not False:
                self.prev = (self.prev[0], self.prev[1], az if az is not None else math.nan)
        if self.pending is None:
            return
        stamp, dt, est, az_first = self.pending
        if self.prev is None or self.prev[0] != stamp or self.prev[2] is None:
            return  # the later frame's audio has not arrived yet
        az_second = self.prev[2]
        if az_first is None:     # the earlier frame's audio was never complete
            az_first = math.nan
        fused = fuse(est, None if math.isnan(az_first) else az_first,
                     None if math.isnan(az_second) else az_second)
        self.pending = None
        self._publish(stamp, dt, fused)

    # ------------------------------------------------------------ output
    def _publish(self, stamp: int, dt: float, est: YawEstimate) -> None:
        self.yaw = math.remainder(self.yaw + est.yaw, 2.0 * math.pi)
        msg = TwistWithCovarianceStamped()
        msg.header = header(stamp, self.twist_frame)
        msg.twist.twist.angular.z = est.yaw / dt
        cov = [0.0] * 36
        for i in range(5):
            cov[7 * i] = UNMEASURED_VARIANCE
        cov[35] = (est.sigma / dt) ** 2
        msg.twist.covariance = cov
        self.twist_pub.publish(msg)
        if self.publish_tf:
            f = StaticFrame.from_rpy(self.odom_frame, self.base_frame, (0.0, 0.0, 0.0),
                                     (0.0, 0.0, self.yaw))
            self.tf.send([transform(f.parent, f.child, f.xyz, f.quat_xyzw, stamp)])
        self.monitor.set_fact('integrated_yaw_deg', f'{math.degrees(self.yaw):.1f}')
        self.monitor.set_fact('last_sigma_deg', f'{math.degrees(est.sigma):.2f}')
        self.monitor.set_fact('audio_fused', est.audio_used)


def main(argv=None) -> int:
    return node_main(RotationNode, argv)
