"""The learned direction-of-arrival model at inference time (ONNX Runtime,
numpy features: no torch on the robot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from av_perception.arrays import ArrayGeometry
from av_perception.audio.level import level_dbfs
from av_perception.direction.classic import DoaEstimate
from av_perception.direction.learned_features import FeatureSpec, features, peaks, window_starts
from av_perception.errors import ConfigError, InputError
from av_perception.inference import OnnxModel


class LearnedDoa:
    """Estimator with the interface of ClassicDoa, backed by an ONNX model.

    Raises:
        ConfigError: the model's contract (array, channels, sample rate) does
            not match ``geometry``.
    """

    def __init__(self, model_path: str | Path, geometry: ArrayGeometry, threads: int = 1) -> None:
        self.model = OnnxModel(model_path, expect={'task': 'direction', 'array': geometry.name,
                                                   'channels': str(geometry.channels),
                                                   'sample_rate': str(geometry.sample_rate)},
                               threads=threads)
        try:
            self.spec = FeatureSpec.from_metadata(self.model.metadata)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f'model {model_path}: incomplete input contract ({exc})') from None
        self.geometry = geometry
        self.ambiguous = self.spec.front_only

    @property
    def window(self) -> int:
        return self.spec.window

    def distribution(self, samples: np.ndarray) -> np.ndarray:
        """Predicted distribution over ``self.spec.grid()`` for one window."""
        samples = np.asarray(samples)
        if samples.shape != (self.spec.channels, self.spec.window):
            raise InputError('shape', f'({self.spec.channels}, {self.spec.window}) samples',
                             f'shape {samples.shape}')
        return self.model(features(samples, self.spec)[None])[0]

    def block_distribution(self, samples: np.ndarray,
                           min_level_dbfs: float | None = None) -> np.ndarray:
        """Predicted distribution over ``self.spec.grid()`` for a block of at
        least the model's window: the mean of the distributions of the model
        windows that cover it, overlapping by half (``window_starts``). With
        ``min_level_dbfs``, only the windows louder than that count (all of
        them when none is): a model learned from motion saw each view as the
        mean of its loud windows (``train/motion_data``), and a pause of
        speech in a block carries no direction, only the room's tail."""
        samples = np.asarray(samples)
        if samples.ndim != 2 or samples.shape[0] != self.spec.channels:
            raise InputError('shape', f'({self.spec.channels}, frames) samples',
                             f'shape {samples.shape}')
        n, win = samples.shape[1], self.spec.window
        if n < win:
            raise InputError('length', f'at least {win} frames', str(n))
        windows = [samples[:, s:s + win] for s in window_starts(n, win)]
        if min_level_dbfs is not None:
            loud = [w for w in windows if level_dbfs(w) > min_level_dbfs]
            windows = loud or windows
        return self.model(np.stack([features(w, self.spec) for w in windows])).mean(axis=0)

    def estimate(self, samples: np.ndarray, num_src: int = 1,
                 min_level_dbfs: float | None = None) -> list[DoaEstimate]:
        """Directions in a block of at least the model's window. A longer block
        (the array's ``doa_window``) is covered by model windows overlapping
        by half, whose distributions are averaged (:meth:`block_distribution`,
        which ``min_level_dbfs`` goes to): the estimate uses all of the
        block's evidence, as the classic methods do."""
        dist = self.block_distribution(samples, min_level_dbfs)
        return [DoaEstimate(az, 0.0, conf, self.ambiguous)
                for az, conf in peaks(dist, self.spec, num_src)]
