"""Dry signals of the simulated sound sources and the echolocation chirp (no ROS).

Every source signal is a deterministic function of (class, seed, duration,
sample rate): mono float32, normalised to an RMS of :data:`RMS_TARGET` (0.1,
i.e. -20 dBFS) over the samples where the source actually sounds, so that a
scene's ``Source.level_db`` sets its level with ``db_to_gain(level_db + 20)``
(or, for whoever prefers, ``signal * db_to_gain(level_db) / RMS_TARGET``).

The classes (``scene.SOUND_CLASSES``) differ in spectrum and rhythm:

- ``speech``: real speech by espeak-ng: a phrase of 3-5 words from
  :data:`SPEECH_WORDS`, in one of :data:`SPEECH_VOICES`, at a seeded speed and
  pitch; short gaps between words, a longer pause between repetitions.
- ``tone``: a steady harmonic tone (fundamental 300-1500 Hz, 3-4 harmonics of
  falling amplitude), soft on/off ramps; sounds all the time.
- ``noise``: a fan: pink-ish (1/f^a), band-limited noise with a slow blade
  flutter, in bursts of 0.2-1 s separated by 0.1-0.6 s gaps.
- ``clicks``: a clock/metronome: identical few-ms decaying broadband clicks
  at a steady 2-8 Hz.
- ``alarm``: a two-tone beeper: alternating pure beeps at f_lo (2-2.8 kHz) and
  f_hi (1.2-1.4 f_lo, at most 4 kHz), 0.1-0.3 s each, short gaps.

The shifted split's classes (:data:`SHIFT_CLASSES`) are families the
training rooms never contain:

- ``voice``: espeak-ng speech in other languages (:data:`VOICE_WORDS`, 13
  languages, none English) and other voice variants (:data:`VOICE_VARIANTS`,
  none of the training voices'), phrased as ``speech``;
- ``music``: a synthesised tune: a melody over a chord progression in a
  seeded key, mode and tempo, played by one of :data:`INSTRUMENTS`
  (additive partials with their own decays; the bell's are inharmonic);
- ``appliance``: a household machine: mains hum (harmonics of 100 or
  120 Hz), a motor's rotation harmonics and blade-pass tone, airflow noise,
  on/off cycles, and in half of them a harmonic beep pattern.

:func:`signal_params` tells the seeded parameters of a class (fundamental,
click rate, alarm tones, voice, words...); :func:`render_source` also returns
the ground-truth activity mask (where the source sounds).

Speech needs Debian's ``espeak-ng`` at run time. Its word recordings are
cached on disk (``$AVP_ESPEAK_CACHE``, else ``$XDG_CACHE_HOME/av_perception/
espeak``, else ``~/.cache/av_perception/espeak``), keyed by a hash of the
espeak-ng version and command, and in memory per process; a signal is the
same whether or not the cache was hit, since it is always computed from the
cached WAV file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import zlib
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from av_perception.audio.chirp import apply_fades, n_samples
from av_perception.audio.chirp import ramp as fade_ramp

#: RMS of every source signal over its active samples (-20 dBFS).
RMS_TARGET = 0.1

#: Sound classes of the training and test rooms (same names as scene.SOUND_CLASSES).
CLASSES = ('speech', 'tone', 'noise', 'clicks', 'alarm')
#: Sound classes only the shifted split has.
SHIFT_CLASSES = ('appliance', 'music', 'voice')
#: Everything this module renders.
ALL_CLASSES = CLASSES + SHIFT_CLASSES

#: Words the speech sources say (a seeded phrase of 3-5 of them).
SPEECH_WORDS = (
    'hello', 'robot', 'kitchen', 'window', 'table', 'yellow', 'morning', 'coffee',
    'please', 'thank', 'you', 'water', 'garden', 'number', 'seven', 'three',
    'open', 'door', 'where', 'is', 'the', 'light', 'music', 'paper',
    'little', 'today', 'later', 'dinner', 'follow', 'me', 'stop', 'here',
    'minute', 'people', 'answer', 'money', 'nothing', 'very', 'good', 'okay',
)

#: espeak-ng voices (language + variant) the speech sources speak with.
SPEECH_VOICES = ('en-us', 'en-gb', 'en+m3', 'en+f2', 'en+f4', 'en-gb-scotland',
                 'en-us+f3', 'en-gb-x-rp+m7', 'en-029+m1', 'en-us+f5')

#: Words of the ``voice`` sources per espeak-ng language (a seeded phrase of
#: 3-5 of them): greetings, household words, a number.
VOICE_WORDS = {
    'de': ('hallo', 'danke', 'wasser', 'morgen', 'fenster', 'tisch', 'bitte', 'sieben',
           'küche', 'licht', 'tür', 'garten'),
    'fr-fr': ('bonjour', 'merci', 'fenêtre', 'table', 'cuisine', 'lumière', 'porte', 'jardin',
              'sept', 'demain', 'eau', 'maison'),
    'es': ('hola', 'gracias', 'ventana', 'mesa', 'cocina', 'luz', 'puerta', 'jardín', 'siete',
           'mañana', 'agua', 'casa'),
    'it': ('ciao', 'grazie', 'finestra', 'tavolo', 'cucina', 'luce', 'porta', 'giardino',
           'sette', 'domani', 'acqua', 'casa'),
    'pt': ('olá', 'obrigado', 'janela', 'mesa', 'cozinha', 'luz', 'porta', 'jardim', 'sete',
           'amanhã', 'água', 'casa'),
    'nl': ('hallo', 'dank', 'raam', 'tafel', 'keuken', 'licht', 'deur', 'tuin', 'zeven',
           'morgen', 'water', 'huis'),
    'pl': ('cześć', 'dziękuję', 'okno', 'stół', 'kuchnia', 'światło', 'drzwi', 'ogród',
           'siedem', 'jutro', 'woda', 'dom'),
    'ru': ('привет', 'спасибо', 'окно', 'стол', 'кухня', 'свет', 'дверь', 'сад', 'семь',
           'завтра', 'вода', 'дом'),
    'tr': ('merhaba', 'teşekkürler', 'pencere', 'masa', 'mutfak', 'ışık', 'kapı', 'bahçe',
           'yedi', 'yarın', 'su', 'ev'),
    'hi': ('नमस्ते', 'धन्यवाद', 'खिड़की', 'मेज़', 'रसोई', 'रोशनी', 'दरवाज़ा', 'बगीचा', 'सात',
           'कल', 'पानी', 'घर'),
    'cmn': ('你好', '谢谢', '窗户', '桌子', '厨房', '灯', '门', '花园', '七', '明天', '水',
            '房子'),
    'sw': ('habari', 'asante', 'dirisha', 'meza', 'jikoni', 'mwanga', 'mlango', 'bustani',
           'saba', 'kesho', 'maji', 'nyumba'),
    'ja': ('こんにちは', 'ありがとう', 'まど', 'つくえ', 'だいどころ', 'あかり', 'ドア', 'にわ',
           'なな', 'あした', 'みず', 'いえ'),
}
#: espeak-ng voice variants of the ``voice`` sources (none in SPEECH_VOICES).
VOICE_VARIANTS = ('m2', 'm4', 'm5', 'm6', 'm8', 'f1', 'klatt2', 'klatt4', 'norbert', 'travis',
                  'grandma', 'croak', 'Andy')
#: Instruments of the ``music`` sources.
INSTRUMENTS = ('pluck', 'piano', 'organ', 'bell', 'pad')

_CACHE_FORMAT = 1  # bump to invalidate old cache entries


# ------------------------------------------------------------------ helpers
def db_to_gain(db):
    """Amplitude gain of ``db`` decibels: 10 ** (db / 20)."""
    g = np.power(10.0, np.asarray(db, dtype=float) / 20.0)
    return float(g) if g.ndim == 0 else g


def gain_to_db(gain):
    """Decibels of an amplitude gain: 20 log10(gain)."""
    return 20.0 * np.log10(gain)


def rms(x: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root mean square of ``x`` (over ``mask`` if given; 0 if empty)."""
    x = np.asarray(x, dtype=np.float64)
    if mask is not None:
        x = x[np.asarray(mask, dtype=bool)]
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal + g * noise`` with g such that the signal-to-noise power ratio
    (whole arrays) is ``snr_db`` [dB]. Same shapes required; float32 out.
    A silent signal or noise is returned/added unscaled."""
    s = np.asarray(signal, dtype=np.float64)
    n = np.asarray(noise, dtype=np.float64)
    if s.shape != n.shape:
        raise ValueError(f'signal and noise must have the same shape, got {s.shape} and {n.shape}')
    ps, pn = float(np.mean(s * s)) if s.size else 0.0, float(np.mean(n * n)) if n.size else 0.0
    g = np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0))) if ps > 0 and pn > 0 else 0.0
    return (s + g * n).astype(np.float32)


def _rng(cls: str, seed: int, stream: int) -> np.random.Generator:
    """Independent, reproducible random streams per (class, seed, purpose)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF,
                                  zlib.crc32(cls.encode()), stream])


