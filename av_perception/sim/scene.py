"""Scene descriptions: one seeded, reproducible description per room, from
which images, depth, echoes, array audio, binaural audio and ground truth are
all rendered.

World frame ``map``: origin at a floor corner of the room, x along its
length, y along its width, z up; metres. All objects are axis-aligned boxes
(closed, so pyroomacoustics can reflect off them and pybullet can draw them).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

from av_perception.errors import ConfigError
from av_perception.paths import config_path

# Acoustic materials (pyroomacoustics database names) per surface kind.
WALL_MATERIALS = ('brickwork', 'rough_concrete', 'plasterboard', 'wooden_lining',
                  'ceramic_tiles', 'glass_window', 'gypsum_board', 'limestone_wall',
                  'curtains_cotton_0.5', 'panel_fabric_covered_6pcf')
FLOOR_MATERIALS = ('concrete_floor', 'marble_floor', 'linoleum_on_concrete', 'stage_floor',
                   'carpet_thin', 'carpet_cotton', 'audience_floor')
CEILING_MATERIALS = ('ceiling_plasterboard', 'ceiling_fibre_absorber', 'ceiling_fissured_tile',
                     'ceiling_metal_panel', 'hard_surface', 'plasterboard')
FURNITURE_MATERIALS = ('wood_16mm', 'plywood_thin', 'wooden_door', 'chairs_upholstered_cloth',
                       'hard_surface', 'glass_3mm')

# Visual textures (procedural, see av_perception.sim.render). Rooms of the
# held-out split use the same vocabulary; what is held out is the rooms.
TEXTURES = ('plain', 'checker', 'stripes', 'grid', 'noise', 'wood', 'bricks', 'dots')


@dataclass(frozen=True)
class SoundClass:
    """A recognisable kind of sound and the object that makes it.

    Attributes:
        name: class id.
        size: the object's extents (x, y, z) [m].
        color: RGB in [0, 1] of the object (its look is tied to its sound).
        texture: texture of the object.
        mouth: emission point relative to the object's base centre [m].
    """

    name: str
    size: tuple[float, float, float]
    color: tuple[float, float, float]
    texture: str
    mouth: tuple[float, float, float]


#: The sound classes and the appearance of the objects that make them.
SOUND_CLASSES: dict[str, SoundClass] = {c.name: c for c in (
    # the emission point sits just above the object: a point inside a closed
    # obstacle would be outside the acoustic room
    SoundClass('speech', (0.35, 0.35, 1.60), (0.90, 0.60, 0.45), 'stripes', (0.0, 0.0, 1.65)),
    SoundClass('tone', (0.30, 0.30, 0.50), (0.15, 0.25, 0.90), 'grid', (0.0, 0.0, 0.55)),
    SoundClass('noise', (0.45, 0.45, 1.00), (0.20, 0.75, 0.30), 'stripes', (0.0, 0.0, 1.05)),
    SoundClass('clicks', (0.25, 0.25, 0.35), (0.95, 0.85, 0.10), 'checker', (0.0, 0.0, 0.40)),
    SoundClass('alarm', (0.30, 0.30, 0.30), (0.90, 0.10, 0.10), 'dots', (0.0, 0.0, 0.35)),
)}


@dataclass(frozen=True)
class Box:
    """An axis-aligned box standing on the floor.

    Attributes:
        center: centre (x, y, z) in the world frame [m].
        size: extents (x, y, z) [m].
        color: RGB in [0, 1].
        texture: one of :data:`TEXTURES`.
        material: pyroomacoustics material name.
        label: 'furniture' or a sound class name.
    """

    center: tuple[float, float, float]
    size: tuple[float, float, float]
    color: tuple[float, float, float]
    texture: str
    material: str
    label: str = 'furniture'

    @property
    def lo(self) -> np.ndarray:
        return np.asarray(self.center) - np.asarray(self.size) / 2

    @property
    def hi(self) -> np.ndarray:
        return np.asarray(self.center) + np.asarray(self.size) / 2


@dataclass(frozen=True)
class Source:
    """A sound source: an object of a sound class that may be sounding.

    Attributes:
        cls: sound class name (key of :data:`SOUND_CLASSES`).
        box: index into ``Scene.boxes`` of the object that makes the sound.
        position: emission point in the world frame [m].
        seed: seed of its signal (voice, words, pitch, rhythm).
        active: True if it sounds in this scene (others are silent look-alikes).
        level_db: RMS level while sounding, at 1 m, relative to full scale [dB]
            (-35 to -25 dBFS: conversation-like levels that leave headroom for
            the reverberant build-up at the microphones).
    """

    cls: str
    box: int
    position: tuple[float, float, float]
    seed: int
    active: bool
    level_db: float = -20.0


@dataclass(frozen=True)
class Pose2D:
    """The robot base on the floor: position [m] and yaw [rad] in the world frame."""

    x: float
    y: float
    yaw: float


@dataclass(frozen=True)
class Scene:
    """Everything needed to render one room and the robot's path through it.

    Attributes:
        scene_id: index within its split.
        split: 'train' or 'test' (held-out rooms: disjoint seeds).
        size: room extents (x, y, z) [m].
        materials: pyroomacoustics material per surface: floor, ceiling,
            west (x=0), east (x=Lx), south (y=0), north (y=Ly).
        wall_textures: texture per surface (same keys).
        wall_colors: RGB per surface.
        boxes: furniture and source objects.
        sources: sound sources (each on one of the boxes).
        poses: the robot's path, one pose per sample slot.
        snr_db: signal-to-noise ratio of the microphones' self-noise [dB].
    """

    scene_id: int
    split: str
    size: tuple[float, float, float]
    materials: dict
    wall_textures: dict
    wall_colors: dict
    boxes: tuple[Box, ...]
    sources: tuple[Source, ...]
    poses: tuple[Pose2D, ...]
    snr_db: float
    seed: int = 0

    @property
    def active_sources(self) -> list[Source]:
        return [s for s in self.sources if s.active]


SURFACES = ('floor', 'ceiling', 'west', 'east', 'south', 'north')


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


# ---------------------------------------------------------------- generation
@dataclass(frozen=True)
class SceneParams:
    """Ranges of the procedural generator.

    Attributes:
        length: room length range [m] (corridors to halls).
        width: room width range [m].
        height: room height range [m].
        furniture: (min, max) furniture boxes.
        sources: (min, max) source objects (distinct classes).
        max_active: at most this many sources sound at once.
        poses: samples (robot poses) per scene.
        max_turn_deg: largest in-place yaw change between samples [deg].
        max_drive: longest straight drive between samples [m].
        snr_db: range of the microphone self-noise SNR [dB].
        classes: sound classes the sources are drawn from.
        textures: textures that walls, floor, ceiling and furniture are drawn
            from (``('plain',)`` makes poorly textured rooms; the sound-making
            objects keep their class's look).
        view: 'path': the robot drives and turns at random through the room
            (the default); 'sources': every pose faces one of the source
            objects from ``facing_range`` (the sounding one with probability
            ``sounding_share``, else a silent one), with a clear line of
            sight, the yaw jittered so that the object lands anywhere across
            the image; the sources stand near each other so that several
            are often in view (audio-visual localization data).
        source_scale: the source objects' size (and emission height) relative
            to their class's.
        sounding_share: with ``view='sources'``, share of poses that face the
            sounding object.
        facing_range: with ``view='sources'``, (min, max) distance of a pose
            from the near side of the object it faces [m].
    """

    length: tuple[float, float] = (2.5, 12.0)
    width: tuple[float, float] = (2.5, 8.0)
    height: tuple[float, float] = (2.4, 4.0)
    furniture: tuple[int, int] = (0, 6)
    sources: tuple[int, int] = (2, 3)
    max_active: int = 2
    poses: int = 8
    max_turn_deg: float = 45.0
    max_drive: float = 0.5
    snr_db: tuple[float, float] = (10.0, 30.0)
    robot_clearance: float = 0.45
    classes: tuple[str, ...] = tuple(sorted(SOUND_CLASSES))
    textures: tuple[str, ...] = TEXTURES
    view: str = 'path'
    source_scale: float = 1.0
    sounding_share: float = 0.75
    facing_range: tuple[float, float] = (0.8, 2.0)


#: how the robot's poses are chosen (SceneParams.view)
VIEWS = ('path', 'sources')
#: largest yaw offset of a ``view='sources'`` pose from the object [deg]
#: (the camera's half field of view is 45 deg)
FACING_JITTER_DEG = 30.0
#: sources of a ``view='sources'`` scene stand within this of a common centre [m]
SOURCE_CLUSTER = 1.3


def view_params(view: str, **kw) -> SceneParams:
    """The generator's ranges for a view: ``'path'`` the defaults;
    ``'sources'`` close-ups: poses 0.3-0.8 m from the source object they
    face, one sounding object per scene, objects 2 x their class's size (on
    80 test rooms the sounding object covers a median 41 % of the image when
    in view, as the objects of the audio-visual benchmarks' photos do;
    keyword arguments override any of it)."""
    if view not in VIEWS:
        raise ConfigError(f'view must be one of {VIEWS}, got {view!r}')
    if view == 'sources':
        kw = {'max_active': 1, 'source_scale': 2.0, 'facing_range': (0.3, 0.8), **kw}
    return SceneParams(view=view, **kw)


SPLITS = ('train', 'test')


def scene_seed(split: str, scene_id: int, seed: int = 0) -> int:
    """The seed of one room: train and test rooms come from disjoint streams."""
    if split not in SPLITS:
        raise ConfigError(f'split must be one of {SPLITS}, got {split!r}')
    return zlib.crc32(f'{split}:{seed}:{scene_id}'.encode())


def _free(lo: np.ndarray, hi: np.ndarray, boxes: list[Box], margin: float) -> bool:
    for b in boxes:
        if np.all(lo < b.hi[:2] + margin) and np.all(hi > b.lo[:2] - margin):
            return False
    return True


def point_is_free(x: float, y: float, size, boxes, clearance: float) -> bool:
    """True if a disc of radius ``clearance`` at (x, y) touches no wall or box."""
    if not (clearance <= x <= size[0] - clearance and clearance <= y <= size[1] - clearance):
        return False
    p = np.array([x, y])
    return _free(p, p, list(boxes), clearance)


def generate_scene(scene_id: int, split: str = 'train', seed: int = 0,
                   params: SceneParams | None = None) -> Scene:
    """A reproducible random room with furniture, sources and a robot path."""
    params = params or SceneParams()
    if params.view not in VIEWS:
        raise ConfigError(f'view must be one of {VIEWS}, got {params.view!r}')
    s = scene_seed(split, scene_id, seed)
    rng = np.random.default_rng(s)
    for _attempt in range(100):
        scene = _try_scene(rng, scene_id, split, s, params)
        if scene is not None:
            return scene
    raise RuntimeError(f'could not place a robot in scene {split}/{scene_id}')


def _try_scene(rng, scene_id, split, s, p: SceneParams) -> Scene | None:
    lx = float(rng.uniform(*p.length))
    ly = float(rng.uniform(p.width[0], min(p.width[1], max(p.width[0], lx))))
    if rng.random() < 0.5:
        lx, ly = ly, lx
    lz = float(rng.uniform(*p.height))
    size = (round(lx, 3), round(ly, 3), round(lz, 3))
    materials = {'floor': str(rng.choice(FLOOR_MATERIALS)),
                 'ceiling': str(rng.choice(CEILING_MATERIALS))}
    textures, colors = {}, {}
    wall_mat = str(rng.choice(WALL_MATERIALS))
    wall_tex = str(rng.choice(p.textures))
    for surf in SURFACES:
        if surf in ('west', 'east', 'south', 'north'):
            # mostly one finish for the room, sometimes a different wall
            materials[surf] = wall_mat if rng.random() < 0.7 else str(rng.choice(WALL_MATERIALS))
            textures[surf] = wall_tex if rng.random() < 0.7 else str(rng.choice(p.textures))
        else:
            textures[surf] = str(rng.choice(p.textures))
        colors[surf] = tuple(float(v) for v in rng.uniform(0.35, 0.95, 3))

    boxes: list[Box] = []
    margin = 0.15
    n_src = min(int(rng.integers(p.sources[0], p.sources[1] + 1)), len(p.classes))
    classes = [str(c) for c in rng.choice(sorted(p.classes), size=n_src, replace=False)]
    sources: list[Source] = []
    cluster = None
    if p.view == 'sources':  # near each other, so that several are in view at once
        cluster = rng.uniform(0.0, 1.0, 2) * np.asarray(size[:2])
        margin = 0.3
    for k, cls_name in enumerate(classes):
        c = SOUND_CLASSES[cls_name]
        if p.source_scale != 1.0:
            # scaled, but the emission point stays 0.2 m under the ceiling
            f = min(p.source_scale, (lz - 0.2) / c.mouth[2])
            c = replace(c, size=tuple(round(v * f, 3) for v in c.size),
                        mouth=tuple(round(v * f, 3) for v in c.mouth))
        placed = False
        for _ in range(50):
            cx = rng.uniform(c.size[0] / 2 + 0.05, size[0] - c.size[0] / 2 - 0.05)
            cy = rng.uniform(c.size[1] / 2 + 0.05, size[1] - c.size[1] / 2 - 0.05)
            if cluster is not None and np.hypot(cx - cluster[0], cy - cluster[1]) > SOURCE_CLUSTER:
                continue
            lo = np.array([cx - c.size[0] / 2, cy - c.size[1] / 2])
            hi = np.array([cx + c.size[0] / 2, cy + c.size[1] / 2])
            if _free(lo, hi, boxes, margin):
                placed = True
                break
        if not placed:
            return None
        boxes.append(Box(center=(round(cx, 3), round(cy, 3), c.size[2] / 2), size=c.size,
                         color=c.color, texture=c.texture, material='hard_surface',
                         label=cls_name))
        mouth = (round(cx + c.mouth[0], 3), round(cy + c.mouth[1], 3), c.mouth[2])
        sources.append(Source(cls=cls_name, box=len(boxes) - 1, position=mouth,
                              seed=int(rng.integers(0, 2**31 - 1)), active=False,
                              level_db=float(rng.uniform(-35.0, -25.0))))
    n_active = 1 if (p.max_active < 2 or rng.random() < 0.6) else 2
    active = set(rng.choice(len(sources), size=min(n_active, len(sources)), replace=False))
    sources = [replace(src, active=i in active) for i, src in enumerate(sources)]

    n_furn = int(rng.integers(p.furniture[0], p.furniture[1] + 1))
    for _ in range(n_furn):
        for _ in range(30):
            sx, sy = rng.uniform(0.3, 1.6, 2)
            sz = float(rng.uniform(0.4, 2.0))
            if sx >= size[0] - 0.2 or sy >= size[1] - 0.2:
                continue
            cx = rng.uniform(sx / 2 + 0.02, size[0] - sx / 2 - 0.02)
            cy = rng.uniform(sy / 2 + 0.02, size[1] - sy / 2 - 0.02)
            lo, hi = np.array([cx - sx / 2, cy - sy / 2]), np.array([cx + sx / 2, cy + sy / 2])
            if _free(lo, hi, boxes, margin):
                boxes.append(Box(center=(round(cx, 3), round(cy, 3), round(sz / 2, 3)),
                                 size=(round(sx, 3), round(sy, 3), round(sz, 3)),
                                 color=tuple(float(v) for v in rng.uniform(0.1, 0.9, 3)),
                                 texture=str(rng.choice(p.textures)),
                                 material=str(rng.choice(FURNITURE_MATERIALS))))
                break

    if p.view == 'sources':
        poses = _facing_poses(rng, size, boxes, sources, p)
    else:
        poses = _robot_path(rng, size, boxes, p)
    if poses is None:
        return None
    return Scene(scene_id=scene_id, split=split, size=size, materials=materials,
                 wall_textures=textures, wall_colors=colors, boxes=tuple(boxes),
                 sources=tuple(sources), poses=tuple(poses),
                 snr_db=float(rng.uniform(*p.snr_db)), seed=s)


def _robot_path(rng, size, boxes, p: SceneParams) -> list[Pose2D] | None:
    c = p.robot_clearance
    for _ in range(200):
        x, y = rng.uniform(c, size[0] - c), rng.uniform(c, size[1] - c)
        if point_is_free(x, y, size, boxes, c):
            break
    else:
        return None
    yaw = float(rng.uniform(-math.pi, math.pi))
    poses = [Pose2D(float(x), float(y), yaw)]
    while len(poses) < p.poses:
        last = poses[-1]
        if rng.random() < 0.7:  # turn in place
            dyaw = math.radians(float(rng.uniform(-p.max_turn_deg, p.max_turn_deg)))
            poses.append(Pose2D(last.x, last.y, _wrap(last.yaw + dyaw)))
            continue
        d = float(rng.uniform(0.1, p.max_drive))  # short drive straight ahead
        nx, ny = last.x + d * math.cos(last.yaw), last.y + d * math.sin(last.yaw)
        if point_is_free(nx, ny, size, boxes, c):
            poses.append(Pose2D(nx, ny, last.yaw))
        else:  # blocked: turn instead
            poses.append(Pose2D(last.x, last.y, _wrap(last.yaw + math.pi / 4)))
    return poses


def _line_of_sight(x: float, y: float, target: Box, boxes, step: float = 0.05) -> bool:
    """True if the floor segment from (x, y) to the target box's near face
    crosses no other box (furniture or source) nor clips the target's corners."""
    t = np.asarray(target.center[:2])
    d = t - np.array([x, y])
    dist = float(np.linalg.norm(d))
    stop = dist - float(np.linalg.norm(target.size[:2])) / 2 - 0.02
    for r in np.arange(0.0, max(stop, 0.0), step):
        q = np.array([x, y]) + d * (r / dist)
        if not _free(q, q, [b for b in boxes if b is not target], 0.05):
            return False
    return True


