"""Learned direction of arrival: features, targets, export (ONNX equals
PyTorch), contract checks, and a tiny end-to-end training from simulated
bags with the teacher array."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from av_perception.arrays import load_array
from av_perception.direction.learned_features import (FeatureSpec, features, label_map,
                                                      map_to_bins, peaks, spec_for)
from av_perception.errors import ConfigError, InputError


def test_spec_round_trips_through_metadata_and_sizes_fit():
    spec = spec_for(load_array('respeaker4'))
    assert FeatureSpec.from_metadata(spec.to_metadata()) == spec
    assert len(spec.pairs) == 6 and spec.bins == 72 and not spec.front_only
    x = features(np.random.default_rng(0).normal(size=(4, spec.window)), spec)
    assert x.shape == (spec.n_features,) and np.isfinite(x).all()
    b = spec_for(load_array('binaural'))
    assert b.front_only and b.bins == 37 and len(b.pairs) == 1


def test_gcc_feature_peaks_at_the_delay_between_two_mics():
    """A copy delayed by 3 samples on mic 1 puts the GCC maximum 3 x upsample
    lags from zero."""
    spec = spec_for(load_array('binaural'))
    s = np.random.default_rng(1).normal(size=spec.window + 3)
    x = np.stack([s[3:], s[:-3]])  # mic 1 hears it 3 samples later
    f = features(x, spec)
    g = f[:2 * spec.max_lag + 1]
    assert int(np.argmax(g)) - spec.max_lag == 3 * spec.upsample


def test_a_model_from_before_onset_features_reads_as_whole_window_features():
    """Models exported before ``onset_history`` existed carry no such key:
    their contract reads as 0 (the whole window's cross-correlation, what they
    were trained on); a spec with onset weighting round-trips."""
    spec = spec_for(load_array('binaural'))
    old = {k: v for k, v in spec.to_metadata().items() if k != 'onset_history'}
    assert FeatureSpec.from_metadata(old) == spec and spec.onset_history == 0
    onset = spec_for(load_array('binaural'), onset_history=3)
    assert FeatureSpec.from_metadata(onset.to_metadata()) == onset
    assert onset.n_features == spec.n_features


def test_onset_gcc_follows_the_direct_sound_not_a_louder_reflection():
    """Noise bursts reaching mic 1 3 samples after mic 0 (the direct sound),
    and 25 ms later 1.6x louder from the other side (mic 0 8 samples after
    mic 1: a reflection): the whole window's GCC peaks at the reflection's
    lag, the onset-weighted one at the direct sound's (frames of 16 ms, hop
    8 ms, as the acoustic image's)."""
    fs = 16000
    rng = np.random.default_rng(2)
    n = 4096 + 400
    t = np.arange(n)
    dry = rng.normal(size=n) * ((t % int(0.15 * fs)) < int(0.06 * fs))
    delay = int(0.025 * fs)

    def shifted(sig, k):
        return np.concatenate([np.zeros(k), sig[:len(sig) - k]])
    mic0 = dry + 1.6 * shifted(dry, delay + 8)
    mic1 = shifted(dry, 3) + 1.6 * shifted(dry, delay)
    x = np.stack([mic0, mic1])[:, 200:200 + 4096] + 1e-4 * rng.normal(size=(2, 4096))
    lag = {}
    for hist in (0, 3):
        spec = spec_for(load_array('binaural'), onset_history=hist)
        g = features(x, spec)[:2 * spec.max_lag + 1]
        lag[hist] = (int(np.argmax(g)) - spec.max_lag) / spec.upsample
    assert abs(lag[0] - (-8)) <= 0.5 and abs(lag[3] - 3) <= 0.5, lag


def test_targets_fold_front_back_and_peaks_find_bumps():
    spec = spec_for(load_array('binaural'))
    y = label_map([math.radians(150)], spec)  # behind-left folds to 30 deg
    (az, conf), = peaks(y, spec, 1)
    assert math.degrees(az) == pytest.approx(30, abs=3)
    assert 0.5 < conf <= 1.0
    grid = np.linspace(-math.pi, math.pi, 360, endpoint=False)
    m = map_to_bins(grid, np.exp(-((grid - math.radians(-170)) ** 2) / 0.01), spec)
    assert math.degrees(spec.grid()[int(np.argmax(m))]) == pytest.approx(-10, abs=5)
    assert m.sum() == pytest.approx(1.0)
    spec4 = spec_for(load_array('respeaker4'))
    two = peaks(label_map([math.radians(10), math.radians(100)], spec4), spec4, 2)
    assert sorted(round(math.degrees(a)) for a, _ in two) == [10, 100]