# -------------------------------------------------------------- parameters
def signal_params(cls: str, seed: int) -> dict:
    """The seeded parameters of a source signal (what :func:`source_signal` uses).

    speech: voice, speed [words/min], pitch [0-99], words;
    tone: f0 [Hz], harmonics (relative amplitudes of f0, 2 f0, ...);
    noise: slope (power ~ 1/f^slope), band (low, high) [Hz], flutter [Hz];
    clicks: rate [Hz], decay [s];
    alarm: f_lo, f_hi [Hz], beep [s], gap [s];
    voice: as speech (voice = language + variant);
    music: instrument, tempo [beats/min], root [MIDI note], mode, chords
    (scale degrees), melody (scale steps, None: rest);
    appliance: mains [Hz], rotation [Hz], blades, hum and motor harmonics
    (relative amplitudes), airflow band [Hz], noise level (relative), on/off
    [s], beep [Hz] or None.
    """
    if cls not in ALL_CLASSES:
        raise ValueError(f'unknown sound class {cls!r}; expected one of {ALL_CLASSES}')
    r = _rng(cls, seed, 0)
    if cls in SHIFT_CLASSES:
        return _SHIFT_PARAMS[cls](r)
    if cls == 'speech':
        n_words = int(r.integers(3, 6))
        return {'voice': str(SPEECH_VOICES[int(r.integers(len(SPEECH_VOICES)))]),
                'speed': int(r.integers(130, 196)),
                'pitch': int(r.integers(25, 76)),
                'words': tuple(str(w) for w in r.choice(SPEECH_WORDS, n_words, replace=False))}
    if cls == 'tone':
        n_harm = int(r.integers(3, 5))
        amps = [1.0, r.uniform(0.25, 0.55), r.uniform(0.1, 0.3), r.uniform(0.05, 0.15)]
        return {'f0': round(float(r.uniform(300.0, 1500.0)), 1),
                'harmonics': tuple(float(a) for a in amps[:n_harm])}
    if cls == 'noise':
        return {'slope': float(r.uniform(0.6, 1.4)),
                'band': (float(r.uniform(80.0, 300.0)), float(r.uniform(2500.0, 6000.0))),
                'flutter': float(r.uniform(8.0, 25.0)),
                'flutter_depth': float(r.uniform(0.1, 0.3))}
    if cls == 'clicks':
        return {'rate': round(float(r.uniform(2.0, 8.0)), 3),
                'decay': float(r.uniform(0.4e-3, 1.2e-3))}
    # alarm
    f_lo = float(r.uniform(2000.0, 2800.0))
    return {'f_lo': round(f_lo, 1), 'f_hi': round(min(4000.0, f_lo * r.uniform(1.2, 1.4)), 1),
            'beep': float(r.uniform(0.1, 0.3)), 'gap': float(r.uniform(0.05, 0.15))}


