"""Audio-visual samples from any bags that carry ``camera/image_raw``,
``audio/raw`` and (for scoring) ``gt/source_mask`` (interfaces.md).

One sample per camera image: the image, the mask of the sounding objects
with the same stamp (None if the bag has none), and the array's audio
window that starts at the image's stamp (as the node pairs them). The
array's stream must have the geometry's channels and sample rate, and,
where a model says which field of view it was made for, the bag's camera
(``camera/camera_info``) must have it; a bag that does not, or lacks a
topic, is reported and left out (``bag.contents.each_bag``).

Where the bag has ``camera/camera_info`` and the transform array <- camera
optical frame on /tf_static (or /tf), each sample also carries the
:class:`~av_perception.av_heatmap.projection.CameraView` that projects the array's
acoustic image into its image: the frames are the ones the bag's own
messages name (the audio chunks' and the images' ``header.frame_id``),
looked up once per bag (the latest transform: a camera fixed to the array,
as on the robots this package knows; a pan-tilt camera would need one per
image).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from av_perception.arrays import ArrayGeometry
from av_perception.av_heatmap.projection import CameraView
from av_perception.bag.contents import (CAMERA_INFO, FRAME_TOPICS, ODOM_FRAME, BagFrames,
                                        Intrinsics, UnusableBag, check_fov, each_bag, list_bags)
from av_perception.bag.io import read_bag, stamp_ns
from av_perception.bag.sources import source_readings
from av_perception.direction.dataset import assemble
from av_perception.geometry.tf_buffer import Transform, TfBuffer, TransformError
from av_perception.image import RawImage, decode

IMAGE_TOPIC = 'camera/image_raw'
AUDIO_TOPIC = 'audio/raw'
MASK_TOPIC = 'gt/source_mask'
#: read for oracles only (``load_samples(oracle=True)``): ground truth and
#: the simulator's 16-mic virtual array
TRUTH_TOPIC = 'gt/sound_direction'
TEACHER_TOPIC = 'audio/teacher'
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
        view: the camera relative to the array (None: the bag lacks
            camera_info or the transform).
        truth: (oracle) the true directions (azimuth, elevation) [rad] in the
            array frame of the sources that sound during the window
            (gt/sound_direction), None when not read.
        teacher: (oracle) the 16-mic virtual array's audio over the same
            span (audio/teacher; None when absent or not read).
        odom: the pose of the array frame in the odometry frame at the
            image's stamp (/tf; None: the bag has no odometry).
    """

    rgb: np.ndarray
    mask: np.ndarray | None
    audio: np.ndarray
    stamp_ns: int
    bag: int
    view: CameraView | None = None
    truth: list | None = None
    teacher: np.ndarray | None = None
    odom: Transform | None = None


def _decode(msg, want: str | None = None) -> np.ndarray:
    return decode(RawImage(msg.height, msg.width, msg.encoding, msg.step, bytes(msg.data),
                           bool(msg.is_bigendian)), want=want)


def camera_view(camera: Intrinsics, tf: TfBuffer, array_frame: str,
                optical_frame: str | None = None, stamp_ns: int | None = None) -> CameraView:
    """The CameraView of a camera (a bag's or a live node's): its intrinsics
    and the pose of its optical frame (default the CameraInfo's frame) in
    ``array_frame`` from ``tf`` at ``stamp_ns`` (None: the latest).

    Raises:
        TransformError: the buffer cannot give the transform.
    """
    optical = optical_frame or camera.frame_id
    return CameraView(camera.k, camera.width, camera.height,
                      tf.lookup(array_frame, optical, stamp_ns), array_frame, optical)


