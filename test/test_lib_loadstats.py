"""The load figures (no ROS): latency matched by stamp, recovery after a
burst, backlog drained, memory growth."""

from __future__ import annotations

import os

import pytest

from av_perception.loadstats import (LatencyMatcher, RssSampler, drained_seconds,
                                     percentiles_ms, recovery_seconds, rss_mb)

P = 100_000_000  # 100 ms inputs


def test_output_of_a_window_is_matched_to_the_input_that_completed_it():
    # a 256 ms window stamped at its first sample ends in the 3rd chunk after it
    m = LatencyMatcher(P, offset_ns=256_000_000 - 62_500)
    for k in range(10):
        m.sent(10**9 + k * P, t=float(k))
    assert m.input_stamp(10**9) == 10**9 + 2 * P
    assert m.received(10**9 + P, t=3.25) == pytest.approx(0.25)   # window 1 -> chunk 3
    assert m.received(5 * 10**9, t=9.0) is None and m.unmatched == 1  # never sent
    assert m.latencies(2.5, 3.5) == [pytest.approx(0.25)]


def test_the_rotation_nodes_direction_is_matched_to_the_chunk_that_completes_its_segment():
    """bench/latency.py's second output: rotation/sound_direction is stamped
    at its frame and needs the frame's 0.5 s segment, which the 5th 100 ms
    tick from the frame's completes (its chunk covers 0.4-0.5 s)."""
    from av_perception.ros.load_targets import second_outputs
    target = second_outputs()['rotation/sound_direction']
    assert target.node == 'rotation' and target.output[0] == 'rotation/sound_direction'
    m = LatencyMatcher(int(1e9 / target.rate_hz), int(round(target.offset_s * 1e9)))
    m.sent(10**9, t=0.0)
    assert m.input_stamp(10**9) == 10**9 + 4 * P
    assert m.input_stamp(10**9 + P) == 10**9 + 5 * P


def test_matcher_is_bounded():
    m = LatencyMatcher(P, max_pending=5)
    for k in range(100):
        m.sent(k * P, float(k))
    assert len(m._sent) == 5 and m.received(0, 200.0) is None


def test_recovery_is_when_the_rest_stays_normal():
    burst_end = 10.0
    matched = [(9.0, 0.5), (10.0, 0.4), (10.5, 0.3), (11.0, 0.02), (11.5, 0.03)] + \
              [(12.0 + 0.1 * i, 0.02) for i in range(40)]
    assert recovery_seconds(matched, burst_end, threshold=0.05) == 1.0
    # a lone late output later on is not a backlog
    spike = matched[:20] + [(14.0, 0.9)] + matched[20:]
    assert recovery_seconds(spike, burst_end, threshold=0.05) == 1.0
    assert recovery_seconds([(10.5, 0.3)], burst_end, threshold=0.05) is None
    assert recovery_seconds([], burst_end, 0.05) is None


def test_drained_when_every_message_is_accounted_for():
    hist = [(1.0, {'processed': '5'}), (2.0, {'processed': '8', 'dropped': '1'}),
            (2.5, {'processed': '8', 'dropped': '1', 'lost': '3'})]
    assert drained_seconds(hist, done_at=12, since=1.5) == 1.0
    assert drained_seconds(hist, done_at=13, since=1.5) is None


def test_rss_of_this_process_and_growth():
    assert 1.0 < rss_mb() < 100_000
    s = RssSampler(os.getpid())
    s.samples = [(0.0, 100.0), (1.0, 101.0), (2.0, 130.0), (3.0, 120.0)]
    assert s.growth_mb(1.5, 4.0) == 29.0  # from the last sample before the span
    assert s.trend_mb_per_min(0.0, 4.0) > 0
    assert percentiles_ms([0.001, 0.002, 0.003]) == {'p50_ms': 2.0, 'p95_ms': 2.9}
    assert percentiles_ms([]) == {'p50_ms': None, 'p95_ms': None}