# ------------------------------------------------------------------ signals
@dataclass(frozen=True)
class SourceSignal:
    """A rendered source signal with its ground truth.

    Attributes:
        samples: (n,) float32, RMS :data:`RMS_TARGET` over ``active``.
        active: (n,) bool, True where the source sounds (words, beeps, bursts,
            clicks; everything for the tone).
        sample_rate: [Hz].
        params: :func:`signal_params` of the class and seed.
    """

    samples: np.ndarray
    active: np.ndarray
    sample_rate: int
    params: dict


def source_signal(cls: str, seed: int, duration: float, sample_rate: int) -> np.ndarray:
    """Mono float32 signal of ``duration`` [s] (``round(duration * rate)``
    samples) of a source of class ``cls`` with ``seed``; RMS 0.1 over its
    active parts; all zeros if it does not sound within ``duration``."""
    return render_source(cls, seed, duration, sample_rate).samples


def render_source(cls: str, seed: int, duration: float, sample_rate: int) -> SourceSignal:
    """Like :func:`source_signal`, with the activity mask and parameters.

    The event timing (word, burst, beep, click onsets) does not depend on
    ``duration``: a longer signal continues a shorter one (up to the overall
    normalisation gain, which is computed over the whole duration).
    """
    n = n_samples(duration, sample_rate)
    params = signal_params(cls, seed)
    fs = int(sample_rate)
    ev = _rng(cls, seed, 1)
    x, act = _GENERATORS[cls](params, ev, n, fs)
    level = rms(x, act)
    if level > 0:
        x = x * (RMS_TARGET / level)
    else:
        x = np.zeros(n)
    x = x.astype(np.float32)
    return SourceSignal(samples=x, active=act, sample_rate=fs, params=params)


