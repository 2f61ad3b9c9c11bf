"""Scene descriptions: one seeded, reproducible description per room, from
which images, depth, echoes, array audio, binaural audio and ground truth are
all rendered.

World frame ``map``: origin at a floor corner of the room's bounding box,
x along its length, y along its width, z up; metres. A room is its floor
plan (a box, or in the shifted split an L, T, U or oblique-walled polygon)
extruded from the floor (z = 0) to the ceiling. All objects are axis-aligned
boxes (closed, so pyroomacoustics can reflect off them and pybullet can draw
them).

Three splits come from disjoint seed streams (:func:`scene_seed`): 'train'
and 'test' draw from the same families of rooms, looks and sounds; 'shift'
draws from families that neither contains (:data:`SHIFT`, and
docs/simulation_shift.md): other floor plans, per-surface materials with
reverberation up to 2 s and more, other textures and lighting, objects whose
look is not tied to their sound, other voices, languages, music and
appliances, 1-3 sources at 0-30 dB SNR.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace

import numpy as np

from av_perception.errors import ConfigError
from av_perception.sim.signals import SHIFT_CLASSES  # speech in other languages, music, appliances

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

# Visual textures (procedural, see av_perception.sim.render) of the training
# and test rooms; the shifted split draws from SHIFT_TEXTURES instead.
TEXTURES = ('plain', 'checker', 'stripes', 'grid', 'noise', 'wood', 'bricks', 'dots')
#: Texture families only the shifted split has.
SHIFT_TEXTURES = ('marble', 'hexagons', 'herringbone', 'terrazzo', 'waves')


@dataclass(frozen=True)
class RoomKind:
    """A family of rooms of the shifted split: size ranges [m] and the
    pyroomacoustics materials each surface draws from, independently per
    surface (every wall its own draw)."""

    length: tuple[float, float]
    width: tuple[float, float]
    height: tuple[float, float]
    walls: tuple[str, ...]
    floor: tuple[str, ...]
    ceiling: tuple[str, ...]


_HARD = ('unpainted_concrete', 'smooth_brickwork_flush_pointing', 'brick_wall_rough',
         'rough_lime_wash', 'reverb_chamber')
_GLAZED = ('smooth_brickwork_flush_pointing', 'reverb_chamber', 'double_glazing_10mm',
           'double_glazing_30mm', 'unpainted_concrete')
_SOFT_WALLS = ('rockwool_50mm_80kgm3', 'acoustical_plaster_25mm', 'curtains_velvet',
               'curtains_densely_woven', 'mineral_wool_50mm_40kgm3', 'facing_brick',
               'perforated_veneered_chipboard')
_SOFT_FLOORS = ('carpet_tufted_9.5mm', 'carpet_hairy', 'felt_5mm', 'carpet_6mm_open_cell_foam',
                'carpet_rubber_5mm', 'cocos_fibre_roll_29mm')
_SOFT_CEILINGS = ('ceiling_melamine_foam', 'ceiling_perforated_gypsum_board',
                  'hanging_absorber_panels_1', 'hanging_absorber_panels_2')
_MIXED = ('wood_1.6cm', 'lead_glazing', 'double_glazing_inside', 'smooth_brickwork_10mm_pointing',
          'curtains_0.2', 'blinds_half_open', 'carpet_soft_10mm')

#: Room families of the shifted split (none of their materials is in the
#: training pools above; halls and stairwells are larger or taller than any
#: training room). Their Sabine reverberation times (500-1000 Hz, 300 rooms):
#: damped 0.15-0.4 s, mixed 0.2-1.5 s, tiled 0.6-2 s, stairwells and halls 1-3 s.
SHIFT_KINDS: dict[str, RoomKind] = {
    'hall': RoomKind((10.0, 20.0), (8.0, 14.0), (5.0, 9.0),
                     walls=_HARD + ('double_glazing_30mm', 'facing_brick',
                                    'perforated_veneered_chipboard'),
                     floor=('unpainted_concrete', 'carpet_rubber_5mm', 'wood_1.6cm',
                            'smooth_brickwork_flush_pointing', 'carpet_tufted_9.5mm'),
                     ceiling=('acoustical_plaster_25mm', 'hanging_absorber_panels_2',
                              'unpainted_concrete', 'wood_1.6cm',
                              'ceiling_perforated_gypsum_board')),
    'stairwell': RoomKind((2.5, 5.0), (3.0, 6.0), (6.0, 12.0),
                          walls=_HARD + ('wood_1.6cm', 'lead_glazing'),
                          floor=('unpainted_concrete', 'carpet_rubber_5mm', 'wood_1.6cm'),
                          ceiling=('unpainted_concrete', 'acoustical_plaster_25mm',
                                   'wood_1.6cm')),
    'tiled': RoomKind((2.0, 6.0), (1.8, 4.0), (2.3, 3.2),
                      walls=_GLAZED + ('curtains_0.2', 'wood_1.6cm'),
                      floor=('smooth_brickwork_flush_pointing', 'unpainted_concrete',
                             'carpet_rubber_5mm'),
                      ceiling=('wood_1.6cm', 'double_glazing_inside', 'unpainted_concrete',
                               'acoustical_plaster_25mm')),
    'damped': RoomKind((2.5, 8.0), (2.5, 6.0), (2.3, 3.2),
                       walls=_SOFT_WALLS + ('wood_1.6cm', 'smooth_brickwork_10mm_pointing',
                                            'double_glazing_30mm'),
                       floor=_SOFT_FLOORS + ('wood_1.6cm',),
                       ceiling=_SOFT_CEILINGS + ('wood_1.6cm',)),
    'mixed': RoomKind((3.0, 14.0), (3.0, 10.0), (2.5, 5.0), walls=_HARD + _SOFT_WALLS + _MIXED,
                      floor=_HARD + _SOFT_FLOORS + _MIXED[-1:],
                      ceiling=_HARD + _SOFT_CEILINGS + _MIXED[:2]),
}

#: Floor plans: 'box' (the training and test rooms) and the shapes only the
#: shifted split has (an L, a T, a U, a box with one to three corners cut
#: by oblique walls).
FLOOR_PLANS = ('box', 'L', 'T', 'U', 'oblique')


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
        split: 'train', 'test' (held-out rooms: disjoint seeds) or 'shift'
            (held-out families, see :data:`SHIFT`).
        size: extents (x, y, z) of the room's bounding box [m].
        materials: pyroomacoustics material per surface (:attr:`surfaces`):
            floor, ceiling and each wall (a box room's: west (x=0), east
            (x=Lx), south (y=0), north (y=Ly)).
        wall_textures: texture per surface (same keys).
        wall_colors: RGB per surface.
        boxes: furniture and source objects.
        sources: sound sources (each on one of the boxes).
        poses: the robot's path, one pose per sample slot.
        snr_db: signal-to-noise ratio of the microphones' self-noise [dB].
        seed: the room's seed (:func:`scene_seed`).
        floor_plan: corners of a polygonal floor plan (counter-clockwise,
            world frame [m], inside the bounding box); None: the box.
        lighting: the camera's light; None: :data:`DEFAULT_LIGHTING`.
        tail_seconds: length of the sources' impulse responses [s] (ray
            tracing and pre-roll): 0.6 for training and test rooms; in the
            shifted split until the reverberation has decayed by
            :data:`TAIL_DECAY_DB` (0.6-3 s).
        kind: 'room' (training and test) or a key of :data:`SHIFT_KINDS`.
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
    floor_plan: tuple[tuple[float, float], ...] | None = None
    lighting: Lighting | None = None
    tail_seconds: float = 0.6
    kind: str = 'room'

    @property
    def active_sources(self) -> list[Source]:
        return [s for s in self.sources if s.active]

    @property
    def plan(self) -> np.ndarray:
        """(N, 2) corners of the floor plan, counter-clockwise seen from
        above, world frame [m] (a box room: (0, 0), (Lx, 0), (Lx, Ly), (0, Ly))."""
        if self.floor_plan is None:
            lx, ly = self.size[:2]
            return np.array([[0.0, 0.0], [lx, 0.0], [lx, ly], [0.0, ly]])
        return np.asarray(self.floor_plan, float)

    @property
    def walls(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(surface name, start, end) of each wall, in the plan's order
        (the room on the left of start -> end). A box room's are 'south',
        'east', 'north', 'west'; a polygon's 'wall0', 'wall1', ..."""
        plan = self.plan
        n = len(plan)
        names = ['south', 'east', 'north', 'west'] if self.floor_plan is None else \
            [f'wall{i}' for i in range(n)]
        return [(names[i], plan[i], plan[(i + 1) % n]) for i in range(n)]

    @property
    def surfaces(self) -> tuple[str, ...]:
        """Names of the room's surfaces: 'floor', 'ceiling' and the walls."""
        return ('floor', 'ceiling') + tuple(name for name, _, _ in self.walls)


