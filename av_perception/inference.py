"""ONNX Runtime sessions for the package's models: GPU providers first
(TensorRT, CUDA) where present, CPU otherwise; the provider really in use is
reported; a model's input contract (its metadata) is checked against what
the caller expects.

Models load only from ONNX files (no pickles).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from av_perception.errors import ConfigError

PREFERRED = ('TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider')
#: Libraries a GPU provider needs at run time (onnxruntime-gpu 1.31: CUDA 13,
#: cuDNN 9, TensorRT 10). Checked first, so that a machine without them falls
#: back to the CPU quietly instead of onnxruntime printing load errors.
NEEDS = {'CUDAExecutionProvider': ('libcublasLt.so.13', 'libcudnn.so.9'),
         'TensorrtExecutionProvider': ('libcublasLt.so.13', 'libcudnn.so.9', 'libnvinfer.so.10')}
log = logging.getLogger(__name__)
_usable: dict[str, str | None] = {}


def provider_problem(provider: str) -> str | None:
    """None if the provider's libraries load, else the first one missing."""
    if provider not in _usable:
        import ctypes
        _usable[provider] = None
        for lib in NEEDS.get(provider, ()):
            try:
                ctypes.CDLL(lib)
            except OSError:
                _usable[provider] = f'{lib} not found'
                break
    return _usable[provider]


def usable_providers(preferred: tuple[str, ...] = PREFERRED) -> list[str]:
    """The preferred providers this machine can really run, best first."""
    import onnxruntime as ort
    available = ort.get_available_providers()
    return [p for p in preferred if p in available and provider_problem(p) is None]


class OnnxModel:
    """An ONNX model with its metadata.

    Args:
        path: .onnx file.
        expect: metadata entries that must match (e.g. {'task': 'direction',
            'array': 'respeaker4'}); a mismatch raises ConfigError naming
            expected and found values.
        threads: intra-op threads on the CPU (1: one core per node).
        providers: override the provider preference.

    Raises:
        ConfigError: a missing, unreadable or mismatched model (one line).
    """

    def __init__(self, path: str | Path, expect: dict[str, str] | None = None, threads: int = 1,
                 providers: tuple[str, ...] | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f'model file {self.path} does not exist')
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # the GPU build logs missing CUDA libraries at provider creation; the
        # provider really used is reported instead (self.provider)
        ort.set_default_logger_severity(3)
        wanted = usable_providers(providers or PREFERRED)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                providers=wanted)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ConfigError(f'model file {self.path} is not a loadable ONNX model: '
                              f'{str(exc).splitlines()[0][:200]}') from None
        self.metadata: dict[str, str] = dict(
            self.session.get_modelmeta().custom_metadata_map)
        for key, want in (expect or {}).items():
            got = self.metadata.get(key)
            if got != str(want):
                raise ConfigError(f'model {self.path.name}: expected {key}={want!r} (this '
                                  f'node\'s configuration), the model has {got!r}')
        self.provider = self.session.get_providers()[0]
        self.input_name = self.session.get_inputs()[0].name
        log.info('model %s on %s', self.path.name, self.provider)

    @property
    def model_id(self) -> str:
        return self.metadata.get('model_id', self.path.stem)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run on one input batch; returns the first output."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, np.float32)})[0]