def _events(ev: np.random.Generator, n: int, fs: int, start, on, off):
    """[(onset, length)] in samples of alternating on/off periods until n."""
    out = []
    t = float(start)
    while int(round(t * fs)) < n:
        length = float(on())
        out.append((int(round(t * fs)), max(1, int(round(length * fs)))))
        t += length + float(off())
    return out


def _tone(p, ev, n, fs):
    t = np.arange(n) / fs
    x = np.zeros(n)
    phases = ev.uniform(0, 2 * np.pi, len(p['harmonics']))
    for k, (a, ph) in enumerate(zip(p['harmonics'], phases), start=1):
        if k * p['f0'] < 0.45 * fs:
            x += a * np.sin(2 * np.pi * k * p['f0'] * t + ph)
    apply_fades(x, int(0.02 * fs))
    return x, np.ones(n, dtype=bool)


def _noise(p, ev, n, fs):
    x = np.zeros(n)
    act = np.zeros(n, dtype=bool)
    if n == 0:
        return x, act
    white = ev.standard_normal(n)
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1.0 / fs)
    f[0] = f[1] if len(f) > 1 else 1.0
    lo, hi = p['band'][0], min(p['band'][1], 0.45 * fs)
    shape = f ** (-p['slope'] / 2) / np.sqrt(1 + (lo / f) ** 4) / np.sqrt(1 + (f / hi) ** 8)
    noise = np.fft.irfft(spec * shape, n)
    t = np.arange(n) / fs
    noise *= 1.0 + p['flutter_depth'] * np.sin(2 * np.pi * p['flutter'] * t + ev.uniform(0, 6.28))
    ramp = int(0.015 * fs)
    for on, length in _events(ev, n, fs, ev.uniform(0.0, 0.1),
                              lambda: ev.uniform(0.2, 1.0), lambda: ev.uniform(0.1, 0.6)):
        seg = noise[on:on + length].copy()
        apply_fades(seg, ramp)
        x[on:on + len(seg)] = seg
        act[on:on + len(seg)] = True
    return x, act


