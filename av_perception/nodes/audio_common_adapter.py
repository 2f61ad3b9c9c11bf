"""Node ``audio_common_adapter``: the ROS 2 audio_common driver -> AudioChunk.

The ROS 2 ``audio_capture`` driver (ros-drivers/audio_common, ros2 branch)
publishes each buffer twice, on ``audio`` (audio_common_msgs/AudioData, no
stamp) and on ``audio_stamped`` (AudioDataStamped, stamped at the buffer's
first sample: GStreamer's base time + PTS on the real-time clock), and its
format every 5 s on ``audio_info`` (AudioInfo, volatile). This node takes one
of the two streams (``stamped``), decodes S16LE / S32LE / F32LE wave data to
float32 and republishes it on ``audio/raw`` as self-describing AudioChunks:
channel count, sample rate, a continuous ``first_sample`` counter, the frame
of the array.

Stamps (the AudioChunk's is the acquisition time of its first sample):

- ``stamped: true`` (default): the driver's header stamp, as it is (a driver
  that stamps at the end of the buffer instead: ``stamp_at_end: true``);
- ``stamped: false``: AudioData carries no time, so the chunk is stamped on
  receipt minus its duration, kept continuous with the sample count while
  receipts stay within ``receipt_tolerance`` of it (re-anchored, and counted
  as an event, when they do not); /diagnostics says which.

Until an AudioInfo arrives, the ``sample_format``, ``channels`` and
``sample_rate`` parameters are used if set; otherwise data is dropped and
counted as ``no_audio_info``.
"""

from __future__ import annotations

from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo

from av_perception.audio.chunk import AudioBlock, ReceiptClock, deinterleave
from av_perception.audio.pcm import FORMATS, decode_pcm
from av_perception.errors import InputError
from av_perception.msg import AudioChunk
from av_perception.ros.inputs import qos_matching_publishers
from av_perception.ros.messages import block_to_chunk, stamp_to_ns
from av_perception.ros.node import AvNode
from av_perception.ros.qos import AUDIO
from av_perception.ros.spin import node_main

#: Topics this node publishes (besides /diagnostics); see nodes/__init__.py.
PUBLISHES = ('audio/raw',)


