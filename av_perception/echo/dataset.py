"""Echo / camera pairs from bags, and the cached data set a student learns from.

Any bag with ``audio/echo``, ``camera/image_raw`` and ``camera/camera_info``
can be used: each echo chunk is paired with the camera frame nearest in time
(within a tolerance; unpaired chunks are counted and reported). The depth
image's intrinsics are the bag's CameraInfo scaled to the output size; all
bags of a data set (or scored by one model) must have the same, and a bag
that lacks a topic or has other intrinsics is reported and left out
(``bag.contents.each_bag``). ``gt/depth`` is read where present (simulated
bags, or a robot with a depth sensor) and kept for evaluation only: the
student learns from the teacher's pseudo-depth.

The cache (``dataset.npz`` + ``dataset.json`` in one folder) holds per pair
the echo features, the RGB at the output size, the teacher's pseudo-depth and
feature maps for the image and for its mirror image (the exact mirror
augmentation of a left/right symmetric echo head), the ground truth if any,
and the bag index and stamp.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from av_perception.bag.contents import (CAMERA_INFO, FRAME_TOPICS, BagFrames, UnusableBag,
                                        each_bag, list_bags)
from av_perception.bag.io import nearest, read_bag, stamp_ns
from av_perception.bag.provenance import randomization
from av_perception.echo.features import EchoSpec, check_echo, echo_features, mirror_features
from av_perception.echo.occupancy import CameraMount
from av_perception.echo.teacher import Teacher, resize_depth, resize_rgb
from av_perception.errors import InputError
from av_perception.image import decode_message

ECHO, IMAGE, GT_DEPTH = 'audio/echo', 'camera/image_raw', 'gt/depth'
TOPICS = (ECHO, IMAGE, GT_DEPTH, *FRAME_TOPICS)
#: What a bag needs to give pairs.
NEEDS = (ECHO, IMAGE, CAMERA_INFO)


def scaled_k(k: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    """Intrinsics of an image resized from src (h, w) to dst (h, w)."""
    sy, sx = dst[0] / src[0], dst[1] / src[1]
    out = np.array(k, float).reshape(3, 3).copy()
    out[0, 0] *= sx
    out[0, 2] *= sx
    out[1, 1] *= sy
    out[1, 2] *= sy
    return out


@dataclass
class Pairs:
    """Echo / camera pairs of one or more bags."""

    echo: list = field(default_factory=list)      # (C, L) float32 each
    rgb: list = field(default_factory=list)       # (h, w, 3) uint8 at the output size
    gt: list = field(default_factory=list)        # (h, w) float32 or None
    stamps: list = field(default_factory=list)    # echo stamps [ns]
    bag: list = field(default_factory=list)       # bag index
    k: np.ndarray | None = None                   # intrinsics at the output size (all bags)
    k_from: str = 'the first bag'                 # whose intrinsics ``k`` are
    unpaired: int = 0                             # echo chunks without a camera frame
    echo_chunks: int = 0
    mounts: dict = field(default_factory=dict)    # bag index -> CameraMount (None: unknown)

    def __len__(self) -> int:
        return len(self.echo)


def read_pairs(path: str | Path, spec: EchoSpec, size: tuple[int, int],
               tolerance: float = 0.05, namespace: str = '', bag_index: int = 0,
               into: Pairs | None = None, salvage: bool = False,
               base_frame: str | None = None) -> Pairs:
    """Pair each echo chunk of a bag with the nearest camera frame (and
    gt/depth, if any) within ``tolerance`` seconds (``salvage``: the readable
    messages of a damaged bag, see ``read_bag``). The intrinsics are the
    bag's CameraInfo at ``size``; if ``into`` already has intrinsics (an
    earlier bag's, or a model's), the bag's must be the same. With
    ``base_frame``, the camera's mount in that frame is looked up in the
    bag's /tf_static and /tf (``Pairs.mounts``; None, with a warning, if the
    bag does not give it).

    Raises:
        UnusableBag: no echo chunks, no camera_info, other intrinsics, or
            echo chunks that do not fit the spec; nothing of the bag is added.
    """
    out = into if into is not None else Pairs()
    frames = BagFrames(path)
    echoes, images, depths = [], [], []
    for m in read_bag(path, TOPICS, namespace, salvage=salvage):
        if frames.feed(m):
            continue
        if m.topic == ECHO:
            echoes.append(m.msg)
        elif m.topic == IMAGE:
            images.append(m.msg)
        elif m.topic == GT_DEPTH:
            depths.append(m.msg)
    if not echoes:
        raise UnusableBag(path, f'{ECHO} chunks', 'none')
    camera = frames.camera(CAMERA_INFO)
    k = scaled_k(camera.k, (camera.height, camera.width), size)
    if out.k is not None and not np.allclose(k, out.k, rtol=0.01, atol=0.01):
        raise UnusableBag(path, f'the intrinsics of {out.k_from} at '
                          f'{size[1]}x{size[0]} px: {_fmt_k(out.k)}',
                          f'{_fmt_k(k)} ({CAMERA_INFO}, {camera.width}x{camera.height} px)')
    tol = int(tolerance * 1e9)
    images.sort(key=stamp_ns)
    depths.sort(key=stamp_ns)
    i_st = np.array([stamp_ns(m) for m in images], np.int64)
    d_st = np.array([stamp_ns(m) for m in depths], np.int64)
    mine = Pairs()
    for msg in echoes:
        mine.echo_chunks += 1
        t = stamp_ns(msg)
        i = nearest(i_st, t, tol)
        if i is None:
            mine.unpaired += 1
            continue
        data = np.asarray(msg.data, np.float32).reshape(-1, int(msg.channels)).T
        try:
            echo = check_echo(data, spec, int(msg.sample_rate))
        except InputError as exc:
            raise UnusableBag(path, f'{ECHO} chunks of {exc.expected}', exc.got) from None
        rgb = decode_message(images[i], want='rgb8')
        if rgb.shape[:2] != (camera.height, camera.width):
            raise UnusableBag(path, f'{IMAGE} of the {CAMERA_INFO} size '
                              f'({camera.width}x{camera.height} px)',
                              f'{rgb.shape[1]}x{rgb.shape[0]} px')
        j = nearest(d_st, t, tol)
        mine.echo.append(echo)
        mine.rgb.append(resize_rgb(rgb, size))
        mine.gt.append(None if j is None else resize_depth(decode_message(depths[j]), size))
        mine.stamps.append(t)
        mine.bag.append(bag_index)
    if base_frame is not None:
        out.mounts[bag_index] = camera_mount(frames, base_frame, camera.frame_id,
                                             stamp_ns(echoes[0]))
    if out.k is None:
        out.k = k
    for name in ('echo', 'rgb', 'gt', 'stamps', 'bag'):
        getattr(out, name).extend(getattr(mine, name))
    out.unpaired += mine.unpaired
    out.echo_chunks += mine.echo_chunks
    return out


def camera_mount(frames: BagFrames, base_frame: str, optical_frame: str,
                 stamp: int) -> CameraMount | None:
    """The camera's mount in ``base_frame`` from a bag's TF tree (the pose of
    its optical frame, the CameraInfo's frame id), or None with a warning
    on stderr naming the bag and why."""
    try:
        pose = frames.lookup(base_frame, optical_frame, stamp)
    except UnusableBag as exc:
        print(f'warning: occupancy not scored in {frames.bag}: expected {exc.expected} '
              f'(--base-frame), got {exc.detail}', file=sys.stderr, flush=True)
        return None
    return CameraMount.from_optical(pose.xyz, pose.quat_xyzw)


def _fmt_k(k: np.ndarray) -> str:
    return f'fx {k[0, 0]:.2f} fy {k[1, 1]:.2f} cx {k[0, 2]:.2f} cy {k[1, 2]:.2f}'


def collect(bags: list[Path], spec: EchoSpec, size: tuple[int, int], tolerance: float = 0.05,
            namespace: str = '', progress=sys.stderr, salvage: bool = False,
            into: Pairs | None = None, base_frame: str | None = None,
            needs: tuple = NEEDS) -> Pairs:
    """Pairs of every usable bag (one that has the ``needs`` topics), with a
    progress line; a bag that is not usable is reported and skipped (the
    others keep their index in ``bags``)."""
    pairs = into if into is not None else Pairs()
    index = {str(b): i for i, b in enumerate(bags)}
    each_bag(bags, lambda b: read_pairs(b, spec, size, tolerance, namespace, index[str(b)],
                                        into=pairs, salvage=salvage, base_frame=base_frame),
             needs, namespace, 'echo / camera pairs', progress,
             lambda: f'{len(pairs)} pairs, {pairs.unpaired} unpaired echo chunks')
    return pairs


def build(bags_dir: str | Path | list, out: str | Path, teacher: str | Path, spec: EchoSpec,
          size: tuple[int, int] = (64, 64), tolerance: float = 0.05, namespace: str = '',
          progress=sys.stderr, salvage: bool = False) -> dict:
    """Bags (under one folder or several) -> cached data set in ``out``
    (dataset.npz + dataset.json).

    Returns the summary written to dataset.json (pairs, unpaired chunks,
    teacher id, feature maps, whether ground truth is present).
    """
    roots = bags_dir if isinstance(bags_dir, (list, tuple)) else [bags_dir]
    bags = list_bags(*roots)
    pairs = collect(bags, spec, size, tolerance, namespace, progress, salvage)
    if not len(pairs):
        raise InputError('pairs', f'echo chunks with a camera frame within {tolerance} s',
                         f'none in {len(bags)} bags ({pairs.unpaired} unpaired)')
    t = Teacher(teacher, size)
    rgb = np.stack(pairs.rgb)
    pseudo, feats = t(rgb)
    pseudo_m, feats_m = t(rgb[:, :, ::-1])
    x = np.stack([echo_features(e, spec) for e in pairs.echo])
    has_gt = all(g is not None for g in pairs.gt)
    arrays = {'features': x.astype(np.float16), 'rgb': rgb, 'pseudo': pseudo,
              'pseudo_mirror': pseudo_m, 'bag': np.asarray(pairs.bag, np.int32),
              'stamp': np.asarray(pairs.stamps, np.int64), 'k': pairs.k}
    for n in feats:
        arrays[n] = feats[n].astype(np.float16)
        arrays[n + '_mirror'] = feats_m[n].astype(np.float16)
    if has_gt:
        arrays['gt'] = np.stack(pairs.gt).astype(np.float32)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / 'dataset.npz', **arrays)
    summary = {'bags': [str(b) for b in bags], 'pairs': len(pairs),
               'echo_chunks': pairs.echo_chunks, 'unpaired': pairs.unpaired,
               'tolerance_s': tolerance, 'teacher': t.model_id, 'teacher_file': str(teacher),
               'feature_maps': {n: list(feats[n].shape[1:]) for n in feats},
               'ground_truth': has_gt, 'size': list(size), 'spec': spec.to_metadata(),
               'randomize': randomization(bags)}
    (out / 'dataset.json').write_text(json.dumps(summary, indent=1))
    print(f'[dataset] {len(pairs)} pairs ({pairs.unpaired} of {pairs.echo_chunks} echo chunks '
          f'unpaired), teacher {t.model_id}, ground truth: {"yes" if has_gt else "no"} '
          f'-> {out}', file=progress)
    return summary


@dataclass
class Cache:
    """A loaded data set (see the module docstring)."""

    features: np.ndarray
    rgb: np.ndarray
    pseudo: np.ndarray
    pseudo_mirror: np.ndarray
    bag: np.ndarray
    stamp: np.ndarray
    k: np.ndarray
    teacher_feats: dict
    teacher_feats_mirror: dict
    gt: np.ndarray | None
    summary: dict

    @property
    def spec(self) -> EchoSpec:
        return EchoSpec.from_metadata(self.summary['spec'])

    def mirrored_features(self) -> np.ndarray:
        return mirror_features(self.features)


def load(path: str | Path) -> Cache:
    """Load a data set folder written by :func:`build`.

    Raises:
        InputError: not such a folder.
    """
    path = Path(path)
    if not (path / 'dataset.npz').is_file() or not (path / 'dataset.json').is_file():
        raise InputError('dataset', 'a folder made by `av-perception dataset` '
                         '(dataset.npz, dataset.json)', str(path))
    summary = json.loads((path / 'dataset.json').read_text())
    z = np.load(path / 'dataset.npz')
    names = list(summary['feature_maps'])
    return Cache(features=z['features'], rgb=z['rgb'], pseudo=z['pseudo'],
                 pseudo_mirror=z['pseudo_mirror'], bag=z['bag'], stamp=z['stamp'], k=z['k'],
                 teacher_feats={n: z[n] for n in names},
                 teacher_feats_mirror={n: z[n + '_mirror'] for n in names},
                 gt=z['gt'] if 'gt' in z.files else None, summary=summary)
