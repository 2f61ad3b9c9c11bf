"""`simulate --randomize wide` (issue #23, item 2): each perturbation is
applied within its range, recorded in the bag's index entry, and off by
default."""

from __future__ import annotations

import io
import json
import math
from collections import defaultdict
from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.signal import csd

from av_perception.arrays import load_array
from av_perception.bag.io import read_bag
from av_perception.cli import build_parser
from av_perception.sim import randomize as R
from av_perception.sim.bags import SceneJob, simulate
from av_perception.sim.scene import Pose2D, SceneParams, generate_scene
from av_perception.sim.world import SceneSimulator

WIDE = R.PRESETS['wide']
RATE = 16000
CHANNELS = {'array': 4, 'binaural': 2}
ARRAY = load_array('respeaker4').positions
EARS = load_array('binaural').positions


def tone(f: float, n: int = 8000, channels: int = 4) -> np.ndarray:
    t = np.arange(n) / RATE
    return np.tile(np.sin(2 * np.pi * f * t), (channels, 1)).astype(np.float32)


def test_off_by_default(tmp_path):
    assert R.PRESETS['none'].off and not WIDE.off
    assert SceneJob('train', 0, 0, '/tmp', 1).randomize == 'none'
    args = build_parser().parse_args(['simulate', '--scenes', '1', '--out', '/tmp/x'])
    assert args.randomize == 'none'
    args = build_parser().parse_args(['simulate', '--scenes', '1', '--out', '/tmp/x',
                                      '--randomize', 'wide'])
    assert args.randomize == 'wide'
    with pytest.raises(ValueError, match='randomize'):
        simulate(tmp_path / 'never', 1, randomize='widest', progress=io.StringIO())
    assert not (tmp_path / 'never').exists()


def test_wide_has_the_issues_ranges():
    assert WIDE.mic_gain_db == 2.0 and WIDE.mic_position_mm == 2.0
    assert 10 <= WIDE.clock_ppm <= 100
    assert WIDE.diffuse_snr_db and WIDE.directional_snr_db
    assert WIDE.exposure_ev > 0 and WIDE.white_balance > 0 and WIDE.blur_px > 0
    assert WIDE.image_noise > 0 and WIDE.mic_phase_deg > 0


@pytest.mark.parametrize('seed', range(20))
def test_device_draws_within_their_ranges(seed):
    d = R.draw(WIDE, seed, CHANNELS)
    for dev, m in CHANNELS.items():
        assert d.gain_db[dev].shape == (m,) and np.all(np.abs(d.gain_db[dev]) <= 2.0)
        assert np.all(np.abs(d.phase_deg[dev]) <= WIDE.mic_phase_deg)
        assert d.offsets_m[dev].shape == (m, 3) and np.all(np.abs(d.offsets_m[dev]) <= 2e-3)
        assert abs(d.clock_ppm[dev]) <= WIDE.clock_ppm
    assert all(abs(g - 1) <= WIDE.white_balance for g in d.wb_gains)
    f = R.frame_draws(d, 3)
    assert abs(f['exposure_ev']) <= WIDE.exposure_ev
    assert 0 <= f['blur_px'] <= WIDE.blur_px and 0 <= f['image_noise'] <= WIDE.image_noise
    # the same seed draws the same faults; the record names the distribution
    assert R.draw(WIDE, seed, CHANNELS).record() == d.record()
    rec = d.record()
    assert rec['name'] == 'wide' and rec['ranges']['mic_gain_db'] == 2.0
    json.dumps(rec)


def test_gain_per_microphone():
    spec = R.Randomization('t', mic_gain_db=2.0)
    d = R.draw(spec, 1, CHANNELS)
    x = tone(500)
    y = R.perturb_stream(x, 'array', d, ARRAY, RATE, 0, 0)
    got = 20 * np.log10(np.std(y, axis=1) / np.std(x, axis=1))
    assert np.allclose(got, d.gain_db['array'], atol=1e-3)
    assert np.all(np.abs(got) <= 2.0 + 1e-3) and np.ptp(got) > 0.1


