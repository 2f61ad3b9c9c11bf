"""The shifted split (simulate --split shift): its families never occur in
the training and test rooms, which stay exactly as they were; its worlds
are well formed (floor plans, placements, signals); and the ground truth is
right in rooms that are not boxes (an echo off an oblique wall, the
occupancy grid and the depth image of an L-shaped room), with the long
reverberation the split promises."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace

import numpy as np
import pytest

from av_perception.errors import ConfigError
from av_perception.sim import acoustics
from av_perception.sim import signals as S
from av_perception.sim.render import SceneRenderer
from av_perception.sim.scene import (CEILING_MATERIALS, FLOOR_MATERIALS, FLOOR_PLANS,
                                     FURNITURE_MATERIALS, SHIFT, SHIFT_FURNITURE_MATERIALS,
                                     SHIFT_KINDS, SHIFT_TEXTURES, SOUND_CLASSES, SPLITS, TEXTURES,
                                     WALL_MATERIALS, Box, Pose2D, SceneParams, Source,
                                     footprint_fits, base_to_world, generate_scene, plan_contains,
                                     point_is_free, scene_seed, split_params, view_params)
from av_perception.robot import load_robot
from av_perception.sim.world import SceneSimulator, occupancy_grid

ROBOT = load_robot()
C = 343.0
TRAIN_MATERIALS = set(WALL_MATERIALS + FLOOR_MATERIALS + CEILING_MATERIALS + FURNITURE_MATERIALS
                      + ('hard_surface',))
SHIFT_MATERIALS = {m for k in SHIFT_KINDS.values() for m in k.walls + k.floor + k.ceiling} \
    | set(SHIFT_FURNITURE_MATERIALS)
TRAIN_VARIANTS = {v.split('+')[1] for v in S.SPEECH_VOICES if '+' in v}


@pytest.fixture(scope='module')
def train_scenes():
    return ([generate_scene(i, 'train', 0) for i in range(200)]
            + [generate_scene(i, 'test', 0) for i in range(60)]
            + [generate_scene(i, 'train', 3, view_params('sources')) for i in range(30)])


@pytest.fixture(scope='module')
def shift_scenes():
    return [generate_scene(i, 'shift', 0) for i in range(120)]


# ------------------------------------------------------ 1. held-out families
def test_the_families_are_disjoint_by_construction():
    assert not SHIFT_MATERIALS & TRAIN_MATERIALS
    assert not set(SHIFT_TEXTURES) & set(TEXTURES)
    assert not set(S.SHIFT_CLASSES) & set(SOUND_CLASSES)
    assert set(S.CLASSES) == set(SOUND_CLASSES)
    assert not set(S.VOICE_VARIANTS) & TRAIN_VARIANTS
    assert not any(lang.startswith('en') for lang in S.VOICE_WORDS)
    assert 'box' not in SHIFT['plans'] and set(SHIFT['plans']) == set(FLOOR_PLANS) - {'box'}


def _voice_of(src) -> str:
    return S.signal_params(src.cls, src.seed).get('voice', '')


def test_shift_families_never_occur_in_training_and_test_rooms(train_scenes):
    """290 training and test rooms (both views): box floor plans, training
    materials and textures, the fixed light, class-tied looks, training
    sound classes and English voices, at most two sounding sources, 0.6 s
    impulse responses."""
    for s in train_scenes:
        where = f'{s.split}/{s.scene_id}'
        assert s.floor_plan is None and s.kind == 'room', where
        assert set(s.surfaces) == {'floor', 'ceiling', 'west', 'east', 'south', 'north'}
        assert set(s.materials.values()) <= TRAIN_MATERIALS, where
        assert set(s.wall_textures.values()) <= set(TEXTURES), where
        assert s.lighting is None and s.tail_seconds == 0.6, where
        assert 1 <= len(s.active_sources) <= 2, where
        for src in s.sources:
            look, box = SOUND_CLASSES[src.cls], s.boxes[src.box]
            assert (box.color, box.texture) == (look.color, look.texture), where
            if src.cls == 'speech':
                assert _voice_of(src) in S.SPEECH_VOICES
        for box in s.boxes:
            assert box.texture in TEXTURES and box.material in TRAIN_MATERIALS, where


def test_every_shift_room_has_its_families(shift_scenes):
    """120 shifted rooms: a non-box floor plan, held-out materials drawn per
    surface, held-out textures and a drawn light, looks not tied to the
    class, held-out sounds, 1-3 sounding sources at 0-30 dB, long tails where
    the room reverberates; every floor plan and kind occurs."""
    active = set()
    for s in shift_scenes:
        where = f'shift/{s.scene_id}'
        assert s.floor_plan is not None and s.kind in SHIFT_KINDS, where
        assert set(s.materials.values()) <= SHIFT_MATERIALS, where
        assert set(s.wall_textures.values()) <= set(SHIFT_TEXTURES), where
        assert s.lighting is not None and 0.0 <= s.snr_db <= 30.0, where
        assert 0.6 <= s.tail_seconds <= 3.0
        active.add(len(s.active_sources))
        for src in s.sources:
            assert src.cls in S.SHIFT_CLASSES and s.boxes[src.box].texture in SHIFT_TEXTURES
            if src.cls == 'voice':
                lang, variant = _voice_of(src).split('+')
                assert lang in S.VOICE_WORDS and variant in S.VOICE_VARIANTS
        for box in s.boxes:
            assert box.material in SHIFT_MATERIALS | {'hard_surface'}, where
    assert active == {1, 2, 3}
    shapes = {_shape(s) for s in shift_scenes}
    assert shapes == {'L', 'T', 'U', 'oblique'}
    assert {s.kind for s in shift_scenes} == set(SHIFT_KINDS)
    assert max(s.tail_seconds for s in shift_scenes) == 3.0
    # the same class looks different from room to room
    looks = {(s.boxes[src.box].color, s.boxes[src.box].size) for s in shift_scenes
             for src in s.sources if src.cls == 'music'}
    assert len(looks) > 20


def _shape(scene) -> str:
    """The floor plan's family, from its corners."""
    plan = scene.plan
    edges = np.diff(np.vstack([plan, plan[:1]]), axis=0)
    if np.all((edges == 0).any(axis=1)):  # all axis-aligned
        return {6: 'L', 8: 'T' if _notches(plan, scene.size) == 2 else 'U'}[len(plan)]
    return 'oblique'