def _facing_poses(rng, size, boxes, sources, p: SceneParams) -> list[Pose2D] | None:
    """Poses facing the source objects (``SceneParams.view == 'sources'``)."""
    c = p.robot_clearance
    sounding = [i for i, s in enumerate(sources) if s.active]
    silent = [i for i, s in enumerate(sources) if not s.active]
    poses: list[Pose2D] = []
    for _ in range(p.poses):
        for _attempt in range(300):
            pick = sounding if (not silent or rng.random() < p.sounding_share) else silent
            target = boxes[sources[int(rng.choice(pick))].box]
            dist = float(rng.uniform(*p.facing_range)) + max(target.size[:2]) / 2
            bearing = float(rng.uniform(-math.pi, math.pi))
            x = target.center[0] - dist * math.cos(bearing)
            y = target.center[1] - dist * math.sin(bearing)
            if point_is_free(x, y, size, boxes, c) and _line_of_sight(x, y, target, boxes):
                jitter = math.radians(float(rng.uniform(-FACING_JITTER_DEG, FACING_JITTER_DEG)))
                poses.append(Pose2D(float(x), float(y), _wrap(bearing + jitter)))
                break
        else:
            return None
    return poses


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


# ----------------------------------------------------------------- geometry
def base_to_world(pose: Pose2D, xyz) -> np.ndarray:
    """A point given in the base frame -> world frame."""
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    x, y, z = xyz
    return np.array([pose.x + c * x - s * y, pose.y + s * x + c * y, z])


