"""The robot description: where its camera, arrays and echo head are mounted
on the base, and its echolocation chirp (config/robots/*.yaml; a file may
name a ``base`` robot file and give only what differs). Used by the nodes,
the simulator and the benches alike; no ROS, no simulation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from av_perception.errors import ConfigError
from av_perception.paths import config_path


@dataclass(frozen=True)
class CameraSpec:
    """Pinhole camera: ``frame`` (body frame; optical frame ``<frame>_optical``),
    position ``xyz`` in the base frame [m], image size [px], horizontal field
    of view [deg], clipping planes [m]."""

    frame: str
    xyz: tuple[float, float, float]
    width: int
    height: int
    hfov_deg: float
    near: float
    far: float

    @property
    def fx(self) -> float:
        return (self.width / 2.0) / math.tan(math.radians(self.hfov_deg) / 2.0)

    @property
    def K(self) -> np.ndarray:
        """3x3 intrinsic matrix (fx = fy, principal point at the image centre)."""
        return np.array([[self.fx, 0.0, self.width / 2.0],
                         [0.0, self.fx, self.height / 2.0],
                         [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class MountedArray:
    """A microphone array (geometry file) mounted at ``xyz`` in the base frame."""

    role: str
    geometry: str
    xyz: tuple[float, float, float]


@dataclass(frozen=True)
class ChirpSpec:
    """The emitted echolocation chirp: linear sweep f0 -> f1 [Hz] over
    ``duration`` [s]; echoes are recorded up to ``max_range`` [m]."""

    f0: float
    f1: float
    duration: float
    max_range: float


@dataclass(frozen=True)
class RobotSpec:
    """The simulated robot (config/robots/sim.yaml)."""

    base_frame: str
    world_frame: str
    camera: CameraSpec
    arrays: dict
    chirp: ChirpSpec
    sound_speed: float = 343.0

    def echo_window(self, sample_rate: int) -> int:
        """Samples of an echo chunk: the round trip to ``max_range``."""
        return int(math.ceil(2.0 * self.chirp.max_range / self.sound_speed * sample_rate))


def _robot_doc(name: str | Path, seen: tuple = ()) -> dict:
    """A robot file's fields; a file with ``base: <robot file>`` takes that
    file's fields and overrides the ones it gives (``arrays`` role by role)."""
    path = config_path(name)
    if path in seen:
        raise ConfigError(f'robot description {name}: its base chain loops ({path})')
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict):
        raise ConfigError(f'robot description {name}: expected a mapping')
    if 'base' not in doc:
        return doc
    merged = _robot_doc(doc.pop('base'), seen + (path,))
    arrays = {**merged.get('arrays', {}), **doc.pop('arrays', {})}
    return {**merged, **doc, 'arrays': arrays}


def load_robot(name: str | Path = 'robots/sim.yaml') -> RobotSpec:
    """Load the robot description (a path, or a file name under config/; a
    file may name a ``base`` robot file and give only what differs)."""
    try:
        doc = _robot_doc(name)
        cam = doc['camera']
        camera = CameraSpec(frame=str(cam['frame']), xyz=tuple(map(float, cam['xyz'])),
                            width=int(cam['width']), height=int(cam['height']),
                            hfov_deg=float(cam['hfov_deg']), near=float(cam['near']),
                            far=float(cam['far']))
        arrays = {role: MountedArray(role, str(a['geometry']), tuple(map(float, a['xyz'])))
                  for role, a in doc['arrays'].items()}
        ch = doc['chirp']
        chirp = ChirpSpec(float(ch['f0']), float(ch['f1']), float(ch['duration']),
                          float(ch['max_range']))
        return RobotSpec(base_frame=str(doc['base_frame']), world_frame=str(doc['world_frame']),
                         camera=camera, arrays=arrays, chirp=chirp,
                         sound_speed=float(doc.get('sound_speed', 343.0)))
    except ConfigError:
        raise
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f'robot description {name}: missing or bad field ({exc!r})') from None