def _notches(plan, size) -> int:
    """How many corners of the bounding box lie outside the plan."""
    lx, ly = size[:2]
    probe = [(0.01, 0.01), (lx - 0.01, 0.01), (lx - 0.01, ly - 0.01), (0.01, ly - 0.01)]
    return sum(not plan_contains(plan, x, y) for x, y in probe)


def test_training_rooms_refuse_held_out_families_and_the_shift_split_takes_its_own():
    for field, value in (('plans', ('L',)), ('kinds', ('hall',)), ('textures', ('marble',)),
                         ('lighting', True), ('looks', 'random'), ('classes', ('music',)),
                         ('max_active', 3), ('long_tails', True)):
        params = replace(SceneParams(), **{field: value})
        for split in ('train', 'test'):
            with pytest.raises(ConfigError, match='held-out'):
                generate_scene(0, split, 0, params)
    # the shift split keeps the view and poses it is given, and its own families
    p = split_params('shift', view_params('sources', poses=3, snr_db=(20.0, 30.0)))
    assert (p.view, p.poses, p.snr_db, p.classes) == ('sources', 3, (0.0, 30.0),
                                                      S.SHIFT_CLASSES)
    s = generate_scene(2, 'shift', 0, view_params('sources', poses=3))
    assert len(s.poses) == 3 and s.floor_plan is not None
    assert SPLITS == ('train', 'test', 'shift')


def test_training_and_test_rooms_are_exactly_as_before():
    """The same descriptions as before the shifted split existed (digest of
    45 rooms taken on the commit before it): existing figures stay comparable."""
    fields = ('scene_id', 'split', 'size', 'materials', 'wall_textures', 'wall_colors', 'boxes',
              'sources', 'poses', 'snr_db', 'seed')
    h = hashlib.sha1()
    scenes = [generate_scene(i, split, 0) for split in ('train', 'test') for i in range(20)]
    scenes += [generate_scene(i, 'train', 7, view_params('sources')) for i in range(5)]
    for s in scenes:
        for f in fields:
            h.update(repr(getattr(s, f)).encode())
    assert h.hexdigest() == 'c31182f938e0a03ac022ec3ce08a0ee37300b76d'


