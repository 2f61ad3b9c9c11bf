"""Node ``av_heatmap``: where in the camera image the sound comes from, and
where the robot should look.

Subscribes to ``camera/image_raw`` (rgb8, bgr8 or mono8; sensor-data QoS),
``camera/camera_info`` (sensor-data QoS), ``audio/raw`` (AudioChunk of the
microphone array) and /tf, /tf_static (TfListener, tf2's QoS). Each image is
paired with an audio window (``audio_window``, ``sync_tolerance``). A fused
model (the shipped one) projects the array's acoustic image (SRP-PHAT of the
window) into the image through the CameraInfo and the transform array frame
(the chunks' ``frame_id``) <- camera optical frame (the image's
``frame_id``) looked up at the image's stamp (else the latest), and fuses it
with the audio-visual model's map (av_perception.av_heatmap.heatmap). Published
with the image's header (same stamp and frame):

- ``av_heatmap/heatmap`` (sensor_msgs/Image 32FC1, the image's size):
  values in [0, 1], the peak's score at the peak;
- ``av_heatmap/overlay`` (sensor_msgs/Image rgb8): the heatmap blended on
  the image, for RViz's Image display;
- ``av_heatmap/peak`` (geometry_msgs/PointStamped, the camera optical
  frame): where to look. ``point`` = score x the unit ray through the
  heatmap's peak pixel: its direction (point / |point|) is the ray, its
  length the score in (0, 1]. A PointStamped because a look-at controller
  takes one (control_msgs/PointHead's target: the pointing axis is turned
  towards it) and tf2 transforms it into any frame as a point on the ray
  (score metres from the camera), RViz draws it, and one message carries
  direction, score and stamp (a PoseStamped has no room for a score). Not
  published when the score is 0 (the sound comes from outside the view).

When the audio window is quieter than ``silence_dbfs`` nothing is
published, and /diagnostics says so (``state``, ``silent_images``). Images
without audio in time, chunks that do not fit the array, images that cannot
be decoded, and (fused model) images without a CameraInfo or transform yet
are dropped and counted in /diagnostics.
"""

from __future__ import annotations

from geometry_msgs.msg import PointStamped
from sensor_msgs.msg import CameraInfo, Image

from av_perception.arrays import load_array
from av_perception.audio.chunk import AudioBlock
from av_perception.audio.level import level_dbfs
from av_perception.av_heatmap.dataset import camera_view
from av_perception.av_heatmap.heatmap import MEMORY_SECONDS, HeatmapModel, overlay
from av_perception.av_heatmap.sync import ALIGNS, AudioImageSync
from av_perception.bag.contents import Intrinsics
from av_perception.geometry.tf_buffer import TransformError
from av_perception.ros.inputs import AudioInput, ImageInput
from av_perception.ros.messages import array_to_image, stamp_to_ns
from av_perception.ros.node import AvNode
from av_perception.ros.qos import RELIABLE, SENSOR
from av_perception.ros.spin import node_main
from av_perception.ros.tf import TfListener


#: Topics this node publishes (besides /diagnostics); see nodes/__init__.py.
PUBLISHES = ('av_heatmap/heatmap', 'av_heatmap/overlay', 'av_heatmap/peak')