def load_samples(path: str | Path, window: int, bag: int = 0, namespace: str = '',
                 span: int | None = None, geometry: ArrayGeometry | None = None,
                 fov: tuple[float, float] | None = None,
                 oracle: bool = False) -> list[AvSample]:
    """The samples of one bag: every image for which the array's stream
    covers ``span`` samples (default ``window``) from the image's stamp on.
    ``geometry``: the array the stream must come from (channels, sample
    rate); ``fov``: (the model's horizontal field of view, the accepted
    difference) [deg] the bag's CameraInfo must match. ``oracle``: also the
    ground-truth directions and the virtual array's audio (scoring's
    oracles; never training).

    Raises:
        UnusableBag: the bag lacks camera/image_raw or audio/raw (or, with
            ``fov``, camera/camera_info), its stream is not the geometry's,
            its camera has another field of view, or a mask's size differs
            from its image.
    """
    span = span or window
    images, masks, chunks, truths, teacher = [], {}, [], [], []
    frames = BagFrames(path)
    topics = [IMAGE_TOPIC, AUDIO_TOPIC, MASK_TOPIC, *FRAME_TOPICS]
    for m in read_bag(path, topics + ([TRUTH_TOPIC, TEACHER_TOPIC] if oracle else []),
                      namespace):
        if frames.feed(m):
            continue
        if m.topic == IMAGE_TOPIC:
            images.append((stamp_ns(m.msg), _decode(m.msg, want='rgb8'), m.msg.header.frame_id))
        elif m.topic == MASK_TOPIC:
            masks[stamp_ns(m.msg)] = _decode(m.msg) > 0
        elif m.topic == TRUTH_TOPIC:
            truths.extend((stamp_ns(m.msg), m.msg.header.frame_id, r.azimuth, r.elevation)
                          for r in source_readings(m.msg))
        elif m.topic == TEACHER_TOPIC:
            teacher.append(m.msg)
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
    try:
        view = camera_view(frames.camera(CAMERA_INFO), frames.tf, stream.frame_id, images[0][2])
    except (UnusableBag, TransformError):
        view = None
    virtual = assemble(teacher) if teacher else None
    fs = stream.sample_rate
    out = []
    for stamp, rgb, _ in images:
        start = int(round((stamp - stream.t0_ns) * fs / 1e9))
        if start < 0 or start + span > stream.samples.shape[1]:
            continue
        mask = masks.get(stamp)
        if mask is not None and mask.shape != rgb.shape[:2]:
            raise UnusableBag(path, f'a {rgb.shape[1]}x{rgb.shape[0]} {MASK_TOPIC}',
                              f'{mask.shape[1]}x{mask.shape[0]}')
        sample = AvSample(rgb, mask, stream.samples[:, start:start + span], stamp, bag, view)
        try:
            sample.odom = frames.tf.lookup(ODOM_FRAME, stream.frame_id, stamp)
        except TransformError:
            sample.odom = None
        if oracle:
            end = stamp + int(round(window / fs * 1e9))
            sample.truth = sorted({(round(az, 6), round(el, 6)) for t, f, az, el in truths
                                   if f == stream.frame_id and stamp <= t < end})
            if virtual is not None:
                v0 = int(round((stamp - virtual.t0_ns) * fs / 1e9))
                if v0 >= 0 and v0 + span <= virtual.samples.shape[1]:
                    sample.teacher = virtual.samples[:, v0:v0 + span]
        out.append(sample)
    return out


def load_folder(root: str | Path, window: int, namespace: str = '', span: int | None = None,
                progress=None, geometry: ArrayGeometry | None = None,
                fov: tuple[float, float] | None = None,
                needs: tuple = NEEDS, oracle: bool = False) -> list[AvSample]:
    """The samples of every usable bag under ``root`` (see
    :func:`load_samples`); a bag that is not usable is reported on
    ``progress`` (default stderr) and skipped. ``AvSample.bag`` is the
    bag's index in ``list_bags(root)``."""
    import sys
    bags = list_bags(root)
    index = {str(b): i for i, b in enumerate(bags)}
    out: list[AvSample] = []

    def load(b: Path) -> None:
        out.extend(load_samples(b, window, index[str(b)], namespace, span, geometry, fov,
                                oracle))

    each_bag(bags, load, (*needs, CAMERA_INFO) if fov is not None else needs, namespace,
             'audio-visual samples', progress or sys.stderr,
             (lambda: f'{len(out)} samples') if progress is not None else None)
    return out
