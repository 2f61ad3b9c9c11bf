"""Source signals and the echolocation chirp of the simulated world."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.signal import hilbert, stft

from av_perception.audio.chirp import chirp
from av_perception.sim import signals as S
from av_perception.sim.scene import SOUND_CLASSES

FS = 16000


@pytest.fixture(autouse=True, scope='module')
def _espeak_cache(tmp_path_factory):
    """Speech words are cached in a fresh directory, not the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv('AVP_ESPEAK_CACHE', str(tmp_path_factory.mktemp('espeak')))
    yield
    mp.undo()


def frame_db(x: np.ndarray, frame: int) -> np.ndarray:
    """Energy per non-overlapping frame [dB re full scale]."""
    n = len(x) // frame
    e = np.mean(x[:n * frame].astype(float).reshape(n, frame) ** 2, axis=1)
    return 10 * np.log10(e + 1e-20)


def runs(mask: np.ndarray) -> list[tuple[bool, int, int]]:
    """(value, start, length) of the constant runs of a boolean array."""
    edges = np.flatnonzero(np.diff(mask.astype(int))) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(mask)]])
    return [(bool(mask[s]), int(s), int(e - s)) for s, e in zip(starts, ends)]


def test_classes_match_the_scene():
    assert set(S.CLASSES) == set(SOUND_CLASSES)
    with pytest.raises(ValueError, match='unknown sound class'):
        S.source_signal('bark', 1, 1.0, FS)


@pytest.mark.parametrize('cls', S.CLASSES)
def test_deterministic_per_seed_and_different_across_seeds(cls):
    a = S.source_signal(cls, 11, 1.5, FS)
    b = S.source_signal(cls, 11, 1.5, FS)
    c = S.source_signal(cls, 12, 1.5, FS)
    assert a.dtype == np.float32 and a.ndim == 1
    assert np.array_equal(a, b)
    assert a.shape == c.shape and not np.allclose(a, c)
    assert S.signal_params(cls, 11) == S.signal_params(cls, 11)
    assert S.signal_params(cls, 11) != S.signal_params(cls, 12)


@pytest.mark.parametrize('cls', S.CLASSES)
@pytest.mark.parametrize('duration,rate', [(1.0, 16000), (0.37, 48000), (2.5, 44100),
                                           (0.0, 16000)])
def test_length_finite_and_rms_over_active_parts(cls, duration, rate):
    r = S.render_source(cls, 5, duration, rate)
    n = round(duration * rate)
    assert r.samples.shape == (n,) and r.active.shape == (n,) and r.sample_rate == rate
    assert np.all(np.isfinite(r.samples))
    if n == 0:
        return
    assert r.active.any()
    assert S.rms(r.samples, r.active) == pytest.approx(S.RMS_TARGET, rel=1e-4)
    # where the source is silent the signal is exactly zero
    assert not np.any(r.samples[~r.active])
    assert np.max(np.abs(r.samples)) < 1.0


def test_level_db_sets_the_level():
    assert S.db_to_gain(-20.0) == pytest.approx(0.1)
    assert S.db_to_gain(0.0) == 1.0
    assert np.allclose(S.db_to_gain(np.array([-6.0, 6.0])), [0.501187, 1.995262], rtol=1e-5)
    assert S.gain_to_db(S.db_to_gain(-13.5)) == pytest.approx(-13.5)
    r = S.render_source('alarm', 3, 2.0, FS)
    level_db = -26.0  # Source.level_db: relative to full scale
    scaled = r.samples * S.db_to_gain(level_db) / S.RMS_TARGET
    assert 20 * np.log10(S.rms(scaled, r.active)) == pytest.approx(level_db, abs=1e-3)