class AvHeatmapNode(AvNode):
    """Audio-visual localization heatmaps on the camera image."""

    def __init__(self, **kwargs) -> None:
        super().__init__('av_heatmap', **kwargs)
        model = self.param('model', '', 'ONNX model ("": the shipped models/av_heatmap.onnx).',
                           read_only=True)
        array_file = self.param('array', 'respeaker4', 'Array geometry of the audio stream: a '
                                'name under config/arrays/ or a path to a geometry YAML.',
                                read_only=True)
        tolerance = self.param('sync_tolerance', 0.05, 'Largest offset between an image stamp '
                               'and the start of its audio window [s].', lo=0.0, hi=1.0,
                               read_only=True)
        self.silence = self.param('silence_dbfs', -60.0, 'Audio windows quieter than this '
                                  '[dBFS] give no heatmap.', lo=-150.0, hi=0.0,
                                  on_change='silence')
        self.alpha = self.param('overlay_alpha', 0.6, 'Opacity of the heatmap on the overlay '
                                'where it is 1.', lo=0.0, hi=1.0, on_change='alpha')
        align = self.param('audio_window', 'before', 'Audio paired with an image: the '
                           'window that ends at its stamp (before: the heatmap follows the '
                           'image within a chunk) or the one that starts at it (after: as the '
                           'training bags pair them; a window later).', choices=list(ALIGNS),
                           read_only=True)
        image_topic = self.param('image_topic', 'camera/image_raw', 'Camera image input topic.',
                                 read_only=True)
        audio_topic = self.param('audio_topic', 'audio/raw', 'AudioChunk input topic (the '
                                 'microphone array).', read_only=True)
        info_topic = self.param('camera_info_topic', 'camera/camera_info', 'CameraInfo topic '
                                'of the camera (its intrinsics project the acoustic image).',
                                read_only=True)
        self.odom_frame = self.param('odom_frame', 'odom', 'Odometry frame on /tf: the '
                                     'acoustic memory carries past windows\' acoustic images '
                                     'into the current array frame through it.',
                                     on_change='odom_frame')
        memory = self.param('memory_seconds', MEMORY_SECONDS, 'How far back the acoustic '
                            'memory averages acoustic images [s] (0: the current window only; '
                            'without odometry: the current window only).', lo=0.0, hi=10.0,
                            read_only=True)
        self.array = load_array(array_file)
        self.model = HeatmapModel(model or None, self.array)
        if self.model.memory is not None:
            self.model.memory.seconds = memory
        if self.model.spec.prior_sigma:
            center = self.param('prior_center', self.model.spec.prior_center, 'Centre of the '
                                'horizon prior on the projected acoustic image: elevation [deg] '
                                'above the array\'s x-y plane (negative: below). Default: the '
                                'model\'s (the shipped one: -10, for an array 0.6 m up and '
                                'objects on and near the floor a few metres away); an array '
                                'mounted much higher or lower sees them at other elevations. '
                                'Declared only for a fused model with a prior.', lo=-60.0,
                                hi=60.0, on_change=self.model.set_prior_center)
            self.model.set_prior_center(center)
        self.array_frame = self.array.frame_id
        self.info = None
        self.tf = TfListener(self)
        self.info_topic = info_topic
        self.create_subscription(CameraInfo, info_topic, self.guard(info_topic, self.on_info),
                                 SENSOR)
        self.sync = AudioImageSync(self.array.sample_rate, self.array.channels,
                                   self.model.window, tolerance=tolerance, align=align)
        self.heatmap_pub = self.create_publisher(Image, 'av_heatmap/heatmap', RELIABLE)
        self.overlay_pub = self.create_publisher(Image, 'av_heatmap/overlay', RELIABLE)
        self.peak_pub = self.create_publisher(PointStamped, 'av_heatmap/peak', RELIABLE)
        self.image_topic = image_topic
        self.silent = 0
        self.published = 0
        self.audio = AudioInput(self, audio_topic, self.on_block, channels=self.array.channels,
                                sample_rate=self.array.sample_rate, stale_after=2.0)
        self.image = ImageInput(self, image_topic, self.on_image, want='rgb8', stale_after=2.0)
        self.monitor.set_fact('model_id', self.model.model.model_id)
        self.monitor.set_fact('execution_provider', self.model.model.provider)
        self.monitor.set_fact('array', f'{self.array.name} ({self.array.channels} mics, '
                                       f'{self.array.sample_rate} Hz)')
        self.monitor.set_fact('audio_window_s', f'{self.model.window / self.array.sample_rate:g}')
        self.monitor.set_fact('acoustic_image', 'fused (CameraInfo + TF array -> optical)'
                              if self.model.fused else 'not used (model alone)')
        self.monitor.set_fact('state', 'waiting for images and audio')
        self.get_logger().info(f'model {self.model.model.path} on {self.model.model.provider}')

    def on_block(self, block: AudioBlock) -> None:
        if block.frame_id:
            self.array_frame = block.frame_id
        self._handle(*self.sync.push_audio(block))

    def on_info(self, msg: CameraInfo) -> None:
        self.info = Intrinsics.from_message(msg)     # InputError: counted and dropped

    def _view(self, header, shape):
        """The CameraView of an image (its frame and stamp), or the reason
        there is none yet."""
        if self.info is None:
            return None, f'a CameraInfo on {self.info_topic}'
        if (self.info.height, self.info.width) != shape:
            return None, (f'a CameraInfo of the image\'s size {shape[1]}x{shape[0]} (got '
                          f'{self.info.width}x{self.info.height})')
        stamp = stamp_to_ns(header.stamp)
        for at in (stamp, None):
            try:
                return camera_view(self.info, self.tf.buffer, self.array_frame,
                                   header.frame_id, at), ''
            except TransformError as exc:
                reason = str(exc)
        return None, f'the transform {self.array_frame} <- {header.frame_id} ({reason})'

    def _peak_message(self, header, loc) -> PointStamped:
        msg = PointStamped(header=header)
        msg.point.x, msg.point.y, msg.point.z = (float(v) for v in loc.score * loc.ray)
        return msg

    def on_image(self, rgb, header) -> None:
        self._handle(*self.sync.push_image(stamp_to_ns(header.stamp), (rgb, header)))

    def _handle(self, ready, dropped) -> None:
        for d in dropped:
            # the image was counted processed when it arrived (or will be, when
            # it is the one in hand): it is dropped instead, counted once
            self.input(self.image_topic).processed -= 1
            self.drop(self.image_topic, d.kind, d.detail)
        for p in ready:
            rgb, header = p.image
            level = level_dbfs(p.window)
            if level < self.silence:
                self.silent += 1
                self.monitor.set_fact('silent_images', self.silent)
                self.monitor.set_fact('state', f'silent: audio at {level:.1f} dBFS < silence_dbfs '
                                               f'{self.silence:g}, nothing published')
                continue
            view = None
            if self.model.fused:
                view, why = self._view(header, rgb.shape[:2])
                if view is None:
                    self.input(self.image_topic).processed -= 1
                    self.drop(self.image_topic, 'camera_view', f'expected {why}')
                    continue
            odom = None
            if view is not None:
                try:
                    odom = self.tf.buffer.lookup(self.odom_frame, self.array_frame, p.stamp_ns)
                except TransformError:
                    odom = None
            loc = self.model.localize(rgb, p.window, view, stamp_ns=p.stamp_ns, odom=odom)
            self.heatmap_pub.publish(array_to_image(loc.heatmap, '32FC1', header))
            self.overlay_pub.publish(array_to_image(overlay(rgb, loc.heatmap, self.alpha),
                                                    'rgb8', header))
            if loc.ray is not None and loc.score > 0.0:
                self.peak_pub.publish(self._peak_message(header, loc))
            self.published += 1
            self.monitor.set_fact('published', self.published)
            self.monitor.set_fact('state', f'publishing (audio at {level:.1f} dBFS)')


def main(argv=None) -> int:
    return node_main(AvHeatmapNode, argv)
