"""Node ``audio_common_adapter``: the ROS audio_common driver -> AudioChunk.

Subscribes to ``audio`` (audio_common_msgs/AudioDataStamped) and
``audio_info`` (audio_common_msgs/AudioInfo, latched or not), decodes
S16LE / S32LE / F32LE wave data to float32 and republishes it on ``audio/raw``
as self-describing AudioChunks: channel count, sample rate and a continuous
``first_sample`` counter, the frame id of the array.

Stamps: audio_common stamps a buffer when it is handed over, i.e. at the end
of its last sample; the AudioChunk stamp is the acquisition time of its first
sample, so the chunk's duration is subtracted (``stamp_at_end``, default
true). Until an AudioInfo arrives, the ``sample_format``, ``channels`` and
``sample_rate`` parameters are used if set; otherwise data is dropped and
counted as ``no_audio_info``.
"""

from __future__ import annotations

from audio_common_msgs.msg import AudioDataStamped, AudioInfo

from av_perception.audio.chunk import AudioBlock, deinterleave
from av_perception.audio.pcm import FORMATS, decode_pcm
from av_perception.errors import InputError
from av_perception.ros.inputs import qos_matching_publishers
from av_perception.ros.messages import block_to_chunk, stamp_to_ns
from av_perception.ros.node import AvNode
from av_perception.ros.qos import AUDIO
from av_perception.ros.spin import node_main
from av_perception.msg import AudioChunk


#: Topics this node publishes (besides /diagnostics); see nodes/__init__.py.
PUBLISHES = ('audio/raw',)


class AudioCommonAdapterNode(AvNode):
    """Republishes audio_common's stream as AudioChunk."""

    def __init__(self, **kwargs) -> None:
        super().__init__('audio_common_adapter', **kwargs)
        self.frame_id = self.param('frame_id', 'mic_array', 'Frame of the microphone array '
                                   '(header.frame_id of the AudioChunks).')
        fmt = self.param('sample_format', '', 'Sample format to assume before an AudioInfo '
                         'arrives ("" waits for AudioInfo).', choices=['', *FORMATS])
        channels = self.param('channels', 0, 'Channel count to assume before an AudioInfo '
                              'arrives (0 waits for AudioInfo).', lo=0, hi=256)
        rate = self.param('sample_rate', 0, 'Sample rate [Hz] to assume before an AudioInfo '
                          'arrives (0 waits for AudioInfo).', lo=0, hi=384000)
        self.stamp_at_end = self.param('stamp_at_end', True, 'True if the driver stamps a '
                                       'buffer at its last sample (audio_common does).')
        self.info = (fmt, channels, rate) if fmt and channels and rate else None
        self.next_sample = 0
        self.pub = self.create_publisher(AudioChunk, 'audio/raw', AUDIO)
        self.create_subscription(AudioDataStamped, 'audio', self.guard('audio', self.on_audio),
                                 AUDIO)
        self._info_sub = None
        self._info_timer = self.create_timer(0.2, self._subscribe_info)
        self.input('audio_info')

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
        if msg.coding_format and str(msg.coding_format).lower() not in ('wave', 'wav', 'raw', 'pcm'):
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
        self.monitor.set_fact('format', f'{fmt}, {info[1]} ch, {info[2]} Hz')

    def on_audio(self, msg: AudioDataStamped) -> None:
        if self.info is None:
            raise InputError('no_audio_info', 'an AudioInfo on audio_info (or the '
                             'sample_format, channels and sample_rate parameters)',
                             'audio data before any AudioInfo')
        fmt, channels, rate = self.info
        flat = decode_pcm(bytes(msg.audio.data), fmt, channels)
        samples = deinterleave(flat, channels)
        stamp = stamp_to_ns(msg.header.stamp)
        if stamp == 0:
            stamp = self.get_clock().now().nanoseconds
            if self.input('audio').on_event('zero_stamp', 'driver left header.stamp at 0; '
                                            'using receipt time'):
                self.get_logger().warning('audio: header.stamp is 0; using receipt time')
        if self.stamp_at_end:
            stamp -= int(round(samples.shape[1] / rate * 1e9))
        block = AudioBlock(samples=samples, sample_rate=rate, first_sample=self.next_sample,
                           stamp_ns=stamp, frame_id=self.frame_id)
        self.next_sample += samples.shape[1]
        self.pub.publish(block_to_chunk(block))


def main(argv=None) -> int:
    return node_main(AudioCommonAdapterNode, argv)