def test_phase_per_microphone():
    spec = R.Randomization('t', mic_phase_deg=5.0)
    d = R.draw(spec, 2, CHANNELS)
    x = tone(1000)
    y = R.perturb_stream(x, 'array', d, ARRAY, RATE, 0, 0)
    mid = slice(2000, 6000)   # away from the block's edges
    t = np.arange(8000)[mid] / RATE
    ref = np.exp(-2j * np.pi * 1000 * t)
    for m in range(4):
        phase = np.degrees(np.angle((y[m, mid] * ref).sum() / (x[m, mid] * ref).sum()))
        assert phase == pytest.approx(d.phase_deg['array'][m], abs=0.2)
        assert abs(phase) <= 5.2


def test_clock_offset_resamples_the_stream():
    spec = R.Randomization('t', clock_ppm=50.0)
    d = R.draw(spec, 3, CHANNELS)
    ppm = d.clock_ppm['array']
    assert 0 < abs(ppm) <= 50
    first = 7 * 8000   # the eighth slot of a bag: a drift of several samples by then
    f = 300.0
    n = 8000
    x = np.tile(np.sin(2 * np.pi * f * (first + np.arange(n)) / RATE), (4, 1))
    y = R.perturb_stream(x.astype(np.float32), 'array', d, ARRAY, RATE, 7, first)
    j = np.arange(n)
    want = np.sin(2 * np.pi * f * (first + j + (first + j) * ppm * 1e-6) / RATE)
    inner = slice(100, n - 100)
    assert np.max(np.abs(y[0, inner] - want[inner])) < 2e-3
    assert np.max(np.abs(y[0, inner] - x[0, inner])) > 0.02   # not the unshifted stream


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    return 10 * math.log10(np.mean(x.astype(float) ** 2) / np.mean((y - x) ** 2))


@pytest.mark.parametrize('seed', range(5))
def test_diffuse_noise_at_its_snr_and_coherence(seed):
    spec = R.Randomization('t', diffuse_snr_db=(5.0, 30.0))
    d = R.draw(spec, seed, CHANNELS)
    x = tone(700)
    y = R.perturb_stream(x, 'array', d, ARRAY, RATE, 0, 0)
    assert 5.0 - 0.05 <= snr_db(x, y) <= 30.0 + 0.05
    assert snr_db(x, y) == pytest.approx(d.rng(0, 1).uniform(5.0, 30.0), abs=0.05)
    # a diffuse field: the coherence of two microphones d apart is sinc(2 f d / c)
    for pos in (ARRAY[:3], EARS):
        noise = R.diffuse_noise(np.random.default_rng(seed), pos, 4 * RATE, RATE)
        f, p01 = csd(noise[0], noise[-1], RATE, nperseg=512)
        _, p00 = csd(noise[0], noise[0], RATE, nperseg=512)
        _, p11 = csd(noise[-1], noise[-1], RATE, nperseg=512)
        got = np.real(p01) / np.sqrt(np.real(p00) * np.real(p11))
        dist = np.linalg.norm(pos[0] - pos[-1])
        band = (f > 200) & (f < 6000)
        assert np.allclose(got[band], np.sinc(2 * f[band] * dist / R.SPEED_OF_SOUND), atol=0.2)


@pytest.mark.parametrize('seed', range(5))
def test_directional_noise_arrives_from_the_bags_interferer(seed):
    spec = R.Randomization('t', directional_snr_db=(5.0, 30.0))
    d = R.draw(spec, seed, CHANNELS)
    x = np.zeros((2, 8000), np.float32)
    x[:, ::50] = 0.1   # a click train: the signal
    y = R.perturb_stream(x, 'binaural', d, EARS, RATE, 0, 0)
    assert 5.0 - 0.05 <= snr_db(x, y) <= 30.0 + 0.05
    noise = (y - x).astype(float)
    az, el = d.interferer
    u = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    lag_s = -((EARS[0] - EARS[1]) @ u) / R.SPEED_OF_SOUND   # ear 0 minus ear 1
    spec0, spec1 = np.fft.rfft(noise[0], 32768), np.fft.rfft(noise[1], 32768)
    cc = np.fft.irfft(spec0 * np.conj(spec1) / (np.abs(spec0 * spec1) + 1e-12), 32768)
    lags = np.r_[0:20, -20:0]
    peak = lags[np.argmax(np.r_[cc[:20], cc[-20:]])]
    assert peak == pytest.approx(lag_s * RATE, abs=1.0)


