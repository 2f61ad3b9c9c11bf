"""The simulated world is physically right: echo arrival times follow the
geometry (and the depth image), interaural and inter-microphone time
differences follow the source direction, and bags are reproducible."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.signal import correlate, hilbert

from av_perception.sim.scene import Box, Pose2D, Source, generate_scene
from av_perception.robot import load_robot
from av_perception.sim.world import SceneSimulator

C = 343.0
ROBOT = load_robot()


def room(size=(9.0, 8.0, 4.0), boxes=(), sources=None, poses=(Pose2D(1.5, 4.0, 0.0),),
         materials='plasterboard'):
    """A hand-made room: hard walls, the robot at x=1.5 facing +x."""
    base = generate_scene(0)
    if sources is None:
        sx, sy = size[0] - 1.0, size[1] - 1.5
        sources = (Source('tone', 0, (sx, sy, 1.2), seed=3, active=True, level_db=-20.0),)
        boxes = tuple(boxes) + (Box((sx, sy, 0.25), (0.3, 0.3, 0.5), (0.1, 0.2, 0.9), 'grid',
                                    'hard_surface', 'tone'),)
        sources = (replace(sources[0], box=len(boxes) - 1),)
    mats = {k: materials for k in ('west', 'east', 'south', 'north')}
    mats.update(floor='concrete_floor', ceiling='plasterboard')
    return replace(base, size=size, boxes=tuple(boxes), sources=tuple(sources),
                   poses=tuple(poses), materials=mats, snr_db=30.0)


def arrivals(sim: SceneSimulator, echo: np.ndarray) -> tuple[np.ndarray, float]:
    """Matched-filter envelope of the (mean) echo channel, and the time [s]
    of the direct speaker -> microphone path."""
    mf = correlate(echo.mean(axis=0).astype(float), sim.chirp, mode='full')[len(sim.chirp) - 1:]
    env = np.abs(hilbert(mf))
    speaker = np.asarray(ROBOT.arrays['echo'].xyz)
    mic = speaker + sim.arrays['echo'].positions[0]
    return env, float(np.linalg.norm(mic - speaker)) / C


def first_echo_time(env: np.ndarray, fs: int, direct: float) -> float:
    """Time of the first strong arrival after the direct path [s]."""
    guard = int((direct + 0.0008) * fs)
    rest = env[guard:]
    thresh = 0.3 * rest.max()
    k = int(np.argmax(rest > thresh))
    while k + 1 < len(rest) and rest[k + 1] > rest[k]:  # climb to the peak
        k += 1
    return (guard + k) / fs


def specular_path(src, mic, plane_axis: int, plane_value: float) -> float:
    """Length of the path source -> plane -> mic via the image source."""
    img = np.array(src, float)
    img[plane_axis] = 2 * plane_value - img[plane_axis]
    return float(np.linalg.norm(img - np.asarray(mic, float)))


def test_first_echo_comes_from_the_nearest_surface_the_floor():
    """The floor (0.5 m below the echo head) is the nearest surface: the
    first arrival after the direct path is its specular echo, within 1 ms."""
    scene = room()
    with SceneSimulator(scene, ROBOT) as sim:
        echo = sim.echo(0)
        pose = scene.poses[0]
        speaker = sim.world_mics('echo', pose).mean(axis=1)  # speaker between the mics
        mics = sim.world_mics('echo', pose)
        env, direct = arrivals(sim, echo)
        t = first_echo_time(env, sim.echo_rate, direct)
    floor = np.mean([specular_path(speaker, mics[:, m], 2, 0.0) for m in range(2)]) / C
    others = [specular_path(speaker, mics[:, 0], 0, 0.0),
              specular_path(speaker, mics[:, 0], 1, 0.0),
              specular_path(speaker, mics[:, 0], 1, scene.size[1])]
    assert floor < min(others) / C  # the geometry makes the floor the nearest
    assert abs(t - floor) < 1e-3, (t, floor)


def test_echo_from_the_wall_ahead_arrives_when_the_depth_image_says():
    """Facing a wall, the depth image's centre pixel d predicts an echo at
    2 d / c: there is a distinct arrival within 1 ms of it."""
    scene = room(size=(4.5, 8.0, 4.0))
    with SceneSimulator(scene, ROBOT) as sim:
        slot = sim.slot(0)
    h, w = slot.depth.shape
    d = float(slot.depth[h // 2, w // 2])
    assert d == pytest.approx(4.5 - 1.5 - ROBOT.camera.xyz[0], abs=0.02)
    env, direct = arrivals(sim, slot.echo)
    fs = slot.echo_rate
    t_pred = 2 * d / C
    lo, hi = int((t_pred - 1e-3) * fs), int((t_pred + 1e-3) * fs)
    peak = lo + int(np.argmax(env[lo:hi]))
    assert abs(peak / fs - t_pred) < 1e-3
    # a real arrival, not the noise floor: far above the envelope's median
    assert env[peak] > 10 * np.median(env[int(0.005 * fs):])


@pytest.fixture(scope='module')
def left_source_slot():
    """Noise 2.6 m to the robot's left (azimuth +90 deg) in a furnished-office
    reverberation (absorbing wall panels), nothing else."""
    scene = room(sources=None, materials='panel_fabric_covered_6pcf')
    src_box = Box((1.5, 6.6, 0.25), (0.3, 0.3, 0.5), (0.1, 0.2, 0.9), 'grid', 'hard_surface',
                  'tone')
    scene = replace(scene, boxes=(src_box,),
                    sources=(Source('noise', 0, (1.5, 6.6, 0.6), 11, True, -20.0),))
    with SceneSimulator(scene, ROBOT) as sim:
        return sim, sim.slot(0)


def gcc_phat_lag(a: np.ndarray, b: np.ndarray, max_lag: int) -> int:
    """Lag (samples) by which b is delayed relative to a (GCC-PHAT)."""
    n = 2 * len(a)
    A, B = np.fft.rfft(a, n), np.fft.rfft(b, n)
    r = np.fft.irfft(np.conj(A) * B / (np.abs(np.conj(A) * B) + 1e-12), n)
    r = np.concatenate([r[-max_lag:], r[:max_lag + 1]])
    return int(np.argmax(r)) - max_lag


def test_binaural_itd_and_ild_have_the_sign_of_the_side(left_source_slot):
    sim, slot = left_source_slot
    left, right = slot.binaural.astype(float)
    lag = gcc_phat_lag(left, right, 20)
    assert lag > 0, 'the right ear must hear a left source later'
    itd = lag / slot.stream_rate
    assert 0.3e-3 < itd < 1.0e-3
    # head shadow: the level difference is in the high frequencies
    from scipy.signal import butter, sosfiltfilt
    sos = butter(4, [2000, 6000], 'bandpass', fs=slot.stream_rate, output='sos')
    hl, hr = sosfiltfilt(sos, left), sosfiltfilt(sos, right)
    ild = 10 * np.log10(np.mean(hl ** 2) / np.mean(hr ** 2))
    assert ild > 1.0, ild
    assert slot.directions['binaural'][0].azimuth == pytest.approx(math.pi / 2, abs=0.02)


def test_array_tdoas_match_the_ground_truth_direction(left_source_slot):
    """Pairwise delays across the 4-mic array (GCC-PHAT) point at the
    ground-truth azimuth: least-squares far-field direction within 10 deg."""
    sim, slot = left_source_slot
    pos = sim.arrays['array'].positions
    fs = slot.stream_rate
    x = slot.array.astype(float)
    rows, taus = [], []
    for i in range(4):
        for j in range(i + 1, 4):
            # upsample the correlation 8x for sub-sample delays
            n = 8 * 2 * x.shape[1]
            A, B = np.fft.rfft(x[i], 2 * x.shape[1]), np.fft.rfft(x[j], 2 * x.shape[1])
            cross = np.conj(A) * B
            r = np.fft.irfft(cross / (np.abs(cross) + 1e-12), n)
            max_lag = 8 * 4
            r = np.concatenate([r[-max_lag:], r[:max_lag + 1]])
            taus.append((int(np.argmax(r)) - max_lag) / (8 * fs))
            rows.append((pos[i] - pos[j])[:2] / C)  # tau_ij = (p_i - p_j) . u / c
    u, *_ = np.linalg.lstsq(np.asarray(rows), np.asarray(taus), rcond=None)
    az = math.atan2(u[1], u[0])
    truth = slot.directions['array'][0].azimuth
    err = abs((az - truth + math.pi) % (2 * math.pi) - math.pi)
    assert math.degrees(err) < 10, (math.degrees(az), math.degrees(truth))


def test_occupancy_ground_truth_marks_walls_boxes_and_free_space():
    box = Box((3.5, 4.0, 0.5), (0.6, 0.6, 1.0), (1, 0, 0), 'plain', 'wood_16mm')
    scene = room(size=(6.0, 5.0, 3.0), boxes=(box,),
                 poses=(Pose2D(3.5, 2.0, math.pi / 2),))
    from av_perception.sim.world import occupancy_grid
    occ = occupancy_grid(scene, scene.poses[0], size=10.0, resolution=0.1)

    def cell(bx, by):  # base-frame point -> grid value
        c = int((bx - occ.origin[0]) / occ.resolution)
        r = int((by - occ.origin[1]) / occ.resolution)
        return occ.data[r, c]
    assert cell(0.0, 0.0) == 0            # the robot stands in free space
    assert cell(2.0, 0.0) == 100          # box 2 m ahead (robot faces +y)
    assert cell(1.0, 0.0) == 0
    assert cell(0.0, -2.45) == 100        # wall at x = 6: 2.5 m to the robot's right
    assert cell(0.0, 4.0) == -1           # outside the room: unknown


def test_cardioid_echo_head_hears_the_wall_behind_it_much_less():
    """With the robot 1.5 m from the wall behind it and 4.5 m from the wall
    ahead, the omnidirectional head hears the rear wall louder than the
    front one (it is nearer); the cardioid head (the default robot's)
    attenuates it by more than 5x relative to the front wall."""
    ratios = {}
    for name in ('robots/sim_omni_echo.yaml', 'robots/sim.yaml'):
        robot = load_robot(name)
        scene = room(size=(6.0, 8.0, 4.0))
        with SceneSimulator(scene, robot) as sim:
            env, _ = arrivals(sim, sim.echo(0))
            fs = sim.echo_rate
        x = robot.arrays['echo'].xyz[0]

        def peak(d):
            t = 2 * d / C
            return env[int((t - 1e-3) * fs):int((t + 1e-3) * fs)].max()

        ratios[name] = peak(1.5 + x) / peak(6.0 - 1.5 - x)
    omni, cardioid = ratios['robots/sim_omni_echo.yaml'], ratios['robots/sim.yaml']
    assert omni > 1.0, ratios
    assert cardioid < omni / 5.0, ratios


def test_a_robot_file_with_a_base_changes_only_what_it_gives(tmp_path):
    """robots/sim_omni_echo.yaml names robots/sim.yaml as its base and swaps
    the echo head only; a base chain that loops is a one-line ConfigError."""
    from av_perception.errors import ConfigError
    base, omni = load_robot('robots/sim.yaml'), load_robot('robots/sim_omni_echo.yaml')
    assert base.arrays['echo'].geometry == 'echo_head_cardioid'
    assert omni.arrays['echo'].geometry == 'echo_head'
    assert omni.arrays['echo'].xyz == base.arrays['echo'].xyz
    assert omni.camera == base.camera and omni.chirp == base.chirp
    assert {r: a for r, a in omni.arrays.items() if r != 'echo'} == \
        {r: a for r, a in base.arrays.items() if r != 'echo'}
    loop = tmp_path / 'loop.yaml'
    loop.write_text(f'base: {loop}\n')
    with pytest.raises(ConfigError) as exc:
        load_robot(loop)
    assert 'loops' in str(exc.value) and '\n' not in str(exc.value)
