"""Inference of the audio-visual localization model through ONNX Runtime,
its fusion with the projected acoustic image, and what the node publishes:
the heatmap, its overlay on the image and its peak.

Two kinds of model (``AvSpec.acoustic`` in the model's metadata):

- **audio-visual alone** (``acoustic`` 0): the heatmap is the localization
  map (cosine similarity between the audio embedding and each cell's
  embedding), resized bilinearly to the image and clipped to [0, 1]: a cell
  whose features point away from the sound (similarity <= 0) is "not the
  source", 0.
- **fused** (``acoustic`` 1): the array's acoustic image (SRP-PHAT power,
  normalised to [0, 1]) projected into the image
  (:class:`~av_perception.av_heatmap.projection.AcousticProjector`), times a
  horizon prior on elevation (``prior_sigma``; a planar array cannot tell
  the row), is the geometric map ``A``: from where; the cosine map says
  what: the fused score of a pixel is ``cos + w * log(A + floor)``
  (:func:`fused_score`: the same expression the training pools over, ``w``
  and ``floor`` in the model's metadata), the cosine map resized bilinearly
  to the image, the geometric map computed at the image's size. The heatmap
  is ``score * exp((F - F_peak) / 0.1)``:
  1 x the score at the peak and falling by e every 0.1 of fused score;
  the **score** is ``A * (1 + cos) / 2`` at the peak, in [0, 1]: the sound
  comes from there (A) and what is there looks like what is heard (cos).
  It is 0 when the sound comes from outside the view (A = 0 in the image).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from av_perception.arrays import ArrayGeometry
from av_perception.av_heatmap.frontend import AvSpec, audio_features, image_input
from av_perception.av_heatmap.metrics import resize_map
from av_perception.av_heatmap.projection import (ACOUSTIC_IMAGES, LEGACY_ACOUSTIC_IMAGE_ID,
                                                 AcousticImage, AcousticMemory, AcousticProjector,
                                                 CameraView, elevation_prior, normalise_power,
                                                 pixel_ray, power_contrast)
from av_perception.errors import ConfigError
from av_perception.inference import OnnxModel
from av_perception.paths import shipped_model

#: the shipped model (av_perception/models/av_heatmap.onnx)
DEFAULT_MODEL = 'av_heatmap'
#: the shipped audio-visual model without the acoustic image (the baseline)
ALONE_MODEL = 'av_heatmap_alone'
#: fused score per e-fold of the published heatmap below its peak
HEATMAP_SCALE = 0.1
#: how far back the acoustic memory reaches by default [s] (AcousticMemory)
MEMORY_SECONDS = 1.5
#: farthest the base may have moved since a window the acoustic memory keeps [m]
MEMORY_TRAVEL = 0.5


def to_heatmap(cosine: np.ndarray, height: int, width: int) -> np.ndarray:
    """A (G, G) cosine map -> (height, width) float32 heatmap in [0, 1]."""
    return np.clip(resize_map(cosine, height, width), 0.0, 1.0).astype(np.float32)


def fused_score(cosine, acoustic, weight: float, floor: float):
    """The fused score ``cosine + weight * log(acoustic + floor)`` of numpy
    arrays or torch tensors alike (training pools this; inference takes its
    peak). ``cosine`` in [-1, 1], ``acoustic`` the projected acoustic image
    in [0, 1], same shape."""
    if isinstance(acoustic, np.ndarray):
        return cosine + weight * np.log(acoustic + floor)
    return cosine + weight * (acoustic + floor).log()


def overlay(rgb: np.ndarray, heatmap: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The heatmap (jet colours) blended on the image where it is > 0:
    (H, W, 3) uint8; the plain image where the heatmap is 0."""
    import cv2
    h = np.clip(np.asarray(heatmap, np.float32), 0.0, 1.0)
    colour = cv2.applyColorMap(np.round(h * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
    w = (alpha * h)[:, :, None]
    return np.round(rgb.astype(np.float32) * (1 - w) + colour.astype(np.float32) * w) \
        .clip(0, 255).astype(np.uint8)


@dataclass
class Localization:
    """Where in one image the sound comes from.

    Attributes:
        heatmap: (H, W) float32 in [0, 1].
        peak: (row, col) [px] of the heatmap's maximum.
        score: [0, 1]: the heatmap's value at the peak.
        ray: unit vector through the peak pixel in the camera optical frame
            (None without a CameraView).
        acoustic: (H, W) projected acoustic image in [0, 1] (None: not used).
        cosine: (G, G) the model's cosine map.
        fused: (H, W) the fused score (None: not fused): the ranking the
            heatmap follows, also where the score is 0 (what scoring uses).
    """

    heatmap: np.ndarray
    peak: tuple[int, int]
    score: float
    ray: np.ndarray | None
    acoustic: np.ndarray | None
    cosine: np.ndarray
    fused: np.ndarray | None = None


class HeatmapModel:
    """An ONNX audio-visual localization model for one microphone array.

    Args:
        path: .onnx file (None: the shipped model).
        geometry: the array the audio comes from; a model made for another
            array (name, channels, sample rate) is refused.
        threads: intra-op CPU threads.

    Raises:
        ConfigError: a missing, unloadable or mismatched model.
    """

    def __init__(self, path: str | Path | None, geometry: ArrayGeometry, threads: int = 1) -> None:
        self.model = OnnxModel(path or shipped_model(DEFAULT_MODEL),
                               expect={'task': 'av_heatmap', 'array': geometry.name,
                                       'channels': geometry.channels,
                                       'sample_rate': geometry.sample_rate},
                               threads=threads)
        try:
            self.spec = AvSpec.from_metadata(self.model.metadata)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f'model {self.model.path.name}: incomplete contract in its '
                              f'metadata ({exc!r})') from None
        kind = self.model.metadata.get('acoustic_image', LEGACY_ACOUSTIC_IMAGE_ID)
        if self.spec.acoustic and kind not in ACOUSTIC_IMAGES:
            raise ConfigError(f'model {self.model.path.name}: fused with an acoustic image '
                              f'{kind!r} this version does not compute (one of '
                              f'{sorted(ACOUSTIC_IMAGES)})')
        # the map the model was trained with
        self.acoustic_image = AcousticImage(geometry, kind) if self.spec.acoustic else None
        self.memory = None if self.acoustic_image is None else \
            AcousticMemory(self.acoustic_image.directions, MEMORY_SECONDS, MEMORY_TRAVEL)
        self._projectors: dict = {}

    @property
    def window(self) -> int:
        """Audio samples per image, from the image's stamp on."""
        return self.spec.window

    @property
    def fused(self) -> bool:
        """True if the model is fused with the projected acoustic image."""
        return bool(self.spec.acoustic)

    def run(self, images: list[np.ndarray], windows: list[np.ndarray]) \
            -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RGB images and their audio windows -> cosine maps (B, G, G), audio
        and image global embeddings (B, E).

        Raises:
            InputError: an image or window that does not fit the contract.
        """
        img = np.stack([image_input(i, self.spec) for i in images])
        feats = [audio_features(w, self.spec) for w in windows]
        inputs = {'image': img, 'spectrogram': np.stack([f[0] for f in feats])}
        if self.spec.pair_features:
            inputs['pair_features'] = np.stack([f[1] for f in feats])
        cos, ga, gv = self.model.session.run(None, inputs)
        return cos, ga, gv

    def projector(self, view: CameraView) -> AcousticProjector:
        """The acoustic image's projector into ``view``'s image (built once per view)."""
        key = (view.width, view.height, view.K.tobytes(), view.array_from_optical)
        if key not in self._projectors:
            if len(self._projectors) > 4:
                self._projectors.clear()
            self._projectors[key] = AcousticProjector(view, self.acoustic_image.directions)
        return self._projectors[key]

    def acoustic(self, window: np.ndarray, view: CameraView, stamp_ns: int | None = None,
                 odom=None) -> np.ndarray:
        """The window's acoustic image projected into ``view``: (H, W) in
        [0, 1]. With ``stamp_ns`` (the window's) the window joins the
        acoustic memory (:attr:`memory`; ``odom``: the array frame's pose in
        the odometry frame, a Transform or None) and the memory's image of
        the last ``memory.seconds`` is projected instead (windows must come
        in time order; ``memory.clear()`` between recordings)."""
        raw = self.acoustic_image.spectrum(window[:, :self.spec.window])
        power = normalise_power(raw)
        if stamp_ns is not None and self.memory.seconds > 0:
            self.memory.add(power, stamp_ns, odom, power_contrast(raw))
            power = self.memory.image(stamp_ns, odom)
        return self.projector(view).project(power)

    def geometric(self, acoustic: np.ndarray, view: CameraView | None) -> np.ndarray:
        """The projected acoustic image times the contract's horizon prior
        (unchanged without a prior or a view)."""
        if not self.spec.prior_sigma or view is None:
            return acoustic
        return acoustic * self.prior(view)

    def set_prior_center(self, center_deg: float) -> None:
        """Centre the horizon prior at ``center_deg`` [deg] of elevation above
        the array's x-y plane (negative: below) instead of where the model's
        contract puts it. The contract's centre suits the robot the model was
        trained for (the shipped model: 10 deg below, an array 0.6 m up and
        objects on and near the floor a few metres away); an array mounted
        much higher or lower sees them at other elevations. The network and
        the fusion weight are unchanged.

        Raises:
            ConfigError: a model without a horizon prior (``prior_sigma`` 0),
                or an angle outside [-90, 90].
        """
        center = float(center_deg)
        if not self.spec.prior_sigma:
            raise ConfigError(f'model {self.model.path.name} has no horizon prior to centre '
                              f'(prior_sigma 0 in its contract); expected no prior centre, '
                              f'got {center:g} deg')
        if not -90.0 <= center <= 90.0:
            raise ConfigError(f'the horizon prior\'s centre is an elevation in [-90, 90] deg, '
                              f'got {center:g}')
        self.spec = replace(self.spec, prior_center=center)
        self._projectors = {k: v for k, v in self._projectors.items() if k[0] != 'prior'}

    def prior(self, view: CameraView) -> np.ndarray:
        """The horizon prior (:func:`~av_perception.av_heatmap.projection.elevation_prior`)
        of the contract at ``view``'s image size (built once per view)."""
        key = ('prior', view.width, view.height, view.K.tobytes(), view.array_from_optical)
        if key not in self._projectors:
            self._projectors[key] = elevation_prior(view, sigma_deg=self.spec.prior_sigma,
                                                    center_deg=self.spec.prior_center)
        return self._projectors[key]

    def localize(self, rgb: np.ndarray, window: np.ndarray, view: CameraView | None = None,
                 cosine: np.ndarray | None = None, acoustic: np.ndarray | None = None,
                 fuse: bool = True, stamp_ns: int | None = None, odom=None) -> Localization:
        """One image and its audio window -> the heatmap, its peak and score.

        A fused model needs ``view`` (CameraView; also for the horizon
        prior) unless ``acoustic`` (the projected acoustic image, (H, W)) is
        given; ``fuse=False`` gives its cosine map alone. ``cosine``: the
        model's output for this pair, if already run. ``stamp_ns``,
        ``odom``: the window's stamp and the array's pose in the odometry
        frame, for the acoustic memory (see :meth:`acoustic`).
        """
        h, w = rgb.shape[:2]
        if cosine is None:
            cosine = self.run([rgb], [window])[0][0]
        cos_img = resize_map(cosine, h, w)
        if self.fused and fuse:
            if acoustic is None:
                if view is None:
                    raise ConfigError('a fused model needs the camera view (CameraInfo and '
                                      'the transform array <- optical frame)')
                acoustic = self.acoustic(window, view, stamp_ns, odom)
            geo = self.geometric(acoustic, view)
            fused = fused_score(cos_img.astype(np.float64), geo.astype(np.float64),
                                self.spec.fusion_weight, self.spec.fusion_floor)
            heat, peak, score = fused_heatmap(fused, cos_img, geo)
        else:
            fused = None
            heat = np.clip(cos_img, 0.0, 1.0).astype(np.float32)
            r, c = np.unravel_index(int(np.argmax(heat)), heat.shape)
            peak, score = (int(r), int(c)), float(heat[r, c])
        ray = pixel_ray(view.K, peak[1], peak[0]) if view is not None else None
        return Localization(heat, peak, score, ray, acoustic, cosine, fused)

    def heatmap(self, rgb: np.ndarray, window: np.ndarray,
                view: CameraView | None = None) -> np.ndarray:
        """One image and its audio window -> (H, W) float32 heatmap in [0, 1]."""
        return self.localize(rgb, window, view).heatmap


def fused_heatmap(fused: np.ndarray, cos_img: np.ndarray, acoustic: np.ndarray) \
        -> tuple[np.ndarray, tuple[int, int], float]:
    """The fused heatmap (module docstring), its peak (row, col) and score,
    from the fused score, the cosine map at the image's size and the
    projected acoustic image (all (H, W))."""
    r, c = np.unravel_index(int(np.argmax(fused)), fused.shape)
    cos = float(np.clip(cos_img[r, c], -1.0, 1.0))
    score = float(np.clip(acoustic[r, c], 0.0, 1.0) * (1.0 + cos) / 2.0)
    heat = (score * np.exp((fused - fused[r, c]) / HEATMAP_SCALE)).astype(np.float32)
    return heat, (int(r), int(c)), score
