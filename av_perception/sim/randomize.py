"""Wider training randomization (issue #23, item 2): the sensor faults and
conditions a real robot has and the default simulator does not, as opt-in
perturbations of what the simulator renders (`simulate --randomize wide`).

Off by default (``PRESETS['none']``): a default bag is byte for byte what it
was before this module existed, and its index entry has no ``randomize``
key. With a preset, each bag draws its device faults once (``draw``:
deterministic for the scene's seed) and its conditions per slot, and its
index entry records the preset's ranges and the bag's draw
(``Draw.record``), so a data set's metadata names the distribution its
samples come from.

Per microphone of the 4-mic array and of the binaural head:

- gain error, uniform in +-``mic_gain_db``;
- phase error, a frequency-independent phase offset uniform in
  +-``mic_phase_deg`` (mixing in the signal's Hilbert transform);
- position error, each axis uniform in +-``mic_position_mm``: the room is
  rendered at the displaced microphones (``offsets``, given to
  ``SceneSimulator``), while the estimators and the ground truth keep the
  nominal geometry.

Per device stream (the array, the binaural head): a sample-clock offset
uniform in +-``clock_ppm`` (the stream resampled: sample j of the bag is
read at ``(first_sample + j) * (1 + ppm 1e-6)``). Per slot: diffuse noise
(spherically isotropic: the sinc coherence of the nominal microphone
distances, pink) and a directional interferer (one pink noise source per
bag, far field, free-field delays; not in gt/sound_direction), each at an
SNR uniform in its range (relative to the slot's signal).

Per camera frame: exposure (a gain of 2^EV, EV uniform in +-``exposure_ev``
per frame), white balance (a gain per colour channel uniform in
1 +- ``white_balance``, per bag), Gaussian blur (sigma uniform in
[0, ``blur_px``]) and sensor noise (sigma uniform in [0, ``image_noise``]
grey levels). Depth, masks and every other ground truth are not perturbed;
the echo head is not either (its own chirp and microphones).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.fft
from scipy.signal import hilbert

SPEED_OF_SOUND = 343.0
#: Stream tag of the randomization's random draws (apart from the renderer's).
STREAM = 7919
DEVICES = ('array', 'binaural')
#: Half-length of the clock offset's interpolation kernel [samples].
SINC_HALF = 16
#: Fractions of a sample the clock offset's kernel is tabulated for.
SINC_STEPS = 256


@dataclass(frozen=True)
class Randomization:
    """Ranges of the perturbations (0 or None: off)."""

    name: str = 'none'
    mic_gain_db: float = 0.0
    mic_phase_deg: float = 0.0
    mic_position_mm: float = 0.0
    clock_ppm: float = 0.0
    diffuse_snr_db: tuple[float, float] | None = None
    directional_snr_db: tuple[float, float] | None = None
    exposure_ev: float = 0.0
    white_balance: float = 0.0
    blur_px: float = 0.0
    image_noise: float = 0.0

    @property
    def off(self) -> bool:
        return self == Randomization(name=self.name)

    def ranges(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
                if k != 'name'}


#: The named distributions `simulate --randomize` accepts.
PRESETS = {
    'none': Randomization(),
    'wide': Randomization('wide', mic_gain_db=2.0, mic_phase_deg=5.0, mic_position_mm=2.0,
                          clock_ppm=50.0, diffuse_snr_db=(5.0, 30.0),
                          directional_snr_db=(5.0, 30.0), exposure_ev=0.7, white_balance=0.15,
                          blur_px=1.5, image_noise=6.0),
}


@dataclass
class Draw:
    """One bag's device faults, drawn once from a Randomization."""

    spec: Randomization
    seed: int
    gain_db: dict = field(default_factory=dict)        # device -> (M,)
    phase_deg: dict = field(default_factory=dict)      # device -> (M,)
    offsets_m: dict = field(default_factory=dict)      # device -> (M, 3)
    clock_ppm: dict = field(default_factory=dict)      # device -> float
    interferer: tuple[float, float] = (0.0, 0.0)       # azimuth, elevation [rad], base frame
    wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def record(self) -> dict:
        """The index entry's ``randomize``: the preset, its ranges and this draw."""
        r = lambda a: np.round(np.asarray(a, float), 6).tolist()  # noqa: E731
        return {'name': self.spec.name, 'ranges': self.spec.ranges(),
                'draw': {'mic_gain_db': {d: r(v) for d, v in self.gain_db.items()},
                         'mic_phase_deg': {d: r(v) for d, v in self.phase_deg.items()},
                         'mic_position_mm': {d: r(1e3 * v) for d, v in self.offsets_m.items()},
                         'clock_ppm': {d: r(v) for d, v in self.clock_ppm.items()},
                         'interferer_azimuth_elevation_rad': r(self.interferer),
                         'white_balance': r(self.wb_gains)}}

    def rng(self, k: int, what: int) -> np.random.Generator:
        """The generator of slot k's draws of one kind (deterministic)."""
        return np.random.default_rng([self.seed, STREAM, k, what])