def test_mix_at_snr():
    rng = np.random.default_rng(0)
    s = S.source_signal('tone', 2, 1.0, FS)
    noise = rng.standard_normal(len(s)).astype(np.float32)
    for snr in (-5.0, 0.0, 20.0):
        mix = S.mix_at_snr(s, noise, snr)
        assert mix.dtype == np.float32
        resid = mix.astype(float) - s
        assert 10 * np.log10(np.mean(s.astype(float) ** 2) / np.mean(resid ** 2)) \
            == pytest.approx(snr, abs=1e-3)
    with pytest.raises(ValueError, match='same shape'):
        S.mix_at_snr(s, noise[:-1], 10.0)


@pytest.mark.parametrize('seed', [0, 1, 2, 3, 4])
def test_tone_fundamental_is_where_the_seed_says(seed):
    f0 = S.signal_params('tone', seed)['f0']
    assert 300.0 <= f0 <= 1500.0
    x = S.source_signal('tone', seed, 2.0, FS).astype(float)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / FS)
    assert abs(freqs[np.argmax(spec)] - f0) <= 1.0
    # harmonics: a clear peak at 2 f0 too
    k2 = np.argmin(np.abs(freqs - 2 * f0))
    assert spec[k2 - 2:k2 + 3].max() > 100 * np.median(spec)


def test_tone_fundamentals_spread_over_their_range():
    f0s = [S.signal_params('tone', s)['f0'] for s in range(40)]
    assert min(f0s) < 500.0 and max(f0s) > 1300.0


@pytest.mark.parametrize('seed', [0, 1, 2, 3, 4, 5])
def test_click_rate_matches_the_autocorrelation_peak(seed):
    rate = S.signal_params('clicks', seed)['rate']
    assert 2.0 <= rate <= 8.0
    x = S.source_signal('clicks', seed, 3.0, FS).astype(float)
    env = np.convolve(np.abs(x), np.ones(32) / 32, mode='same')  # 2 ms envelope
    env -= env.mean()
    n = len(env)
    spec = np.fft.rfft(env, 2 * n)
    ac = np.fft.irfft(np.abs(spec) ** 2)[:n]
    lo, hi = int(FS / 8.5), int(FS / 1.9)
    lag = lo + int(np.argmax(ac[lo:hi]))
    assert FS / lag == pytest.approx(rate, rel=0.01)
    # each click is a few-ms transient: the signal is silent most of the time
    r = S.render_source('clicks', seed, 3.0, FS)
    assert 0.005 < r.active.mean() < 0.1
    on = [s for v, s, ln in runs(r.active) if v]
    assert all(ln <= 0.012 * FS for v, s, ln in runs(r.active) if v)
    assert len(on) >= int(3.0 * rate) - 1


def test_clicks_are_broadband():
    x = S.source_signal('clicks', 7, 2.0, FS).astype(float)
    f, _, z = stft(x, FS, nperseg=512)
    p = (np.abs(z) ** 2).sum(axis=1)
    low, high = p[(f > 100) & (f < 2000)].sum(), p[(f >= 2000) & (f < 7500)].sum()
    assert high > 0.5 * low and low > 0.1 * high


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_alarm_energy_is_in_its_band_and_beeps_alternate(seed):
    p = S.signal_params('alarm', seed)
    assert 2000.0 <= p['f_lo'] < p['f_hi'] <= 4000.0
    assert 0.1 <= p['beep'] <= 0.3
    x = S.source_signal('alarm', seed, 3.0, FS).astype(float)
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / FS)
    total = spec.sum()
    assert spec[(f >= 1900) & (f <= 4100)].sum() / total > 0.99
    near = lambda fc: spec[np.abs(f - fc) < 60].sum() / total  # noqa: E731
    assert near(p['f_lo']) > 0.3 and near(p['f_hi']) > 0.3
    # beeps of the given length, with gaps between them
    r = S.render_source('alarm', seed, 3.0, FS)
    ons = [ln for v, s, ln in runs(r.active)[:-1] if v and s > 0]
    assert ons and all(abs(ln - p['beep'] * FS) <= 2 for ln in ons)
    assert r.active.mean() == pytest.approx(p['beep'] / (p['beep'] + p['gap']), abs=0.05)


