"""Rotation estimators on ONNX Runtime (no torch, no ROS): the learned visual
rotation and binaural direction models, their fusion, and the classic
OpenCV baseline. The node and the scoring use these alike.

Angles [rad], REP 103: yaw CCW about +z (up) of the second frame relative to
the first; binaural azimuth CCW from the head's +x, folded into
[-pi/2, pi/2].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from av_perception.audio.level import level_dbfs
from av_perception.direction.stream import DoaResult
from av_perception.errors import ConfigError
from av_perception.inference import OnnxModel
from av_perception.paths import shipped_model
from av_perception.rotation.features import MIN_LEVEL_DBFS, RotationSpec, pair_input

#: Standard deviation [rad] of a binaural azimuth, for the fusion (the
#: shipped binaural model's median error is of this order).
AUDIO_SIGMA = math.radians(10.0)


@dataclass
class YawEstimate:
    """Yaw [rad] of the second frame relative to the first and its standard
    deviation [rad]; ``audio_used`` if the binaural estimate was fused in."""

    yaw: float
    sigma: float
    audio_used: bool = False


class VisualRotation:
    """The visual rotation model: two grey network inputs -> yaw and sigma.

    sigma = sqrt(floor^2 + spread^2) [rad]: ``spread`` is the standard
    deviation of the turn under the model's own matching distribution (the
    softmax over every shift, trained as a probability by a cross-entropy);
    ``floor`` is a constant from the ONNX metadata. Images the model finds
    ambiguous (no texture, a repeating pattern, little overlap) spread the
    distribution over many shifts, hence a large covariance.
    """

    def __init__(self, path: str | Path | None = None, threads: int = 1) -> None:
        self.model = OnnxModel(path or shipped_model('rotation_visual'),
                               expect={'task': 'rotation_visual'}, threads=threads)
        self.spec = RotationSpec.from_metadata(self.model.metadata)
        self.floor = float(self.model.metadata.get('spread_floor_rad', '0.01'))

    def estimate(self, first: np.ndarray, second: np.ndarray) -> YawEstimate:
        """``first``, ``second``: grey inputs (features.grey_input)."""
        yaw, spread = (float(v) for v in self.model(pair_input(first, second)[None])[0])
        return YawEstimate(yaw, math.hypot(self.floor, spread))

    def estimate_batch(self, pairs: np.ndarray) -> np.ndarray:
        """(B, 2, S, S) -> (B, 2) [yaw, spread]."""
        return self.model(pairs)


class BinauralDirection:
    """The binaural direction model: the package's one binaural direction
    network (:class:`~av_perception.direction.learned.LearnedDoa`, whichever
    teacher trained it: motion, the acoustic image or labels) on a frame's
    binaural segment -> folded azimuth [rad]."""

    def __init__(self, path: str | Path | None = None, threads: int = 1,
                 array: str = 'binaural') -> None:
        """``array``: the binaural head's geometry name (config/arrays/), the
        visual model's ``RotationSpec.array``; the model must be made for it."""
        from av_perception.arrays import load_array
        from av_perception.direction.learned import LearnedDoa
        self.doa = LearnedDoa(path or shipped_model('rotation_binaural'), load_array(array),
                              threads=threads)
        self.model = self.doa.model

    def estimate(self, segment: np.ndarray, min_level_dbfs: float = MIN_LEVEL_DBFS):
        """(2, n) left/right samples (n >= the model's window) -> the
        strongest peak (DoaEstimate: folded azimuth [rad] in [-pi/2, pi/2],
        confidence, front/back ambiguous), from the segment's windows louder
        than ``min_level_dbfs`` (all when none is), as the model
        learned a view (``LearnedDoa.block_distribution``)."""
        return self.doa.estimate(segment, 1, min_level_dbfs)[0]

    def azimuth(self, segment: np.ndarray) -> float:
        """The folded azimuth [rad] of :meth:`estimate`."""
        return self.estimate(segment).azimuth

    def hear(self, segment: np.ndarray, stamp_ns: int,
             min_level_dbfs: float = MIN_LEVEL_DBFS) -> DoaResult:
        """What the rotation node hears on a frame's segment: its strongest
        direction if the segment is at least ``min_level_dbfs`` loud, else
        a silent result (no source); stamped ``stamp_ns``."""
        level = level_dbfs(segment)
        est = self.estimate(segment, min_level_dbfs) if level >= min_level_dbfs else None
        return DoaResult(stamp_ns, [est] if est is not None else [], est is None, level)


def check_same_contract(visual: VisualRotation, audio: BinauralDirection) -> None:
    """The binaural model must take the visual model's audio: same array and
    sample rate, a window no longer than the segment cut at each frame."""
    a, v = audio.doa.spec, visual.spec
    if (a.array, a.sample_rate) != (v.array, v.sample_rate) or a.window > v.audio_window:
        raise ConfigError(f'rotation models disagree on their audio: visual {v.array} at '
                          f'{v.sample_rate} Hz, {v.audio_window}-sample segments; binaural '
                          f'{a.array} at {a.sample_rate} Hz, {a.window}-sample windows')


def audio_yaw(az_first: float, az_second: float, visual_yaw: float) -> float:
    """The turn that the binaural directions of a static source imply: a
    source at azimuth a is at a - yaw after the turn, so yaw = a_s - a_t if
    it is in front and a_t - a_s if behind (folded azimuths mirror). Of the
    two, the one nearer the visual yaw."""
    front, back = az_first - az_second, az_second - az_first
    return front if abs(front - visual_yaw) <= abs(back - visual_yaw) else back


