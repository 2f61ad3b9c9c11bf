"""``av-perception doctor``: does this environment run the package?"""

from __future__ import annotations

import importlib


def _check(name: str, fn) -> tuple[bool, str]:
    try:
        return True, str(fn())
    except Exception as exc:  # noqa: BLE001 - every failure is a finding here
        return False, f'{type(exc).__name__}: {exc}'


def _rclpy() -> str:
    import rclpy
    from rclpy.utilities import get_rmw_implementation_identifier
    return f'rclpy ok, middleware {get_rmw_implementation_identifier()}' if rclpy else ''


def _msgs(pkg: str, name: str):
    def check() -> str:
        getattr(importlib.import_module(f'{pkg}.msg'), name)
        return f'{pkg}/msg/{name}'
    return check


def _onnxruntime() -> str:
    import onnxruntime as ort

    from av_perception.inference import provider_problem, usable_providers
    missing = {p: provider_problem(p) for p in ort.get_available_providers()
               if provider_problem(p)}
    return (f'onnxruntime {ort.__version__}, usable providers {usable_providers()}'
            + (f' (not usable: {missing})' if missing else ''))


def _torch() -> str:
    import torch
    return f'torch {torch.__version__} (CUDA available: {torch.cuda.is_available()})'


def _soundcards() -> str:
    from av_perception.audio.soundcard import portaudio
    sd = portaudio()
    devs = sd.query_devices()
    return (f'sounddevice {sd.__version__}, {sd.get_portaudio_version()[1]}: '
            f'{sum(d["max_input_channels"] > 0 for d in devs)} input and '
            f'{sum(d["max_output_channels"] > 0 for d in devs)} output devices')


REQUIRED = [
    ('ROS 2 (rclpy + middleware)', _rclpy),
    ('av_perception.msg', _msgs('av_perception', 'AudioChunk')),
    ('tf2_msgs', _msgs('tf2_msgs', 'TFMessage')),
    ('audio_common_msgs', _msgs('audio_common_msgs', 'AudioDataStamped')),
    ('sensor/diagnostic/visualization msgs', _msgs('diagnostic_msgs', 'DiagnosticArray')),
    ('ONNX Runtime', _onnxruntime),
]
OPTIONAL = [('torch (training extra)', _torch),
            ('sound cards (robot extra)', _soundcards)]


def run_checks(quiet: bool = False) -> int:
    """Print one line per check; return 1 if a required one fails."""
    failed = False
    for label, fn in REQUIRED + OPTIONAL:
        ok, detail = _check(label, fn)
        required = (label, fn) in REQUIRED
        failed |= required and not ok
        if not ok or not quiet:
            mark = 'ok  ' if ok else ('FAIL' if required else 'miss')
            print(f'[{mark}] {label}: {detail}')
    return 1 if failed else 0
