"""Inference of the audio-visual localization model through ONNX Runtime,
and what the node publishes: the heatmap and its overlay on the image.

The heatmap is the localization map (cosine similarity between the audio
embedding and each cell's embedding), resized bilinearly to the image and
clipped to [0, 1]: a cell whose features point away from the sound
(similarity <= 0) is "not the source", 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from av_perception.arrays import ArrayGeometry
from av_perception.avl.frontend import AvSpec, audio_features, image_input
from av_perception.avl.metrics import resize_map
from av_perception.errors import ConfigError
from av_perception.inference import OnnxModel
from av_perception.paths import shipped_model

#: the shipped model (av_perception/models/av_heatmap.onnx)
DEFAULT_MODEL = 'av_heatmap'


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of a window over all channels [dBFS]."""
    rms = float(np.sqrt(np.mean(np.asarray(samples, np.float64) ** 2)))
    return 20.0 * np.log10(max(rms, 1e-12))


def to_heatmap(cosine: np.ndarray, height: int, width: int) -> np.ndarray:
    """A (G, G) cosine map -> (height, width) float32 heatmap in [0, 1]."""
    return np.clip(resize_map(cosine, height, width), 0.0, 1.0).astype(np.float32)


def overlay(rgb: np.ndarray, heatmap: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The heatmap (jet colours) blended on the image where it is > 0:
    (H, W, 3) uint8; the plain image where the heatmap is 0."""
    import cv2
    h = np.clip(np.asarray(heatmap, np.float32), 0.0, 1.0)
    colour = cv2.applyColorMap(np.round(h * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
    w = (alpha * h)[:, :, None]
    return np.round(rgb.astype(np.float32) * (1 - w) + colour.astype(np.float32) * w) \
        .clip(0, 255).astype(np.uint8)


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

    @property
    def window(self) -> int:
        """Audio samples per image, from the image's stamp on."""
        return self.spec.window

    def run(self, images: list[np.ndarray], windows: list[np.ndarray]) \
            -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RGB images and their audio windows -> cosine maps (B, G, G), audio
        and image global embeddings (B, E).

        Raises:
            InputError: an image or window that does not fit the contract.
        """
        img = np.stack([image_input(i, self.spec) for i in images])
        feats = [audio_features(w, self.spec) for w in windows]
        spec = np.stack([f[0] for f in feats])
        pair = np.stack([f[1] for f in feats])
        cos, ga, gv = self.model.session.run(None, {'image': img, 'spectrogram': spec,
                                                    'pair_features': pair})
        return cos, ga, gv

    def heatmap(self, rgb: np.ndarray, window: np.ndarray) -> np.ndarray:
        """One image and its audio window -> (H, W) float32 heatmap in [0, 1]."""
        cos, _, _ = self.run([rgb], [window])
        return to_heatmap(cos[0], rgb.shape[0], rgb.shape[1])