def draw(spec: Randomization, seed: int, channels: dict[str, int]) -> Draw:
    """A bag's device faults; ``channels``: microphones per device."""
    rng = np.random.default_rng([seed, STREAM])
    out = Draw(spec, seed)
    for d in DEVICES:
        m = channels[d]
        out.gain_db[d] = rng.uniform(-1, 1, m) * spec.mic_gain_db
        out.phase_deg[d] = rng.uniform(-1, 1, m) * spec.mic_phase_deg
        out.offsets_m[d] = rng.uniform(-1, 1, (m, 3)) * spec.mic_position_mm * 1e-3
        out.clock_ppm[d] = float(rng.uniform(-1, 1) * spec.clock_ppm)
    out.interferer = (float(rng.uniform(-np.pi, np.pi)), float(rng.uniform(-0.3, 0.6)))
    out.wb_gains = tuple(float(g) for g in 1 + rng.uniform(-1, 1, 3) * spec.white_balance)
    return out


# ----------------------------------------------------------------- audio
def pink(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Pink (1/f power) Gaussian noise, unit variance per row."""
    n = shape[-1]
    spec = scipy.fft.rfft(rng.standard_normal(shape), axis=-1)
    f = np.arange(spec.shape[-1], dtype=float)
    f[0] = 1.0
    y = scipy.fft.irfft(spec / np.sqrt(f), n, axis=-1)
    return y / (y.std(axis=-1, keepdims=True) + 1e-12)


def diffuse_noise(rng: np.random.Generator, positions: np.ndarray, n: int, rate: int
                  ) -> np.ndarray:
    """(M, n) pink noise of a spherically isotropic field at ``positions``
    (M, 3): per frequency, the microphones' coherence is sinc(2 f d / c)."""
    m = len(positions)
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    f = scipy.fft.rfftfreq(n, 1 / rate)
    gamma = np.sinc(2 * f[:, None, None] * d[None] / SPEED_OF_SOUND)
    chol = np.linalg.cholesky(gamma + 1e-6 * np.eye(m))       # (F, M, M)
    white = pink(rng, (m, n))
    spec = scipy.fft.rfft(white, axis=-1).T                     # (F, M)
    mixed = np.einsum('fij,fj->fi', chol, spec).T
    y = scipy.fft.irfft(mixed, n, axis=-1)
    return y / (y.std() + 1e-12)


def plane_wave(signal: np.ndarray, positions: np.ndarray, azimuth: float, elevation: float,
               rate: int) -> np.ndarray:
    """(M, n): ``signal`` arriving from (azimuth, elevation) as a plane wave
    at ``positions`` (M, 3) [m] of the array frame (fractional delays)."""
    u = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                  np.sin(elevation)])
    delay = -(positions - positions.mean(axis=0)) @ u / SPEED_OF_SOUND   # [s], nearer: earlier
    n = signal.shape[-1]
    f = scipy.fft.rfftfreq(n, 1 / rate)
    spec = scipy.fft.rfft(signal)
    return scipy.fft.irfft(spec[None] * np.exp(-2j * np.pi * f[None] * delay[:, None]), n,
                           axis=-1)


def at_snr(noise: np.ndarray, power: float, snr_db: float) -> np.ndarray:
    """``noise`` scaled to ``snr_db`` below a signal of mean power ``power``."""
    p = float(np.mean(noise ** 2)) + 1e-20
    return noise * np.sqrt(power / 10 ** (snr_db / 10) / p)


