"""Scoring direction of arrival on any bags with an array stream and
``gt/sound_direction`` (``av-perception eval direction`` and bench/direction).

The array geometry is a named one (the role's default, or ``geometry``);
each bag's stream must have its channels and sample rate (from the
AudioChunks), and the truth is the gt/sound_direction in the stream's own
frame (its AudioChunks' ``header.frame_id``). A bag that lacks the stream or
the truth, or whose stream is not the geometry's, is reported and left out."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from av_perception.arrays import load_array
from av_perception.bag.contents import UnusableBag, each_bag, list_bags
from av_perception.direction.classic import METHODS, ClassicDoa, fold_front
from av_perception.direction.dataset import STREAM_TOPICS, load_bag, windows
from av_perception.errors import ConfigError
from av_perception.paths import shipped_model

ROLE_ARRAY = {'array': 'respeaker4', 'binaural': 'binaural'}
HOP_SECONDS = 0.1      # one estimate per 100 ms chunk, as the node
#: pyroomacoustics' own SRP-PHAT and NormMUSIC (scoring names -> the
#: package's method they are the baselines of).
REFERENCES = {'srp_pra': 'srp', 'normmusic_pra': 'normmusic'}
#: the methods the node and ``eval direction`` run (:func:`make_estimator`):
#: the classic ones, SRP-PHAT and GCC-PHAT with onset weighting (``srp_onset``,
#: ``gcc_onset``: ClassicDoa(onset=True); the former is the av heatmap's
#: acoustic image) and the learned model
ONSET_METHODS = {'srp_onset': 'srp', 'gcc_onset': 'gcc'}
ESTIMATORS = (*METHODS, *ONSET_METHODS, 'learned')
# The analysis window is the array's ``doa_window``, as the node's default.


def angle_error(a: float, b: float) -> float:
    """Absolute angular difference [rad]."""
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)


def make_estimator(method: str, geometry, model: str | Path | None = None, num_src: int = 1):
    """The estimator of ``method`` for an array: ClassicDoa, or LearnedDoa on
    ``model`` (default: the shipped ``models/direction_<array>.onnx``);
    ``srp_onset`` / ``gcc_onset``: SRP-PHAT / GCC-PHAT with onset weighting. The
    node and the scoring build it here alike. ``srp_pra`` and
    ``normmusic_pra`` (scoring only, not node methods) are pyroomacoustics'
    own, the baselines of the package's (:data:`REFERENCES`).

    Raises:
        InputError: a method the array cannot use (gcc needs 2 microphones).
        ConfigError: a missing or mismatched model.
    """
    if method == 'learned':
        from av_perception.direction.learned import LearnedDoa
        return LearnedDoa(model or shipped_model(f'direction_{geometry.name}'), geometry)
    if method in REFERENCES:
        return ClassicDoa(geometry, REFERENCES[method], num_src=num_src, reference=True)
    if method in ONSET_METHODS:
        return ClassicDoa(geometry, ONSET_METHODS[method], num_src=num_src, onset=True)
    return ClassicDoa(geometry, method, num_src=num_src)


@dataclass
class Scores:
    """Per-window errors of one method on one set of bags."""

    errors_deg: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    bags: list = field(default_factory=list)     # bag index of each error
    stamps: list = field(default_factory=list)   # window stamp [ns] of each error
    truths: list = field(default_factory=list)   # true azimuth [rad] of each error

    def summary(self, mask: np.ndarray | None = None) -> dict:
        e = np.asarray(self.errors_deg, float)
        if mask is not None:
            e = e[mask]
        if e.size == 0:
            return {'median_deg': None, 'mean_deg': None, 'within10': None, 'n': 0,
                    'ms_per_100ms': self.ms_per_100ms}
        return {'median_deg': round(float(np.median(e)), 2), 'mean_deg': round(float(e.mean()), 2),
                'within10': round(float((e <= 10).mean()), 3), 'n': int(e.size),
                'ms_per_100ms': self.ms_per_100ms}

    @property
    def ms_per_100ms(self) -> float | None:
        return round(1e3 * float(np.median(self.seconds)), 2) if self.seconds else None


def score(bags_dir: str | Path, role: str, method: str, model: str | Path | None = None,
          namespace: str = '', max_windows_per_bag: int | None = None,
          salvage: bool = False, geometry: str | None = None, progress=None) -> Scores:
    """Errors of ``method`` against ``gt/sound_direction`` on every window of
    every usable bag: each true source is matched to the nearest estimate
    (as many estimates as true sources are asked for); a missing estimate
    counts as the largest error (180 deg, 90 for front/back-ambiguous
    arrays). ``geometry``: array name or file (default: the role's,
    ``ROLE_ARRAY``). ``salvage``: score the readable part of damaged bags
    instead of failing. Skipped bags are reported on ``progress`` (default
    stderr); ``Scores.bags`` holds indices into ``list_bags(bags_dir)``."""
    if role not in ROLE_ARRAY:
        raise ConfigError(f'array role must be one of {list(ROLE_ARRAY)}, got {role!r}')
    geometry = load_array(geometry or ROLE_ARRAY[role])
    est = make_estimator(method, geometry, model)
    ambiguous = est.ambiguous
    out = Scores()
    topic = STREAM_TOPICS[role]
    bags = list_bags(bags_dir)

    def load(bag: Path):
        streams, gt = load_bag(bag, namespace, salvage=salvage)
        if role not in streams:      # a damaged bag, read with salvage
            raise UnusableBag(bag, f'{topic} messages', 'none readable')
        stream = streams[role]
        stream.require(geometry.channels, geometry.sample_rate, bag, topic,
                       f'array {geometry.name}')
        seen = {f for t in gt for f in t.azimuths}
        if stream.frame_id not in seen:
            raise UnusableBag(bag, f'gt/sound_direction in the frame of {topic} '
                              f'({stream.frame_id!r})', f'frames {sorted(seen)}')
        return stream, gt

    for bag, (stream, gt) in each_bag(bags, load, [topic, 'gt/sound_direction'], namespace,
                                      f'direction: scoring {geometry.name}',
                                      progress or sys.stderr):
        bi = bags.index(bag)
        hop = int(round(HOP_SECONDS * stream.sample_rate))
        length = int(round(geometry.doa_window * stream.sample_rate))
        ws = [w for w in windows(stream, gt, length, hop) if w.truth]
        if max_windows_per_bag:
            ws = ws[:max_windows_per_bag]
        for w in ws:
            seg = stream.samples[:, w.start:w.start + length]
            t = time.thread_time()  # CPU time of this thread: one core, even on a busy machine
            found = est.estimate(seg, len(w.truth))
            out.seconds.append(time.thread_time() - t)
            for truth in w.truth:
                tt = fold_front(truth) if ambiguous else truth
                if found:
                    err = min(angle_error(f.azimuth, tt) for f in found)
                else:
                    err = math.pi / 2 if ambiguous else math.pi
                out.errors_deg.append(math.degrees(err))
                out.bags.append(bi)
                out.stamps.append(w.stamp_ns)
                out.truths.append(truth)
    return out