def test_noise_comes_in_bursts_with_gaps():
    for seed in range(4):
        r = S.render_source('noise', seed, 6.0, FS)
        rr = runs(r.active)[1:-1]  # the first and last may be cut by the window
        bursts = [ln / FS for v, s, ln in rr if v]
        gaps = [ln / FS for v, s, ln in rr if not v]
        assert bursts and gaps
        assert all(0.2 - 1e-3 <= b <= 1.0 + 1e-3 for b in bursts)
        assert all(0.1 - 1e-3 <= g <= 0.6 + 1e-3 for g in gaps)
        # a smooth, wide spectrum: no spectral line stands out of its
        # neighbourhood, and 2-4 kHz carries a share of the energy
        x = r.samples.astype(float)
        f, _, z = stft(x, FS, nperseg=512)
        p = (np.abs(z) ** 2).mean(axis=1)
        local = np.array([np.median(p[max(0, k - 8):k + 9]) for k in range(len(p))])
        assert np.max(p[2:] / local[2:]) < 3.0
        assert p[(f > 2000) & (f < 4000)].sum() > 0.01 * p.sum()


def test_chirp_sweeps_from_f0_to_f1():
    for f0, f1, dur, fs in [(2000.0, 18000.0, 0.003, 48000), (300.0, 5000.0, 0.05, 16000)]:
        x = chirp(f0, f1, dur, fs)
        n = round(dur * fs)
        assert x.dtype == np.float32 and x.shape == (n,)
        assert np.max(np.abs(x)) == pytest.approx(1.0)
        assert abs(x[0]) < 0.05 and abs(x[-1]) < 0.05  # Hann fades
        phase = np.unwrap(np.angle(hilbert(x.astype(float))))
        inst = np.diff(phase) * fs / (2 * np.pi)
        t = (np.arange(n - 1) + 0.5) / fs
        expected = f0 + (f1 - f0) * t / dur
        mid = slice(int(0.15 * n), int(0.85 * n))
        assert np.median(np.abs(inst[mid] - expected[mid])) < 0.03 * (f1 - f0)
        q = n // 5
        assert np.median(inst[q:2 * q]) < np.median(inst[2 * q:3 * q]) \
            < np.median(inst[3 * q:4 * q])
    with pytest.raises(ValueError, match='sample_rate/2'):
        chirp(2000.0, 18000.0, 0.003, 16000)


def voicing(x: np.ndarray, fs: int) -> tuple[float, float]:
    """(fraction of loud 40 ms frames that are periodic with a pitch of
    70-400 Hz, median pitch of those frames [Hz])."""
    frame = int(0.04 * fs)
    lo, hi = int(fs / 400), int(fs / 70)
    loud_db = frame_db(x, frame).max() - 25
    voiced, pitches, loud = 0, [], 0
    for i in range(len(x) // frame):
        seg = x[i * frame:(i + 1) * frame].astype(float)
        if 10 * np.log10(np.mean(seg ** 2) + 1e-20) < loud_db:
            continue
        loud += 1
        seg = seg - seg.mean()
        ac = np.correlate(seg, seg, 'full')[frame - 1:]
        ac /= ac[0]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5:
            voiced += 1
            pitches.append(fs / lag)
    return voiced / max(loud, 1), float(np.median(pitches)) if pitches else 0.0


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_speech_is_voiced_in_the_speech_band_and_has_pauses(seed):
    p = S.signal_params('speech', seed)
    assert p['voice'] in S.SPEECH_VOICES and 3 <= len(p['words']) <= 5
    assert set(p['words']) <= set(S.SPEECH_WORDS)
    x = S.source_signal('speech', seed, 4.0, FS).astype(float)
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / FS)
    assert spec[(f >= 100) & (f <= 4000)].sum() / spec.sum() > 0.8
    frac, pitch = voicing(x, FS)
    assert frac > 0.4 and 70 <= pitch <= 400
    # pauses: runs of >= 60 ms at least 40 dB below the loudest 20 ms
    e = frame_db(x, int(0.02 * FS))
    quiet = e < e.max() - 40
    pauses = [ln for v, s, ln in runs(quiet) if v and ln >= 3]
    assert len(pauses) >= 2
    assert 0.1 < quiet.mean() < 0.6


