"""What a folder of bags holds, read the same way by every command that takes
bags (``dataset``, ``train ...``, ``eval ...``), whoever recorded them.

- :func:`list_bags`: the bag folders under a folder, symbolic links followed
  (each real folder once; a link back up the tree is not walked twice).
- :func:`require_topics` / :func:`each_bag`: a bag that lacks a topic a
  command needs is reported, never skipped silently: one warning line per
  bag naming the bag, the missing topic and the topics it has, a count at
  the end, and an :class:`~av_perception.errors.InputError` if no bag is
  usable.
- :class:`BagFrames`: the bag's own description of the robot: its TF tree
  (``/tf_static`` and ``/tf``, REP 105) and its cameras' intrinsics
  (``sensor_msgs/CameraInfo``), so that frame names, camera mounts and
  fields of view come from the bag (or a named option), never from the
  simulator's robot description (the TF buffer is
  :class:`av_perception.geometry.tf_buffer.TfBuffer`).
- :class:`Motion`: where the robot's base is at a stamp: from ``gt/pose``
  (the bag's ground truth) when the bag has it, else from the odometry on
  ``/tf`` (``odom_frame`` -> ``base_frame``, REP 105 names by default).

Topics are relative (``camera/image_raw``; ``tf`` and ``tf_static`` for
``/tf`` and ``/tf_static``), as :func:`~av_perception.bag.io.read_bag` gives
them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import numpy as np

from av_perception.bag.io import BagMessage, bag_topics, read_bag
from av_perception.errors import InputError
from av_perception.geometry.frames import hfov_deg
from av_perception.geometry.tf_buffer import TfBuffer, Transform

T = TypeVar('T')

CAMERA_INFO = 'camera/camera_info'
TF_TOPICS = ('tf', 'tf_static')
#: What :class:`BagFrames` reads from a bag.
FRAME_TOPICS = (*TF_TOPICS, CAMERA_INFO)
#: REP 105 frame names: the odometry frame and the robot's base.
ODOM_FRAME, BASE_FRAME = 'odom', 'base_link'
#: A topic a command needs: one name, or alternatives (any one will do).
Need = str | tuple[str, ...]


# ------------------------------------------------------------------ folders
def list_bags(*roots: str | Path) -> list[Path]:
    """Bag folders (holding ``metadata.yaml``) under each root, or a root that
    is a bag itself, in sorted order per root.

    Symbolic links to folders are followed (``Path.rglob`` does not); a
    folder reached twice (two links, or a link back up the tree) is listed
    and walked once.

    Raises:
        InputError: a root that does not exist, or no bag under any root.
    """
    out: list[Path] = []
    seen: set[str] = set()
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise InputError('bags', 'a folder of ROS 2 bags', f'{root} does not exist')
        if (root / 'metadata.yaml').is_file():
            found = [root]
        else:
            found = []
            for folder, dirs, files in os.walk(root, followlinks=True):
                real = os.path.realpath(folder)
                if real in seen:          # a cycle, or a folder already listed
                    dirs[:] = []
                    continue
                seen.add(real)
                dirs.sort()
                if 'metadata.yaml' in files:
                    found.append(Path(folder))
                    dirs[:] = []          # a bag's own folder holds no further bags
        for bag in sorted(found):
            real = os.path.realpath(bag) + os.sep + 'metadata.yaml'
            if real not in seen:
                seen.add(real)
                out.append(bag)
    if not out:
        raise InputError('bags', 'ROS 2 bag folders (with metadata.yaml) under '
                         + ', '.join(str(r) for r in roots), 'none')
    return out


# ------------------------------------------------------------------- topics
class UnusableBag(InputError):
    """A bag that lacks what a command needs (a topic, a transform, a camera
    of the model's field of view). Where a command can go on with the other
    bags, :func:`each_bag` reports and skips it; the message names the bag."""

    def __init__(self, bag: str | Path, expected: str, got: str) -> None:
        super().__init__('bag', expected, f'{bag}: {got}')
        self.bag = str(bag)
        self.detail = got

    def __reduce__(self):
        return (type(self), (self.bag, self.expected, self.detail))


def describe_need(need: Need) -> str:
    """``'gt/pose'`` or ``'gt/pose or tf'``."""
    return need if isinstance(need, str) else ' or '.join(need)


def _has(topics: dict[str, int], need: Need) -> bool:
    names = (need,) if isinstance(need, str) else need
    return any(topics.get(n, 0) > 0 for n in names)


def require_topics(path: str | Path, needs: Iterable[Need], namespace: str = '',
                   why: str = '') -> dict[str, int] | None:
    """Check that a bag has at least one message on every needed topic (a
    tuple: on one of its alternatives); returns its topics (None if the bag
    cannot be opened: reading it will say why).

    Raises:
        UnusableBag: naming the bag, the missing topic(s) and the topics the
            bag has (with their message counts), in one line.
    """
    topics = bag_topics(path, namespace)
    if topics is None:
        return None
    missing = [n for n in needs if not _has(topics, n)]
    if missing:
        have = ', '.join(f'{t} ({n})' for t, n in sorted(topics.items())) or 'no topic'
        ns = f' under namespace {namespace!r}' if namespace else ''
        raise UnusableBag(path, f'topic {", ".join(describe_need(n) for n in missing)}{ns}'
                          + (f' ({why})' if why else ''), f'not in the bag; it has {have}')
    return topics


def each_bag(bags: Sequence[str | Path], load: Callable[[Path], T] | None = None,
             needs: Iterable[Need] = (), namespace: str = '', why: str = '',
             out=sys.stderr, progress: Callable[[], str] | None = None
             ) -> list[tuple[Path, T | None]]:
    """``load(bag)`` for every bag that has the ``needs`` topics (see
    :func:`require_topics`); a bag that lacks one, or whose ``load`` raises
    :class:`UnusableBag`, is skipped with one warning line on ``out`` (and a
    count once all are done; a single bag: only the error if it is not
    usable). ``load`` None: the topic check only.
    ``progress``: a progress line (``[bags] i/n <progress()>``) on ``out``,
    rewritten after each bag.

    Returns:
        (bag, what ``load`` returned) of the usable bags, in order.

    Raises:
        InputError: no bag is usable (naming the first one's reason).
        Whatever ``load`` raises besides UnusableBag (a damaged bag...).
    """
    needs = list(needs)
    done: list[tuple[Path, Any]] = []
    skipped: list[UnusableBag] = []
    for i, bag in enumerate(bags):
        bag = Path(bag)
        try:
            require_topics(bag, needs, namespace, why)
            done.append((bag, load(bag) if load is not None else None))
        except UnusableBag as exc:
            skipped.append(exc)
            if len(bags) > 1:      # one bag: the error below says it
                print(f'{chr(10) if progress and i else ""}warning: bag skipped: expected '
                      f'{exc.expected}, got {exc.got}', file=out, flush=True)
        if progress is not None:
            print(f'\r[bags] {i + 1}/{len(bags)}, {progress()}', end='', file=out, flush=True)
    if progress is not None:
        print(file=out)
    if skipped and done:
        print(f'warning: {len(skipped)} of {len(bags)} bags skipped, {len(done)} used',
              file=out, flush=True)
    if not done:
        first = skipped[0] if skipped else None
        raise InputError('bags', f'at least one usable bag ({first.expected})' if first
                         else 'at least one bag', f'none of {len(bags)}'
                         + (f'; {first.got}' if first else ''))
    return done


# ------------------------------------------------------------ frames, camera
def tf_buffer() -> TfBuffer:
    """An empty TF buffer that holds a whole bag (no cache limit; lookups
    raise a LookupError, ``TransformError``, when they cannot)."""
    return TfBuffer(cache_ns=None)


@dataclass(frozen=True)
class Intrinsics:
    """A camera's intrinsics from its CameraInfo.

    Attributes:
        k: 3x3 camera matrix [px] (fx, fy, cx, cy; ROS pixel-centre convention).
        width, height: image size [px].
        frame_id: the optical frame (REP 103: z forward, x right, y down).
    """

    k: np.ndarray
    width: int
    height: int
    frame_id: str

    @classmethod
    def from_message(cls, msg, where: str = '') -> Intrinsics:
        """From a sensor_msgs/CameraInfo (rosbags or rclpy).

        Raises:
            InputError: width, height or fx not positive.
        """
        k = np.asarray(msg.k, float).reshape(3, 3)
        if int(msg.width) <= 0 or int(msg.height) <= 0 or not k[0, 0] > 0 or not k[1, 1] > 0:
            raise InputError('camera_info', 'width, height, fx and fy > 0',
                             f'{where}{msg.width} x {msg.height} px, fx {k[0, 0]}, '
                             f'fy {k[1, 1]}')
        return cls(k, int(msg.width), int(msg.height), str(msg.header.frame_id))

    @property
    def hfov_deg(self) -> float:
        """Horizontal field of view [deg]."""
        return hfov_deg(self.k, self.width)


def first_camera(bags: Sequence[str | Path], namespace: str = '',
                 topic: str = CAMERA_INFO) -> Intrinsics:
    """The intrinsics of the first CameraInfo on ``topic`` in the first bag
    that has one (what a model trained on these bags is made for).

    Raises:
        InputError: no bag has a CameraInfo on ``topic``.
    """
    for bag in bags:
        for m in read_bag(bag, [topic], namespace):
            return Intrinsics.from_message(m.msg, f'{bag}: {topic}: ')
    raise InputError('bags', f'a sensor_msgs/CameraInfo on {topic} (the camera the model is '
                     'made for)', f'none in {len(bags)} bags')


def check_fov(camera: Intrinsics, model_hfov_deg: float, tolerance_deg: float,
              bag: str | Path, model: str = 'the model') -> None:
    """Refuse a camera whose horizontal field of view differs from the one a
    model was made for by more than ``tolerance_deg`` [deg].

    Raises:
        UnusableBag: naming the bag, both fields of view and the tolerance.
    """
    if abs(camera.hfov_deg - model_hfov_deg) > tolerance_deg:
        raise UnusableBag(bag, f'a camera with the {model_hfov_deg:.1f} deg field of view '
                          f'{model} is made for (+-{tolerance_deg:g} deg)',
                          f'{camera.hfov_deg:.1f} deg ({camera.width} px wide, fx '
                          f'{camera.k[0, 0]:.1f}, camera_info)')


class BagFrames:
    """A bag's TF tree and camera intrinsics, fed from its messages.

    Feed every message of :data:`FRAME_TOPICS` (and any other CameraInfo
    topic) to :meth:`feed`; the first CameraInfo of each topic is kept, a
    malformed transform is left out and counted (``bad_transforms``).

    Args:
        bag: the bag's path, for the messages of errors.
    """

    def __init__(self, bag: str | Path) -> None:
        self.bag = str(bag)
        self.tf = tf_buffer()
        self.cameras: dict[str, Intrinsics] = {}
        self.tf_messages = 0
        self.bad_transforms = 0     # transforms that are not (left out)

    def feed(self, m: BagMessage) -> bool:
        """Take a message if it describes frames or a camera; True if taken."""
        if m.topic in TF_TOPICS:
            for t in m.msg.transforms:
                try:
                    self.tf.add_transform(t, static=m.topic == 'tf_static')
                except ValueError:      # no quaternion, a frame its own parent...
                    self.bad_transforms += 1
            self.tf_messages += 1
            return True
        if m.msgtype == 'sensor_msgs/msg/CameraInfo':
            if m.topic not in self.cameras:
                self.cameras[m.topic] = Intrinsics.from_message(m.msg, f'{self.bag}: {m.topic}: ')
            return True
        return False

    def camera(self, topic: str = CAMERA_INFO) -> Intrinsics:
        """The intrinsics of a camera topic.

        Raises:
            UnusableBag: the bag has no CameraInfo on that topic.
        """
        if topic not in self.cameras:
            raise UnusableBag(self.bag, f'a sensor_msgs/CameraInfo on {topic}', 'none')
        return self.cameras[topic]

    def lookup(self, target: str, source: str, stamp: int) -> Transform:
        """The pose of frame ``source`` in frame ``target`` at ``stamp`` [ns].

        Raises:
            UnusableBag: the bag's /tf_static and /tf do not give it (the
                message names both frames and why).
        """
        try:
            return self.tf.lookup(target, source, stamp)
        except (LookupError, ValueError) as exc:
            bad = (f' ({self.bad_transforms} malformed transforms left out)'
                   if self.bad_transforms else '')
            raise UnusableBag(self.bag, f'a transform {target} <- {source} on /tf_static or '
                              '/tf', str(exc).splitlines()[0] + bad) from None


# ------------------------------------------------------------------- motion
@dataclass(frozen=True)
class MotionFrames:
    """Frame names of the odometry (REP 105 defaults): the pose of
    ``base_frame`` in ``odom_frame`` on /tf."""

    odom_frame: str = ODOM_FRAME
    base_frame: str = BASE_FRAME


#: What a bag needs for :class:`Motion`: ground truth, or odometry on /tf.
MOTION_TOPICS: tuple[str, ...] = ('gt/pose', 'tf')


class Motion:
    """Where the robot's base is at a stamp, in a fixed frame of the bag.

    From ``gt/pose`` (geometry_msgs/PoseStamped: the base in the world
    frame) when the bag has it: the bag's ground truth, ``source`` =
    'gt/pose'; else from the odometry on /tf (``names.odom_frame`` <-
    ``names.base_frame``, through any chain of /tf and /tf_static), ``source``
    = 'odometry'. Between two poses the pose is interpolated; outside them it
    is unknown (None), never extrapolated.

    Args:
        frames: the bag's TF tree.
        gt_poses: the bag's gt/pose messages (may be empty).
        names: the odometry's frame names.
    """

    def __init__(self, frames: BagFrames, gt_poses: Sequence, names: MotionFrames) -> None:
        self.bag = frames.bag
        self.names = names
        if gt_poses:
            self.source = 'gt/pose'
            self._tf = tf_buffer()
            # gt/pose is kept off the bag's TF tree: its own buffer, world -> base
            self._fixed = gt_poses[0].header.frame_id.lstrip('/') or 'world'
            for p in gt_poses:
                self._tf.add_transform(SimpleNamespace(
                    header=SimpleNamespace(stamp=p.header.stamp, frame_id=self._fixed),
                    child_frame_id=names.base_frame,
                    transform=SimpleNamespace(translation=p.pose.position,
                                              rotation=p.pose.orientation)))
        else:
            self.source = 'odometry'
            self._tf = frames.tf
            self._fixed = names.odom_frame
        self.misses = 0

    def at(self, stamp: int) -> tuple[float, float, float] | None:
        """(x [m], y [m], yaw [rad]: heading of its x axis) of the base at
        ``stamp`` [ns] in the fixed frame, None if unknown there (counted in
        ``misses``)."""
        try:
            pose = self._tf.lookup(self._fixed, self.names.base_frame, stamp)
            return float(pose.xyz[0]), float(pose.xyz[1]), pose.yaw
        except (LookupError, ValueError):
            self.misses += 1
            return None

    def require(self, stamps: Sequence[int]) -> list[tuple[float, float, float] | None]:
        """The poses at ``stamps`` [ns].

        Raises:
            UnusableBag: none is known (e.g. odometry under other frame
                names): the message says which frames were asked for.
        """
        out = [self.at(t) for t in stamps]
        if stamps and all(p is None for p in out):
            if self.source == 'gt/pose':
                what, why = 'gt/pose at the camera stamps', 'none within the gt/pose messages'
            else:
                what = (f'odometry {self.names.odom_frame} <- {self.names.base_frame} on /tf at '
                        'the camera stamps (no gt/pose; frame names: --odom-frame, '
                        '--base-frame)')
                try:
                    self._tf.lookup(self._fixed, self.names.base_frame, stamps[0])
                    why = 'none'
                except (LookupError, ValueError) as exc:
                    why = str(exc).splitlines()[0]
            raise UnusableBag(self.bag, what, why)
        return out
