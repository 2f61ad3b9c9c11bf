"""Sound cards without hardware, for the tests of audio_capture and
chirp_emitter: ALSA PCMs defined in a config file that ``ALSA_CONFIG_PATH``
points at, which PortAudio lists as devices like any card.

- capture: a ``file`` PCM whose ``infile`` is a FIFO filled by the test with
  known samples (a FIFO, not a plain file: ``null`` has no clock, so the
  capture runs as fast as it can read; from a FIFO it blocks when the data
  is used up instead of repeating stale buffer contents);
- playback: a ``file`` PCM that writes what is played to a raw file;
- an ``asym`` PCM joining them for a full-duplex device.

The samples are float32 (PortAudio's format, which ``null`` accepts, so it is
what the file plugin reads and writes), with the channel count the stream
opens. Not behind ``plug`` (to emulate a 16-bit card): the conversion plugin
reads the clockless ``null`` slave a whole buffer ahead and overwrites
unread blocks, so whole periods of the FIFO's samples are lost (measured:
blocks 3200-4800 of 8000 frames missing at a 0.1 s buffer).

The config includes the system's ``alsa.conf``: PortAudio 19.6 aborts in
Pa_Initialize when ALSA's defaults are missing. libasound re-reads the
config when ALSA_CONFIG_PATH or the file changes, and
``av_perception.audio.soundcard.find_device`` re-scans PortAudio's device
list when a device is not found, so devices defined by one test are seen even
if PortAudio started earlier in the same process.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import numpy as np

ALSA_CONF = Path('/usr/share/alsa/alsa.conf')
F_SETPIPE_SZ = 1031


def capture_pcm(name: str, infile: Path) -> str:
    return (f'pcm.{name} {{\n  type file\n  slave.pcm {{ type null }}\n  file "/dev/null"\n'
            f'  infile "{infile}"\n  format "raw"\n}}\n')


def playback_pcm(name: str, outfile: Path) -> str:
    return (f'pcm.{name} {{\n  type file\n  slave.pcm {{ type null }}\n'
            f'  file "{outfile}"\n  format "raw"\n}}\n')


def duplex_pcm(name: str, playback: str, capture: str) -> str:
    return (f'pcm.{name} {{\n  type asym\n  playback.pcm "{playback}"\n'
            f'  capture.pcm "{capture}"\n}}\n')


def write_config(path: Path, *pcms: str) -> Path:
    path.write_text(f'<{ALSA_CONF}>\n' + ''.join(pcms))
    return path


class Fifo:
    """A FIFO the test writes float32 frames into, held open for writing (so
    the PCM's open never blocks) with room for ``capacity`` bytes."""

    def __init__(self, path: Path, capacity: int = 1 << 20) -> None:
        self.path = path
        os.mkfifo(path)
        self.fd = os.open(path, os.O_RDWR)
        fcntl.fcntl(self.fd, F_SETPIPE_SZ, capacity)

    def write(self, samples: np.ndarray) -> None:
        """(frames, channels) samples, written at once as float32 frames."""
        data = np.ascontiguousarray(samples, dtype='<f4').tobytes()
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def close(self) -> None:
        """No writer left: the capture reads end-of-file (and stops blocking)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
