"""Frames, binaural segments and turn pairs from any bags that carry
``camera/image_raw`` and ``audio/binaural`` (training), plus ``gt/pose`` and
``gt/sound_direction`` (scoring), whoever recorded them (interfaces.md).

A *view* is one camera frame with the binaural segment that starts at its
stamp (``spec.audio_window`` samples). A *pair* is two consecutive views
between which the robot turned in place: that is what the rotation models
see. Which consecutive views are turns in place comes from the robot's
motion (in the simulated bags, which carry no odometry, from the position
part of ``gt/pose``: it moved less than ``TURN_IN_PLACE_M``); the yaw part
of ``gt/pose`` is used only as the scoring truth and by the supervised
reference, never by the self-supervised training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from av_perception.bag.io import read_bag, stamp_ns
from av_perception.doa.dataset import assemble, list_bags
from av_perception.errors import InputError
from av_perception.geometry.frames import quaternion_yaw
from av_perception.image import RawImage, decode
from av_perception.rotation.features import RotationSpec, grey_input, level_dbfs, wrap

#: Largest position change [m] between two views that still counts as a turn in place.
TURN_IN_PLACE_M = 0.01
#: Longest time [s] between the two frames of a pair.
MAX_PAIR_SECONDS = 1.0
TOPICS = ('camera/image_raw', 'camera/camera_info', 'audio/binaural', 'gt/pose',
          'gt/sound_direction')


@dataclass
class View:
    """One camera frame and what goes with it."""

    stamp_ns: int
    grey: np.ndarray                 # (S, S) network input
    image: np.ndarray                # (H, W) uint8 grey, for the OpenCV baseline
    level_dbfs: float                # binaural segment level (-200 without audio)
    position: tuple | None           # gt (x, y) [m], None without gt/pose
    yaw: float | None                # gt yaw [rad]
    azimuths: list = field(default_factory=list)  # gt binaural azimuths sounding in the segment
    segment: np.ndarray | None = None  # (2, audio_window) binaural samples, None without audio


@dataclass
class Pair:
    """Two views of a turn in place; ``yaw`` = true yaw of the second view
    relative to the first (CCW, rad), None without gt/pose."""

    bag: int
    first: int
    second: int
    dt: float
    yaw: float | None


@dataclass
class BagViews:
    path: Path
    views: list
    K: np.ndarray | None
    width: int


def load_views(path: str | Path, spec: RotationSpec, namespace: str = '',
               need_audio: bool = True) -> BagViews:
    """Every camera frame of a bag as a View.

    Raises:
        InputError: no camera/image_raw, or (``need_audio``) no audio/binaural.
    """
    images, poses, gt, chunks, K, width = [], [], [], [], None, 0
    for m in read_bag(path, list(TOPICS), namespace):
        if m.topic == 'camera/image_raw':
            images.append(m.msg)
        elif m.topic == 'camera/camera_info' and K is None:
            K, width = np.asarray(m.msg.k, float).reshape(3, 3), int(m.msg.width)
        elif m.topic == 'audio/binaural':
            chunks.append(m.msg)
        elif m.topic == 'gt/pose':
            poses.append((stamp_ns(m.msg), m.msg.pose))
        elif m.topic == 'gt/sound_direction':
            gt.append((stamp_ns(m.msg), m.msg.header.frame_id, float(m.msg.azimuth)))
    if not images:
        raise InputError('bag', f'{path}: camera/image_raw frames', 'none')
    if need_audio and not chunks:
        raise InputError('bag', f'{path}: an audio/binaural stream', 'none')
    stream = assemble(chunks) if chunks else None
    pose_at = dict(poses)
    views = []
    for img in sorted(images, key=stamp_ns):
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
        p = pose_at.get(t)
        views.append(View(t, grey_input(arr, spec), grey8, level,
                          (p.position.x, p.position.y) if p is not None else None,
                          quaternion_yaw(p.orientation) if p is not None else None, azs,
                          segment))
    return BagViews(Path(path), views, K, width)


def turn_pairs(bag_index: int, bv: BagViews) -> list[Pair]:
    """Consecutive views between which the robot turned in place."""
    out = []
    for i in range(len(bv.views) - 1):
        a, b = bv.views[i], bv.views[i + 1]
        dt = (b.stamp_ns - a.stamp_ns) * 1e-9
        if not 0 < dt <= MAX_PAIR_SECONDS:
            continue
        if a.position is None or b.position is None:
            continue  # the motion is unknown: not a known turn in place
        if math.dist(a.position, b.position) > TURN_IN_PLACE_M:
            continue
        yaw = wrap(b.yaw - a.yaw) if a.yaw is not None and b.yaw is not None else None
        out.append(Pair(bag_index, i, i + 1, dt, yaw))
    return out


def load_all(bags_dir: str | Path, spec: RotationSpec, namespace: str = '',
             need_audio: bool = True, progress=None) -> tuple[list[BagViews], list[Pair]]:
    """Views and turn pairs of every bag under ``bags_dir``."""
    bags, pairs = [], []
    paths = list_bags(bags_dir)
    for i, path in enumerate(paths):
        bv = load_views(path, spec, namespace, need_audio)
        bags.append(bv)
        pairs += turn_pairs(i, bv)
        if progress is not None:
            print(f'\r[dataset] {i + 1}/{len(paths)} bags, {len(pairs)} turn pairs', end='',
                  file=progress, flush=True)
    if progress is not None:
        print(file=progress)
    return bags, pairs
