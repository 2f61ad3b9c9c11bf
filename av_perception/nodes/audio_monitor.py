"""Node ``audio_monitor``: is the microphone array alive and wired as configured?

Subscribes to ``audio/raw`` (AudioChunk) and checks every chunk against the
array geometry file (channel count, sample rate) and against the stream
(gaps, overlaps, sample-rate changes, stamps going backwards). It reports in
/diagnostics, per channel, the level [dBFS], clipped samples and silent
channels, so a dead or unplugged microphone is seen before a model is blamed.
Publishes nothing else.
"""

from __future__ import annotations

import numpy as np

from av_perception.arrays import load_array
from av_perception.audio.chunk import AudioBlock
from av_perception.ros.inputs import AudioInput
from av_perception.ros.node import AvNode
from av_perception.ros.qos import AUDIO_LIVE
from av_perception.ros.spin import node_main


#: Topics this node publishes (besides /diagnostics); see nodes/__init__.py.
PUBLISHES = ()  # /diagnostics only


class AudioMonitorNode(AvNode):
    """Checks an audio stream and reports its health in /diagnostics."""

    def __init__(self, **kwargs) -> None:
        super().__init__('audio_monitor', **kwargs)
        array_file = self.param('array', 'respeaker4', 'Array geometry: a name under '
                                'config/arrays/ or a path to a geometry YAML.', read_only=True)
        self.silent_dbfs = self.param('silent_dbfs', -90.0, 'A channel whose level stays below '
                                      'this [dBFS] is reported as silent.', lo=-200.0, hi=0.0,
                                      on_change='silent_dbfs')
        self.clip_level = self.param('clip_level', 0.999, 'Absolute sample value counted as '
                                     'clipped [full scale].', lo=0.5, hi=1.0,
                                     on_change='clip_level')
        self.array = load_array(array_file)
        self.levels = np.full(self.array.channels, -np.inf)
        self.clipped = np.zeros(self.array.channels, dtype=np.int64)
        self.audio = AudioInput(self, 'audio/raw', self.on_block, channels=self.array.channels,
                                sample_rate=self.array.sample_rate, stale_after=2.0,
                                qos=AUDIO_LIVE)
        self.monitor.set_fact('array', self.array.name)
        self.monitor.set_fact('channels', self.array.channels)
        self.monitor.set_fact('sample_rate', self.array.sample_rate)

    def on_block(self, block: AudioBlock) -> None:
        rms = np.sqrt(np.mean(block.samples.astype(np.float64) ** 2, axis=1))
        self.levels = 20.0 * np.log10(np.maximum(rms, 1e-12))
        self.clipped += np.count_nonzero(np.abs(block.samples) >= self.clip_level, axis=1)
        for i, name in enumerate(self.array.mic_names):
            self.monitor.set_fact(f'level_dbfs.{name}', f'{self.levels[i]:.1f}')
            self.monitor.set_fact(f'clipped.{name}', int(self.clipped[i]))
        silent = [n for n, lv in zip(self.array.mic_names, self.levels) if lv < self.silent_dbfs]
        self.monitor.set_error('silent', f'silent channels: {", ".join(silent)}' if silent
                               else None)


def main(argv=None) -> int:
    return node_main(AudioMonitorNode, argv)