#: Surfaces of a box room.
SURFACES = ('floor', 'ceiling', 'west', 'east', 'south', 'north')


@dataclass(frozen=True)
class Lighting:
    """The camera renderer's light (pybullet TinyRenderer): a directional
    light from ``direction`` (world frame, towards the light), its RGB
    ``color`` in [0, 1], and the ambient, diffuse and specular coefficients.
    Training and test rooms have :data:`DEFAULT_LIGHTING`."""

    direction: tuple[float, float, float] = (0.4, 0.25, 1.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.6
    diffuse: float = 0.45
    specular: float = 0.0


#: The fixed light of the training and test rooms: mostly ambient so that every
#: face is visible, with some diffuse shading so that faces of different
#: orientation differ, no specular (view-independent shading).
DEFAULT_LIGHTING = Lighting()


# ---------------------------------------------------------------- generation
@dataclass(frozen=True)
class SceneParams:
    """Ranges of the procedural generator.

    Attributes:
        length: room length range [m] (corridors to halls; with ``kinds``
            the kind's range applies instead).
        width: room width range [m] (likewise).
        height: room height range [m] (likewise).
        furniture: (min, max) furniture boxes.
        sources: (min, max) source objects (distinct classes).
        max_active: at most this many sources sound at once (1 or 2: one
            in 60 % of the rooms, else two, as in the training rooms; 3 or
            more: 1 to ``max_active``, uniformly).
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
        plans: floor plans drawn from (:data:`FLOOR_PLANS`; only 'box' in
            training and test rooms).
        kinds: room kinds drawn from (keys of :data:`SHIFT_KINDS`, each with
            its own sizes and materials drawn per surface); empty: the
            training rooms' sizes and materials (one wall finish in most
            rooms).
        lighting: draw the camera's light per room (else
            :data:`DEFAULT_LIGHTING`).
        looks: 'class': each source object has its class's look
            (:data:`SOUND_CLASSES`); 'random': size, colour and texture drawn
            independently of the class.
        long_tails: the sources' impulse responses run until the room's
            reverberation has decayed by :data:`TAIL_DECAY_DB` (0.6-3 s)
            instead of 0.6 s.
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
    plans: tuple[str, ...] = ('box',)
    kinds: tuple[str, ...] = ()
    lighting: bool = False
    looks: str = 'class'
    long_tails: bool = False


#: Furniture materials of the shifted split (none in FURNITURE_MATERIALS).
SHIFT_FURNITURE_MATERIALS = ('wood_1.6cm', 'chairs_wooden', 'chairs_upholstered_leather',
                             'chairs_unoccupied_plastic', 'double_glazing_10mm')
#: Longest impulse response of a long-tailed room [s].
MAX_TAIL_SECONDS = 3.0
#: A long-tailed room's impulse responses run until its (Sabine, 500 Hz-1 kHz)
#: reverberation has decayed by this [dB]: 15 dB below the microphones'
#: self-noise at the best SNR of the shifted split (30 dB), where what is cut
#: is 3e-5 of the response's energy.
TAIL_DECAY_DB = 45.0

#: The families of the shifted split (SceneParams fields): every one of them
#: is absent from the training and test rooms (:func:`split_params` refuses
#: them there).
SHIFT = {
    'plans': FLOOR_PLANS[1:],
    'kinds': tuple(SHIFT_KINDS),
    'textures': SHIFT_TEXTURES,
    'lighting': True,
    'looks': 'random',
    'classes': SHIFT_CLASSES,
    'sources': (1, 3),
    'max_active': 3,
    'snr_db': (0.0, 30.0),
    'long_tails': True,
}


def held_out_families(params: SceneParams) -> list[str]:
    """The held-out families (keys of :data:`SHIFT`) that ``params`` would
    put into rooms (SNR below 10 dB is not one: benchmarks score the test
    rooms at 0-30 dB)."""
    found = []
    if tuple(params.plans) != ('box',):
        found.append('plans')
    if params.kinds:
        found.append('kinds')
    if set(params.textures) - set(TEXTURES):
        found.append('textures')
    if params.lighting:
        found.append('lighting')
    if params.looks != 'class':
        found.append('looks')
    if set(params.classes) - set(SOUND_CLASSES):
        found.append('classes')
    if params.max_active > 2:
        found.append('max_active')
    if params.long_tails:
        found.append('long_tails')
    return found


def split_params(split: str, params: SceneParams | None = None) -> SceneParams:
    """The generator's ranges for a split: 'shift' replaces the families of
    ``params`` by :data:`SHIFT` (keeping its view, poses and the rest);
    'train' and 'test' take ``params`` as they are, and refuse held-out
    families (ConfigError), so that no training room ever has one."""
    params = params or SceneParams()
    if split == 'shift':
        return replace(params, **SHIFT)
    found = held_out_families(params)
    if found:
        raise ConfigError(f'{split} rooms cannot have the held-out families {found} '
                          "(only split 'shift' has them)")
    return params


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


SPLITS = ('train', 'test', 'shift')


def scene_seed(split: str, scene_id: int, seed: int = 0) -> int:
    """The seed of one room: each split's rooms come from their own stream."""
    if split not in SPLITS:
        raise ConfigError(f'split must be one of {SPLITS}, got {split!r}')
    return zlib.crc32(f'{split}:{seed}:{scene_id}'.encode())


def _free(lo: np.ndarray, hi: np.ndarray, boxes: list[Box], margin: float) -> bool:
    for b in boxes:
        if np.all(lo < b.hi[:2] + margin) and np.all(hi > b.lo[:2] - margin):
            return False
    return True


def plan_contains(plan: np.ndarray, x, y) -> np.ndarray:
    """True where the points (x, y) [m] (arrays, broadcast) lie inside the
    floor plan (N, 2) (even-odd rule; points on a wall may go either way)."""
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    inside = np.zeros(x.shape, bool)
    n = len(plan)
    for i in range(n):
        (ax, ay), (bx, by) = plan[i], plan[(i + 1) % n]
        if ay == by:
            continue
        crosses = (ay > y) != (by > y)
        with np.errstate(divide='ignore', invalid='ignore'):
            xc = ax + (y - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (x < xc)
    return inside


def plan_distance(plan: np.ndarray, x, y) -> np.ndarray:
    """Distance [m] from the points (x, y) (arrays, broadcast) to the nearest
    wall of the floor plan (N, 2), i.e. to the nearest of its edges."""
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    best = np.full(x.shape, np.inf)
    n = len(plan)
    for i in range(n):
        (ax, ay), (bx, by) = plan[i], plan[(i + 1) % n]
        length = math.hypot(bx - ax, by - ay)
        ux, uy = (bx - ax) / length, (by - ay) / length
        along = (x - ax) * ux + (y - ay) * uy
        across = np.abs(ux * (y - ay) - uy * (x - ax))
        ends = np.minimum(np.hypot(x - ax, y - ay), np.hypot(x - bx, y - by))
        best = np.minimum(best, np.where((along >= 0) & (along <= length), across, ends))
    return best


def segment_hits_box(a, b, lo, hi) -> bool:
    """True if the segment a -> b meets the axis-aligned box [lo, hi]
    (slab test; any dimension, all in the same frame)."""
    a = np.asarray(a, float)
    d = np.asarray(b, float) - a
    with np.errstate(divide='ignore', invalid='ignore'):
        t1 = (np.asarray(lo, float) - a) / d
        t2 = (np.asarray(hi, float) - a) / d
    tmin = np.nanmax(np.minimum(t1, t2))
    tmax = np.nanmin(np.maximum(t1, t2))
    return bool(tmax >= max(tmin, 0.0) and tmin <= 1.0)


def point_is_free(x: float, y: float, plan: np.ndarray, boxes, clearance: float) -> bool:
    """True if a disc of radius ``clearance`` [m] at (x, y) lies inside the
    floor plan (N, 2) and touches no wall or box."""
    if not (plan_contains(plan, x, y) and plan_distance(plan, x, y) >= clearance):
        return False
    p = np.array([x, y])
    return _free(p, p, list(boxes), clearance)


def footprint_fits(lo: np.ndarray, hi: np.ndarray, plan: np.ndarray | None, gap: float) -> bool:
    """True if the footprint [lo, hi] grown by ``gap`` [m] lies inside the
    floor plan (None: the bounding box, within which footprints are drawn)."""
    if plan is None:
        return True
    if not plan_contains(plan, (lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2):
        return False
    n = len(plan)
    return not any(segment_hits_box(plan[i], plan[(i + 1) % n], lo - gap, hi + gap)
                   for i in range(n))


def generate_scene(scene_id: int, split: str = 'train', seed: int = 0,
                   params: SceneParams | None = None) -> Scene:
    """A reproducible random room with furniture, sources and a robot path,
    from the families of its split (:func:`split_params`)."""
    s = scene_seed(split, scene_id, seed)
    params = split_params(split, params)
    if params.view not in VIEWS:
        raise ConfigError(f'view must be one of {VIEWS}, got {params.view!r}')
    rng = np.random.default_rng(s)
    for _attempt in range(100):
        scene = _try_scene(rng, scene_id, split, s, params)
        if scene is not None:
            return scene
    raise RuntimeError(f'could not place a robot in scene {split}/{scene_id}')


def _box_room(rng, p: SceneParams):
    """Size (rounded to mm) and height [m], floor plan (None: the box),
    materials, textures, colours and kind of a training-family room: a box,
    mostly one wall finish."""
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
    return size, lz, None, materials, textures, colors, 'room'


def _kind_room(rng, p: SceneParams):
    """Like :func:`_box_room`, for a room of one of ``p.kinds``: a floor plan
    of ``p.plans``, every surface its own material and texture (None: the
    drawn box is too small for the drawn plan)."""
    name = str(rng.choice(p.kinds))
    kind = SHIFT_KINDS[name]
    lx = float(rng.uniform(*kind.length))
    ly = float(rng.uniform(kind.width[0], min(kind.width[1], max(kind.width[0], lx))))
    if rng.random() < 0.5:
        lx, ly = ly, lx
    lz = float(rng.uniform(*kind.height))
    size = (round(lx, 3), round(ly, 3), round(lz, 3))
    shape = str(rng.choice(p.plans))
    plan = None if shape == 'box' else floor_plan(rng, shape, size[0], size[1])
    if shape != 'box' and plan is None:
        return None
    surfaces = ('floor', 'ceiling') + (
        ('west', 'east', 'south', 'north') if plan is None else
        tuple(f'wall{i}' for i in range(len(plan))))
    pools = {'floor': kind.floor, 'ceiling': kind.ceiling}
    materials, textures, colors = {}, {}, {}
    for surf in surfaces:
        materials[surf] = str(rng.choice(pools.get(surf, kind.walls)))
        textures[surf] = str(rng.choice(p.textures))
        colors[surf] = tuple(float(v) for v in rng.uniform(0.2, 0.95, 3))
    return size, lz, plan, materials, textures, colors, name


#: Narrowest part (arm, stem) of a non-box floor plan [m].
MIN_ARM = 1.3


def floor_plan(rng, shape: str, lx: float, ly: float) -> tuple[tuple[float, float], ...] | None:
    """Corners (counter-clockwise, rounded to mm) of a floor plan of
    ``shape`` (:data:`FLOOR_PLANS` but 'box') in the bounding box
    [0, lx] x [0, ly] [m], touching all four of its sides: 'L' a box with one
    corner cut out, 'T' a bar with a stem, 'U' a box with a notch in one
    side, 'oblique' a box with one to three corners cut by oblique walls. Its
    arms are at least :data:`MIN_ARM` wide where the box allows it; None if
    the box is too small for the shape."""
    def frac(extent: float, lo: float = 0.3, hi: float = 0.6) -> float:
        top = max(lo, min(hi, 1.0 - MIN_ARM / extent))
        return float(rng.uniform(lo, top)) * extent

    if shape == 'L':
        nx, ny = frac(lx), frac(ly)
        pts = [(0, 0), (lx, 0), (lx, ly - ny), (lx - nx, ly - ny), (lx - nx, ly), (0, ly)]
    elif shape == 'T':
        stem = max(MIN_ARM, float(rng.uniform(0.35, 0.6)) * lx)
        x0 = float(rng.uniform(0.0, lx - stem))
        bar = frac(ly, 0.35, 0.6)
        pts = [(x0, 0), (x0 + stem, 0), (x0 + stem, ly - bar), (lx, ly - bar), (lx, ly),
               (0, ly), (0, ly - bar), (x0, ly - bar)]
        pts = [q for i, q in enumerate(pts) if q != pts[i - 1]]  # a stem flush with a side
    elif shape == 'U':
        notch = float(rng.uniform(0.25, 0.45)) * lx
        if lx < notch + 2 * MIN_ARM:
            return None  # no room for two arms
        x0 = float(rng.uniform(MIN_ARM, lx - notch - MIN_ARM))
        depth = frac(ly)
        pts = [(0, 0), (lx, 0), (lx, ly), (x0 + notch, ly), (x0 + notch, ly - depth),
               (x0, ly - depth), (x0, ly), (0, ly)]
    elif shape == 'oblique':
        cut = set(int(c) for c in rng.choice(4, size=int(rng.integers(1, 4)), replace=False))
        corners = [(0, 0), (lx, 0), (lx, ly), (0, ly)]
        pts = []
        for i, (cx, cy) in enumerate(corners):
            if i not in cut:
                pts.append((cx, cy))
                continue
            # two points on the sides next to the corner, 20-45 % of each side in
            px, nx_ = corners[i - 1], corners[(i + 1) % 4]
            a, b = rng.uniform(0.2, 0.45, 2)
            pts.append((cx + a * (px[0] - cx), cy + a * (px[1] - cy)))
            pts.append((cx + b * (nx_[0] - cx), cy + b * (nx_[1] - cy)))
    else:
        raise ConfigError(f'floor plan must be one of {FLOOR_PLANS[1:]}, got {shape!r}')
    # any of the four orientations in the box: mirrored in x and/or y
    flip_x, flip_y = (bool(v) for v in rng.integers(0, 2, 2))
    out = [(round(float(lx - x if flip_x else x), 3), round(float(ly - y if flip_y else y), 3))
           for x, y in pts]
    if flip_x != flip_y:  # one mirror turns the corners clockwise
        out = out[::-1]
    return tuple(out)


def _random_look(rng, cls_name: str, p: SceneParams) -> SoundClass:
    """A source object whose size, colour and texture are drawn independently
    of its sound class (emission point just above it)."""
    sx, sy = (float(v) for v in rng.uniform(0.2, 0.6, 2))
    sz = float(rng.uniform(0.25, 1.7))
    size = (round(sx, 3), round(sy, 3), round(sz, 3))
    return SoundClass(cls_name, size, tuple(float(v) for v in rng.uniform(0.05, 0.95, 3)),
                      str(rng.choice(p.textures)), (0.0, 0.0, round(sz + 0.05, 3)))


def _lighting(rng) -> Lighting:
    """A drawn light: from anywhere above (20-85 deg elevation), warm to cool,
    dim to bright, with some specular highlights."""
    az = float(rng.uniform(-math.pi, math.pi))
    el = math.radians(float(rng.uniform(20.0, 85.0)))
    warm = float(rng.uniform(-1.0, 1.0))  # -1 cool (bluish) .. +1 warm (yellowish)
    color = (1.0 - 0.25 * max(0.0, -warm), 1.0 - 0.1 * abs(warm), 1.0 - 0.35 * max(0.0, warm))
    return Lighting(direction=(round(math.cos(el) * math.cos(az), 4),
                               round(math.cos(el) * math.sin(az), 4), round(math.sin(el), 4)),
                    color=tuple(round(c, 4) for c in color),
                    ambient=round(float(rng.uniform(0.25, 0.7)), 3),
                    diffuse=round(float(rng.uniform(0.3, 0.8)), 3),
                    specular=round(float(rng.uniform(0.0, 0.4)), 3))


def _try_scene(rng, scene_id, split, s, p: SceneParams) -> Scene | None:
    room = (_kind_room if p.kinds else _box_room)(rng, p)
    if room is None:
        return None
    size, lz, plan, materials, textures, colors, kind = room
    area = np.asarray(plan, float) if plan is not None else None
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
        c = SOUND_CLASSES[cls_name] if p.looks == 'class' else _random_look(rng, cls_name, p)
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
            if _free(lo, hi, boxes, margin) and footprint_fits(lo, hi, area, 0.05):
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
    if p.max_active <= 2:
        n_active = 1 if (p.max_active < 2 or rng.random() < 0.6) else 2
    else:
        n_active = int(rng.integers(1, min(p.max_active, len(sources)) + 1))
    active = set(rng.choice(len(sources), size=min(n_active, len(sources)), replace=False))
    sources = [replace(src, active=i in active) for i, src in enumerate(sources)]

    furniture_materials = SHIFT_FURNITURE_MATERIALS if p.kinds else FURNITURE_MATERIALS
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
            if _free(lo, hi, boxes, margin) and footprint_fits(lo, hi, area, 0.02):
                boxes.append(Box(center=(round(cx, 3), round(cy, 3), round(sz / 2, 3)),
                                 size=(round(sx, 3), round(sy, 3), round(sz, 3)),
                                 color=tuple(float(v) for v in rng.uniform(0.1, 0.9, 3)),
                                 texture=str(rng.choice(p.textures)),
                                 material=str(rng.choice(furniture_materials))))
                break

    walls = area if area is not None else np.array(
        [[0.0, 0.0], [size[0], 0.0], [size[0], size[1]], [0.0, size[1]]])
    if p.view == 'sources':
        poses = _facing_poses(rng, size, walls, boxes, sources, p)
    else:
        poses = _robot_path(rng, size, walls, boxes, p)
    if poses is None:
        return None
    scene = Scene(scene_id=scene_id, split=split, size=size, materials=materials,
                  wall_textures=textures, wall_colors=colors, boxes=tuple(boxes),
                  sources=tuple(sources), poses=tuple(poses),
                  snr_db=float(rng.uniform(*p.snr_db)), seed=s, floor_plan=plan, kind=kind)
    if p.lighting:
        scene = replace(scene, lighting=_lighting(rng))
    if p.long_tails:
        from av_perception.sim.acoustics import rt60_sabine  # (it imports this module)
        decay = rt60_sabine(scene) * TAIL_DECAY_DB / 60.0
        scene = replace(scene, tail_seconds=round(float(np.clip(decay, 0.6, MAX_TAIL_SECONDS)), 2))
    return scene


def _robot_path(rng, size, plan, boxes, p: SceneParams) -> list[Pose2D] | None:
    c = p.robot_clearance
    for _ in range(200):
        x, y = rng.uniform(c, size[0] - c), rng.uniform(c, size[1] - c)
        if point_is_free(x, y, plan, boxes, c):
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
        if point_is_free(nx, ny, plan, boxes, c):
            poses.append(Pose2D(nx, ny, last.yaw))
        else:  # blocked: turn instead
            poses.append(Pose2D(last.x, last.y, _wrap(last.yaw + math.pi / 4)))
    return poses


def _line_of_sight(x: float, y: float, target: Box, boxes, plan, step: float = 0.05) -> bool:
    """True if the floor segment from (x, y) to the target box's near face
    crosses no other box (furniture or source), no wall of the floor plan,
    nor clips the target's corners."""
    t = np.asarray(target.center[:2])
    d = t - np.array([x, y])
    dist = float(np.linalg.norm(d))
    stop = dist - float(np.linalg.norm(target.size[:2])) / 2 - 0.02
    for r in np.arange(0.0, max(stop, 0.0), step):
        q = np.array([x, y]) + d * (r / dist)
        if not _free(q, q, [b for b in boxes if b is not target], 0.05):
            return False
    n = len(plan)
    return not any(_segments_cross((x, y), t, plan[i], plan[(i + 1) % n]) for i in range(n))


def _segments_cross(p, q, a, b) -> bool:
    """True if the 2-D segments p -> q and a -> b properly cross."""
    def side(o, u, v) -> float:
        return (u[0] - o[0]) * (v[1] - o[1]) - (u[1] - o[1]) * (v[0] - o[0])
    return (side(a, b, p) * side(a, b, q) < 0) and (side(p, q, a) * side(p, q, b) < 0)


def _facing_poses(rng, size, plan, boxes, sources, p: SceneParams) -> list[Pose2D] | None:
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
            if (point_is_free(x, y, plan, boxes, c)
                    and _line_of_sight(x, y, target, boxes, plan)):
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
            f'{len(scene.poses)} poses'
            + ('' if scene.kind == 'room' else
               f', {scene.kind}, {len(scene.plan)}-wall plan, {scene.tail_seconds:.2f} s tails'))
