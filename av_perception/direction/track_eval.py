"""Tracked sources scored on any bags (``av-perception eval direction
--tracks``): the array's stream through StreamingDoa and the node's tracker,
against the identities of ``gt/sound_direction`` (SoundSourceArray ids), beside
the untracked per-window estimates (id = rank in the window, what a consumer
of per-source messages had). The same scoring as bench/direction_tracking.py
(av_perception.direction.track_metrics).

Bags whose ground truth has no identities (the retired per-source
SoundDirection, every id 0) cannot score identities: they are reported and
left out."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from av_perception.arrays import load_array
from av_perception.audio.chunk import AudioBlock
from av_perception.bag.contents import UnusableBag, each_bag, list_bags
from av_perception.bag.io import read_bag, stamp_ns
from av_perception.bag.sources import source_readings
from av_perception.direction.dataset import STREAM_TOPICS, assemble
from av_perception.direction.evaluate import ROLE_ARRAY, make_estimator
from av_perception.direction.stream import StreamingDoa
from av_perception.direction.track_metrics import (GATE_DEG, TrackScores, estimate_outputs,
                                                   score_tracks, track_outputs, window_truth)
from av_perception.direction.tracker import SourceTracker
from av_perception.errors import ConfigError

#: Chunk fed to StreamingDoa at a time [s] (as the nodes receive audio).
CHUNK_SECONDS = 0.1


@dataclass
class TrackingScores:
    """Summed over the usable bags: the tracker's outputs and the untracked
    estimates, scored the same way."""

    tracked: TrackScores = field(default_factory=TrackScores)
    untracked: TrackScores = field(default_factory=TrackScores)
    bags: int = 0

    def summary(self) -> dict:
        return {'bags': self.bags, 'tracked': self.tracked.summary(),
                'untracked': self.untracked.summary()}


def score_tracking(bags_dir: str | Path, role: str, method: str, num_sources: int = 2,
                   model: str | Path | None = None, namespace: str = '',
                   geometry: str | None = None, hop: float = 0.1,
                   gate_deg: float = GATE_DEG, progress=None) -> TrackingScores:
    """Track recall, ID switches per minute, IDF1, ... of the node's tracker
    (``SourceTracker.for_array``) and of the untracked estimates on every
    usable bag under ``bags_dir``."""
    if role not in ROLE_ARRAY:
        raise ConfigError(f'array role must be one of {list(ROLE_ARRAY)}, got {role!r}')
    geom = load_array(geometry or ROLE_ARRAY[role])
    topic = STREAM_TOPICS[role]
    out = TrackingScores()

    def load(bag: Path):
        chunks, periods = [], []
        for m in read_bag(bag, [topic, 'gt/sound_direction'], namespace):
            if m.topic == topic:
                chunks.append(m.msg)
            elif m.msg.header.frame_id == geom.frame_id:
                periods.append((stamp_ns(m.msg), [(r.id, r.azimuth, r.elevation)
                                                  for r in source_readings(m.msg)]))
        if not chunks:
            raise UnusableBag(bag, f'{topic} messages', 'none')
        ids = {i for _, srcs in periods for i, _, _ in srcs}
        if not ids or ids == {0}:
            raise UnusableBag(bag, f'gt/sound_direction with source ids in frame '
                              f'{geom.frame_id!r} (SoundSourceArray)',
                              'no ids (per-source SoundDirection or no truth)')
        stream = assemble(chunks)
        stream.require(geom.channels, geom.sample_rate, bag, topic, f'array {geom.name}')
        periods.sort(key=lambda p: p[0])
        merged: dict[int, list] = {}
        for t, srcs in periods:  # SoundDirection-style: several messages per stamp
            merged.setdefault(t, []).extend(srcs)
        return stream, sorted(merged.items())

    for bag, (stream, periods) in each_bag(list_bags(bags_dir), load,
                                           [topic, 'gt/sound_direction'], namespace,
                                           f'direction tracking: {geom.name}',
                                           progress or sys.stderr):
        doa = StreamingDoa(make_estimator(method, geom, model, num_src=num_sources),
                           geom.sample_rate, geom.channels, window=geom.doa_window, hop=hop,
                           num_src=num_sources)
        step = int(round(CHUNK_SECONDS * stream.sample_rate))
        results = []
        for j in range(0, stream.samples.shape[1], step):
            results += doa.push(AudioBlock(
                stream.samples[:, j:j + step], stream.sample_rate, j,
                stream.t0_ns + int(round(j / stream.sample_rate * 1e9)), stream.frame_id))
        win = int(round(geom.doa_window * 1e9))
        end = stream.t0_ns + int(round(stream.samples.shape[1] / stream.sample_rate * 1e9))
        truth = window_truth(periods, end, [(r.stamp_ns, r.stamp_ns + win) for r in results])
        amb = geom.front_back_ambiguous
        tracker = SourceTracker.for_array(geom, method, hop=hop)
        out.tracked = out.tracked + score_tracks(track_outputs(tracker, results), truth, hop,
                                                 gate_deg, ambiguous=amb)
        out.untracked = out.untracked + score_tracks(estimate_outputs(results), truth, hop,
                                                     gate_deg, ambiguous=amb)
        out.bags += 1
    return out
