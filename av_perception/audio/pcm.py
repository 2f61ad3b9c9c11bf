"""PCM byte formats of the ROS audio_common driver -> float32 samples."""

from __future__ import annotations

import numpy as np

from av_perception.errors import InputError

#: Sample formats of audio_common's AudioInfo.sample_format that are accepted,
#: with their numpy dtype and the value of full scale.
FORMATS: dict[str, tuple[str, float]] = {
    'S16LE': ('<i2', 32768.0),
    'S32LE': ('<i4', 2147483648.0),
    'F32LE': ('<f4', 1.0),
}


def decode_pcm(data: bytes, sample_format: str, channels: int) -> np.ndarray:
    """Interleaved PCM bytes -> interleaved float32 samples, full scale +/-1.

    Raises:
        InputError: an unknown format, or a byte count that is not a whole
            number of frames.
    """
    fmt = sample_format.upper()
    if fmt not in FORMATS:
        raise InputError('sample_format', f'one of {", ".join(FORMATS)}', repr(sample_format))
    dtype, scale = FORMATS[fmt]
    width = np.dtype(dtype).itemsize
    if channels <= 0:
        raise InputError('channels', 'at least 1 channel', str(channels))
    if len(data) % (width * channels):
        raise InputError('length', f'a multiple of {width * channels} bytes '
                         f'({channels} channels of {fmt})', f'{len(data)} bytes')
    samples = np.frombuffer(bytes(data), dtype=dtype).astype(np.float32)
    if scale != 1.0:
        samples /= np.float32(scale)
    return samples
