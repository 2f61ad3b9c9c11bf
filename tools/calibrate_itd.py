"""Interaural delay of a binaural head versus azimuth, measured on its HRIRs
(GCC-PHAT in the band the classic binaural estimator uses), printed as the
``itd_table`` of its geometry file.

    .venv/bin/python tools/calibrate_itd.py [--rate 16000]

A robot's own head is calibrated the same way from recordings of a source
at known azimuths (av-perception check-array shows the measured delays).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from av_perception.sim.hrtf import get_hrtf


def gcc_delay(left: np.ndarray, right: np.ndarray, fs: int, band=(200.0, 1500.0),
              up: int = 8) -> float:
    """Arrival at the right ear minus arrival at the left [s]."""
    n = 4096
    A, B = np.fft.rfft(left, n), np.fft.rfft(right, n)
    f = np.fft.rfftfreq(n, 1 / fs)
    cr = np.conj(A) * B
    cr = np.where((f >= band[0]) & (f <= band[1]), cr / (np.abs(cr) + 1e-12), 0)
    r = np.fft.irfft(cr, n * up)
    lim = int(0.0015 * fs * up)
    r = np.concatenate([r[-lim:], r[:lim + 1]])
    return (int(np.argmax(r)) - lim) / (fs * up)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rate', type=int, default=16000)
    args = ap.parse_args()
    h = get_hrtf(args.rate)
    print('itd_table:  # [azimuth deg (left +), interaural delay ms]')
    last = -1.0
    for az in range(0, 91, 5):
        ir = h.hrir(math.radians(az), 0.0).astype(float)
        itd = max(gcc_delay(ir[0], ir[1], args.rate) * 1e3, last + 1e-3)  # keep it monotonic
        last = itd
        print(f'  - [{az}, {itd:.4f}]')


if __name__ == '__main__':
    main()