def test_onnx_export_equals_pytorch_and_carries_the_contract(tmp_path):
    import onnxruntime as ort
    import torch

    from av_perception.train.direction import export, make_model
    spec = spec_for(load_array('respeaker4'))
    torch.manual_seed(0)
    model = make_model(spec.n_features, spec.bins).eval()
    mean = np.random.default_rng(0).normal(size=spec.n_features).astype(np.float32)
    std = np.ones(spec.n_features, np.float32) * 2
    wrapped = export(model, spec, mean, std, tmp_path / 'm.onnx', 'teacher', 10, 1)
    x = np.random.default_rng(2).normal(size=(5, spec.n_features)).astype(np.float32)
    sess = ort.InferenceSession(str(tmp_path / 'm.onnx'), providers=['CPUExecutionProvider'])
    got = sess.run(None, {'features': x})[0]
    with torch.no_grad():
        want = wrapped(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta['array'] == 'respeaker4' and meta['task'] == 'direction'


def test_a_model_for_another_array_is_refused(tmp_path):
    import torch

    from av_perception.direction.learned import LearnedDoa
    from av_perception.train.direction import export, make_model
    spec = spec_for(load_array('respeaker4'))
    export(make_model(spec.n_features, spec.bins), spec, np.zeros(spec.n_features),
           np.ones(spec.n_features), tmp_path / 'm.onnx', 'teacher', 1, 1)
    with pytest.raises(ConfigError, match="array='binaural'"):
        LearnedDoa(tmp_path / 'm.onnx', load_array('binaural'))
    (tmp_path / 'bad.onnx').write_bytes(b'not a model')
    with pytest.raises(ConfigError, match='not a loadable ONNX model'):
        LearnedDoa(tmp_path / 'bad.onnx', load_array('respeaker4'))
    with pytest.raises(ConfigError, match='does not exist'):
        LearnedDoa(tmp_path / 'missing.onnx', load_array('respeaker4'))
    assert torch is not None


@pytest.fixture(scope='module')
def teacher_bags(tmp_path_factory):
    from av_perception.sim.bags import simulate
    out = tmp_path_factory.mktemp('teacher_bags')
    simulate(out, scenes=2, seed=9, poses=3, teacher=True, progress=io.StringIO())
    return out


def test_teacher_bags_carry_the_16_mic_stream(teacher_bags):
    from av_perception.direction.dataset import list_bags, load_bag
    streams, gt = load_bag(list_bags(teacher_bags)[0])
    assert streams['teacher'].samples.shape[0] == 16
    assert streams['teacher'].samples.shape[1] == streams['array'].samples.shape[1]
    assert gt and gt[0].azimuths


def test_training_end_to_end_lowers_the_loss_and_exports(teacher_bags, tmp_path):
    from av_perception.direction.learned import LearnedDoa
    from av_perception.train.direction import DirectionConfig, train
    out = tmp_path / 'direction_respeaker4.onnx'
    res = train(teacher_bags, out, DirectionConfig(array='array', target='teacher', epochs=8,
                                                   jobs=1), progress=io.StringIO())
    curve = res.fit.final
    assert res.model == out and res.bags >= 1 and 1 <= res.fit.epoch <= 8
    first = __import__('json').loads((tmp_path / 'direction_respeaker4_checkpoints' /
                                      'curve.json').read_text())[0]
    assert curve['train_loss'] < first['train_loss']
    assert (tmp_path / 'direction_respeaker4_checkpoints' / 'curve.png').is_file()
    est = LearnedDoa(out, load_array('respeaker4'))
    found = est.estimate(np.random.default_rng(0).normal(size=(4, 4096)) * 0.1, 2)
    assert len(found) == 2 and all(0 <= f.confidence <= 1 for f in found)
    # resuming from the checkpoint continues instead of starting over
    res2 = train(teacher_bags, out, DirectionConfig(array='array', target='teacher',
                                                    epochs=10, jobs=1), progress=io.StringIO())
    assert res2.fit.final['epoch'] == 10


def test_a_model_trained_with_onset_features_records_and_uses_them(teacher_bags, tmp_path):
    """``train direction --onset-history 3``: the exported contract carries
    it, and the estimator feeds the network the onset-weighted features (what
    it was trained on), not the whole window's."""
    from dataclasses import replace

    from av_perception.direction.learned import LearnedDoa
    from av_perception.train.direction import DirectionConfig, train
    out = tmp_path / 'respeaker4_onset.onnx'
    train(teacher_bags, out, DirectionConfig(array='array', target='teacher', epochs=2, jobs=1,
                                             onset_history=3), progress=io.StringIO())
    est = LearnedDoa(out, load_array('respeaker4'))
    assert est.spec.onset_history == 3
    x = np.random.default_rng(4).normal(size=(4, est.spec.window))
    np.testing.assert_allclose(est.distribution(x), est.model(features(x, est.spec)[None])[0])
    assert not np.allclose(features(x, est.spec), features(x, replace(est.spec, onset_history=0)))
    with pytest.raises(ConfigError, match='onset-history'):
        DirectionConfig(onset_history=-1)


def test_a_block_longer_than_the_model_window_averages_its_windows():
    """The shipped 4-mic model on a 0.5 s block (the array's doa_window):
    the distribution is the mean over windows overlapping by half that
    cover the block, first and last sample included."""
    from av_perception.direction.learned import LearnedDoa
    from av_perception.direction.learned_features import features, peaks
    from av_perception.paths import shipped_model
    geom = load_array('respeaker4')
    est = LearnedDoa(shipped_model('direction_respeaker4'), geom)
    win = est.window
    n = int(geom.doa_window * geom.sample_rate)
    x = np.random.default_rng(3).normal(size=(4, n)).astype(np.float32)
    x[:, -win:] += np.roll(x[:, -win:], 1, axis=1)  # the blocks' windows differ
    starts = np.linspace(0, n - win, 1 + int(np.ceil((n - win) / (win // 2)))).round()
    assert starts[0] == 0 and starts[-1] == n - win and len(starts) == 3
    dist = np.mean([est.model(features(x[:, int(s):int(s) + win], est.spec)[None])[0]
                    for s in starts], axis=0)
    want = peaks(dist, est.spec, 1)[0]
    got = est.estimate(x, 1)[0]
    assert got.azimuth == pytest.approx(want[0]) and got.confidence == pytest.approx(want[1])
    with pytest.raises(InputError):
        est.estimate(x[:, :win - 1])
    with pytest.raises(InputError):
        est.estimate(x[:3])


def test_a_block_with_a_pause_averages_only_its_loud_windows_when_asked():
    """With a level, the windows quieter than it are left out of the mean (a
    pause of speech: only the room's tail), as a model learned from motion
    saw each view; when no window is that loud, all of them count."""
    from av_perception.direction.learned import LearnedDoa
    from av_perception.paths import shipped_model
    est = LearnedDoa(shipped_model('rotation_binaural'), load_array('binaural'))
    win = est.window
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 8000)) * 0.1                        # 0.5 s: 3 windows
    x[1, 1:] = x[0, :-1]                                         # one side leads
    x[:, 1952:] = rng.normal(size=(2, 8000 - 1952)) * 1e-4      # then a pause, -80 dBFS
    dists = [est.distribution(x[:, s:s + win]) for s in (0, 1952, 8000 - win)]
    np.testing.assert_allclose(est.block_distribution(x, -45.0), dists[0], atol=1e-6)
    np.testing.assert_allclose(est.block_distribution(x), np.mean(dists, axis=0), atol=1e-6)
    quiet = x * 1e-3                                             # no window above -45 dBFS
    every = np.mean([est.distribution(quiet[:, s:s + win]) for s in (0, 1952, 8000 - win)],
                    axis=0)
    np.testing.assert_allclose(est.block_distribution(quiet, -45.0), every, atol=1e-6)
    assert not np.allclose(dists[0], np.mean(dists, axis=0), atol=1e-3)