def test_noise_is_not_voiced():
    """The voicing measure above does tell speech from noise."""
    frac, _ = voicing(S.source_signal('noise', 0, 4.0, FS), FS)
    assert frac < 0.2


def test_speech_voices_and_words_vary_with_the_seed():
    ps = [S.signal_params('speech', s) for s in range(40)]
    assert len({p['voice'] for p in ps}) >= 6
    assert len({p['words'] for p in ps}) == 40
    assert max(p['pitch'] for p in ps) - min(p['pitch'] for p in ps) >= 30
    assert max(p['speed'] for p in ps) - min(p['speed'] for p in ps) >= 40


def test_speech_is_the_same_with_or_without_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('AVP_ESPEAK_CACHE', str(tmp_path))
    S.clear_memory_cache()
    assert S.espeak_cache_dir() == tmp_path
    cold = S.source_signal('speech', 21, 2.0, FS)
    files = sorted(tmp_path.glob('*.wav'))
    assert len(files) == len(S.signal_params('speech', 21)['words'])
    mtimes = [f.stat().st_mtime_ns for f in files]
    S.clear_memory_cache()
    disk = S.source_signal('speech', 21, 2.0, FS)  # from the WAV files
    memory = S.source_signal('speech', 21, 2.0, FS)  # from the process cache
    assert np.array_equal(cold, disk) and np.array_equal(cold, memory)
    assert [f.stat().st_mtime_ns for f in sorted(tmp_path.glob('*.wav'))] == mtimes
    assert not list(tmp_path.glob('*.tmp*'))


def test_missing_espeak_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv('PATH', str(tmp_path))  # an empty directory
    with pytest.raises(RuntimeError, match="Debian's espeak-ng"):
        S.source_signal('speech', 1, 1.0, FS)
    # the other classes do not need it
    assert S.source_signal('tone', 1, 0.1, FS).shape == (1600,)


def test_one_second_of_any_class_is_fast_with_a_warm_cache():
    for cls in S.CLASSES:
        S.source_signal(cls, 31, 1.0, FS)  # warm the word cache
        best = min(_timed(lambda: S.source_signal(cls, 31, 1.0, FS)) for _ in range(5))
        assert best < 0.05, f'{cls}: {best * 1e3:.1f} ms'


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def band_features(x: np.ndarray) -> np.ndarray:
    """Mean and temporal spread of the log spectrogram in half-octave bands."""
    f, _, z = stft(x.astype(float), FS, nperseg=512, noverlap=384)
    logspec = 10 * np.log10(np.abs(z) ** 2 + 1e-10)
    edges = 62.5 * 2 ** (np.arange(15) / 2)
    edges[-1] = FS / 2 + 1
    bands = np.stack([logspec[(f >= lo) & (f < hi)].mean(axis=0)
                      for lo, hi in zip(edges[:-1], edges[1:])])
    return np.concatenate([bands.mean(axis=1), bands.std(axis=1)])


def test_classes_are_separable_by_a_nearest_centroid_on_log_spectra():
    train, test = range(100, 106), range(200, 206)
    feats = {c: (np.array([band_features(S.source_signal(c, s, 2.0, FS)) for s in train]),
                 np.array([band_features(S.source_signal(c, s, 2.0, FS)) for s in test]))
             for c in S.CLASSES}
    all_train = np.concatenate([tr for tr, _ in feats.values()])
    mu, sd = all_train.mean(axis=0), all_train.std(axis=0) + 1e-9
    centroids = {c: ((tr - mu) / sd).mean(axis=0) for c, (tr, _) in feats.items()}
    wrong = []
    for c, (_, te) in feats.items():
        for v in (te - mu) / sd:
            guess = min(centroids, key=lambda k: np.linalg.norm(v - centroids[k]))
            if guess != c:
                wrong.append((c, guess))
    assert wrong == []
