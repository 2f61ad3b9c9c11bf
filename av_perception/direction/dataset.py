"""Training and evaluation windows for direction of arrival, from any bags
that carry an array stream (``audio/raw`` or ``audio/binaural``) and, for
training targets, the teacher array (``audio/teacher``, its acoustic image)
and/or ``gt/sound_direction``.

Streams are reassembled from their AudioChunks by ``first_sample``; a
window's true directions are those of the sources that sound throughout it
from the same direction (see :func:`windows`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from av_perception.bag.contents import UnusableBag
from av_perception.bag.contents import list_bags  # noqa: F401 - its former home
from av_perception.bag.io import read_bag, stamp_ns
from av_perception.bag.sources import source_readings
from av_perception.errors import InputError


@dataclass
class Stream:
    """A reassembled audio stream."""

    samples: np.ndarray   # (channels, n) float32
    sample_rate: int
    t0_ns: int            # stamp of sample 0
    frame_id: str

    def require(self, channels: int, sample_rate: int, bag: str | Path, topic: str,
                what: str = 'the model') -> None:
        """Refuse a stream whose channels or sample rate (from its AudioChunks)
        are not the ones ``what`` (a model, an array geometry) expects.

        Raises:
            UnusableBag: naming the bag, the topic, the expected and the
                found channels and rate.
        """
        if self.samples.shape[0] != channels or self.sample_rate != sample_rate:
            raise UnusableBag(bag, f'{topic} with {channels} channels at {sample_rate} Hz '
                              f'({what})', f'{self.samples.shape[0]} channels at '
                              f'{self.sample_rate} Hz (frame {self.frame_id!r})')


def assemble(chunks: list) -> Stream:
    """AudioChunk messages (rosbags objects) -> one continuous stream; gaps
    are zeros, overlaps keep the later chunk."""
    if not chunks:
        raise InputError('stream', 'at least one AudioChunk', 'none')
    chunks = sorted(chunks, key=lambda c: c.first_sample)
    ch, fs = int(chunks[0].channels), int(chunks[0].sample_rate)
    first = int(chunks[0].first_sample)
    end = max(int(c.first_sample) + len(c.data) // ch for c in chunks)
    out = np.zeros((ch, end - first), np.float32)
    for c in chunks:
        if int(c.channels) != ch or int(c.sample_rate) != fs:
            raise InputError('stream', f'{ch} channels at {fs} Hz throughout',
                             f'{c.channels} channels at {c.sample_rate} Hz')
        data = np.asarray(c.data, np.float32).reshape(-1, ch).T
        s = int(c.first_sample) - first
        out[:, s:s + data.shape[1]] = data
    c0 = chunks[0]
    t0 = stamp_ns(c0)
    return Stream(out, fs, t0, c0.header.frame_id)


@dataclass
class Truth:
    """Ground-truth directions valid from ``stamp_ns`` until the next stamp."""

    stamp_ns: int
    azimuths: dict = field(default_factory=dict)  # frame_id -> [azimuth rad]


def truths(msgs: list) -> list[Truth]:
    """gt/sound_direction messages (SoundSourceArray, or the per-source
    SoundDirection of older bags) grouped by stamp; an empty array is a
    silent period of its frame."""
    by_stamp: dict[int, Truth] = {}
    for m in msgs:
        ns = stamp_ns(m)
        t = by_stamp.setdefault(ns, Truth(ns))
        t.azimuths.setdefault(m.header.frame_id, []).extend(
            r.azimuth for r in source_readings(m))
    return [by_stamp[k] for k in sorted(by_stamp)]


@dataclass
class Window:
    """One analysis window of a bag."""

    start: int              # first sample in the stream
    stamp_ns: int
    truth: list[float]      # ground-truth azimuths in the stream's frame ([] if unknown)


def windows(stream: Stream, gt: list[Truth], length: int, hop: int) -> list[Window]:
    """Windows of ``length`` samples every ``hop``, each with the directions
    that hold throughout it: a ground-truth message holds from its stamp to
    the next stamp, so a source counts if every period the window overlaps
    reports it at the same azimuth (it sounds all along, and the robot did
    not turn). Without ground truth, every window (truth [])."""
    fs = stream.sample_rate
    out = []
    n = stream.samples.shape[1]
    stamps = [t.stamp_ns for t in gt]
    for s in range(0, n - length + 1, hop):
        t_start = stream.t0_ns + int(round(s / fs * 1e9))
        t_end = stream.t0_ns + int(round((s + length) / fs * 1e9))
        if not gt:
            out.append(Window(s, t_start, []))
            continue
        first = int(np.searchsorted(stamps, t_start, side='right')) - 1
        last = int(np.searchsorted(stamps, t_end, side='left')) - 1
        if first < 0:
            continue
        truth = list(gt[first].azimuths.get(stream.frame_id, []))
        for k in range(first + 1, last + 1):
            here = gt[k].azimuths.get(stream.frame_id, [])
            truth = [a for a in truth if any(abs(a - b) < 1e-4 for b in here)]
        out.append(Window(s, t_start, truth))
    return out


STREAM_TOPICS = {'array': 'audio/raw', 'binaural': 'audio/binaural'}


def load_bag(path: str | Path, namespace: str = '', salvage: bool = False
             ) -> tuple[dict[str, Stream], list[Truth]]:
    """The audio streams ('array', 'binaural', 'teacher' where present) and
    the ground truth of one bag (``salvage``: of its readable part, if it is
    damaged; see :func:`~av_perception.bag.io.read_bag`)."""
    wanted = {'audio/raw': 'array', 'audio/binaural': 'binaural', 'audio/teacher': 'teacher'}
    chunks: dict[str, list] = {v: [] for v in wanted.values()}
    gt = []
    for m in read_bag(path, list(wanted) + ['gt/sound_direction'], namespace, salvage=salvage):
        if m.topic == 'gt/sound_direction':
            gt.append(m.msg)
        else:
            chunks[wanted[m.topic]].append(m.msg)
    return {k: assemble(v) for k, v in chunks.items() if v}, truths(gt)