def world_to_base(pose: Pose2D, xyz) -> np.ndarray:
    """A point in the world frame -> base frame."""
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    dx, dy = xyz[0] - pose.x, xyz[1] - pose.y
    return np.array([c * dx + s * dy, -s * dx + c * dy, xyz[2]])


def direction_in_frame(pose: Pose2D, frame_xyz, point) -> tuple[float, float, float]:
    """(azimuth, elevation, distance) of a world point seen from a frame at
    ``frame_xyz`` in the base frame, axes parallel to the base (REP 103):
    azimuth CCW from +x [rad], elevation above the x-y plane [rad], metres."""
    v = world_to_base(pose, point) - np.asarray(frame_xyz, dtype=float)
    dist = float(np.linalg.norm(v))
    return (math.atan2(v[1], v[0]), math.asin(max(-1.0, min(1.0, v[2] / max(dist, 1e-9)))),
            dist)


def describe(scene: Scene) -> str:
    act = ', '.join(s.cls for s in scene.active_sources)
    return (f'{scene.split}/{scene.scene_id}: {scene.size[0]:.1f}x{scene.size[1]:.1f}x'
            f'{scene.size[2]:.1f} m, {len(scene.boxes) - len(scene.sources)} furniture, '
            f'sources {[s.cls for s in scene.sources]} (sounding: {act}), '
            f'{len(scene.poses)} poses')