class AudioCommonAdapterNode(AvNode):
    """Republishes audio_common's stream as AudioChunk."""

    def __init__(self, **kwargs) -> None:
        super().__init__('audio_common_adapter', **kwargs)
        self.frame_id = self.param('frame_id', 'mic_array', 'Frame of the microphone array '
                                   '(header.frame_id of the AudioChunks).', on_change='frame_id')
        self.stamped = self.param('stamped', True, 'Take audio_stamped (AudioDataStamped, '
                                  'stamped by the driver) instead of audio (AudioData, '
                                  'stamped on receipt here).', read_only=True)
        self.stamp_at_end = self.param('stamp_at_end', False, 'The driver stamps a buffer at '
                                       'its last sample (the ROS 2 audio_capture driver '
                                       'stamps the first: false).', on_change='stamp_at_end')
        tolerance = self.param('receipt_tolerance', 0.05, 'With stamped false: how far [s] a '
                               'receipt may drift from the sample count before the stamps '
                               'are re-anchored.', lo=0.001, hi=10.0,
                               on_change=self._set_tolerance)
        self._fallback = {
            'sample_format': self.param('sample_format', '', 'Sample format to assume before '
                                        'an AudioInfo arrives ("" waits for AudioInfo).',
                                        choices=['', *FORMATS], on_change=self._fallback_set(
                                            'sample_format')),
            'channels': self.param('channels', 0, 'Channel count to assume before an AudioInfo '
                                   'arrives (0 waits for AudioInfo).', lo=0, hi=256,
                                   on_change=self._fallback_set('channels')),
            'sample_rate': self.param('sample_rate', 0, 'Sample rate [Hz] to assume before an '
                                      'AudioInfo arrives (0 waits for AudioInfo).', lo=0,
                                      hi=384000, on_change=self._fallback_set('sample_rate')),
        }
        self._from_info = False
        self.info = self._fallback_info()
        self.next_sample = 0
        self.receipts = ReceiptClock(tolerance)
        self.pub = self.create_publisher(AudioChunk, 'audio/raw', AUDIO)
        if self.stamped:
            self.topic = 'audio_stamped'
            self.create_subscription(AudioDataStamped, self.topic,
                                     self.guard(self.topic, self.on_stamped), AUDIO)
            self.monitor.set_fact('stamps', 'the driver\'s header stamp ('
                                  + ('end' if self.stamp_at_end else 'first sample') + ')')
        else:
            self.topic = 'audio'
            self.create_subscription(AudioData, self.topic,
                                     self.guard(self.topic, self.on_plain), AUDIO)
            self.monitor.set_fact('stamps', 'receipt time minus the chunk\'s duration '
                                  '(AudioData carries no stamp)')
        self._info_sub = None
        self._info_timer = self.create_timer(0.2, self._subscribe_info)
        self.input('audio_info')

    # ---------------------------------------------------------- parameters
    def _fallback_info(self) -> tuple[str, int, int] | None:
        f = self._fallback
        ok = f['sample_format'] and f['channels'] and f['sample_rate']
        return (f['sample_format'], f['channels'], f['sample_rate']) if ok else None

    def _fallback_set(self, key: str):
        """on_change of a fallback format parameter: used until an AudioInfo came."""
        def change(value) -> None:
            self._fallback[key] = value
            if not self._from_info:
                self.info = self._fallback_info()
        return change

    def _set_tolerance(self, seconds: float) -> None:
        self.receipts.tolerance = seconds

    # -------------------------------------------------------------- inputs
    def _subscribe_info(self) -> None:
        """Subscribe to audio_info with the publisher's own durability, so a
        latched AudioInfo is received however late this node starts."""
        qos = qos_matching_publishers(self, self.resolve_topic_name('audio_info'), depth=1)
        if qos is None:
            return
        self._info_sub = self.create_subscription(
            AudioInfo, 'audio_info', self.guard('audio_info', self.on_info), qos)
        self._info_timer.cancel()

    def on_info(self, msg: AudioInfo) -> None:
        fmt = str(msg.sample_format).upper()
        if fmt not in FORMATS:
            raise InputError('sample_format', f'one of {", ".join(FORMATS)}',
                             repr(msg.sample_format))
        coding = str(msg.coding_format).lower()
        if msg.coding_format and coding not in ('wave', 'wav', 'raw', 'pcm'):
            raise InputError('coding_format', "'wave' (uncompressed PCM)",
                             repr(msg.coding_format))
        if msg.channels <= 0 or msg.sample_rate <= 0:
            raise InputError('audio_info', 'channels > 0 and sample_rate > 0',
                             f'{msg.channels} channels at {msg.sample_rate} Hz')
        info = (fmt, int(msg.channels), int(msg.sample_rate))
        if self.info is not None and info != self.info:
            self.get_logger().warning(f'audio format changed from {self.info} to {info}; '
                                      'the sample counter restarts')
            self.next_sample = 0
        self.info = info
        self._from_info = True
        self.monitor.set_fact('format', f'{fmt}, {info[1]} ch, {info[2]} Hz')

    def on_stamped(self, msg: AudioDataStamped) -> None:
        samples, rate = self._decode(msg.audio.data)
        stamp = stamp_to_ns(msg.header.stamp)
        if stamp == 0:
            stamp = self.get_clock().now().nanoseconds
            if self.input(self.topic).on_event('zero_stamp', 'driver left header.stamp at 0; '
                                               'using receipt time'):
                self.get_logger().warning(f'{self.topic}: header.stamp is 0; using receipt time')
        elif self.stamp_at_end:
            stamp -= int(round(samples.shape[1] / rate * 1e9))
        self._publish(samples, rate, stamp)

    def on_plain(self, msg: AudioData) -> None:
        samples, rate = self._decode(msg.data)
        now = self.get_clock().now().nanoseconds
        stamp, reanchored = self.receipts.stamp(now, self.next_sample, samples.shape[1], rate)
        if reanchored and self.input(self.topic).on_event(
                'receipt_jump', f'receipts within {self.receipts.tolerance} s of the sample '
                'count, got one further off: stamps re-anchored to the receipt time'):
            self.get_logger().warning(f'{self.topic}: receipt time jumped; stamps re-anchored')
        self._publish(samples, rate, stamp)

    def _decode(self, data) -> tuple:
        if self.info is None:
            raise InputError('no_audio_info', 'an AudioInfo on audio_info (or the '
                             'sample_format, channels and sample_rate parameters)',
                             'audio data before any AudioInfo')
        fmt, channels, rate = self.info
        return deinterleave(decode_pcm(bytes(data), fmt, channels), channels), rate

    def _publish(self, samples, rate: int, stamp_ns: int) -> None:
        block = AudioBlock(samples=samples, sample_rate=rate, first_sample=self.next_sample,
                           stamp_ns=stamp_ns, frame_id=self.frame_id)
        self.next_sample += samples.shape[1]
        self.pub.publish(block_to_chunk(block))


def main(argv=None) -> int:
    return node_main(AudioCommonAdapterNode, argv)
