"""eval direction --tracks: the node's tracker scored against the ids of a
bag's gt/sound_direction (SoundSourceArray), beside the untracked estimates;
bags whose truth carries no ids (the retired SoundDirection) are reported."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from av_perception.bag.io import BagWriter
from av_perception.bag.messages import Messages
from av_perception.direction.track_eval import score_tracking
from av_perception.sim.bags import simulate

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope='module')
def sim_bags(tmp_path_factory):
    out = tmp_path_factory.mktemp('tracks')
    simulate(out, scenes=1, seed=3, split='test', poses=4, jobs=1, progress=io.StringIO())
    return out


def test_tracked_sources_are_scored_against_the_truths_ids(sim_bags):
    err = io.StringIO()
    t = score_tracking(sim_bags, 'array', 'srp', progress=err)
    assert t.bags == 1, err.getvalue()
    tr, un = t.tracked.summary(), t.untracked.summary()
    assert tr['truths'] == un['truths'] > 0          # the same windows, the same truth
    assert tr['windows'] == un['windows'] == 16  # 2 s of audio: 0.5 s windows every 0.1 s
    assert 0 < tr['recall'] <= 1 and 0 < un['recall'] <= 1
    # the tracker keeps identities: no more switches than ranks in a window
    assert tr['id_switches'] <= un['id_switches']


def test_a_bag_without_source_ids_is_reported_not_scored(tmp_path):
    """Per-source SoundDirection truth (id 0 for all): identities cannot be
    scored; the bag is named with the reason, and with no usable bag the
    command fails with that reason."""
    from av_perception.errors import InputError
    m = Messages()
    sd = 'av_perception/msg/SoundDirection'
    with BagWriter(tmp_path / 'old') as w:
        for k in range(10):
            t = 10**9 + k * 10**8
            w.write('/audio/raw', 'av_perception/msg/AudioChunk', t,
                    m.audio_chunk(np.zeros((4, 1600)), 16000, k * 1600, t,
                                  'mic_array'))
            w.write('/gt/sound_direction', sd, t, m.T[sd](
                header=m.header(t, 'mic_array'), azimuth=math.radians(30), elevation=0.0,
                confidence=1.0, front_back_ambiguous=False))
    with pytest.raises(InputError, match=r'/old: no ids \(per-source SoundDirection'):
        score_tracking(tmp_path, 'array', 'srp', progress=io.StringIO())


def test_cli_eval_direction_tracks(sim_bags):
    r = subprocess.run([sys.executable, '-m', 'av_perception.cli', 'eval', 'direction',
                        '--bags', str(sim_bags), '--tracks'], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [ln.split(' (')[0] for ln in lines] == ['tracks array srp_onset tracked',
                                                   'tracks array srp_onset untracked']
    assert all('id_switches_per_min' in ln and 'idf1' in ln for ln in lines)