def _clicks(p, ev, n, fs):
    x = np.zeros(n)
    act = np.zeros(n, dtype=bool)
    length = max(2, int(round(8 * p['decay'] * fs)))
    k = np.arange(length)
    click = ev.standard_normal(length) * np.exp(-k / (p['decay'] * fs))
    click[0] = abs(click[0]) + 1.0  # a sharp leading edge
    period = 1.0 / p['rate']
    t0 = ev.uniform(0.0, min(period, 0.1))
    _repeat(x, act, t0, period, fs, lambda m: click)
    return x, act


def _alarm(p, ev, n, fs):
    x = np.zeros(n)
    act = np.zeros(n, dtype=bool)
    t0 = ev.uniform(0.0, 0.05)
    beep_n = max(1, int(round(p['beep'] * fs)))
    step = p['beep'] + p['gap']
    ramp = int(0.005 * fs)

    def beep(m: int) -> np.ndarray:
        f = min(p['f_lo'] if m % 2 == 0 else p['f_hi'], 0.45 * fs)  # (rates below 9 kHz)
        seg = np.sin(2 * np.pi * f * np.arange(beep_n) / fs)
        apply_fades(seg, ramp)
        return seg

    _repeat(x, act, t0, step, fs, beep)
    return x, act


def _repeat(x, act, t0: float, step: float, fs: int, make) -> None:
    """Write ``make(m)`` at t0 + m * step [s] for m = 0, 1, ... into x (cut
    at its end) and mark those samples active."""
    n = len(x)
    m = 0
    while True:
        on = int(round((t0 + m * step) * fs))
        if on >= n:
            return
        seg = make(m)[:n - on]
        x[on:on + len(seg)] = seg
        act[on:on + len(seg)] = True
        m += 1


def _speech(p, ev, n, fs):
    x = np.zeros(n)
    act = np.zeros(n, dtype=bool)
    if n == 0:
        return x, act
    words = [_word(w, p['voice'], p['speed'], p['pitch'], fs) for w in p['words']]
    t = int(round(ev.uniform(0.0, 0.1) * fs))
    while t < n:
        for i, w in enumerate(words):
            if t >= n:
                break
            seg = w[:n - t]
            x[t:t + len(seg)] = seg
            act[t:t + len(seg)] = True
            t += len(w)
            gap = ev.uniform(0.05, 0.15) if i < len(words) - 1 else ev.uniform(0.3, 0.7)
            t += int(round(gap * fs))
    return x, act


def _voice_params(r: np.random.Generator) -> dict:
    lang = str(sorted(VOICE_WORDS)[int(r.integers(len(VOICE_WORDS)))])
    words = VOICE_WORDS[lang]
    n_words = int(r.integers(3, 6))
    return {'voice': f'{lang}+{VOICE_VARIANTS[int(r.integers(len(VOICE_VARIANTS)))]}',
            'speed': int(r.integers(120, 201)),
            'pitch': int(r.integers(20, 81)),
            'words': tuple(str(w) for w in r.choice(words, n_words, replace=False))}


#: Scale steps (semitones) of the music modes.
_MODES = {'major': (0, 2, 4, 5, 7, 9, 11), 'minor': (0, 2, 3, 5, 7, 8, 10),
          'dorian': (0, 2, 3, 5, 7, 9, 10), 'pentatonic': (0, 2, 4, 7, 9)}


def _music_params(r: np.random.Generator) -> dict:
    mode = str(sorted(_MODES)[int(r.integers(len(_MODES)))])
    n_deg = len(_MODES[mode])
    melody = [None if r.random() < 0.15 else int(r.integers(0, n_deg + 3)) for _ in range(8)]
    return {'instrument': str(INSTRUMENTS[int(r.integers(len(INSTRUMENTS)))]),
            'tempo': int(r.integers(70, 161)),
            'root': int(r.integers(48, 65)),
            'mode': mode,
            'chords': tuple(int(c) for c in r.choice(n_deg, 4)),
            'melody': tuple(melody)}


