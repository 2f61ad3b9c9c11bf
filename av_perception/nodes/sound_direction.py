"""Node ``sound_direction``: where sounds come from, seen from a microphone array.

Subscribes to ``audio/raw`` (AudioChunk; ``audio_topic`` or a remap for
``audio/binaural``) and,
every ``hop`` seconds, estimates the direction of up to ``num_sources``
sources over the last ``window`` seconds with the chosen method:

- ``srp`` (SRP-PHAT) or ``normmusic`` (pyroomacoustics) for 3+ microphones,
- ``gcc`` (GCC-PHAT) for two microphones or a binaural head.

A tracker (av_perception.direction.tracker: global nearest-neighbour association
on the unit sphere, birth after k of n hits, death after m misses; its
parameters per array and method from bench/direction_tracking.py) gives
each source an id that stays while the track lives. Turns of the array in
``odom_frame`` (from TF) are applied to the tracks, so a robot turning in
place keeps its sources' ids.

Publishes, stamped with the acquisition time of the analysis window's first
sample, in the array frame (REP 103, azimuth CCW from +x):

- ``sound_direction`` (av_perception/SoundSourceArray), one per window:
  the confirmed tracks heard in it (``sources`` empty: nothing sounds);
  with ``tracking`` false, every estimate with id 0;
- ``sound_direction/markers`` (visualization_msgs/MarkerArray): a DELETEALL,
  then per source one ARROW (length proportional to its confidence, id =
  the track id) and a TEXT label with the id;
- optionally a TF frame ``<tf_prefix><k>`` per source on /tf, 1 m from the
  array along the direction (``publish_tf``; ``k`` = 0, 1, ... in order of
  track id, so that the frame names stay bounded: ``source_frames``).

Chunks whose channel count or sample rate differ from the array geometry
file are dropped and counted in /diagnostics: a wrong array configuration is
reported, never silently mislocalised.
"""

from __future__ import annotations


from visualization_msgs.msg import MarkerArray

from av_perception.arrays import load_array
from av_perception.audio.chunk import AudioBlock
from av_perception.direction.evaluate import ESTIMATORS, make_estimator
from av_perception.direction.stream import DoaResult, StreamingDoa
from av_perception.direction.tracker import SourceTracker, TrackedSource
from av_perception.errors import ConfigError, InputError
from av_perception.geometry.frames import unit_vector
from av_perception.geometry.tf_buffer import TransformError
from av_perception.ros.inputs import AudioInput
from av_perception.ros.messages import header
from av_perception.ros.node import AvNode
from av_perception.ros.qos import AUDIO_LIVE, RELIABLE
from av_perception.ros.spin import node_main
from av_perception.ros.sound_sources import source_array, source_frames, source_markers
from av_perception.ros.tf import TfBroadcaster, TfListener
from av_perception.msg import SoundSourceArray


#: Topics this node publishes (besides /diagnostics); see nodes/__init__.py.
PUBLISHES = ('sound_direction', 'sound_direction/markers', '/tf')  # /tf: publish_tf


