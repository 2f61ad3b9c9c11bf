"""The demo's report: scores what the nodes published against the ground
truth in the same bag, and draws it."""

from __future__ import annotations

import json
import math

import numpy as np
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


def test_the_rotation_nodes_directions_are_scored_on_their_own(tmp_path):
    """rotation/sound_direction (the rotation node's binaural directions, one
    per frame's 0.5 s segment) gets its own section, scored against every
    source the head's truth has within the whole segment (a source 0.4 s
    into it counts, which a 0.256 s window would miss), and does not mix
    with the binaural sound_direction instance's."""
    m = Messages()
    with BagWriter(tmp_path / 'bag') as w:
        for topic in ('/gt/sound_direction', '/rotation/sound_direction',
                      '/binaural/sound_direction'):
            w.add_topic(topic, SSA)
        for k in range(10):
            t = 10**9 + k * 10**8
            late = k in (4, 9)       # 0.4 s into each segment: another source, at 60 deg
            w.write('/gt/sound_direction', SSA, t,
                    _sources(m, SSA, 60 if late else 40, 1, True, t, 'head'))
            w.write('/binaural/sound_direction', SSA, t,
                    _sources(m, SSA, 20, 0.5, True, t, 'head'))
        for k in range(2):           # the segments from 1.0 s and 1.5 s
            t = 10**9 + k * 5 * 10**8
            w.write('/rotation/sound_direction', SSA, t,
                    _sources(m, SSA, 43, 0.5, True, t, 'head'))
    metrics = report.build(tmp_path / 'bag', tmp_path / 'out')
    mo, gcc = metrics['direction_binaural_motion'], metrics['direction_binaural']
    assert mo['topic'] == 'rotation/sound_direction' and mo['estimates'] == 2
    assert mo['scored'] == 4                  # 40 and 60 deg in each segment
    assert mo['median_deg'] == pytest.approx(10.0, abs=0.01)   # errors 3, 17, 3, 17
    assert gcc['topic'] == 'binaural/sound_direction' and gcc['estimates'] == 10


def test_demo_params_send_the_recorder_into_the_demo_folder(tmp_path):
    from av_perception.ros.demo import demo_params
    doc = yaml.safe_load(demo_params(tmp_path).read_text())
    rec = doc['/**/recorder']['ros__parameters']
    assert rec['output_dir'] == str(tmp_path) and rec['output'] == 'bag'
    assert '/**/sim_world' in doc and '/**/sound_direction' in doc


def test_echo_map_is_shown_beside_the_truth_carried_through_tf(tmp_path):
    """A fused map in odom and two ground-truth grids in base_link taken 1 m
    apart along y (odom -> base_link on /tf): the truth lands where the TF
    puts it (one wall at x = 0.95 m along both). The map has the wall one
    cell short (still recalled: within one cell) and calls the wall's cells
    free (free IoU 486 / 540); the 3 rows it does not know are not scored."""
    from av_perception.geometry.frames import StaticFrame
    m = Messages()
    res = 0.1
    gt = np.zeros((20, 20), np.int8)         # 2 x 2 m around the base, wall at x = +0.95 m
    gt[:, 19] = 100
    pred = np.zeros((30, 20), np.int8)       # odom, origin (-1, -1): y -1..2 m
    pred[:, 18] = 100                        # the wall one cell short
    pred[0:3, :] = -1                        # not seen: not scored
    with BagWriter(tmp_path / 'bag') as w:
        for k, y in enumerate((0.0, 1.0)):
            t = 10**9 + k * 10**9
            w.write('/tf', 'tf2_msgs/msg/TFMessage', t, m.tf(
                [StaticFrame.from_rpy('odom', 'base_link', (0.0, y, 0.0), (0, 0, 0))], t))
            w.write('/gt/occupancy', 'nav_msgs/msg/OccupancyGrid', t,
                    m.occupancy(gt, res, (-1.0, -1.0), t, 'base_link'))
        w.write('/echo_depth/map', 'nav_msgs/msg/OccupancyGrid', 3 * 10**9,
                m.occupancy(pred, res, (-1.0, -1.0), 3 * 10**9, 'odom'))
    metrics = report.build(tmp_path / 'bag', tmp_path / 'out')
    e = metrics['echo_map']
    assert e['truth_grids'] == 2 and e['truth_grids_without_tf'] == 0
    assert e['frame'] == 'odom' and e['cells_known'] == 27 * 20
    assert e['occ_recall'] == 1.0
    assert e['free_iou'] == pytest.approx(486 / 540, abs=1e-3)
