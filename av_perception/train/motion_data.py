"""The data of binaural direction from motion: each camera view's binaural
windows (features, their ears-swapped copy, loudness) and the turns in place
between views, chained (:func:`chain_pairs`). Used by
:mod:`av_perception.train.motion`."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from av_perception.arrays import ArrayGeometry, load_array
from av_perception.audio.level import level_dbfs
from av_perception.direction.classic import ClassicDoa, fold_front
from av_perception.direction.learned_features import FeatureSpec, features, window_starts
from av_perception.errors import ConfigError
from av_perception.rotation.features import MIN_LEVEL_DBFS


@dataclass
class MotionData:
    """Model windows of camera views and the turns between them.

    Attributes:
        x: (V, W, F) features of the W windows that cover each view's binaural
            segment (``window_starts``), float32.
        x_swap: the same with the ears swapped.
        loud: (V, W) window level above MIN_LEVEL_DBFS.
        pairs: (P, 2) view indices of the turns in place.
        yaw: (P,) the teacher's turn [rad, CCW] (the visual model's).
        room: (P,) bag index of each pair.
        view_room: (V,) bag index of each view.
        azimuth: (V,) folded true azimuth where exactly one source sounds,
            else nan: the LABELLED views that fix the sign, and reports;
            never a training target.
        true_yaw: (P,) true turn [rad] (reports only), nan if unknown.
        classic: (V,) GCC-PHAT's folded azimuth of each view's segment
            [rad] (nan: silent, or no estimate): the array geometry's
            left/right, which fixes the global sign when no view is
            labelled (``motion_sign.geometry_views``); None if not computed.
    """

    x: np.ndarray
    x_swap: np.ndarray
    loud: np.ndarray
    pairs: np.ndarray
    yaw: np.ndarray
    room: np.ndarray
    view_room: np.ndarray
    azimuth: np.ndarray
    true_yaw: np.ndarray
    classic: np.ndarray | None = None

    @property
    def n_bags(self) -> int:
        return int(self.view_room.max()) + 1 if len(self.view_room) else 0

    @property
    def val_room(self) -> int:
        """The first validation bag: the last tenth of the bags (at least
        one) validate, in pair training, self-training, the sign's labelled
        views and the reported error alike."""
        return self.n_bags - max(1, self.n_bags // 10)


def view_windows(segment: np.ndarray, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """(W, F) features of the windows covering a (2, n) binaural segment, the
    same with the ears swapped, and each window's level [dBFS]."""
    seg = np.asarray(segment, np.float64)
    x, xs, lv = [], [], []
    for s in window_starts(seg.shape[1], spec.window):
        w = seg[:, s:s + spec.window]
        x.append(features(w, spec))
        xs.append(features(w[::-1], spec))
        lv.append(level_dbfs(w))
    return np.stack(x), np.stack(xs), np.array(lv, np.float32)


def build_data(bags: list, pairs: list, yaw: np.ndarray, spec: FeatureSpec,
               progress: TextIO | None = sys.stderr,
               geometry: ArrayGeometry | None = None) -> MotionData:
    """MotionData from loaded views (``rotation.dataset.BagViews``) and their
    turn pairs (``rotation.dataset.Pair``, ``bag`` indexing ``bags``) with the
    teacher's ``yaw`` per pair [rad]. A view whose binaural segment could
    not be cut counts as silent. ``geometry``: the head (None: the one
    ``spec.array`` names under config/arrays/).

    Raises:
        ConfigError: fewer than 10 pairs.
    """
    starts = np.cumsum([0] + [len(b.views) for b in bags])
    lengths = [v.segment.shape[1] for b in bags for v in b.views if v.segment is not None]
    if not lengths:
        raise ConfigError('no camera frame with its binaural segment')
    segment_length = lengths[0]
    gcc = ClassicDoa(geometry or load_array(spec.array), method='gcc')
    x, xs, loud, az, vroom, classic = [], [], [], [], [], []
    for bi, b in enumerate(bags):
        for v in b.views:
            if v.segment is None:   # its audio could not be cut (the bag's end): silent
                n = len(window_starts(segment_length, spec.window))
                f = g = np.zeros((n, spec.n_features), np.float32)
                lv = np.full(n, -200.0, np.float32)
            else:
                f, g, lv = view_windows(v.segment, spec)
            x.append(f)
            xs.append(g)
            loud.append(lv > MIN_LEVEL_DBFS)
            found = gcc.estimate(v.segment) if loud[-1].any() else []
            classic.append(found[0].azimuth if found else np.nan)
            az.append(fold_front(v.azimuths[0]) if len(v.azimuths) == 1 else np.nan)
            vroom.append(bi)
        if progress is not None:
            print(f'\r[motion] features of {bi + 1}/{len(bags)} bags', end='', file=progress,
                  flush=True)
    if progress is not None:
        print(file=progress)
    if len(pairs) < 10:
        raise ConfigError(f'only {len(pairs)} turn-in-place pairs; need more bags')
    idx, turn, true, room = chain_pairs(
        [(p.bag, starts[p.bag] + p.first, starts[p.bag] + p.second) for p in pairs],
        np.asarray(yaw, np.float64),
        np.array([p.yaw if p.yaw is not None else np.nan for p in pairs], np.float64))
    return MotionData(np.stack(x), np.stack(xs), np.stack(loud), idx, turn, room,
                      np.array(vroom), np.array(az, np.float32), true,
                      np.array(classic, np.float32))


def chain_pairs(links: list, yaw: np.ndarray, true_yaw: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of views of a chain of turns in place: ``links`` (bag,
    first view, second view) of consecutive views between which the robot
    turned in place by ``yaw`` [rad] (the teacher's; ``true_yaw``, reports
    only). Views linked in a row stand at the same place, so any two of them
    differ by the sum of the turns between them (wrapped into [-pi, pi)):
    more pairs, and larger turns, than the consecutive ones. Returns the
    view pairs (P, 2), their turns, true turns and bags."""
    nxt = {a: (b, k) for k, (_, a, b) in enumerate(links)}
    heads = sorted({a for _, a, _ in links} - {b for _, _, b in links})
    pairs, turn, true, room = [], [], [], []
    for h in heads:
        chain, psi, psi_true, v = [h], [0.0], [0.0], h
        while v in nxt:
            v, k = nxt[v]
            chain.append(v)
            psi.append(psi[-1] + yaw[k])
            psi_true.append(psi_true[-1] + true_yaw[k])
        for i in range(len(chain)):
            for j in range(i + 1, len(chain)):
                pairs.append((chain[i], chain[j]))
                turn.append(math.remainder(psi[j] - psi[i], math.tau))
                true.append(math.remainder(psi_true[j] - psi_true[i], math.tau))
                room.append(links[nxt[chain[i]][1]][0])
    return (np.array(pairs, int).reshape(-1, 2), np.array(turn, np.float32),
            np.array(true, np.float32), np.array(room, int))