class SoundDirectionNode(AvNode):
    """Direction of arrival from a microphone array stream."""

    def __init__(self, **kwargs) -> None:
        super().__init__('sound_direction', **kwargs)
        method = self.param('method', 'srp_onset', 'Estimator: srp_onset (SRP-PHAT weighted '
                            'by onsets: the direct sound before its reflections), srp, normmusic '
                            '(3+ mics), gcc or gcc_onset (GCC-PHAT, plain or weighted by onsets; '
                            '2 mics / binaural) or learned (ONNX model).',
                            choices=list(ESTIMATORS), read_only=True)
        model = self.param('model', '', 'ONNX model for method learned ("": the shipped model '
                           'for the array, models/direction_<array>.onnx).', read_only=True)
        array_file = self.param('array', 'respeaker4', 'Array geometry: a name under '
                                'config/arrays/ or a path to a geometry YAML.', read_only=True)
        window = self.param('window', 0.0, 'Analysis window [s]; 0: the array file\'s '
                            'doa_window (0.5 s for respeaker4, 0.256 s binaural); a learned '
                            'model averages its windows over it.', lo=0.0, hi=2.0, read_only=True)
        hop = self.param('hop', 0.1, 'Time between estimates [s].', lo=0.01, hi=2.0,
                         read_only=True)
        num = self.param('num_sources', 1, 'Most sources reported per window.', lo=1, hi=8,
                         read_only=True)
        min_conf = self.param('min_confidence', 0.1, 'Estimates below this confidence are '
                              'not published.', lo=0.0, hi=1.0, read_only=True)
        silence = self.param('silence_dbfs', -60.0, 'Windows quieter than this [dBFS] give '
                             'no direction.', lo=-150.0, hi=0.0, read_only=True)
        self.tf = None
        self.publish_tf = self.param('publish_tf', False, 'Publish a TF frame per source.',
                                     on_change=self._set_publish_tf)
        self.tf_prefix = self.param('tf_prefix', 'sound_source_', 'Prefix of the per-source '
                                    'TF frames.', on_change='tf_prefix')
        self.arrow_length = self.param('arrow_length', 1.0, 'Marker length at confidence 1 '
                                       '[m].', lo=0.05, hi=10.0, on_change='arrow_length')
        tracking = self.param('tracking', True, 'Track sources (ids stable while a track '
                              'lives); false: publish every estimate of every window, id 0.',
                              read_only=True)
        self.odom_frame = self.param('odom_frame', 'odom', 'Frame in which the array\'s turns '
                                     'are read from TF and applied to the tracks ("": none; '
                                     'the gate then has to cover turns).',
                                     on_change='odom_frame')
        audio_topic = self.param('audio_topic', 'audio/raw', 'AudioChunk input topic (e.g. '
                                 '/audio/binaural for a binaural head).', read_only=True)
        self.array = load_array(array_file)
        try:
            estimator = make_estimator(method, self.array, model or None, num_src=num)
        except InputError as exc:  # names the method/array mismatch
            raise ConfigError(f'sound_direction: {exc}') from None
        window = window or self.array.doa_window
        if method == 'learned':
            # at least the model's window (a longer one averages several)
            window = max(window, estimator.window / self.array.sample_rate)
            self.monitor.set_fact('execution_provider', estimator.model.provider)
            self.monitor.set_fact('model_id', estimator.model.model_id)
            self.get_logger().info(f'model {estimator.model.path} on {estimator.model.provider}')
        self.doa = StreamingDoa(estimator, self.array.sample_rate, self.array.channels,
                                window=window, hop=hop, num_src=num, min_confidence=min_conf,
                                silence_dbfs=silence)
        self.frame_id = self.array.frame_id
        self.tracker = (SourceTracker.for_array(self.array, method, hop=hop) if tracking
                        else None)
        self.elevation_known = SourceTracker.for_array(self.array, method).elevation_known
        self._last_rotation = None          # array orientation in odom_frame, last window
        self.tf_listener = TfListener(self) if tracking else None
        self.pub = self.create_publisher(SoundSourceArray, 'sound_direction', RELIABLE)
        self.markers = self.create_publisher(MarkerArray, 'sound_direction/markers', RELIABLE)
        self._set_publish_tf(self.publish_tf)
        self.audio_topic = audio_topic
        self.audio = AudioInput(self, audio_topic, self.on_block, channels=self.array.channels,
                                sample_rate=self.array.sample_rate, stale_after=2.0,
                                qos=AUDIO_LIVE)
        self.monitor.set_fact('method', method)
        self.monitor.set_fact('array', f'{self.array.name} ({self.array.channels} mics, '
                                       f'{self.array.sample_rate} Hz, frame {self.frame_id})')
        self.monitor.set_fact('front_back_ambiguous', self.array.front_back_ambiguous)
        self.monitor.set_fact('tracker', f'{self.tracker.params}' if tracking else 'off')
        self._turns = {'from_tf': 0, 'unknown': 0}

    def _set_publish_tf(self, on: bool) -> None:
        self.publish_tf = on
        if on and self.tf is None:
            self.tf = TfBroadcaster(self)

    def on_block(self, block: AudioBlock) -> None:
        if block.frame_id and block.frame_id != self.frame_id:
            stats = self.input(self.audio_topic)
            if stats.on_event('frame_id', f'expected frame {self.frame_id!r} (array file), got '
                                          f'{block.frame_id!r}'):
                self.get_logger().warning(f'audio frame {block.frame_id!r} differs from the '
                                          f'array file\'s {self.frame_id!r}; publishing in '
                                          f'{self.frame_id!r}')
        for result in self.doa.push(block):
            self.publish(result)

    def _frame_rotation(self, stamp_ns: int):
        """The array's turn since the last window, from TF (odom_frame <-
        array at the two windows' stamps), as the tracker takes it; None
        where TF does not know it (counted in /diagnostics)."""
        if not self.odom_frame or self.tf_listener is None:
            return None
        try:
            rot = self.tf_listener.buffer.lookup(self.odom_frame, self.frame_id,
                                                 stamp_ns).matrix[:3, :3]
        except TransformError:
            self._last_rotation = None
            self._turns['unknown'] += 1
            self.monitor.set_fact('turns_unknown', self._turns['unknown'])
            return None
        prev, self._last_rotation = self._last_rotation, rot
        if prev is None:
            return None
        self._turns['from_tf'] += 1
        self.monitor.set_fact('turns_from_tf', self._turns['from_tf'])
        return rot.T @ prev

    def _sources(self, result: DoaResult) -> list[TrackedSource]:
        if self.tracker is not None:
            return self.tracker.update(result, self._frame_rotation(result.stamp_ns))
        out = []
        for src in result.sources:
            el = src.elevation if self.elevation_known else 0.0
            out.append(TrackedSource(
                id=0, azimuth=src.azimuth, elevation=el, elevation_known=self.elevation_known,
                confidence=src.confidence, front_back_ambiguous=src.front_back_ambiguous,
                direction=tuple(float(v) for v in unit_vector(src.azimuth, el)), hits=1,
                misses=0))
        return out

    def publish(self, result: DoaResult) -> None:
        hdr = header(result.stamp_ns, self.frame_id)
        sources = self._sources(result)
        keys = [s.id for s in sources] if self.tracker is not None else range(len(sources))
        self.pub.publish(source_array(hdr, sources))
        self.markers.publish(source_markers(hdr, sources, keys, 'sound_direction',
                                            self.arrow_length))
        if self.publish_tf and sources:
            self.tf.send(source_frames(self.frame_id, self.tf_prefix, sources,
                                       result.stamp_ns))
        self.monitor.set_fact('level_dbfs', f'{result.level_dbfs:.1f}')
        self.monitor.set_fact('sources', len(sources))


def main(argv=None) -> int:
    return node_main(SoundDirectionNode, argv)
