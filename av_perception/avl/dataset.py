"""Audio-visual samples from any bags that carry ``camera/image_raw``,
``audio/raw`` and (for scoring) ``gt/source_mask`` (interfaces.md).

One sample per camera image: the image, the mask of the sounding objects
with the same stamp (None if the bag has none), and the array's audio
window that starts at the image's stamp (as the node pairs them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from av_perception.bag.io import read_bag, stamp_ns
from av_perception.doa.dataset import assemble, list_bags
from av_perception.errors import InputError
from av_perception.image import RawImage, decode

IMAGE_TOPIC = 'camera/image_raw'
AUDIO_TOPIC = 'audio/raw'
MASK_TOPIC = 'gt/source_mask'


@dataclass
class AvSample:
    """One image with its audio.

    Attributes:
        rgb: (H, W, 3) uint8.
        mask: (H, W) bool, True on the sounding objects (None: no ground truth).
        audio: (channels, n) float32, from the image's stamp on (n >= the window
            asked for).
        stamp_ns: the image's stamp.
        bag: index of the bag in its folder.
    """

    rgb: np.ndarray
    mask: np.ndarray | None
    audio: np.ndarray
    stamp_ns: int
    bag: int


def _decode(msg, want: str | None = None) -> np.ndarray:
    return decode(RawImage(msg.height, msg.width, msg.encoding, msg.step, bytes(msg.data),
                           bool(msg.is_bigendian)), want=want)


def load_samples(path: str | Path, window: int, bag: int = 0, namespace: str = '',
                 span: int | None = None) -> list[AvSample]:
    """The samples of one bag: every image for which the array's stream
    covers ``span`` samples (default ``window``) from the image's stamp on.

    Raises:
        InputError: the bag lacks camera/image_raw or audio/raw, or a mask
            whose size differs from its image.
    """
    span = span or window
    images, masks, chunks = [], {}, []
    for m in read_bag(path, [IMAGE_TOPIC, AUDIO_TOPIC, MASK_TOPIC], namespace):
        if m.topic == IMAGE_TOPIC:
            images.append((stamp_ns(m.msg), _decode(m.msg, want='rgb8')))
        elif m.topic == MASK_TOPIC:
            masks[stamp_ns(m.msg)] = _decode(m.msg) > 0
        else:
            chunks.append(m.msg)
    if not images or not chunks:
        raise InputError('bag', f'{IMAGE_TOPIC} and {AUDIO_TOPIC} messages',
                         f'{path}: {len(images)} images, {len(chunks)} audio chunks')
    stream = assemble(chunks)
    fs = stream.sample_rate
    out = []
    for stamp, rgb in images:
        start = int(round((stamp - stream.t0_ns) * fs / 1e9))
        if start < 0 or start + span > stream.samples.shape[1]:
            continue
        mask = masks.get(stamp)
        if mask is not None and mask.shape != rgb.shape[:2]:
            raise InputError('mask', f'a {rgb.shape[1]}x{rgb.shape[0]} {MASK_TOPIC}',
                             f'{mask.shape[1]}x{mask.shape[0]} in {path}')
        out.append(AvSample(rgb, mask, stream.samples[:, start:start + span], stamp, bag))
    return out


def load_folder(root: str | Path, window: int, namespace: str = '', span: int | None = None,
                progress=None) -> list[AvSample]:
    """The samples of every bag under ``root``."""
    bags = list_bags(root)
    out = []
    for i, b in enumerate(bags):
        out += load_samples(b, window, i, namespace, span)
        if progress is not None:
            print(f'\r[data] {i + 1}/{len(bags)} bags, {len(out)} samples', end='',
                  file=progress, flush=True)
    if progress is not None:
        print(file=progress)
    return out
