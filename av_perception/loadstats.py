"""Figures of a load run (no ROS): end-to-end latency matched by header
stamp, output rate, resident memory over time, recovery after a burst.

The ROS side (``av_perception.ros.load``) publishes inputs, receives outputs
and calls these; benchmarks (``bench/latency.py``, ``bench/burst.py``,
``bench/soak.py``) and tests turn them into JSON and checks.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np


def rss_mb(pid: int | None = None) -> float:
    """Resident memory (VmRSS) of a process [MB], from /proc/<pid>/status."""
    with open(f'/proc/{pid or os.getpid()}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    raise ValueError(f'no VmRSS for pid {pid}')


def percentiles_ms(seconds, qs=(50, 95)) -> dict[str, float | None]:
    """{'p50_ms': ..., 'p95_ms': ...} of latencies given in seconds (None if none)."""
    x = np.asarray(list(seconds), dtype=np.float64) * 1e3
    return {f'p{q}_ms': (round(float(np.percentile(x, q)), 2) if x.size else None) for q in qs}


@dataclass
class LatencyMatcher:
    """Input publish times by stamp; an output's latency is its receive time
    minus the publish time of the input it was computed from.

    Bounded: at most ``max_pending`` inputs are remembered (the oldest are
    forgotten, as their outputs would be too late to matter).

    Args:
        period_ns: the inputs' stamp spacing [ns] (stamps are ``t0 + k * period_ns``).
        offset_ns: what to add to an output stamp to land inside the period of
            the input that completed it (e.g. the analysis window minus one
            sample for a windowed estimator whose output is stamped at the
            window's first sample).
    """

    period_ns: int
    offset_ns: int = 0
    max_pending: int = 100_000
    t0_ns: int | None = None
    _sent: OrderedDict = field(default_factory=OrderedDict)
    #: (input publish time [s], latency [s]) per matched output, in arrival order
    matched: list = field(default_factory=list)
    unmatched: int = 0

    def sent(self, stamp_ns: int, t: float) -> None:
        """An input stamped ``stamp_ns`` was published at ``t`` [s, monotonic]."""
        if self.t0_ns is None:
            self.t0_ns = stamp_ns
        self._sent[stamp_ns] = t
        while len(self._sent) > self.max_pending:
            self._sent.popitem(last=False)

    def input_stamp(self, out_stamp_ns: int) -> int:
        """Stamp of the input an output stamped ``out_stamp_ns`` came from."""
        k = (out_stamp_ns + self.offset_ns - self.t0_ns) // self.period_ns
        return self.t0_ns + k * self.period_ns

    def received(self, out_stamp_ns: int, t: float) -> float | None:
        """An output arrived at ``t``; returns its latency [s] or None if its
        input is unknown."""
        if self.t0_ns is None:
            self.unmatched += 1
            return None
        sent = self._sent.get(self.input_stamp(out_stamp_ns))
        if sent is None:
            self.unmatched += 1
            return None
        lat = t - sent
        self.matched.append((sent, lat))
        return lat

    def latencies(self, start: float = -np.inf, stop: float = np.inf) -> list[float]:
        """Latencies [s] of the outputs of inputs published in [start, stop]."""
        return [lat for t, lat in self.matched if start <= t <= stop]


def recovery_seconds(matched: list, burst_end: float, threshold: float) -> float | None:
    """Seconds after ``burst_end`` until latency is back to normal: the time
    of the output after the last late one (latency above ``threshold`` [s])
    that is part of a backlog: the first output after the burst, or one next
    to another late one. A lone late output later on (something else on the
    machine) is not a backlog and does not count. None if no output came, or
    the last one is still late.

    Args:
        matched: (publish time, latency) pairs as :attr:`LatencyMatcher.matched`.
    """
    after = sorted((t, lat) for t, lat in matched if t >= burst_end)
    if not after:
        return None
    late = [lat > threshold for _, lat in after]
    n = len(late)
    backlog = [k for k in range(n) if late[k] and (
        k == 0 or late[k - 1] or (k + 1 < n and late[k + 1]))]
    if not backlog:
        return 0.0
    if backlog[-1] + 1 >= n:
        return None
    return round(after[backlog[-1] + 1][0] - burst_end, 3)


def drained_seconds(history: list, done_at: int, since: float) -> float | None:
    """Seconds after ``since`` until a node had accounted for ``done_at``
    messages, from its /diagnostics history: (time, values) pairs whose values
    hold ``processed``, ``dropped`` and ``lost`` (None if it never did)."""
    for t, v in history:
        if t >= since and (int(v.get('processed', 0)) + int(v.get('dropped', 0))
                           + int(v.get('lost', 0))) >= done_at:
            return round(t - since, 3)
    return None


@dataclass
class RssSampler:
    """Resident memory of a process sampled over time: (t [s], MB) pairs."""

    pid: int
    samples: list = field(default_factory=list)

    def sample(self, t: float | None = None) -> float:
        mb = rss_mb(self.pid)
        self.samples.append((time.monotonic() if t is None else t, mb))
        return mb

    def between(self, start: float, stop: float) -> list[float]:
        return [mb for t, mb in self.samples if start <= t < stop]

    def growth_mb(self, start: float, stop: float) -> float | None:
        """Largest RSS in [start, stop) minus the RSS at ``start`` (the last
        sample before it, else the first in the span)."""
        before = [mb for t, mb in self.samples if t < start]
        span = self.between(start, stop)
        if not span:
            return None
        base = before[-1] if before else span[0]
        return round(max(span) - base, 2)

    def trend_mb_per_min(self, start: float = -np.inf, stop: float = np.inf) -> float | None:
        """Least-squares slope of RSS over [start, stop) [MB/min]."""
        pts = [(t, mb) for t, mb in self.samples if start <= t < stop]
        if len(pts) < 3:
            return None
        t, mb = np.asarray(pts).T
        return round(float(np.polyfit(t - t[0], mb, 1)[0] * 60.0), 3)