def test_splits_draw_disjoint_seeds():
    seeds = {split: {scene_seed(split, i, s) for i in range(2000) for s in (0, 1)}
             for split in SPLITS}
    assert not seeds['shift'] & (seeds['train'] | seeds['test'])
    assert not seeds['train'] & seeds['test']


# --------------------------------------------------------- 2. well formed
def test_floor_plans_robot_and_objects_are_inside_the_room(shift_scenes):
    """Counter-clockwise simple plans touching their bounding box; every pose
    clear of walls and boxes; every box inside the plan."""
    from av_perception.sim.scene import _segments_cross
    for s in shift_scenes:
        plan = s.plan
        n = len(plan)
        for i in range(n):  # no two walls cross
            for j in range(i + 2, n - (i == 0)):
                assert not _segments_cross(plan[i], plan[(i + 1) % n], plan[j],
                                           plan[(j + 1) % n]), f'shift/{s.scene_id}'
        x, y = plan[:, 0], plan[:, 1]
        assert 0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) > 0
        assert x.min() == 0 and y.min() == 0
        assert x.max() == pytest.approx(s.size[0]) and y.max() == pytest.approx(s.size[1])
        for pose in s.poses:
            assert point_is_free(pose.x, pose.y, plan, s.boxes, 0.449), f'shift/{s.scene_id}'
        for b in s.boxes:
            assert footprint_fits(b.lo[:2], b.hi[:2], plan, 0.0), f'shift/{s.scene_id}'


@pytest.mark.parametrize('cls', S.SHIFT_CLASSES)
def test_shift_signals_are_deterministic_levelled_and_silent_between_events(cls):
    a = S.render_source(cls, 11, 3.0, 16000)
    assert np.array_equal(a.samples, S.render_source(cls, 11, 3.0, 16000).samples)
    assert not np.allclose(a.samples, S.source_signal(cls, 12, 3.0, 16000))
    assert S.rms(a.samples, a.active) == pytest.approx(S.RMS_TARGET, rel=1e-4)
    assert not np.any(a.samples[~a.active]) and np.all(np.isfinite(a.samples))
    longer = S.render_source(cls, 11, 5.0, 16000)  # event timing does not depend on duration
    assert np.array_equal(longer.active[:len(a.active)], a.active)


def test_music_is_pitched_on_its_scale_and_appliances_hum_at_the_mains():
    """A music source's spectral peaks sit on its key's notes (equal
    temperament); an appliance's hum puts energy at twice the mains
    frequency, far above the noise around it."""
    fs = 16000
    for seed in range(3):
        r = S.render_source('music', seed, 4.0, fs)
        spec = np.abs(np.fft.rfft(r.samples * np.hanning(len(r.samples))))
        f = np.fft.rfftfreq(len(r.samples), 1 / fs)
        band = (f > 60) & (f < 2000)
        peak = f[band][np.argmax(spec[band])]
        semis = 12 * np.log2(peak / 440.0)
        assert abs(semis - round(semis)) < 0.2, (seed, peak)
        a = S.render_source('appliance', seed, 4.0, fs)
        spec = np.abs(np.fft.rfft(a.samples))
        f = np.fft.rfftfreq(len(a.samples), 1 / fs)
        hum = 2 * a.params['mains']
        at = spec[np.abs(f - hum) < 1.0].max()
        around = np.median(spec[(np.abs(f - hum) > 5) & (np.abs(f - hum) < 30)])
        assert at > 10 * around, seed


# ------------------------------------------------ 3. ground truth, non-box rooms
def _polygon_scene(plan, size, pose, sources=(), boxes=(), material='unpainted_concrete'):
    """A hand-made room with floor plan ``plan``, hard walls, grey surfaces."""
    base = generate_scene(0)
    walls = [f'wall{i}' for i in range(len(plan))]
    mats = {w: material for w in walls}
    mats.update(floor='unpainted_concrete', ceiling='acoustical_plaster_25mm')
    surfaces = ['floor', 'ceiling'] + walls
    return replace(base, size=size, floor_plan=tuple(plan), materials=mats,
                   wall_textures={s: 'plain' for s in surfaces},
                   wall_colors={s: (0.6, 0.6, 0.6) for s in surfaces}, boxes=tuple(boxes),
                   sources=tuple(sources), poses=(pose,), snr_db=30.0)


