"""The learned direction-of-arrival model at inference time (ONNX Runtime,
numpy features: no torch on the robot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from av_perception.arrays import ArrayGeometry
from av_perception.doa.classic import DoaEstimate
from av_perception.doa.learned_features import FeatureSpec, features, peaks
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

    def estimate(self, samples: np.ndarray, num_src: int = 1) -> list[DoaEstimate]:
        samples = np.asarray(samples)
        if samples.shape[1] > self.spec.window:  # the model's window: the latest samples
            samples = samples[:, -self.spec.window:]
        elif samples.shape[1] < self.spec.window:
            raise InputError('length', f'at least {self.spec.window} frames',
                             str(samples.shape[1]))
        return [DoaEstimate(az, 0.0, conf, self.ambiguous)
                for az, conf in peaks(self.distribution(samples), self.spec, num_src)]
