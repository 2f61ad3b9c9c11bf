"""`av-perception simulate`: bags with the contract's topics, reproducible
byte for byte, readable back into the same data."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from av_perception.audio.chunk import AudioBlock, StreamChecker
from av_perception.bag.io import read_bag
from av_perception.sim.bags import simulate
from av_perception.sim.scene import SceneParams, generate_scene
from av_perception.robot import load_robot

POSES = 2


@pytest.fixture(scope='module')
def two_runs(tmp_path_factory):
    a = tmp_path_factory.mktemp('a')
    b = tmp_path_factory.mktemp('b')
    simulate(a, scenes=1, seed=5, poses=POSES, jobs=1, progress=io.StringIO())
    simulate(b, scenes=1, seed=5, poses=POSES, jobs=1, progress=io.StringIO())
    return a, b


def test_same_seed_gives_byte_identical_bags(two_runs):
    a, b = two_runs
    fa = sorted(a.rglob('*.mcap'))
    assert len(fa) == 1
    for f in fa:
        assert f.read_bytes() == (b / f.relative_to(a)).read_bytes()
    assert (a / 'index.jsonl').read_text() == (b / 'index.jsonl').read_text()


def test_bag_round_trips_with_the_contract_topics(two_runs):
    a, _ = two_runs
    bag = next(a.glob('train_*'))
    msgs = list(read_bag(bag))
    counts = Counter(m.topic for m in msgs)
    scene = generate_scene(0, 'train', 5, SceneParams(poses=POSES))
    assert counts['camera/image_raw'] == POSES
    assert counts['camera/camera_info'] == POSES
    assert counts['audio/echo'] == POSES
    assert counts['audio/raw'] == POSES * 5 and counts['audio/binaural'] == POSES * 5
    for t in ('gt/depth', 'gt/camera_info', 'gt/source_mask', 'gt/pose', 'gt/occupancy'):
        assert counts[t] == POSES, t
    # one SoundSourceArray per array for each 100 ms chunk: the sources
    # sounding in it (id = scene source index + 1), empty when none does
    dirs = [m.msg for m in msgs if m.topic == 'gt/sound_direction']
    chunk_stamps = [(m.msg.header.stamp.sec, m.msg.header.stamp.nanosec) for m in msgs
                    if m.topic == 'audio/raw']
    assert len(dirs) == 2 * len(chunk_stamps)
    assert sorted((d.header.stamp.sec, d.header.stamp.nanosec) for d in dirs) == \
        sorted(chunk_stamps * 2)
    frames = Counter(d.header.frame_id for d in dirs)
    assert frames['mic_array'] == frames['head'] == len(dirs) // 2
    ids = {s.id for d in dirs for s in d.sources}
    assert ids and ids <= {i + 1 for i, s in enumerate(scene.sources) if s.active}
    for d in dirs:
        for s in d.sources:
            assert s.confidence == 1.0 and s.elevation_known
            assert s.front_back_ambiguous == (d.header.frame_id == 'head')
            assert math.isclose(math.hypot(s.direction.x, s.direction.y, s.direction.z), 1.0,
                                rel_tol=1e-6)
    assert counts['tf_static'] == 1

    robot = load_robot()
    img = next(m.msg for m in msgs if m.topic == 'camera/image_raw')
    assert (img.width, img.height, img.encoding) == (robot.camera.width, robot.camera.height,
                                                     'rgb8')
    assert img.header.frame_id == 'camera_link_optical'
    depth = next(m.msg for m in msgs if m.topic == 'gt/depth')
    assert depth.encoding == '32FC1' and depth.header.stamp == img.header.stamp
    d = np.frombuffer(depth.data.tobytes(), np.float32)
    assert np.isfinite(d).all() and 0.05 < d.min() and d.max() < 15.0
    echo = next(m.msg for m in msgs if m.topic == 'audio/echo')
    assert echo.header.stamp == img.header.stamp  # emitted when the frame is taken
    assert echo.channels == 2 and len(echo.data) == 2 * robot.echo_window(echo.sample_rate)
    tf = next(m.msg for m in msgs if m.topic == 'tf_static')
    assert {t.child_frame_id for t in tf.transforms} >= {
        'mic_array', 'head', 'echo_head', 'camera_link', 'camera_link_optical'}
    # the wheel odometry: odom -> base_link at every echo's stamp, the motion
    # since the first pose (in the first pose's frame)
    odom = [m.msg.transforms for m in msgs if m.topic == 'tf']
    echoes = [m.msg.header.stamp for m in msgs if m.topic == 'audio/echo']
    assert [t[0].header.stamp for t in odom] == echoes
    assert {(t[0].header.frame_id, t[0].child_frame_id) for t in odom} == {('odom', 'base_link')}
    from av_perception.geometry.frames import quaternion_yaw
    p0 = scene.poses[0]
    for k, (t,) in enumerate(odom):
        p = scene.poses[k]
        tr = t.transform.translation
        moved = np.hypot(p.x - p0.x, p.y - p0.y)
        ahead = (p.x - p0.x) * np.cos(p0.yaw) + (p.y - p0.y) * np.sin(p0.yaw)
        assert (np.hypot(tr.x, tr.y), tr.x, tr.z) == pytest.approx((moved, ahead, 0.0), abs=1e-9)
        assert np.cos(quaternion_yaw(t.transform.rotation) - (p.yaw - p0.yaw)) == pytest.approx(1)
    # the streams are continuous: no gap, overlap or stamp jump between chunks
    for topic in ('audio/raw', 'audio/binaural'):
        checker = StreamChecker()
        for m in (m for m in msgs if m.topic == topic):
            c = m.msg
            block = AudioBlock(np.asarray(c.data, np.float32).reshape(-1, c.channels).T,
                               c.sample_rate, c.first_sample,
                               c.header.stamp.sec * 10**9 + c.header.stamp.nanosec)
            assert checker.check(block) == []


def test_simulate_cli_reports_and_refuses_bad_arguments(tmp_path):
    exe = Path(sys.executable).parent / 'av-perception'
    r = subprocess.run([str(exe), 'simulate', '--scenes', '0', '--out', str(tmp_path / 'x')],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and 'at least 1' in r.stderr and 'Traceback' not in r.stderr


def test_simulate_renders_the_chosen_view(tmp_path):
    """`simulate --view sources` renders the scene the generator makes for that
    view (close-ups of the source objects), not the default path."""
    from av_perception.sim.bags import SceneJob, simulate_scene
    from av_perception.sim.scene import describe, generate_scene, view_params
    res = simulate_scene(SceneJob('train', 3, 0, str(tmp_path), poses=1, echo_only=True,
                                  view='sources'))
    want = generate_scene(3, 'train', 0, view_params('sources', poses=1))
    assert res['scene'] == describe(want)
    assert res['scene'] != describe(generate_scene(3, 'train', 0, view_params('path', poses=1)))
    exe = Path(sys.executable).parent / 'av-perception'
    r = subprocess.run([str(exe), 'simulate', '--scenes', '1', '--view', 'overhead', '--out',
                        str(tmp_path / 'x')], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and 'sources' in r.stderr and 'Traceback' not in r.stderr


def test_a_rendering_by_other_simulator_code_is_recognised_as_stale(two_runs, tmp_path,
                                                                    tmp_path_factory,
                                                                    monkeypatch):
    """Every index row carries the simulator's fingerprint; a folder whose
    rows carry another (or none: rendered before fingerprints) is stale, and
    the benches render it again (bench/rendered.py) instead of scoring an
    older simulator's rooms, but only in their own cache: a user's folder is
    never removed."""
    import json
    import shutil

    from av_perception.sim.bags import (FINGERPRINT_KEY, rendered_by_this_simulator,
                                        simulator_fingerprint)
    a, _ = two_runs
    fp = simulator_fingerprint()
    assert len(fp) == 16 and fp == simulator_fingerprint()
    rows = [json.loads(line) for line in (a / 'index.jsonl').read_text().splitlines()]
    assert [r[FINGERPRINT_KEY] for r in rows] == [fp]
    assert rendered_by_this_simulator(a)
    # another version of a library or of espeak-ng is another simulator
    from av_perception.sim import bags as sim_bags
    tools = sim_bags.render_tools()
    assert [t.split()[0] for t in tools] == ['pyroomacoustics', 'numpy', 'scipy', 'pybullet',
                                             'espeak-ng']
    monkeypatch.setattr(sim_bags, 'render_tools', lambda: [*tools[:-1], 'espeak-ng 0.0'])
    assert simulator_fingerprint() != fp and not rendered_by_this_simulator(a)
    monkeypatch.setattr(sim_bags, 'render_tools', lambda: tools)
    assert simulator_fingerprint() == fp
    old = tmp_path / 'old'
    shutil.copytree(a, old)
    for stale in ({**rows[0], FINGERPRINT_KEY: '0' * 16},
                  {k: v for k, v in rows[0].items() if k != FINGERPRINT_KEY}):
        (old / 'index.jsonl').write_text(json.dumps(stale) + '\n')
        assert not rendered_by_this_simulator(old)
    assert not rendered_by_this_simulator(tmp_path / 'nothing here')

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'bench'))
    try:
        import rendered
    finally:
        sys.path.pop(0)
    user = tmp_path_factory.mktemp('user') / 'old'
    shutil.copytree(old, user)
    monkeypatch.setattr(rendered, 'CACHE', tmp_path)
    assert rendered.fresh(a) == a and (a / 'index.jsonl').is_file()   # current: kept
    assert rendered.fresh(user) == user and (user / 'index.jsonl').is_file()  # not ours: kept
    assert rendered.ensure(user) == user                              # and not re-rendered
    assert not rendered.fresh(old).exists()                           # stale, cached: removed

    # a cached rendering of fewer rooms than asked for is rendered again
    # (a bench run with a larger --scenes must not score the old, smaller set)
    calls = []
    monkeypatch.setattr(rendered, 'simulate', lambda folder, scenes, **kw: calls.append(
        (folder.exists(), scenes)))
    cached = tmp_path / 'cached'
    shutil.copytree(a, cached)
    assert rendered.ensure(cached, 1) == cached and calls == []       # one room, one asked
    assert rendered.ensure(cached, 2) == cached
    assert calls == [(False, 2)]                                      # removed, rendered anew


def test_simulate_leaves_no_texture_cache_behind(tmp_path, monkeypatch):
    """The workers' texture images go to one cache the simulating process
    owns and removes: a pool's workers end without running atexit handlers,
    and each used to leave its own directory (up to 265 MB) in the temp
    folder, per call (97 of them, 7 GB, on the development machine)."""
    import tempfile
    tmp = tmp_path / 'tmp'
    tmp.mkdir()
    monkeypatch.setenv('TMPDIR', str(tmp))       # the spawned workers' temp folder
    monkeypatch.setattr(tempfile, 'tempdir', None)  # and this process's
    simulate(tmp_path / 'bags', scenes=2, seed=5, poses=1, jobs=2, progress=io.StringIO())
    assert len(list((tmp_path / 'bags').rglob('*.mcap'))) == 2
    assert sorted(p.name for p in tmp.iterdir()) == []