CUT = ((0.0, 0.0), (10.0, 0.0), (10.0, 4.0), (4.0, 10.0), (0.0, 10.0))  # wall x + y = 14
L_PLAN = ((0.0, 0.0), (8.0, 0.0), (8.0, 4.0), (4.0, 4.0), (4.0, 8.0), (0.0, 8.0))


def test_echo_off_an_oblique_wall_arrives_when_the_geometry_and_depth_say():
    """Facing the oblique wall x + y = 14 squarely from (6, 6): the depth
    image's centre is the camera's distance to it, and the echo has a
    distinct arrival at 2 d / c (within 1 ms); nothing else lies that near."""
    pose = Pose2D(6.0, 6.0, math.pi / 4)
    src_box = Box((1.0, 1.0, 0.25), (0.3, 0.3, 0.5), (0.1, 0.2, 0.9), 'grid', 'hard_surface',
                  'tone')
    scene = _polygon_scene(CUT, (10.0, 10.0, 4.0), pose, boxes=(src_box,),
                           sources=(Source('tone', 0, (1.0, 1.0, 0.6), 3, True, -20.0),))
    eye = base_to_world(pose, ROBOT.camera.xyz)
    d_true = (14.0 - eye[0] - eye[1]) / math.sqrt(2)
    with SceneSimulator(scene, ROBOT) as sim:
        slot = sim.slot(0, streams=False)
        speaker = sim.world_mics('echo', pose).mean(axis=1)
        chirp = sim.chirp
    h, w = slot.depth.shape
    assert slot.depth[h // 2, w // 2] == pytest.approx(d_true, abs=0.02)
    fs = slot.echo_rate
    from scipy.signal import correlate, hilbert
    mf = correlate(slot.echo.mean(axis=0).astype(float), chirp, mode='full')[len(chirp) - 1:]
    env = np.abs(hilbert(mf))
    t_pred = 2 * (14.0 - speaker[0] - speaker[1]) / math.sqrt(2) / C
    lo, hi = int((t_pred - 1e-3) * fs), int((t_pred + 1e-3) * fs)
    peak = lo + int(np.argmax(env[lo:hi]))
    assert abs(peak / fs - t_pred) < 1e-3
    assert env[peak] > 10 * np.median(env[int(0.005 * fs):])
    # a box room of the same bounding box has no arrival there
    box_surfaces = ('floor', 'ceiling', 'west', 'east', 'south', 'north')
    box_room = replace(scene, floor_plan=None, materials={
        **{k: 'unpainted_concrete' for k in ('west', 'east', 'south', 'north', 'floor')},
        'ceiling': 'acoustical_plaster_25mm'},
        wall_textures={k: 'plain' for k in box_surfaces},
        wall_colors={k: (0.6, 0.6, 0.6) for k in box_surfaces})
    with SceneSimulator(box_room, ROBOT) as sim:
        other = sim.slot(0, streams=False)
    mf = correlate(other.echo.mean(axis=0).astype(float), chirp, mode='full')[len(chirp) - 1:]
    assert np.abs(hilbert(mf))[lo:hi].max() < 0.3 * env[peak]


def test_occupancy_of_an_l_shaped_room():
    """From (2, 2) facing +x: the cells along the walls of the reflex corner
    are occupied, the notch beyond them (outside the room) unknown, the L's
    arms free; and the room's free and wall cells cover its area."""
    pose = Pose2D(2.0, 2.0, 0.0)
    scene = _polygon_scene(L_PLAN, (8.0, 8.0, 3.0), pose)
    occ = occupancy_grid(scene, pose, size=10.0, resolution=0.1)

    def cell(wx, wy):  # world point -> grid value (yaw 0: base = world - pose)
        c = int((wx - pose.x - occ.origin[0]) / occ.resolution)
        r = int((wy - pose.y - occ.origin[1]) / occ.resolution)
        return occ.data[r, c]
    assert cell(2.0, 2.0) == 0            # the robot
    assert cell(3.5, 3.5) == 0 and cell(2.0, 6.5) == 0 and cell(6.5, 2.0) == 0  # arms
    assert cell(3.97, 5.5) == 100         # wall x = 4 of the upper arm
    assert cell(5.5, 3.97) == 100         # wall y = 4 of the right arm
    assert cell(3.97, 3.97) == 100        # the reflex corner
    assert cell(4.6, 4.6) == -1 and cell(6.0, 6.0) == -1  # the notch
    assert cell(0.03, 2.0) == 100 and cell(-0.5, 2.0) == -1
    # in the 10 m window around (2, 2): x in [-3, 7], y in [-3, 7]
    area = 7 * 4 + 4 * 3  # the L's part in the window: x, y in [0, 7], minus the notch
    inside = np.count_nonzero(occ.data >= 0) * occ.resolution ** 2
    assert inside == pytest.approx(area, rel=0.02)


def _ray_cast_polygon(robot, pose, plan, height) -> np.ndarray:
    """Planar depth of every pixel in an empty room with floor plan ``plan``:
    the nearest of the floor, the ceiling and the walls (vertical segments)
    along each pixel's ray."""
    cam = robot.camera
    K = cam.K
    u, v = np.meshgrid(np.arange(cam.width, dtype=float), np.arange(cam.height, dtype=float))
    xo, yo = (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    dx, dy, dz = c + s * xo, s - c * xo, -yo  # world direction per unit optical z
    eye = base_to_world(pose, cam.xyz)
    with np.errstate(divide='ignore', invalid='ignore'):
        up = np.where(dz > 1e-12, (height - eye[2]) / dz, np.inf)
        t = np.where(dz < -1e-12, -eye[2] / dz, up)
        n = len(plan)
        for i in range(n):
            a, b = np.asarray(plan[i]), np.asarray(plan[(i + 1) % n])
            ex, ey = b - a
            den = dx * (-ey) - dy * (-ex)
            rx, ry = a[0] - eye[0], a[1] - eye[1]
            tt = (rx * (-ey) - ry * (-ex)) / den
            ss = (dx * ry - dy * rx) / den
            hit = (tt > 1e-9) & (ss >= 0) & (ss <= 1)
            t = np.where(hit, np.minimum(t, tt), t)
    return t


@pytest.mark.parametrize('pose', [Pose2D(2.0, 2.0, math.pi / 4), Pose2D(1.5, 6.5, -0.3),
                                  Pose2D(6.5, 1.0, 2.2)])
def test_depth_of_an_l_shaped_room_matches_a_ray_cast(pose):
    """Seen from the corner, an arm and across the reflex corner, every
    pixel's depth is the ray-cast depth of the L's walls, floor and ceiling
    (all but the few pixels on a depth edge, which may show either side)."""
    scene = _polygon_scene(L_PLAN, (8.0, 8.0, 3.0), pose)
    with SceneRenderer(scene, ROBOT) as r:
        view = r.render(pose)
    expected = _ray_cast_polygon(ROBOT, pose, L_PLAN, 3.0)
    close = np.isclose(view.depth, expected, rtol=2e-3)
    assert close.mean() > 0.995, close.mean()
    assert np.all(view.labels == -1)


def test_long_and_short_reverberation_are_rendered():
    """The measured reverberation time (500 Hz-1 kHz, Schroeder, T20 x 3)
    of a hard, tall shifted room's response is over 1.5 s (the training
    rooms' 0.6 s responses cannot show it), and a damped room's under 0.3 s."""
    def rt60(scene) -> float:
        model = acoustics.RoomModel(scene, 16000, 3)
        src = np.array([1.0, 1.0, 1.5])
        mic = np.array([2.2, 2.6, 1.2])
        irs, _ = acoustics.impulse_responses(model, src, [acoustics.Receiver(mic, 0, mic)],
                                             mic[:, None], rays=1000,
                                             time_thres=scene.tail_seconds, seed=1)
        return acoustics.measured_rt60(irs[0], 16000)
    shaft = ((0.0, 0.0), (4.0, 0.0), (4.0, 3.5), (0.0, 3.5))
    hard = replace(_polygon_scene(shaft, (4.0, 3.5, 9.0), Pose2D(2, 2, 0)), tail_seconds=3.0)
    hard = replace(hard, materials={k: 'unpainted_concrete' for k in hard.materials})
    soft = replace(hard, size=(4.0, 3.5, 2.8), tail_seconds=0.6, materials={
        **{k: 'rockwool_50mm_80kgm3' for k in hard.materials},
        'floor': 'carpet_tufted_9.5mm', 'ceiling': 'ceiling_melamine_foam'})
    assert rt60(hard) > 1.5
    assert rt60(soft) < 0.3
