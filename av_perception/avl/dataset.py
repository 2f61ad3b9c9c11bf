"""Audio-visual samples from any bags that carry ``camera/image_raw``,
``audio/raw`` and (for scoring) ``gt/source_mask`` (interfaces.md).

One sample per camera image: the image, the mask of the sounding objects
with the same stamp (None if the bag has none), and the array's audio
window that starts at the image's stamp (as the node pairs them). The
array's stream must have the geometry's channels and sample rate, and,
where a model says which field of view it was made for, the bag's camera
(``camera/camera_info``) must have it; a bag that does not, or lacks a
topic, is reported and left out (``bag.contents.each_bag``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from av_perception.arrays import ArrayGeometry
from av_perception.bag.contents import (CAMERA_INFO, FRAME_TOPICS, BagFrames, UnusableBag,
                                        check_fov, each_bag, list_bags)
from av_perception.bag.io import read_bag, stamp_ns
from av_perception.doa.dataset import assemble
from av_perception.image import RawImage, decode

IMAGE_TOPIC = 'camera/image_raw'
AUDIO_TOPIC = 'audio/raw'
MASK_TOPIC = 'gt/source_mask'
#: What a bag needs to give samples (scoring also needs MASK_TOPIC).
NEEDS = (IMAGE_TOPIC, AUDIO_TOPIC)


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
                 span: int | None = None, geometry: ArrayGeometry | None = None,
                 fov: tuple[float, float] | None = None) -> list[AvSample]:
    """The samples of one bag: every image for which the array's stream
    covers ``span`` samples (default ``window``) from the image's stamp on.
    ``geometry``: the array the stream must come from (channels, sample
    rate); ``fov``: (the model's horizontal field of view, the accepted
    difference) [deg] the bag's CameraInfo must match.

    Raises:
        UnusableBag: the bag lacks camera/image_raw or audio/raw (or, with
            ``fov``, camera/camera_info), its stream is not the geometry's,
            its camera has another field of view, or a mask's size differs
            from its image.
    """
    span = span or window
    images, masks, chunks = [], {}, []
    frames = BagFrames(path)
    for m in read_bag(path, [IMAGE_TOPIC, AUDIO_TOPIC, MASK_TOPIC, *FRAME_TOPICS], namespace):
        if frames.feed(m):
            continue
        if m.topic == IMAGE_TOPIC:
            images.append((stamp_ns(m.msg), _decode(m.msg, want='rgb8')))
        elif m.topic == MASK_TOPIC:
            masks[stamp_ns(m.msg)] = _decode(m.msg) > 0
        else:
            chunks.append(m.msg)
    if not images or not chunks:
        raise UnusableBag(path, f'{IMAGE_TOPIC} and {AUDIO_TOPIC} messages',
                          f'{len(images)} images, {len(chunks)} audio chunks')
    if fov is not None:
        check_fov(frames.camera(CAMERA_INFO), fov[0], fov[1], path, 'the model')
    stream = assemble(chunks)
    if geometry is not None:
        stream.require(geometry.channels, geometry.sample_rate, path, AUDIO_TOPIC,
                       f'array {geometry.name}')
    fs = stream.sample_rate
    out = []
    for stamp, rgb in images:
        start = int(round((stamp - stream.t0_ns) * fs / 1e9))
        if start < 0 or start + span > stream.samples.shape[1]:
            continue
        mask = masks.get(stamp)
        if mask is not None and mask.shape != rgb.shape[:2]:
            raise UnusableBag(path, f'a {rgb.shape[1]}x{rgb.shape[0]} {MASK_TOPIC}',
                              f'{mask.shape[1]}x{mask.shape[0]}')
        out.append(AvSample(rgb, mask, stream.samples[:, start:start + span], stamp, bag))
    return out


def load_folder(root: str | Path, window: int, namespace: str = '', span: int | None = None,
                progress=None, geometry: ArrayGeometry | None = None,
                fov: tuple[float, float] | None = None,
                needs: tuple = NEEDS) -> list[AvSample]:
    """The samples of every usable bag under ``root`` (see
    :func:`load_samples`); a bag that is not usable is reported on
    ``progress`` (default stderr) and skipped. ``AvSample.bag`` is the
    bag's index in ``list_bags(root)``."""
    import sys
    bags = list_bags(root)
    index = {str(b): i for i, b in enumerate(bags)}
    out: list[AvSample] = []

    def load(b: Path) -> None:
        out.extend(load_samples(b, window, index[str(b)], namespace, span, geometry, fov))

    each_bag(bags, load, (*needs, CAMERA_INFO) if fov is not None else needs, namespace,
             'audio-visual samples', progress or sys.stderr,
             (lambda: f'{len(out)} samples') if progress is not None else None)
    return out
