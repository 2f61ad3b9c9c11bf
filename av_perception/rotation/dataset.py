"""Frames, binaural segments and turn pairs from any bags that carry
``camera/image_raw``, ``camera/camera_info`` and ``audio/binaural``
(training), plus ``gt/pose`` and ``gt/sound_direction`` (scoring), whoever
recorded them (interfaces.md).

A *view* is one camera frame with the binaural segment that starts at its
stamp (``spec.audio_window`` samples). A *pair* is two consecutive views
between which the robot turned in place: that is what the rotation models
see. Which consecutive views are turns in place comes from the robot's
motion (:class:`~av_perception.bag.contents.Motion`: ``gt/pose`` where the
bag has it, else the odometry on /tf), never from a fixed frame interval
(:class:`PairRule`): the base moved less than ``max_translation_m``, turned
no more than the visual model can read (``max_turn_rad``), within
``max_seconds``. The yaw of the motion is used only as the scoring truth,
by the supervised reference and to fix the self-supervised model's sign and
scale, never by the self-supervised loss. The camera's field of view comes
from the bag's CameraInfo and must be the model's.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from av_perception.audio.level import level_dbfs
from av_perception.bag.contents import (CAMERA_INFO, FRAME_TOPICS, MOTION_TOPICS, BagFrames,
                                        Intrinsics, Motion, MotionFrames, UnusableBag,
                                        check_fov, each_bag, list_bags)
from av_perception.bag.io import read_bag, stamp_ns
from av_perception.bag.sources import source_readings
from av_perception.direction.dataset import assemble
from av_perception.errors import ConfigError
from av_perception.image import RawImage, decode
from av_perception.rotation.features import RotationSpec, grey_input, max_turn_rad, wrap

#: Default largest base translation [m] between two views of a turn in place.
TURN_IN_PLACE_M = 0.01
#: Default longest time [s] between the two views of a pair: generous (a
#: robot turning 45 deg in 2 s, a camera at a few frames per second).
MAX_PAIR_SECONDS = 5.0
#: Default largest difference [deg] between the bag camera's and the model's
#: horizontal field of view (the rotation node's ``hfov_tolerance_deg``).
HFOV_TOLERANCE_DEG = 5.0
IMAGE, BINAURAL, GT_POSE = 'camera/image_raw', 'audio/binaural', 'gt/pose'
TOPICS = (IMAGE, BINAURAL, GT_POSE, 'gt/sound_direction', *FRAME_TOPICS)


@dataclass(frozen=True)
class PairRule:
    """Which two consecutive views are a turn in place (the yaw limit is the
    model's range, :func:`~av_perception.rotation.features.max_turn_rad`).

    Attributes:
        max_seconds: longest time between the two views [s].
        max_translation_m: largest translation of the base between them [m].
    """

    max_seconds: float = MAX_PAIR_SECONDS
    max_translation_m: float = TURN_IN_PLACE_M

    def __post_init__(self) -> None:
        if not self.max_seconds > 0 or not self.max_translation_m >= 0:
            raise ConfigError(f'--max-pair-seconds must be > 0 and --max-pair-translation '
                              f'>= 0, got {self.max_seconds} s and {self.max_translation_m} m')


@dataclass(frozen=True)
class BagOptions:
    """How the rotation commands read bags (their command-line options).

    Attributes:
        namespace: robot namespace of the bag topics.
        frames: odometry frame names, for bags without gt/pose.
        pairs: which consecutive views are turn pairs.
        hfov_tolerance_deg: largest accepted difference between the bag
            camera's field of view and the model's [deg].
    """

    namespace: str = ''
    frames: MotionFrames = MotionFrames()
    pairs: PairRule = PairRule()
    hfov_tolerance_deg: float = HFOV_TOLERANCE_DEG


@dataclass
class View:
    """One camera frame and what goes with it."""

    stamp_ns: int
    grey: np.ndarray                 # (S, S) network input
    image: np.ndarray                # (H, W) uint8 grey, for the OpenCV baseline
    level_dbfs: float                # binaural segment level (-200 without audio)
    position: tuple | None           # base (x, y) [m] (gt/pose or odometry), None if unknown
    yaw: float | None                # base yaw [rad] in the same frame
    azimuths: list = field(default_factory=list)  # gt binaural azimuths sounding in the segment
    segment: np.ndarray | None = None  # (2, audio_window) binaural samples, None without audio


@dataclass
class Pair:
    """Two views of a turn in place; ``yaw`` = yaw of the second view
    relative to the first (CCW, rad) from the bag's motion (gt/pose, or the
    odometry: ``BagViews.motion``)."""

    bag: int
    first: int
    second: int
    dt: float
    yaw: float | None


@dataclass
class BagViews:
    """The views of one bag, its camera (CameraInfo) and where its motion
    came from ('gt/pose' or 'odometry')."""

    path: Path
    views: list
    camera: Intrinsics
    motion: str = 'gt/pose'

    @property
    def K(self) -> np.ndarray:
        """The camera matrix (3x3) [px]."""
        return self.camera.k


def needs(need_audio: bool = True, need_truth: bool = False) -> list:
    """The topics a bag needs for :func:`load_views`."""
    return ([IMAGE, CAMERA_INFO] + ([BINAURAL] if need_audio else [])
            + [GT_POSE if need_truth else MOTION_TOPICS])


def load_views(path: str | Path, spec: RotationSpec, namespace: str = '',
               need_audio: bool = True, options: BagOptions = BagOptions(),
               need_truth: bool = False) -> BagViews:
    """Every camera frame of a bag as a View, with the base's pose at its
    stamp (gt/pose, else the odometry on /tf; ``need_truth``: gt/pose only).

    Raises:
        UnusableBag: a needed topic is missing, the camera's field of view is
            not the model's, the binaural stream is not the model's (2
            channels at its sample rate), or the motion is nowhere known.
    """
    namespace = namespace or options.namespace
    frames = BagFrames(path)
    images, poses, gt, chunks = [], [], [], []
    for m in read_bag(path, list(TOPICS), namespace):
        if frames.feed(m):
            continue
        if m.topic == IMAGE:
            images.append(m.msg)
        elif m.topic == BINAURAL:
            chunks.append(m.msg)
        elif m.topic == GT_POSE:
            poses.append(m.msg)
        elif m.topic == 'gt/sound_direction':
            gt.extend((stamp_ns(m.msg), m.msg.header.frame_id, r.azimuth)
                      for r in source_readings(m.msg))
    for topic, got in ((IMAGE, images), (BINAURAL, chunks if need_audio else [None]),
                       (GT_POSE, poses if need_truth else [None])):
        if not got:
            raise UnusableBag(path, f'{topic} messages', 'none')
    camera = frames.camera(CAMERA_INFO)
    check_fov(camera, spec.hfov_deg, options.hfov_tolerance_deg, path, 'the rotation model')
    stream = assemble(chunks) if chunks else None
    if stream is not None:
        stream.require(2, spec.sample_rate, path, BINAURAL)
    images.sort(key=stamp_ns)
    motion = Motion(frames, sorted(poses, key=stamp_ns), options.frames)
    where = motion.require([stamp_ns(img) for img in images])
    views = []
    for img, pose in zip(images, where):
        t = stamp_ns(img)
        arr = decode(RawImage(img.height, img.width, img.encoding, img.step, bytes(img.data),
                              bool(img.is_bigendian)))
        grey8 = (arr if arr.ndim == 2 else arr.astype(np.float32).mean(axis=2)).astype(np.uint8)
        level, azs, segment = -200.0, [], None
        if stream is not None:
            s = int(round((t - stream.t0_ns) * 1e-9 * stream.sample_rate))
            seg = stream.samples[:, max(0, s):s + spec.audio_window]
            if s >= 0 and seg.shape[1] == spec.audio_window:
                level, segment = level_dbfs(seg), seg
                t_end = t + int(spec.audio_window / stream.sample_rate * 1e9)
                azs = sorted({round(a, 4) for ns, frame, a in gt
                              if t <= ns < t_end and frame == stream.frame_id})
        views.append(View(t, grey_input(arr, spec), grey8, level,
                          pose[:2] if pose is not None else None,
                          pose[2] if pose is not None else None, azs, segment))
    return BagViews(Path(path), views, camera, motion.source)


def turn_pairs(bag_index: int, bv: BagViews, rule: PairRule = PairRule(),
               max_yaw: float = math.pi, rejected: Counter | None = None) -> list[Pair]:
    """Consecutive views between which the robot turned in place: at most
    ``rule.max_seconds`` apart, the base moved at most
    ``rule.max_translation_m`` and turned at most ``max_yaw`` [rad]. Why the
    other consecutive views are not pairs is counted in ``rejected``."""
    out = []
    rejected = rejected if rejected is not None else Counter()
    for i in range(len(bv.views) - 1):
        a, b = bv.views[i], bv.views[i + 1]
        dt = (b.stamp_ns - a.stamp_ns) * 1e-9
        if not 0 < dt <= rule.max_seconds:
            rejected[f'more than {rule.max_seconds:g} s apart (--max-pair-seconds)'] += 1
        elif a.position is None or b.position is None:
            rejected['without a known pose'] += 1
        elif math.dist(a.position, b.position) > rule.max_translation_m:
            rejected[f'the base moved more than {rule.max_translation_m:g} m '
                     '(--max-pair-translation)'] += 1
        elif abs(wrap(b.yaw - a.yaw)) > max_yaw:
            rejected[f'turned more than the model reads ({math.degrees(max_yaw):.1f} '
                     'deg)'] += 1
        else:
            out.append(Pair(bag_index, i, i + 1, dt, wrap(b.yaw - a.yaw)))
    return out


def load_all(bags_dir: str | Path | list, spec: RotationSpec, namespace: str = '',
             need_audio: bool = True, progress=None, options: BagOptions = BagOptions(),
             need_truth: bool = False) -> tuple[list[BagViews], list[Pair]]:
    """Views and turn pairs of every usable bag under ``bags_dir`` (one
    folder or several); a bag that is not usable is reported on
    ``progress`` (default stderr) and skipped.

    Raises:
        InputError: no usable bag.
        ConfigError: no turn pair in any bag (the message counts why).
    """
    import sys
    out = progress if progress is not None else sys.stderr
    namespace = namespace or options.namespace
    roots = bags_dir if isinstance(bags_dir, (list, tuple)) else [bags_dir]
    paths = list_bags(*roots)
    bags, pairs, rejected = [], [], Counter()
    max_yaw = max_turn_rad(spec)

    def load(path: Path) -> BagViews:
        bv = load_views(path, spec, namespace, need_audio, options, need_truth)
        pairs.extend(turn_pairs(len(bags), bv, options.pairs, max_yaw, rejected))
        bags.append(bv)
        return bv

    each_bag(paths, load, needs(need_audio, need_truth), namespace,
             'rotation: ' + ('scoring' if need_truth else 'training'), out,
             (lambda: f'{len(pairs)} turn pairs') if progress is not None else None)
    if not pairs:
        why = ', '.join(f'{n} {k}' for k, n in rejected.most_common()) or 'fewer than 2 views'
        raise ConfigError(f'{", ".join(str(r) for r in roots)}: no turn-in-place pair in '
                          f'{len(bags)} bags (consecutive views: {why})')
    return bags, pairs