def phase_shift(x: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """Each row advanced by a frequency-independent phase [deg] (sin(wt)
    becomes sin(wt + phase))."""
    h = np.imag(hilbert(x, axis=-1))
    phi = np.radians(np.asarray(degrees, float))[:, None]
    return np.cos(phi) * x - np.sin(phi) * h


def clock_offset(x: np.ndarray, ppm: float, first_sample: int) -> np.ndarray:
    """The stream as a device whose clock is ``ppm`` fast reads it: sample j
    of the slot (stream sample ``first_sample + j``) is taken at
    ``j + (first_sample + j) * ppm 1e-6`` (Hann-windowed sinc
    interpolation over ``2 * SINC_HALF`` samples, the fraction rounded to
    1/``SINC_STEPS`` of a sample; zeros past the slot's edges)."""
    if not ppm:
        return x
    n = x.shape[-1]
    j = np.arange(n, dtype=float)
    t = j + (first_sample + j) * ppm * 1e-6
    q = np.rint(t * SINC_STEPS).astype(np.int64)
    base, frac = np.divmod(q, SINC_STEPS)
    idx = base[:, None] + np.arange(-SINC_HALF + 1, SINC_HALF + 1)[None]
    kernel = _sinc_table()[frac]                                   # (n, 2 * SINC_HALF)
    kernel = np.where((idx >= 0) & (idx < n), kernel, 0.0)
    idx = np.clip(idx, 0, n - 1)
    return np.stack([(row[idx] * kernel).sum(axis=1) for row in x])


_SINC: list = []


def _sinc_table() -> np.ndarray:
    """(SINC_STEPS, 2 * SINC_HALF): the kernel of each fraction of a sample."""
    if not _SINC:
        u = (np.arange(SINC_STEPS)[:, None] / SINC_STEPS
             - np.arange(-SINC_HALF + 1, SINC_HALF + 1)[None])
        _SINC.append(np.sinc(u) * (0.5 + 0.5 * np.cos(np.pi * u / SINC_HALF)))
    return _SINC[0]


def perturb_stream(x: np.ndarray, device: str, d: Draw, positions: np.ndarray, rate: int,
                   k: int, first_sample: int) -> np.ndarray:
    """One slot's stream (M, n) of a device through the bag's faults and the
    slot's noises; ``positions``: the nominal microphone positions."""
    spec = d.spec
    y = x.astype(float)
    power = float(np.mean(y ** 2))
    n = y.shape[-1]
    if spec.diffuse_snr_db:
        rng = d.rng(k, 1 + DEVICES.index(device))
        snr = rng.uniform(*spec.diffuse_snr_db)
        y = y + at_snr(diffuse_noise(rng, positions, n, rate), power, snr)
    if spec.directional_snr_db:
        rng = d.rng(k, 3)   # one interferer, heard by both devices
        snr = rng.uniform(*spec.directional_snr_db)
        sig = pink(rng, (1, n))[0]
        y = y + at_snr(plane_wave(sig, positions, *d.interferer, rate), power, snr)
    if spec.mic_phase_deg:
        y = phase_shift(y, d.phase_deg[device])
    if spec.mic_gain_db:
        y = y * (10 ** (d.gain_db[device] / 20))[:, None]
    y = clock_offset(y, d.clock_ppm[device], first_sample)
    return y.astype(np.float32)


# ---------------------------------------------------------------- camera
def perturb_image(rgb: np.ndarray, d: Draw, k: int) -> np.ndarray:
    """One camera frame (H, W, 3) uint8 through exposure, white balance,
    blur and noise."""
    from scipy.ndimage import gaussian_filter
    spec = d.spec
    rng = d.rng(k, 4)
    ev = rng.uniform(-1, 1) * spec.exposure_ev
    blur = rng.uniform(0, spec.blur_px)
    noise = rng.uniform(0, spec.image_noise)
    y = rgb.astype(np.float32) * (2.0 ** ev) * np.asarray(d.wb_gains, np.float32)
    if blur > 0:
        y = gaussian_filter(y, sigma=(blur, blur, 0))
    if noise > 0:
        y = y + rng.normal(0.0, noise, y.shape).astype(np.float32)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def frame_draws(d: Draw, k: int) -> dict:
    """Slot k's camera draws (what ``perturb_image`` applies), for checks."""
    rng = d.rng(k, 4)
    return {'exposure_ev': rng.uniform(-1, 1) * d.spec.exposure_ev,
            'blur_px': rng.uniform(0, d.spec.blur_px),
            'image_noise': rng.uniform(0, d.spec.image_noise)}


def perturb_slot(slot, d: Draw, positions: dict[str, np.ndarray]):
    """The slot with its camera frame and streams perturbed (a new Slot;
    the ground truth untouched). ``positions``: nominal microphone
    positions per device."""
    from dataclasses import replace
    out = {'rgb': perturb_image(slot.rgb, d, slot.index)}
    for dev in DEVICES:
        x = getattr(slot, dev)
        if np.any(x):   # an echo-only slot has no streams
            out[dev] = perturb_stream(x, dev, d, positions[dev], slot.stream_rate, slot.index,
                                      slot.first_sample)
    return replace(slot, **out)