def fuse(visual: YawEstimate, az_first: float | None, az_second: float | None,
         audio_sigma: float = AUDIO_SIGMA, gate: float = 3.0) -> YawEstimate:
    """Inverse-variance fusion of the visual yaw with the yaw the two binaural
    directions imply (their difference has sigma sqrt(2) x audio_sigma). The
    audio is ignored when a direction is missing or it disagrees with the
    visual yaw by more than ``gate`` combined sigmas (a second source, a
    pause)."""
    if az_first is None or az_second is None:
        return visual
    a = audio_yaw(az_first, az_second, visual.yaw)
    var_a = 2.0 * audio_sigma ** 2
    var_v = visual.sigma ** 2
    if abs(a - visual.yaw) > gate * math.sqrt(var_a + var_v):
        return visual
    w = var_a / (var_a + var_v)
    return YawEstimate(w * visual.yaw + (1 - w) * a, math.sqrt(var_a * var_v / (var_a + var_v)),
                       True)


class OpenCvRotation:
    """Classic baseline: SIFT features matched between the two frames, a
    RANSAC homography (a pure rotation maps the image by K R K^-1, so no
    essential matrix is needed, nor would it be defined without translation),
    R = K^-1 H K projected onto the rotations, yaw from R.

    Returns None when there are too few matches (textureless views); scoring
    counts that as yaw 0.
    """

    def __init__(self, K: np.ndarray, min_matches: int = 8) -> None:
        import cv2
        self.cv2 = cv2
        self.K = np.asarray(K, float)
        self.Kinv = np.linalg.inv(self.K)
        self.min_matches = min_matches
        self.detector = cv2.SIFT_create()
        self.matcher = cv2.BFMatcher(cv2.NORM_L2)

    def estimate(self, first: np.ndarray, second: np.ndarray) -> float | None:
        """Two grey uint8 images -> yaw [rad] or None."""
        cv2 = self.cv2
        ka, da = self.detector.detectAndCompute(first, None)
        kb, db = self.detector.detectAndCompute(second, None)
        if da is None or db is None or len(ka) < 2 or len(kb) < 2:
            return None
        good = [m for m, n in (p for p in self.matcher.knnMatch(da, db, k=2) if len(p) == 2)
                if m.distance < 0.8 * n.distance]
        if len(good) < self.min_matches:
            return None
        pa = np.float32([ka[m.queryIdx].pt for m in good])
        pb = np.float32([kb[m.trainIdx].pt for m in good])
        H, inliers = cv2.findHomography(pa, pb, cv2.RANSAC, 2.0)
        if H is None or int(inliers.sum()) < self.min_matches:
            return None
        return yaw_from_homography(H, self.K, self.Kinv)


def yaw_from_homography(H: np.ndarray, K: np.ndarray, Kinv: np.ndarray | None = None) -> float:
    """Yaw [rad, CCW about the base's up axis] of a pure camera rotation
    whose image homography (first -> second frame) is ``H``. In the optical
    frame (z forward, x right, y down) a base yaw r is a rotation about -y:
    points map as X_2 = R_y(r) X_1, so r = atan2(R[0, 2], R[0, 0])."""
    Kinv = np.linalg.inv(K) if Kinv is None else Kinv
    M = Kinv @ H @ K
    U, _, Vt = np.linalg.svd(M)
    R = U @ Vt
    if np.linalg.det(R) < 0:
        R = -R
    return math.atan2(R[0, 2], R[0, 0])


class AudioHistory:
    """The last ``keep`` seconds of a binaural stream, to cut the segment that
    starts at a camera frame's stamp once it has arrived.

    Args:
        sample_rate: Hz.
        keep: seconds kept.
    """

    def __init__(self, sample_rate: int, keep: float = 3.0) -> None:
        self.fs = sample_rate
        self.keep = int(keep * sample_rate)
        self._buf = np.zeros((2, 0), np.float32)
        self._t0_ns = 0   # stamp of self._buf[:, 0]

    def push(self, samples: np.ndarray, stamp_ns: int) -> None:
        """Append a block (2, n) whose first sample was acquired at ``stamp_ns``;
        a block that does not follow the previous one (gap, stamp jump)
        restarts the history."""
        end_ns = self._t0_ns + int(round(self._buf.shape[1] / self.fs * 1e9))
        if self._buf.shape[1] == 0 or abs(stamp_ns - end_ns) > 2e9 / self.fs:
            self._buf, self._t0_ns = np.asarray(samples, np.float32), stamp_ns
        else:
            self._buf = np.concatenate([self._buf, samples], axis=1)
        drop = self._buf.shape[1] - self.keep
        if drop > 0:
            self._buf = self._buf[:, drop:]
            self._t0_ns += int(round(drop / self.fs * 1e9))

    def segment(self, stamp_ns: int, length: int) -> np.ndarray | None:
        """The ``length`` samples from ``stamp_ns`` on, or None if they have
        not all arrived (or are no longer kept)."""
        start = int(round((stamp_ns - self._t0_ns) * 1e-9 * self.fs))
        if start < 0 or start + length > self._buf.shape[1]:
            return None
        return self._buf[:, start:start + length]

    def expired(self, stamp_ns: int) -> bool:
        """True if the segment from ``stamp_ns`` can no longer be cut."""
        return self._buf.shape[1] > 0 and stamp_ns < self._t0_ns
