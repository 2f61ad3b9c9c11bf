"""Node ``av_heatmap``: where in the camera image the sound comes from.

Subscribes to ``camera/image_raw`` (rgb8, bgr8 or mono8; sensor-data QoS)
and ``audio/raw`` (AudioChunk of the microphone array). Each image is paired
with the audio window that starts at its stamp (``sync_tolerance``: how far
the audio may start from the image stamp); the audio-visual model (ONNX
Runtime) gives the localization map, and the node publishes, with the
image's header (same stamp and frame) and size:

- ``av_heatmap/heatmap`` (sensor_msgs/Image 32FC1): values in [0, 1],
  the cosine similarity between the sound and each part of the image,
  clipped at 0;
- ``av_heatmap/overlay`` (sensor_msgs/Image rgb8): the heatmap blended on
  the image, for RViz's Image display.

When the audio window is quieter than ``silence_dbfs`` nothing is
published, and /diagnostics says so (``state``, ``silent_images``). Images
without audio in time, chunks that do not fit the array, and images that
cannot be decoded are dropped and counted in /diagnostics.
"""

from __future__ import annotations

from sensor_msgs.msg import Image

from av_perception.arrays import load_array
from av_perception.audio.chunk import AudioBlock
from av_perception.avl.heatmap import HeatmapModel, level_dbfs, overlay
from av_perception.avl.sync import ALIGNS, AudioImageSync
from av_perception.ros.inputs import AudioInput, ImageInput
from av_perception.ros.messages import array_to_image, stamp_to_ns
from av_perception.ros.node import AvNode
from av_perception.ros.qos import RELIABLE
from av_perception.ros.spin import node_main


#: Topics this node publishes (besides /diagnostics); see nodes/__init__.py.
PUBLISHES = ('av_heatmap/heatmap', 'av_heatmap/overlay')


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
        self.array = load_array(array_file)
        self.model = HeatmapModel(model or None, self.array)
        self.sync = AudioImageSync(self.array.sample_rate, self.array.channels,
                                   self.model.window, tolerance=tolerance, align=align)
        self.heatmap_pub = self.create_publisher(Image, 'av_heatmap/heatmap', RELIABLE)
        self.overlay_pub = self.create_publisher(Image, 'av_heatmap/overlay', RELIABLE)
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
        self.monitor.set_fact('state', 'waiting for images and audio')
        self.get_logger().info(f'model {self.model.model.path} on {self.model.model.provider}')

    def on_block(self, block: AudioBlock) -> None:
        self._handle(*self.sync.push_audio(block))

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
            heat = self.model.heatmap(rgb, p.window)
            self.heatmap_pub.publish(array_to_image(heat, '32FC1', header))
            self.overlay_pub.publish(array_to_image(overlay(rgb, heat, self.alpha), 'rgb8',
                                                    header))
            self.published += 1
            self.monitor.set_fact('published', self.published)
            self.monitor.set_fact('state', f'publishing (audio at {level:.1f} dBFS)')


def main(argv=None) -> int:
    return node_main(AvHeatmapNode, argv)
