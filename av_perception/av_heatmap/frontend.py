"""The input front end of the audio-visual localization model (numpy and
OpenCV only: the node computes exactly what training computed).

Audio, over one window of the microphone array's stream:

- a log spectrogram of the channels' mean (the paper's mono input:
  ``scipy.signal.spectrogram`` with nperseg 512 and noverlap 353, as its
  public code), pooled into log-spaced bands;
- the GCC-PHAT and level-difference features of the array's microphone
  pairs (``av_perception.direction.learned_features.features``, the same function
  as the learned direction models), which say from which side the sound
  comes: among many samples of the same sound class, that is what tells the
  one matching a given image (retrieval) apart.

Image: RGB resized to ``image_size`` (area interpolation), [0, 1], channels
first.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np

from av_perception.arrays import ArrayGeometry
from av_perception.direction.learned_features import FeatureSpec, features, spec_for
from av_perception.errors import InputError


@dataclass(frozen=True)
class AvSpec:
    """The input contract of an audio-visual localization model (stored in
    its ONNX metadata; a node refuses a model whose contract does not match
    its configuration).

    Attributes:
        array: microphone array geometry name.
        channels: microphones.
        sample_rate: Hz.
        window: audio samples per estimate (starting at the image's stamp).
        nperseg, noverlap: spectrogram segment and overlap [samples].
        bands: log-spaced frequency bands of the spectrogram.
        fmin, fmax: band range [Hz].
        image_size: the network's square input [px].
        grid: cells per side of the localization map.
        pair_features: 1 if the audio branch also takes the array's pair
            (GCC-PHAT, level) features, 0 if it hears the spectrogram only.
        context: 3x3 convolutions at the grid's resolution in the image
            encoder.
        acoustic: 1 if the model's map is fused with the projected acoustic
            image (:mod:`av_perception.av_heatmap.fusion`), 0 if it is used alone.
        fusion_weight: the weight of the acoustic image's log in the fused
            score, in cosine units (fusion and training use the same).
        fusion_floor: added to the acoustic image [0, 1] before its log.
        prior_sigma: standard deviation [deg] of the horizon prior that
            multiplies the projected acoustic image in the fusion (a planar
            array's image says nothing about elevation); 0: none.
        prior_center: the prior's centre: elevation [deg] above the array's
            x-y plane (negative: below; 0 in models made before it).

    Fields after ``grid`` default to the models made before them (a model
    file without them in its metadata reads as such).
    """

    array: str
    channels: int
    sample_rate: int
    window: int = 6400
    nperseg: int = 512
    noverlap: int = 353
    bands: int = 64
    fmin: float = 100.0
    fmax: float = 7800.0
    image_size: int = 64
    grid: int = 8
    pair_features: int = 1
    context: int = 0
    acoustic: int = 0
    fusion_weight: float = 0.0
    fusion_floor: float = 0.05
    prior_sigma: float = 0.0
    prior_center: float = 0.0

    @property
    def frames(self) -> int:
        """Spectrogram frames of one window."""
        return 1 + (self.window - self.nperseg) // (self.nperseg - self.noverlap)

    @property
    def gcc(self) -> FeatureSpec:
        """The pair features' contract (the direction models' front end)."""
        return _gcc_spec(self.array, self.window)

    def to_metadata(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> AvSpec:
        out = {}
        for f, t in cls.__annotations__.items():
            if f not in meta:
                if f in _LATER_FIELDS:
                    continue
                raise KeyError(f)
            v = meta[f]
            out[f] = int(v) if t == 'int' else float(v) if t == 'float' else v
        return cls(**out)


#: contract fields added after the first models (absent from their metadata)
_LATER_FIELDS = ('pair_features', 'context', 'acoustic', 'fusion_weight', 'fusion_floor',
                 'prior_sigma', 'prior_center')


@functools.lru_cache(maxsize=8)
def _gcc_spec(array: str, window: int) -> FeatureSpec:
    from av_perception.arrays import load_array
    return spec_for(load_array(array), window=window)


#: fusion weight of the shipped fused model (cosine units per unit of log acoustic image)
#: and the horizon prior's centre [deg above the array's plane]: chosen together on
#: the path views of 60 training-split rooms (simulate --split train --seed 99, 248
#: images with the sounding object in view; never a benchmark's rooms), with the
#: onset-weighted acoustic image: sounding objects stand on the floor and on furniture,
#: below the array (0.6 m up on the simulated robot), and the geometry, trusted more,
#: points better. Fused pointing there: model of 2026-12-05 (0.15, 0 deg) 0.58; a
#: model trained on the onset map at (0.15, 0 deg) 0.565, the same model fused at
#: (0.6, -10 deg) 0.65; retrained at (0.6, -10 deg), the shipped model, 0.61 (the
#: acoustic image alone: 0.47 at 0 deg, 0.61 at -10 deg).
FUSION_WEIGHT = 0.6
PRIOR_CENTER_DEG = -10.0
#: the horizon prior's standard deviation in elevation [deg] (what the acoustic image
#: alone is scored with, and what the fusion multiplies it by)
PRIOR_SIGMA_DEG = 15.0


def spec_for_array(geometry: ArrayGeometry, window_seconds: float = 0.4,
                   acoustic: bool = True) -> AvSpec:
    """The contract of this package's models for an array: its channels and
    rate, a window of ``window_seconds``, 64 x 64 images and a 16 x 16 map
    (a cell is 8 px of a 128 px image: robot views show small objects; a
    finer input costs 3-6x the CPU time), the spectrogram alone as audio
    input; ``acoustic``: fused with the
    projected acoustic image (else the audio-visual map alone)."""
    return AvSpec(array=geometry.name, channels=geometry.channels,
                  sample_rate=geometry.sample_rate,
                  window=int(round(window_seconds * geometry.sample_rate)),
                  image_size=64, grid=16, pair_features=0, context=1,
                  acoustic=int(acoustic), fusion_weight=FUSION_WEIGHT if acoustic else 0.0,
                  prior_sigma=PRIOR_SIGMA_DEG if acoustic else 0.0,
                  prior_center=PRIOR_CENTER_DEG if acoustic else 0.0)


def _band_matrix(spec: AvSpec) -> np.ndarray:
    """(bands, nperseg // 2 + 1) averaging matrix onto log-spaced bands."""
    f = np.fft.rfftfreq(spec.nperseg, 1.0 / spec.sample_rate)
    edges = np.geomspace(spec.fmin, spec.fmax, spec.bands + 1)
    m = np.zeros((spec.bands, f.size))
    for b in range(spec.bands):
        sel = (f >= edges[b]) & (f < edges[b + 1])
        if not sel.any():  # narrower than a bin at low frequencies: nearest bin
            sel = np.abs(f - np.sqrt(edges[b] * edges[b + 1])) == \
                np.abs(f - np.sqrt(edges[b] * edges[b + 1])).min()
        m[b, sel] = 1.0 / sel.sum()
    return m


_BANDS: dict[AvSpec, np.ndarray] = {}


def log_spectrogram(samples: np.ndarray, spec: AvSpec) -> np.ndarray:
    """(channels, window) -> (1, bands, frames) float32: log10 power of the
    channels' mean in log-spaced bands."""
    from scipy.signal import spectrogram

    mono = np.asarray(samples, np.float64).mean(axis=0)
    _, _, p = spectrogram(mono, fs=spec.sample_rate, nperseg=spec.nperseg,
                          noverlap=spec.noverlap, mode='psd')
    if spec not in _BANDS:
        _BANDS[spec] = _band_matrix(spec)
    return np.log10(_BANDS[spec] @ p + 1e-12).astype(np.float32)[None]


def audio_features(samples: np.ndarray, spec: AvSpec) -> tuple[np.ndarray, np.ndarray]:
    """One window of the array's stream -> (spectrogram (1, bands, frames),
    pair features (n,)), both float32.

    Raises:
        InputError: a window of the wrong shape or with non-finite samples.
    """
    x = np.asarray(samples)
    if x.ndim != 2 or x.shape != (spec.channels, spec.window):
        raise InputError('audio_window', f'({spec.channels}, {spec.window}) samples '
                         f'(channels, window)', f'shape {x.shape}')
    if not np.all(np.isfinite(x)):
        raise InputError('audio_values', 'finite samples', 'NaN or infinite values')
    return log_spectrogram(x, spec), features(x, spec.gcc)


def image_input(rgb: np.ndarray, spec: AvSpec) -> np.ndarray:
    """An RGB image (H, W, 3) uint8 -> (3, size, size) float32 in [0, 1].

    Raises:
        InputError: not an (H, W, 3) uint8 array.
    """
    import cv2

    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise InputError('image', '(H, W, 3) uint8 RGB', f'shape {a.shape} {a.dtype}')
    small = cv2.resize(a, (spec.image_size, spec.image_size), interpolation=cv2.INTER_AREA)
    return (small.astype(np.float32) / 255.0).transpose(2, 0, 1).copy()
