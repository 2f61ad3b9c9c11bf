"""Sound cards without hardware, for the tests of audio_capture and
chirp_emitter: ALSA PCMs defined in a config file that ``ALSA_CONFIG_PATH``
points at, which PortAudio lists as devices like any card.

- capture: a ``file`` PCM over a ``null`` slave whose ``infile`` is the read
  end of a Unix stream socket (:class:`CardInput`) that the test writes known
  samples into;
- playback: a ``file`` PCM that writes what is played to a raw file;
- an ``asym`` PCM joining them for a full-duplex device.

Why a socket with ``SO_RCVLOWAT``, not a FIFO: the file plugin fills each
period with ONE ``read()`` of the infile (alsa-lib ``pcm_file.c``,
``snd_pcm_file_areas_read_infile``, for readi/readn and mmap_begin) and hands
on the whole period whatever that read returned. The frames a short read
leaves out keep what the ``null`` slave's ring buffer held: the samples of one
buffer earlier, or, where the ring was never written, the bytes its
``malloc`` found (0, NaN, 1e19..1e37 as float32). A FIFO returns what it
holds, so a test feeding one in real time (882-frame blocks against
512-frame periods) got a stale tail in about every other period (strace:
reads of 4096 bytes returning 2960), at the same ring positions each time:
old samples, or garbage for the whole run when the heap was dirty. The bytes
were never misaligned; the frames were not the test's. A stream socket whose
low-water mark is above any request makes each read wait for the whole
request, as a card hands over a period once it is complete; only the end of
the input (:meth:`CardInput.close`) ends a read short. The plugin takes the
infile as a descriptor number and, given a number, never closes it.

``null`` has no clock: the capture runs as fast as it can read, blocking
when the samples are used up (and so the stream's close waits for the next
samples: a test that stops feeding closes the input first). The samples are
float32 (PortAudio's format, which ``null`` accepts, so it is what the file
plugin reads and writes), with the channel count the stream opens. Not behind
``plug`` (to emulate a 16-bit card): the conversion plugin reads the
clockless ``null`` slave a whole buffer ahead and overwrites unread blocks, so
whole periods of the input's samples are lost (measured: blocks 3200-4800 of
8000 frames missing at a 0.1 s buffer).

The config includes the system's ``alsa.conf``: PortAudio 19.6 aborts in
Pa_Initialize when ALSA's defaults are missing. libasound re-reads the
config when ALSA_CONFIG_PATH or the file changes, and
``av_perception.audio.soundcard.find_device`` re-scans PortAudio's device
list when a device is not found, so devices defined by one test are seen even
if PortAudio started earlier in the same process.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
from pathlib import Path

import numpy as np

ALSA_CONF = Path('/usr/share/alsa/alsa.conf')


def capture_pcm(name: str, infile: int) -> str:
    """A capture PCM reading the descriptor ``infile`` (:attr:`CardInput.infile`)."""
    return (f'pcm.{name} {{\n  type file\n  slave.pcm {{ type null }}\n  file "/dev/null"\n'
            f'  infile {int(infile)}\n  format "raw"\n}}\n')


def playback_pcm(name: str, outfile: Path) -> str:
    return (f'pcm.{name} {{\n  type file\n  slave.pcm {{ type null }}\n'
            f'  file "{outfile}"\n  format "raw"\n}}\n')


def duplex_pcm(name: str, playback: str, capture: str) -> str:
    return (f'pcm.{name} {{\n  type asym\n  playback.pcm "{playback}"\n'
            f'  capture.pcm "{capture}"\n}}\n')


def write_config(path: Path, *pcms: str) -> Path:
    path.write_text(f'<{ALSA_CONF}>\n' + ''.join(pcms))
    return path


class CardInput:
    """What an emulated card's capture delivers: the float32 frames the test
    writes, in order, every period complete (see the module's docstring).

    :attr:`infile` is the descriptor for :func:`capture_pcm`. Writes never
    block (a sender thread passes them on as the capture reads), so a test
    can write a whole signal before the stream opens.
    """

    def __init__(self) -> None:
        reader, self._writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # A read waits for the whole request (or the end of the stream): the
        # low-water mark is capped at the size asked for.
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 2**31 - 1)
        # A bare number, owned by no socket object: libasound reads it for as
        # long as a PCM is open, possibly after the test let go of this object.
        self.infile: int = reader.detach()
        self._pending: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._closed = False
        self._sender = threading.Thread(target=self._send, name='alsa_pcm.CardInput',
                                        daemon=True)
        self._sender.start()

    def write(self, samples: np.ndarray) -> None:
        """(frames, channels) samples, delivered as float32 frames after those
        written before.

        Raises:
            BrokenPipeError: the input is closed.
        """
        if self._closed:
            raise BrokenPipeError('the emulated card input is closed')
        self._pending.put(np.ascontiguousarray(samples, dtype='<f4').tobytes())

    def _send(self) -> None:
        try:
            while (data := self._pending.get()) is not None:
                self._writer.sendall(data)
        except OSError:  # closed while a send waited for the capture
            pass
        finally:
            self._writer.close()

    def close(self) -> None:
        """Unplugged: a read waiting for samples returns at once, short, and
        every later one reads end-of-file (so a stream blocked on its input
        can close). Samples not yet read are gone.

        :attr:`infile` is not closed but turned into ``/dev/null``: a PCM may
        still hold the number, which, closed, the next ``open`` anywhere in
        the process would reuse. One descriptor per card input stays taken
        until the process exits."""
        if self._closed:
            return
        self._closed = True
        self._writer.shutdown(socket.SHUT_RDWR)  # wakes the reader and a blocked send
        self._pending.put(None)
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            os.dup2(null, self.infile)  # drops the socket and what it still held
        finally:
            os.close(null)
        self._sender.join(timeout=5)