def _appliance_params(r: np.random.Generator) -> dict:
    mains = float(r.choice([50.0, 60.0]))
    return {'mains': mains,
            'rotation': round(float(r.uniform(12.0, 60.0)), 2),
            'blades': int(r.integers(3, 8)),
            'hum': tuple(float(a) for a in r.uniform(0.1, 1.0, 5) / np.arange(1, 6)),
            'motor': tuple(float(a) for a in r.uniform(0.05, 0.6, 4)),
            'band': (float(r.uniform(150.0, 500.0)), float(r.uniform(1500.0, 5000.0))),
            'noise': float(r.uniform(0.1, 0.6)),
            'on': (float(r.uniform(1.5, 3.0)), float(r.uniform(3.0, 8.0))),
            'off': (float(r.uniform(0.2, 0.5)), float(r.uniform(0.5, 1.5))),
            'beep': round(float(r.uniform(1500.0, 3200.0)), 1) if r.random() < 0.5 else None}


_SHIFT_PARAMS = {'voice': _voice_params, 'music': _music_params,
                 'appliance': _appliance_params}


def _partials(instrument: str, f0: float, n: int, fs: int, rng: np.random.Generator):
    """One note of ``n`` samples at ``f0`` [Hz]: additive partials below
    0.45 fs, each with its own amplitude and decay (float64)."""
    t = np.arange(n) / fs
    if instrument == 'bell':  # inharmonic partials of a struck bell
        ratios = np.array([0.56, 0.92, 1.19, 1.71, 2.0, 2.74, 3.0, 3.76])
        amps = np.array([1.0, 0.7, 0.9, 0.5, 0.6, 0.35, 0.3, 0.2])
        decay = 1.6 / ratios
    elif instrument == 'piano':  # slightly stretched partials, faster decay up high
        k = np.arange(1, 9)
        ratios = k * np.sqrt(1 + 4e-4 * k ** 2)
        amps = 1.0 / k ** 1.2
        decay = 1.2 / k ** 0.7
    elif instrument == 'pluck':
        k = np.arange(1, 11)
        ratios, amps, decay = k.astype(float), 1.0 / k, 0.6 / k ** 0.8
    elif instrument == 'organ':  # sustained, odd and even harmonics
        k = np.arange(1, 7)
        ratios, amps, decay = k.astype(float), np.array([1, .6, .5, .3, .25, .15]), None
    else:  # pad: sustained, soft harmonics with vibrato
        k = np.arange(1, 6)
        ratios, amps, decay = k.astype(float), 1.0 / k ** 1.5, None
    x = np.zeros(n)
    vib = (1.0 + 0.004 * np.sin(2 * np.pi * 5.5 * t)) if instrument == 'pad' else 1.0
    for ratio, amp, i in zip(ratios, amps, range(len(ratios))):
        f = f0 * ratio
        if f >= 0.45 * fs:
            continue
        env = np.exp(-t / decay[i]) if decay is not None else 1.0
        x += amp * env * np.sin(2 * np.pi * f * t * vib + rng.uniform(0, 2 * np.pi))
    attack = {'pad': 0.12, 'organ': 0.02}.get(instrument, 0.003)
    ramp = min(n, int(attack * fs))
    x[:ramp] *= fade_ramp(ramp)
    tail = min(n, int(0.02 * fs))
    x[n - tail:] *= fade_ramp(tail)[::-1]
    return x