def test_camera_exposure_white_balance_blur_and_noise():
    rng = np.random.default_rng(0)
    img = rng.integers(60, 180, (48, 64, 3)).astype(np.uint8)
    flat = np.full((48, 64, 3), 100, np.uint8)
    for seed in range(10):
        d = R.draw(R.Randomization('t', exposure_ev=0.7), seed, CHANNELS)
        ev = R.frame_draws(d, 2)['exposure_ev']
        y = R.perturb_image(flat, d, 2)
        assert abs(ev) <= 0.7 and y.mean() == pytest.approx(100 * 2 ** ev, abs=0.6)
        d = R.draw(R.Randomization('t', white_balance=0.15), seed, CHANNELS)
        y = R.perturb_image(flat, d, 2).reshape(-1, 3).mean(axis=0)
        assert np.allclose(y / 100, d.wb_gains, atol=0.006)
        assert np.all(np.abs(y / 100 - 1) <= 0.155)
        d = R.draw(R.Randomization('t', blur_px=1.5), seed, CHANNELS)
        s = R.frame_draws(d, 2)['blur_px']
        want = np.clip(np.rint(gaussian_filter(img.astype(np.float32), (s, s, 0))), 0, 255)
        assert 0 <= s <= 1.5 and np.abs(R.perturb_image(img, d, 2) - want).max() <= 1
        d = R.draw(R.Randomization('t', image_noise=6.0), seed, CHANNELS)
        sigma = R.frame_draws(d, 2)['image_noise']
        diff = R.perturb_image(flat, d, 2).astype(float) - 100
        assert 0 <= sigma <= 6 and diff.std() == pytest.approx(sigma, abs=0.3 + 0.05 * sigma)


def test_mic_positions_rendered_displaced_geometry_kept():
    scene = generate_scene(0, 'train', 5, SceneParams(poses=1))
    d = R.draw(WIDE, scene.seed, CHANNELS)
    pose = Pose2D(1.0, 2.0, 0.7)
    with SceneSimulator(scene) as plain, SceneSimulator(scene, mic_offsets=d.offsets_m) as sim:
        a, b = plain.world_mics('array', pose), sim.world_mics('array', pose)
        moved = np.linalg.norm(b - a, axis=0)
        assert np.allclose(moved, np.linalg.norm(d.offsets_m['array'], axis=1), atol=1e-9)
        assert np.all(moved <= 2e-3 * math.sqrt(3)) and np.all(moved > 0)
        assert np.array_equal(sim.arrays['array'].positions, plain.arrays['array'].positions)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    out = {}
    for name in ('none', 'wide'):
        folder = tmp_path_factory.mktemp(name)
        simulate(folder, 1, seed=5, poses=1, jobs=1, progress=io.StringIO(),
                 randomize=name)
        out[name] = folder
    return out


def topics(folder) -> dict:
    bag = next(p for p in folder.iterdir() if p.is_dir())
    got = defaultdict(list)
    for m in read_bag(bag):
        got[m.topic].append(m.msg)
    return got


def test_bags_record_the_distribution_and_keep_the_truth(runs):
    plain = json.loads((runs['none'] / 'index.jsonl').read_text())
    wide = json.loads((runs['wide'] / 'index.jsonl').read_text())
    assert 'randomize' not in plain       # off: the index entry as before
    assert wide['randomize']['name'] == 'wide'
    assert wide['randomize']['ranges'] == WIDE.ranges()
    assert {k: v for k, v in wide.items() if k != 'randomize'} == plain
    a, b = topics(runs['none']), topics(runs['wide'])
    assert set(a) == set(b)
    for t in ('gt/depth', 'gt/source_mask', 'gt/sound_direction', 'gt/pose', 'audio/echo'):
        assert [bytes(m.data) if hasattr(m, 'data') else repr(m) for m in a[t]] == \
            [bytes(m.data) if hasattr(m, 'data') else repr(m) for m in b[t]], t
    for t in ('camera/image_raw', 'audio/raw', 'audio/binaural'):
        assert [bytes(m.data) for m in a[t]] != [bytes(m.data) for m in b[t]], t


def test_perturb_slot_is_not_called_when_off(tmp_path, monkeypatch):
    import av_perception.sim.bags as bags

    def boom(*a, **k):
        raise AssertionError('perturbed with randomize none')
    monkeypatch.setattr(bags, 'perturb_slot', boom)
    job = replace(SceneJob('train', 0, 5, str(tmp_path), 1), echo_only=True)
    assert 'randomize' not in bags.simulate_scene(job)
