"""sensor_msgs/Image encodings <-> numpy, without cv_bridge.

Pure numpy on the message's fields (height, width, encoding, is_bigendian,
step, data), so it is testable without ROS; ``av_perception.ros.messages``
wraps it for Image messages. Row padding (step > width * pixel size) and
big-endian data are handled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from av_perception.errors import InputError

#: encoding -> (numpy dtype, channels)
ENCODINGS: dict[str, tuple[str, int]] = {
    'rgb8': ('u1', 3),
    'bgr8': ('u1', 3),
    'mono8': ('u1', 1),
    '16UC1': ('u2', 1),
    'mono16': ('u2', 1),
    '32FC1': ('f4', 1),
}

#: Largest image accepted (pixels): 16384 x 16384 would be a corrupt header.
MAX_PIXELS = 8192 * 8192


@dataclass
class RawImage:
    """The fields of a sensor_msgs/Image that carry pixels."""

    height: int
    width: int
    encoding: str
    step: int
    data: bytes
    is_bigendian: bool = False


def decode(img: RawImage, *, want: str | None = None) -> np.ndarray:
    """Image fields -> numpy array (H, W) or (H, W, 3).

    Args:
        img: the message fields.
        want: convert colour images to this encoding ('rgb8' or 'bgr8'); mono8
            is expanded to three channels when a colour encoding is wanted.

    Raises:
        InputError: unsupported encoding, zero or huge dimensions, a step that
            does not fit the width, or data shorter than step * height.
    """
    if img.encoding not in ENCODINGS:
        raise InputError('encoding', f'one of {", ".join(ENCODINGS)}', repr(img.encoding))
    if img.height <= 0 or img.width <= 0:
        raise InputError('size', 'a non-empty image', f'{img.width}x{img.height}')
    if img.height * img.width > MAX_PIXELS:
        raise InputError('size', f'at most {MAX_PIXELS} pixels', f'{img.width}x{img.height}')
    base, nch = ENCODINGS[img.encoding]
    dtype = np.dtype(('>' if img.is_bigendian else '<') + base) if base != 'u1' else np.dtype('u1')
    row = img.width * nch * dtype.itemsize
    if img.step < row:
        raise InputError('step', f'step >= {row} bytes ({img.width} px of {img.encoding})',
                         f'step {img.step}')
    if img.step % dtype.itemsize:
        raise InputError('step', f'a step that is a multiple of {dtype.itemsize} bytes',
                         f'step {img.step}')
    if len(img.data) < img.step * img.height:
        raise InputError('data_length', f'{img.step * img.height} bytes (step x height)',
                         f'{len(img.data)} bytes')
    buf = np.frombuffer(img.data, dtype=dtype, count=img.step * img.height // dtype.itemsize)
    rows = buf.reshape(img.height, img.step // dtype.itemsize)[:, :img.width * nch]
    out = rows.reshape(img.height, img.width, nch) if nch > 1 else rows
    out = out.astype(dtype.newbyteorder('='), copy=True)
    if want in ('rgb8', 'bgr8'):
        if nch == 1:
            if img.encoding != 'mono8':
                raise InputError('encoding', f'a colour or mono8 image for {want}',
                                 repr(img.encoding))
            out = np.repeat(out[:, :, None], 3, axis=2)
        elif img.encoding != want:
            out = out[:, :, ::-1].copy()
    elif want is not None and want != img.encoding:
        raise InputError('encoding', repr(want), repr(img.encoding))
    return out


def encode(array: np.ndarray, encoding: str) -> RawImage:
    """numpy array -> Image fields, no row padding, little-endian.

    Raises:
        InputError: an encoding this module does not know, or an array whose
            shape or dtype does not fit it.
    """
    if encoding not in ENCODINGS:
        raise InputError('encoding', f'one of {", ".join(ENCODINGS)}', repr(encoding))
    base, nch = ENCODINGS[encoding]
    array = np.asarray(array)
    shape_ok = array.ndim == 3 and array.shape[2] == nch if nch > 1 else array.ndim == 2
    if not shape_ok:
        want = '(H, W, 3)' if nch > 1 else '(H, W)'
        raise InputError('shape', f'{want} for {encoding}', f'shape {array.shape}')
    dtype = np.dtype('<' + base) if base != 'u1' else np.dtype('u1')
    # floats take any real numbers; integers only what fits without wrapping
    if dtype.kind == 'f':
        fits = array.dtype.kind in 'fiu'
    else:
        fits = array.dtype.kind in 'iu' and np.can_cast(array.dtype, dtype, 'safe')
    if not fits:
        raise InputError('dtype', f'{dtype.name} (or a type that fits in it) for {encoding}',
                         array.dtype.name)
    data = np.ascontiguousarray(array, dtype=dtype)
    h, w = data.shape[:2]
    return RawImage(height=h, width=w, encoding=encoding, step=w * nch * dtype.itemsize,
                    data=data.tobytes(), is_bigendian=False)


def decode_message(msg, *, want: str | None = None) -> np.ndarray:
    """A sensor_msgs/Image of any binding (rclpy, or rosbags when read from a
    bag) -> numpy, through :func:`decode`."""
    return decode(RawImage(height=int(msg.height), width=int(msg.width),
                           encoding=str(msg.encoding), step=int(msg.step),
                           data=bytes(msg.data), is_bigendian=bool(msg.is_bigendian)),
                  want=want)
