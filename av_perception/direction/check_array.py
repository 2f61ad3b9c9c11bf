"""Does a recording agree with the array configuration? (av-perception check-array)

Given a short recording of one source at a known direction, compare the
direction every permutation of the channels would give with the known one.
The most frequent failure of robot audio set-ups is a channel order (or a
geometry) that does not match the hardware, which silently gives wrong
angles: this says so, and which order would fit.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from av_perception.arrays import ArrayGeometry
from av_perception.direction.classic import ClassicDoa, fold_front
from av_perception.errors import ConfigError, InputError

MAX_PERMUTATIONS = 720  # 6 microphones


@dataclass
class CheckResult:
    """Median azimuth error [deg] of the configured order and of the best one."""

    configured_error: float
    configured_azimuth: float
    best_order: tuple[int, ...]
    best_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.configured_error <= self.tolerance and (
            self.best_error >= self.configured_error - 2.0)

    def report(self) -> str:
        if self.ok:
            return (f'OK: channel order and geometry agree with the recording (median error '
                    f'{self.configured_error:.1f} deg)')
        if self.best_error <= self.tolerance:
            return (f'MISMATCH: the configured channel order gives {self.configured_azimuth:.0f} '
                    f'deg for a source at the known direction (error '
                    f'{self.configured_error:.1f} deg); channel order {list(self.best_order)} '
                    f'fits (error {self.best_error:.1f} deg): reorder the mics in the '
                    'geometry file or the driver\'s channel map')
        return (f'MISMATCH: no channel order fits (best {list(self.best_order)}, error '
                f'{self.best_error:.1f} deg): check the geometry (positions, units: metres), '
                'the known direction and that only one source sounds')


def median_error(samples: np.ndarray, geom: ArrayGeometry, azimuth: float,
                 window: int = 4096) -> tuple[float, float]:
    """(median error [deg], median estimated azimuth [deg]) over windows."""
    method = 'gcc' if geom.channels == 2 else 'srp'
    est = ClassicDoa(geom, method)
    truth = fold_front(azimuth) if est.ambiguous else azimuth
    errs, azs = [], []
    for s in range(0, samples.shape[1] - window + 1, window // 2):
        seg = samples[:, s:s + window]
        if np.sqrt(np.mean(seg.astype(np.float64) ** 2)) < 1e-4:
            continue
        found = est.estimate(seg, 1)
        if found:
            azs.append(found[0].azimuth)
            errs.append(abs((found[0].azimuth - truth + math.pi) % (2 * math.pi) - math.pi))
    if not errs:
        raise InputError('recording', 'a recording with sound in it (>= one window of '
                         f'{window} samples above -80 dBFS)', 'silence or too short')
    return math.degrees(float(np.median(errs))), math.degrees(float(np.median(azs)))


def check(samples: np.ndarray, geom: ArrayGeometry, azimuth: float,
          tolerance: float = 10.0) -> CheckResult:
    """Check a recording (channels, frames) of a source at ``azimuth`` [rad]."""
    if samples.ndim != 2 or samples.shape[0] != geom.channels:
        raise InputError('channels', f'{geom.channels} channels (the geometry file)',
                         f'{samples.shape[0] if samples.ndim == 2 else samples.shape}')
    perms = list(itertools.permutations(range(geom.channels)))
    if len(perms) > MAX_PERMUTATIONS:
        raise ConfigError(f'{geom.channels} microphones: too many orders to try')
    conf_err, conf_az = median_error(samples, geom, azimuth)
    best, best_err = tuple(range(geom.channels)), conf_err
    for p in perms[1:]:
        # the recording's channel p[i] is the microphone the file lists as i
        err, _ = median_error(samples[list(p)], geom, azimuth)
        if err < best_err - 1e-9:
            best, best_err = p, err
    return CheckResult(conf_err, conf_az, best, best_err, tolerance)


def load_recording(path: str | Path, topic: str = 'audio/raw') -> tuple[np.ndarray, int]:
    """(samples (channels, frames), sample rate) from a WAV file or a bag."""
    path = Path(path)
    if path.suffix.lower() in ('.wav', '.flac'):
        import soundfile
        try:
            data, fs = soundfile.read(str(path), dtype='float32', always_2d=True)
        except RuntimeError as exc:
            raise InputError('recording', 'a readable WAV/FLAC file', f'{path}: {exc}') from None
        return data.T, int(fs)
    from av_perception.direction.dataset import assemble
    from av_perception.bag.io import read_bag
    chunks = [m.msg for m in read_bag(path, [topic])]
    if not chunks:
        raise InputError('recording', f'AudioChunks on {topic} in {path}', 'none')
    s = assemble(chunks)
    return s.samples, s.sample_rate
