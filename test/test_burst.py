"""Burst load, short: every node of the load table fed at 10x its nominal
rate keeps a bounded input queue, accounts for every message in its own
/diagnostics, does not grow, and works through what follows the burst.

The full-length figures (30 s bursts, latency recovery in seconds) are
bench/burst.py's; this test checks the properties, not timings."""

from __future__ import annotations

import re

import pytest

from av_perception.ros.load import RSS_LIMIT_MB, burst
from av_perception.ros.load_targets import TARGETS


@pytest.mark.parametrize('name', sorted(TARGETS))
def test_burst_is_bounded_and_accounted(name, tmp_path):
    target = TARGETS[name]
    # 2 s after the burst: a node that needs most of its input period per
    # message (rotation takes 78 ms of its 100 ms on a slow day of this shared
    # machine) works its queue off at the spare 20 %; it recovered at 0.70 s,
    # the very end of the former 0.7 s window, and failed there
    r = burst(target, tmp_path, separate=False, burst_seconds=1.0, baseline_seconds=0.3,
              after_seconds=2.0, warmup_seconds=0.3)
    # a bounded queue, as the node itself reports it
    m = re.fullmatch(r'keep_last (\d+), (reliable|best_effort)', r['queue'] or '')
    assert m and 1 <= int(m.group(1)) <= 100, r['queue']
    # every published message is accounted for by the node; a best-effort
    # image stream carries no sequence number, so frames the queue overwrote
    # before the node saw them cannot be counted by it
    if m.group(2) == 'reliable':
        assert r['published'] == r['received'] + r['lost'], r
    else:
        assert 0 < r['received'] + r['lost'] <= r['published'], r
    assert r['received'] == r['processed'] + r['dropped'], r
    assert 'internal_error' not in r['drop_reasons'], r['drop_reasons']
    assert r['rss_growth_mb'] is not None and r['rss_growth_mb'] < RSS_LIMIT_MB
    # after the burst the node is at work on fresh input again
    assert r['recovery_s'] is not None, r
    if target.output is not None:
        assert r['after']['outputs'] > 0, r['after']
