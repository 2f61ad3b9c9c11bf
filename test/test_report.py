"""The demo's report: scores what the nodes published against the ground
truth in the same bag, and draws it."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from av_perception import report
from av_perception.bag.io import BagWriter
from av_perception.bag.messages import Messages

SSA = 'av_perception/msg/SoundSourceArray'
SD = 'av_perception/msg/SoundDirection'  # retired; old bags carry it


def _sources(m, msgtype, az_deg, conf, amb, t, frame):
    """One source in the bag's message type."""
    if msgtype == SSA:
        return m.sound_sources([(1, math.radians(az_deg), 0.0, False, conf, amb)], t, frame)
    return m.T[SD](header=m.header(t, frame), azimuth=math.radians(az_deg), elevation=0.0,
                   confidence=conf, front_back_ambiguous=amb)


@pytest.mark.parametrize('msgtype', [SSA, SD])
def test_direction_errors_are_scored_against_the_truth_of_the_same_frame(tmp_path, msgtype):
    """Estimates 5 deg off the truth (and a wild one at 95 deg) give a median
    of 5 deg; truths of another frame and estimates without a truth near in
    time are not scored. Bags of the retired per-source SoundDirection
    score the same."""
    m = Messages()
    with BagWriter(tmp_path / 'bag') as w:
        for topic in ('/gt/sound_direction', '/sound_direction'):
            w.add_topic(topic, msgtype)
        for k in range(10):
            t = 10**9 + k * 10**8
            w.write('/gt/sound_direction', msgtype, t,
                    _sources(m, msgtype, 30, 1, False, t, 'mic_array'))
            w.write('/gt/sound_direction', msgtype, t,
                    _sources(m, msgtype, -120, 1, True, t, 'head'))
            off = 95 if k == 0 else 35
            w.write('/sound_direction', msgtype, t,
                    _sources(m, msgtype, off, 0.5, False, t, 'mic_array'))
        late = 5 * 10**9
        w.write('/sound_direction', msgtype, late,
                _sources(m, msgtype, 0, 0.5, False, late, 'mic_array'))
    metrics = report.build(tmp_path / 'bag', tmp_path / 'out')
    d = metrics['direction_array']
    assert d['estimates'] == 11 and d['scored'] == 10
    assert d['median_deg'] == pytest.approx(5.0, abs=0.01)
    assert d['within10'] == pytest.approx(0.9)
    assert (tmp_path / 'out' / 'report.png').stat().st_size > 10_000
    assert json.loads((tmp_path / 'out' / 'metrics.json').read_text()) == metrics


def test_demo_params_send_the_recorder_into_the_demo_folder(tmp_path):
    from av_perception.ros.demo import demo_params
    doc = yaml.safe_load(demo_params(tmp_path).read_text())
    rec = doc['/**/recorder']['ros__parameters']
    assert rec['output_dir'] == str(tmp_path) and rec['output'] == 'bag'
    assert '/**/sim_world' in doc and '/**/sound_direction' in doc
