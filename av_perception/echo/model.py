"""A trained echo-depth student through ONNX Runtime: the one place where an
echo chunk becomes a depth image (the node and the scoring both call it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from av_perception.echo.features import EchoSpec, echo_features
from av_perception.errors import ConfigError, InputError
from av_perception.inference import OnnxModel
from av_perception.paths import shipped_model

DEFAULT = 'echo_depth'


class EchoDepthModel:
    """An echo-depth ONNX model and its contract.

    Args:
        path: .onnx file (None: the shipped ``models/echo_depth.onnx``).
        expect: contract entries the caller's configuration fixes (e.g.
            ``{'sample_rate': 44100, 'channels': 2, 'window': 3086,
            'geometry': 'echo_head_cardioid'}``); a mismatch raises ConfigError.
        threads: ONNX Runtime intra-op threads.

    Raises:
        ConfigError: missing file, not an echo-depth model, or a contract
            that does not match ``expect``.
    """

    def __init__(self, path: str | Path | None = None, expect: dict | None = None,
                 threads: int = 1) -> None:
        path = Path(path) if path else shipped_model(DEFAULT)
        self.model = OnnxModel(path, expect={'task': 'echo_depth',
                                             **{k: str(v) for k, v in (expect or {}).items()}},
                               threads=threads)
        meta = self.model.metadata
        try:
            self.spec = EchoSpec.from_metadata(meta)
        except InputError as exc:
            raise ConfigError(f'model {path.name}: {exc}') from None
        try:
            self.height, self.width = int(meta['out_height']), int(meta['out_width'])
            self.k = np.array([[float(meta['fx']), 0.0, float(meta['cx'])],
                               [0.0, float(meta['fy']), float(meta['cy'])], [0.0, 0.0, 1.0]])
            self.max_depth = float(meta['max_depth'])
        except (KeyError, ValueError) as exc:
            raise ConfigError(f'model {path.name}: metadata lacks the output contract '
                              f'(out_height, out_width, fx, fy, cx, cy, max_depth): {exc}'
                              ) from None
        self.path = path

    @property
    def provider(self) -> str:
        return self.model.provider

    @property
    def model_id(self) -> str:
        return self.model.model_id

    def features(self, echo: np.ndarray, sample_rate: int | None = None) -> np.ndarray:
        """(channels, samples) -> the model's input for one echo."""
        return echo_features(echo, self.spec, sample_rate)

    def predict_features(self, feats: np.ndarray) -> np.ndarray:
        """(N, C, bins, frames) features -> (N, h, w) depth [m]."""
        out = self.model(np.asarray(feats, np.float32))
        return out.reshape(len(feats), self.height, self.width)

    def __call__(self, echo: np.ndarray, sample_rate: int | None = None) -> np.ndarray:
        """One echo chunk (channels, samples) -> depth (h, w) [m] along the
        virtual camera's optical axis.

        Raises:
            InputError: an echo that does not fit the contract.
        """
        return self.predict_features(self.features(echo, sample_rate)[None])[0]