def _music(p, ev, n, fs):
    x = np.zeros(n)
    act = np.zeros(n, dtype=bool)
    steps = _MODES[p['mode']]

    def midi(degree: int, octave: int = 0) -> float:
        o, d = divmod(degree, len(steps))
        return p['root'] + 12 * (o + octave) + steps[d]

    beat = 60.0 / p['tempo']
    t = ev.uniform(0.0, 0.1)
    bar = 0
    while int(round(t * fs)) < n:
        chord = p['chords'][bar % len(p['chords'])]
        on = int(round(t * fs))
        length = int(round(4 * beat * fs))  # the chord lasts the bar
        seg = np.zeros(length)
        for d in (0, 2, 4):
            f = 440.0 * 2 ** ((midi(chord + d, -1) - 69) / 12)
            seg += 0.35 * _partials(p['instrument'], f, length, fs, ev)
        for j, step in enumerate(p['melody']):  # eighth notes over the bar
            if step is None:
                continue
            a = int(round(j * beat / 2 * fs))
            m = int(round(beat / 2 * fs))
            f = 440.0 * 2 ** ((midi(chord + step, 1) - 69) / 12)
            seg[a:a + m] += _partials(p['instrument'], f, m, fs, ev)[:length - a]
        seg = seg[:n - on]
        x[on:on + len(seg)] += seg
        act[on:on + len(seg)] = True
        t += 4 * beat
        bar += 1
    return x, act


