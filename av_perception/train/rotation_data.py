"""The data of the rotation models' training: the pretext task's turned
frames (:func:`synthetic_pairs`), the visual networks' views and turn
pairs (:func:`build_data`) and the models' contract for the bags' camera
and binaural head (:func:`spec_for_bags`). Used by
:mod:`av_perception.train.rotation`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from av_perception.arrays import load_array
from av_perception.bag.contents import first_camera, list_bags
from av_perception.bag.provenance import randomization
from av_perception.errors import ConfigError
from av_perception.rotation.dataset import BagOptions
from av_perception.rotation.features import RotationSpec
from av_perception.train.rotation_net import turn_shift


# ------------------------------------------------------------------ pretext
def synthetic_pairs(grey: np.ndarray, spec: RotationSpec, rng: np.random.Generator,
                    max_yaw: float = math.radians(50.0)) -> tuple[np.ndarray, np.ndarray]:
    """The pretext task: each frame seen by the camera turned by r1 and by r2
    (on the cylinder, a horizontal shift), and the turn r2 - r1 between the
    two views. What the turned camera would see outside the original frame
    is filled with another frame's pixels: new, unrelated content, as after
    a real turn (an empty border would let the network read the turn off
    the border's width). No labels: the geometry of a turning camera with
    the frames' own field of view."""
    import cv2
    n = spec.image_size
    turn = rng.uniform(-max_yaw, max_yaw, len(grey))   # as many large turns as small ones
    r1 = -turn / 2 + rng.uniform(-max_yaw / 8, max_yaw / 8, len(grey))
    r2 = r1 + turn
    filler = rng.permutation(len(grey))
    out = np.zeros((len(grey), 2, n, n), np.float32)
    ones = np.ones((n, n), np.float32)
    for i, g in enumerate(grey):
        for j, r in enumerate((r1[i], r2[i])):
            M = np.array([[1.0, 0.0, turn_shift(r, spec)], [0.0, 1.0, 0.0]])
            warped = cv2.warpAffine(g, M, (n, n), flags=cv2.INTER_LINEAR, borderValue=0.0)
            inside = cv2.warpAffine(ones, M, (n, n), flags=cv2.INTER_LINEAR, borderValue=0.0)
            out[i, j] = inside * warped + (1.0 - inside) * grey[filler[(i + j) % len(grey)]]
    return out, (r2 - r1).astype(np.float32)


# -------------------------------------------------------------------- data
@dataclass
class Data:
    grey: np.ndarray        # (V, S, S)
    pairs: np.ndarray       # (P, 2) view indices
    yaw: np.ndarray         # (P,) true yaw [rad] (scoring and the supervised reference only)
    room: np.ndarray        # (P,) bag index
    n_bags: int
    provenance: dict[str, str]   # the bags' sensor randomization (model metadata)


def build_data(bags: list, pairs: list) -> Data:
    """The visual networks' data from loaded views (``rotation.dataset.load_all``)
    and their turn pairs (``Pair.bag`` indexing ``bags``)."""
    if len(pairs) < 10:
        raise ConfigError(f'only {len(pairs)} turn-in-place pairs; need more bags')
    starts = np.cumsum([0] + [len(b.views) for b in bags])
    grey = np.stack([v.grey for b in bags for v in b.views])
    idx = np.array([(starts[p.bag] + p.first, starts[p.bag] + p.second) for p in pairs])
    yaw = np.array([p.yaw if p.yaw is not None else np.nan for p in pairs], np.float32)
    return Data(grey, idx, yaw, np.array([p.bag for p in pairs]), len(bags),
                randomization([b.path for b in bags]))


def spec_for_bags(bags_dirs: list, options: BagOptions = BagOptions(),
                  array: str = 'binaural') -> RotationSpec:
    """The models' contract for the bags' camera and binaural head: the
    default one with the horizontal field of view of the first bag's
    CameraInfo (the other bags must match it: ``rotation.dataset.load_views``)
    and the head's geometry ``array`` (a name under config/arrays/, or a
    file), whose sample rate the bags' audio/binaural must have.

    Raises:
        ConfigError: the geometry is not a two-microphone head.
    """
    head = load_array(array)
    if head.channels != 2:
        raise ConfigError(f'--binaural-array {array}: expected a two-microphone head, got '
                          f'{head.channels} microphones')
    camera = first_camera(list_bags(*bags_dirs), options.namespace)
    return RotationSpec(hfov_deg=round(camera.hfov_deg, 2), sample_rate=head.sample_rate,
                        array=head.name)


__all__ = ['Data', 'build_data', 'spec_for_bags', 'synthetic_pairs']
