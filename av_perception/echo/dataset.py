"""Echo / camera pairs from bags, and the cached data set a student learns from.

Any bag with ``audio/echo`` and ``camera/image_raw`` can be used: each echo
chunk is paired with the camera frame nearest in time (within a tolerance;
unpaired chunks are counted and reported). ``gt/depth`` is read where present
(simulated bags, or a robot with a depth sensor) and kept for evaluation
only: the student learns from the teacher's pseudo-depth.

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

from av_perception.bag.io import nearest, read_bag, stamp_ns
from av_perception.doa.dataset import list_bags
from av_perception.echo.features import EchoSpec, check_echo, echo_features, mirror_features
from av_perception.echo.teacher import Teacher, resize_depth, resize_rgb
from av_perception.errors import InputError
from av_perception.image import decode_message

TOPICS = ('audio/echo', 'camera/image_raw', 'camera/camera_info', 'gt/depth')


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
    k: np.ndarray | None = None                   # intrinsics at the output size
    unpaired: int = 0                             # echo chunks without a camera frame
    echo_chunks: int = 0

    def __len__(self) -> int:
        return len(self.echo)


def read_pairs(path: str | Path, spec: EchoSpec, size: tuple[int, int],
               tolerance: float = 0.05, namespace: str = '', bag_index: int = 0,
               into: Pairs | None = None, salvage: bool = False) -> Pairs:
    """Pair each echo chunk of a bag with the nearest camera frame (and
    gt/depth, if any) within ``tolerance`` seconds (``salvage``: the readable
    messages of a damaged bag, see ``read_bag``).

    Raises:
        InputError: no echo chunks, or chunks that do not fit the spec.
    """
    out = into if into is not None else Pairs()
    echoes, images, depths, info = [], [], [], None
    for m in read_bag(path, TOPICS, namespace, salvage=salvage):
        if m.topic == 'audio/echo':
            echoes.append(m.msg)
        elif m.topic == 'camera/image_raw':
            images.append(m.msg)
        elif m.topic == 'gt/depth':
            depths.append(m.msg)
        elif info is None:
            info = m.msg
    if not echoes:
        raise InputError('bag', f'audio/echo chunks in {path}', 'none')
    tol = int(tolerance * 1e9)
    images.sort(key=stamp_ns)
    depths.sort(key=stamp_ns)
    i_st = np.array([stamp_ns(m) for m in images], np.int64)
    d_st = np.array([stamp_ns(m) for m in depths], np.int64)
    for msg in echoes:
        out.echo_chunks += 1
        t = stamp_ns(msg)
        i = nearest(i_st, t, tol)
        if i is None:
            out.unpaired += 1
            continue
        data = np.asarray(msg.data, np.float32).reshape(-1, int(msg.channels)).T
        echo = check_echo(data, spec, int(msg.sample_rate))
        rgb = decode_message(images[i], want='rgb8')
        if out.k is None:
            k = (np.asarray(info.k, float).reshape(3, 3) if info is not None else
                 _default_k(rgb.shape[:2]))
            out.k = scaled_k(k, rgb.shape[:2], size)
        j = nearest(d_st, t, tol)
        out.echo.append(echo)
        out.rgb.append(resize_rgb(rgb, size))
        out.gt.append(None if j is None else resize_depth(decode_message(depths[j]), size))
        out.stamps.append(t)
        out.bag.append(bag_index)
    return out


def _default_k(shape: tuple[int, int]) -> np.ndarray:
    """90 deg horizontal field of view, principal point at the centre."""
    h, w = shape
    f = w / 2.0
    return np.array([[f, 0, w / 2.0], [0, f, h / 2.0], [0, 0, 1.0]])


def collect(bags: list[Path], spec: EchoSpec, size: tuple[int, int], tolerance: float = 0.05,
            namespace: str = '', progress=sys.stderr, salvage: bool = False) -> Pairs:
    """Pairs of every bag, with a progress line."""
    pairs = Pairs()
    for bi, bag in enumerate(bags):
        read_pairs(bag, spec, size, tolerance, namespace, bi, into=pairs, salvage=salvage)
        print(f'\r[dataset] {bi + 1}/{len(bags)} bags, {len(pairs)} pairs, '
              f'{pairs.unpaired} unpaired echo chunks', end='', file=progress, flush=True)
    print(file=progress)
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
    bags = [b for r in roots for b in list_bags(r)]
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
               'ground_truth': has_gt, 'size': list(size), 'spec': spec.to_metadata()}
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