def _appliance(p, ev, n, fs):
    x = np.zeros(n)
    act = np.zeros(n, dtype=bool)
    if n == 0:
        return x, act
    t = np.arange(n) / fs
    hum = sum(a * np.sin(2 * np.pi * 2 * p['mains'] * k * t + ev.uniform(0, 6.28))
              for k, a in enumerate(p['hum'], start=1) if 2 * p['mains'] * k < 0.45 * fs)
    f_rot = p['rotation']
    motor = sum(a * np.sin(2 * np.pi * f_rot * k * t + ev.uniform(0, 6.28))
                for k, a in enumerate(p['motor'], start=1))
    blade = 0.5 * np.sin(2 * np.pi * f_rot * p['blades'] * t)
    # the airflow from its own stream, so that the on/off timing after it does
    # not depend on the duration
    white = np.fft.rfft(np.random.default_rng(int(ev.integers(2**63))).standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    lo, hi = p['band'][0], min(p['band'][1], 0.45 * fs)
    with np.errstate(divide='ignore'):
        shape = 1.0 / np.sqrt(1 + (lo / np.maximum(f, 1.0)) ** 4) / np.sqrt(1 + (f / hi) ** 4)
    air = np.fft.irfft(white * shape, n)
    air *= p['noise'] / (np.std(air) + 1e-12)
    sig = (hum + motor + blade) / 3.0 + air
    ramp = int(0.05 * fs)
    for on, length in _events(ev, n, fs, 0.0, lambda: ev.uniform(*p['on']),
                              lambda: ev.uniform(*p['off'])):
        seg = sig[on:on + length].copy()
        apply_fades(seg, ramp)
        x[on:on + len(seg)] = seg
        act[on:on + len(seg)] = True
    if p['beep'] is not None:  # a harmonic beep pattern (square-ish: odd harmonics)
        beep_n = int(0.15 * fs)
        k = np.arange(beep_n) / fs
        tone = sum(np.sin(2 * np.pi * p['beep'] * h * k) / h for h in (1, 3, 5)
                   if p['beep'] * h < 0.45 * fs)
        apply_fades(tone, int(0.005 * fs))
        start = ev.uniform(0.5, 2.0)
        while int(round(start * fs)) < n:
            for b in range(int(ev.integers(1, 4))):
                on = int(round((start + 0.3 * b) * fs))
                seg = tone[:max(0, n - on)]
                x[on:on + len(seg)] += 2.0 * seg * np.max(np.abs(sig))
                act[on:on + len(seg)] = True
            start += ev.uniform(2.0, 5.0)
    return x, act


_GENERATORS = {'speech': _speech, 'tone': _tone, 'noise': _noise, 'clicks': _clicks,
               'alarm': _alarm, 'voice': _speech, 'music': _music, 'appliance': _appliance}


# --------------------------------------------------------------------- chirp
# ------------------------------------------------------------------ espeak-ng
_mem_lock = threading.Lock()
_mem_cache: dict[tuple[str, int], np.ndarray] = {}


def clear_memory_cache() -> None:
    """Forget the in-process word cache (the disk cache stays)."""
    with _mem_lock:
        _mem_cache.clear()


def espeak_cache_dir() -> Path:
    """Where synthesized words are cached on disk (see the module docstring)."""
    env = os.environ.get('AVP_ESPEAK_CACHE')
    if env:
        return Path(env)
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(base) / 'av_perception' / 'espeak'


def _espeak_binary() -> str:
    exe = shutil.which('espeak-ng')
    if exe is None:
        raise RuntimeError('speech sources need the espeak-ng speech synthesizer, which is not '
                           'on PATH: install Debian\'s espeak-ng (sudo apt-get install espeak-ng)')
    return exe


@functools.lru_cache(maxsize=8)
def _espeak_version(exe: str) -> str:
    try:
        out = subprocess.run([exe, '--version'], capture_output=True, text=True, timeout=30,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f'cannot run {exe} --version ({exc}); install Debian\'s espeak-ng') \
            from None
    return out.split('Data at')[0].strip()


def espeak_version() -> str:
    """The version line of the espeak-ng on PATH (what the speech sources'
    word cache is keyed by).

    Raises:
        RuntimeError: espeak-ng is missing or does not run.
    """
    return _espeak_version(_espeak_binary())


def _writable_cache_dir() -> Path:
    d = espeak_cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    d = Path(tempfile.gettempdir()) / f'av_perception-{os.getuid()}' / 'espeak'
    d.mkdir(parents=True, exist_ok=True)
    return d


def _word(word: str, voice: str, speed: int, pitch: int, fs: int) -> np.ndarray:
    """One spoken word, silence trimmed, resampled to fs (float64, read-only)."""
    exe = _espeak_binary()
    args = ['-v', voice, '-s', str(int(speed)), '-p', str(int(pitch)), word]
    key = hashlib.sha256(json.dumps([_CACHE_FORMAT, _espeak_version(exe), args])
                         .encode()).hexdigest()[:32]
    with _mem_lock:
        hit = _mem_cache.get((key, fs))
    if hit is not None:
        return hit
    import soundfile as sf
    from scipy.signal import resample_poly

    cache = _writable_cache_dir()
    path = cache / f'{key}.wav'
    if not path.is_file():
        fd, tmp = tempfile.mkstemp(suffix='.wav', dir=cache)
        os.close(fd)
        try:
            res = subprocess.run([exe, '-w', tmp] + args, capture_output=True, text=True,
                                 timeout=60)
            if res.returncode != 0 or os.path.getsize(tmp) <= 44:
                raise RuntimeError(f'espeak-ng failed on {args}: {res.stderr.strip()}')
            os.replace(tmp, path)  # atomic: parallel workers never see half a file
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    data, rate = sf.read(str(path), dtype='float64', always_2d=True)
    y = data.mean(axis=1)
    # trim leading/trailing silence (below -45 dB of the peak), keep 5 ms margins
    peak = np.max(np.abs(y)) if y.size else 0.0
    if peak > 0:
        loud = np.flatnonzero(np.abs(y) > peak * 10 ** (-45 / 20))
        margin = int(0.005 * rate)
        y = y[max(0, loud[0] - margin):loud[-1] + 1 + margin]
    if rate != fs:
        g = gcd(int(rate), int(fs))
        y = resample_poly(y, fs // g, int(rate) // g)
    y = np.ascontiguousarray(y)
    y.setflags(write=False)
    with _mem_lock:
        _mem_cache[(key, fs)] = y
    return y
