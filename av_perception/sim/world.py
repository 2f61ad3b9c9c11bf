"""Everything the robot senses in one scene, slot after slot, from one scene
description: camera image and depth, the echo of its chirp, the microphone
array and binaural streams, and the ground truth to score them.

Time is cut into slots of ``slot_seconds``; in slot k the robot stands at
``scene.poses[k]``. At the start of each slot the camera takes a frame and
the speaker emits a chirp (the echo chunk's first sample is the emission
instant, same stamp as the frame); the array and binaural streams are
continuous, each slot's audio being what the microphones hear at that pose
of sources that have been playing all along (their signals are continuous in
time, reverberation included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.fft
from scipy.signal import fftconvolve

from av_perception.arrays import ArrayGeometry, load_array
from av_perception.sim import acoustics
from av_perception.sim.scene import (Pose2D, Scene, base_to_world, direction_in_frame,
                                     plan_contains, plan_distance)
from av_perception.robot import RobotSpec, load_robot

#: Sim time of the first slot [ns] (a fixed epoch keeps bags reproducible).
T0_NS = 1_700_000_000 * 1_000_000_000
EMIT_GAIN = 0.05          # chirp amplitude at the speaker (1/r convention of pyroomacoustics)
ECHO_NOISE_DBFS = -70.0   # self-noise of the echo microphones
STREAM_RATE = 16000       # Hz, array and binaural streams
ECHO_RAYS = 2000          # ray-tracing rays of an echo
#: Slots whose source impulse responses are rendered together (one image-source
#: run and one ray tracing per source for the batch's poses).
BATCH_SLOTS = 8


@dataclass
class Direction:
    """Ground-truth direction of a sounding source seen from an array frame."""

    cls: str
    azimuth: float      # rad, CCW from +x of the array frame
    elevation: float    # rad
    distance: float     # m


@dataclass
class Occupancy:
    """A local occupancy grid in the base frame.

    Attributes:
        data: (rows, cols) int8: 0 free, 100 occupied, -1 unknown; row = y.
        resolution: metres per cell.
        origin: (x, y) of cell (0, 0)'s corner in the base frame [m].
    """

    data: np.ndarray
    resolution: float
    origin: tuple[float, float]


@dataclass
class Slot:
    """What the robot senses (and the truth about it) in one slot."""

    index: int
    stamp_ns: int
    pose: Pose2D
    rgb: np.ndarray                 # (H, W, 3) uint8
    depth: np.ndarray               # (H, W) float32, metres along optical z
    labels: np.ndarray              # (H, W) int32, box index or -1
    source_mask: np.ndarray         # (H, W) uint8, 255 on sounding objects
    echo: np.ndarray                # (2, N) float32, sample 0 = emission
    echo_rate: int
    array: np.ndarray               # (4, n) float32
    binaural: np.ndarray            # (2, n) float32
    stream_rate: int
    first_sample: int               # of array and binaural in this slot
    teacher: np.ndarray | None = None  # (16, n) float32, the virtual teacher array
    directions: dict = field(default_factory=dict)   # role -> [Direction]
    occupancy: Occupancy | None = None


def convolve_window(x: np.ndarray, irs: list[np.ndarray], start: int, length: int
                    ) -> np.ndarray:
    """(len(irs), length) samples [start, start + length) of the linear
    convolution of ``x`` with each impulse response (zeros past its end).

    One FFT of ``x`` serves every response, and the FFT is only as long as
    that window needs (a circular convolution whose wrap-around misses the
    window), instead of the full convolution's length: about half, for a
    slot after a pre-roll as long as the responses."""
    k = max(len(h) for h in irs)
    size = scipy.fft.next_fast_len(max(len(x) + k - 1 - start, start + length, len(x)),
                                   real=True)
    spec = scipy.fft.rfft(x, size)
    out = np.zeros((len(irs), length))
    for m, h in enumerate(irs):
        y = scipy.fft.irfft(spec * scipy.fft.rfft(h, size), size)[start:start + length]
        out[m, :len(y)] = y
    return out


def interpolate(a: Pose2D, b: Pose2D, f: float) -> Pose2D:
    """Pose a fraction ``f`` in [0, 1] of the way from a to b (shortest turn)."""
    dyaw = (b.yaw - a.yaw + math.pi) % (2 * math.pi) - math.pi
    yaw = (a.yaw + f * dyaw + math.pi) % (2 * math.pi) - math.pi
    return Pose2D(a.x + f * (b.x - a.x), a.y + f * (b.y - a.y), yaw)


def occupancy_grid(scene: Scene, pose: Pose2D, size: float = 10.0,
                   resolution: float = 0.1, z_range=(0.05, 2.0)) -> Occupancy:
    """Ground-truth occupancy around the robot, in its base frame: walls (the
    cells within one cell of the floor plan's boundary) and every box
    reaching into ``z_range`` [m] are occupied, the rest of the room free,
    outside the floor plan unknown."""
    n = int(round(size / resolution))
    origin = (-size / 2.0, -size / 2.0)
    centres = origin[0] + (np.arange(n) + 0.5) * resolution
    bx, by = np.meshgrid(centres, centres)  # rows = y, cols = x
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    wx = pose.x + c * bx - s * by
    wy = pose.y + s * bx + c * by
    plan = scene.plan
    inside = plan_contains(plan, wx, wy)
    data = np.full((n, n), -1, np.int8)
    data[inside] = 0
    half = resolution / 2.0
    r = resolution  # the cells along the room's boundary are the walls
    wall = inside & (plan_distance(plan, wx, wy) < r)
    data[wall] = 100
    for b in scene.boxes:
        if b.hi[2] < z_range[0] or b.lo[2] > z_range[1]:
            continue
        hit = ((wx >= b.lo[0] - half) & (wx <= b.hi[0] + half) & (wy >= b.lo[1] - half)
               & (wy <= b.hi[1] + half))
        data[hit & inside] = 100
    return Occupancy(data=data, resolution=resolution, origin=origin)


class SceneSimulator:
    """Renders the slots of one scene (images with pybullet, sound with
    pyroomacoustics). Build once per scene; ``slot(k)`` for each pose.

    Args:
        scene: the scene description.
        robot: the robot description (default: config/robots/sim.yaml).
        slot_seconds: length of a slot [s].
        rays: ray-tracing rays for the source renderings (the echoes use
            :data:`ECHO_RAYS`).
        max_order: image-source order.
        tail_seconds: length of the sources' impulse responses (ray tracing
            and pre-roll) [s]; None: the scene's (``Scene.tail_seconds``).
        teacher: also render the 16-mic virtual teacher array (``Slot.teacher``).
        mic_offsets: role -> (M, 3) errors of the microphones' positions in
            the array frame [m]: the room is rendered at the displaced
            microphones, the geometry (``arrays``) stays nominal
            (``sim.randomize``; None: none).
    """

    def __init__(self, scene: Scene, robot: RobotSpec | None = None, slot_seconds: float = 0.5,
                 rays: int = 1000, max_order: int = 3, tail_seconds: float | None = None,
                 teacher: bool = False, mic_offsets: dict | None = None) -> None:
        from av_perception.sim.hrtf import get_hrtf
        from av_perception.sim.render import SceneRenderer
        from av_perception.audio.chirp import chirp

        self.scene = scene
        self.robot = robot or load_robot()
        self.slot_seconds = slot_seconds
        self.rays = rays
        self.max_order = max_order
        self.teacher = teacher and 'teacher' in self.robot.arrays
        self.arrays: dict[str, ArrayGeometry] = {
            role: load_array(m.geometry) for role, m in self.robot.arrays.items()
            if role != 'teacher' or self.teacher}
        self.mic_offsets = {r: np.asarray(v, float) for r, v in (mic_offsets or {}).items()}
        self.echo_rate = self.arrays['echo'].sample_rate
        self.stream_rate = self.arrays['array'].sample_rate
        if self.arrays['binaural'].sample_rate != self.stream_rate:
            raise ValueError('array and binaural streams must share a sample rate')
        self.slot_len = int(round(slot_seconds * self.stream_rate))
        if tail_seconds is None:
            tail_seconds = scene.tail_seconds
        self.tail_len = int(round(tail_seconds * self.stream_rate))
        self.tail_seconds = tail_seconds
        ch = self.robot.chirp
        self.chirp = chirp(ch.f0, ch.f1, ch.duration, self.echo_rate)
        self.echo_len = self.robot.echo_window(self.echo_rate)
        self.hrtf = get_hrtf(self.stream_rate)
        self.renderer = SceneRenderer(scene, self.robot)
        self._signals: dict[int, np.ndarray] = {}
        self._active: dict[int, np.ndarray] = {}
        self._rooms: dict[int, acoustics.RoomModel] = {}
        self._rirs: dict[tuple[int, int], list] = {}

    def close(self) -> None:
        self.renderer.close()

    def __enter__(self) -> SceneSimulator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------- pieces
    def world_mics(self, role: str, pose: Pose2D) -> np.ndarray:
        """World positions (3, M) of an array's microphones at a pose (with
        their position errors, ``mic_offsets``, if any)."""
        positions = self.arrays[role].positions
        if role in self.mic_offsets:
            positions = positions + self.mic_offsets[role]
        return acoustics.mic_positions(pose, self.robot.arrays[role].xyz, positions)

    def source_signal(self, i: int) -> np.ndarray:
        """Source i's signal over the whole scene, preceded by a tail-long
        pre-roll (it has been playing before the first slot)."""
        if i not in self._signals:
            from av_perception.sim.signals import RMS_TARGET, db_to_gain, render_source
            src = self.scene.sources[i]
            total = (self.tail_len + self.slot_len * len(self.scene.poses)) / self.stream_rate
            rendered = render_source(src.cls, src.seed, total, self.stream_rate)
            # signals come at RMS_TARGET while sounding: scale to level_db (at 1 m)
            self._signals[i] = (rendered.samples.astype(np.float64)
                                * (db_to_gain(src.level_db) / RMS_TARGET))
            self._active[i] = rendered.active
        return self._signals[i]

    def sounding(self, i: int, k: int, start: int, length: int) -> bool:
        """True if source i sounds (dry signal active) for at least half of
        the stream samples [start, start + length) of slot k."""
        self.source_signal(i)
        a = self._active[i][self.tail_len + k * self.slot_len + start:][:length]
        return bool(a.size and a.mean() >= 0.5)

    def room(self, fs: int) -> acoustics.RoomModel:
        """The scene's room model at sample rate ``fs`` (built once)."""
        if fs not in self._rooms:
            self._rooms[fs] = acoustics.RoomModel(self.scene, fs, self.max_order)
        return self._rooms[fs]

    def echo(self, k: int) -> np.ndarray:
        """(2, N) echo recording of slot k, sample 0 = emission instant."""
        pose = self.scene.poses[k]
        speaker = base_to_world(pose, np.asarray(self.robot.arrays['echo'].xyz)
                                + (self.arrays['echo'].speaker
                                   if self.arrays['echo'].speaker is not None else 0.0))
        mics, seed = self.world_mics('echo', pose), self.scene.seed + 7919 * k
        # the microphones' pattern applies to the direct path and the image
        # sources; the ray-traced tail (one point between the microphones) is
        # omnidirectional, as the binaural head's is
        dirs = acoustics.mic_directivities(self.arrays['echo'], pose.yaw) or [None] * mics.shape[1]
        receivers = [acoustics.Receiver(early=mics[:, m], tail=0, at=mics[:, m], directivity=d)
                     for m, d in enumerate(dirs)]
        irs, lag = acoustics.impulse_responses(
            self.room(self.echo_rate), speaker, receivers, mics.mean(axis=1, keepdims=True),
            rays=ECHO_RAYS, time_thres=self.echo_len / self.echo_rate + 0.01, seed=seed)
        out = np.zeros((len(irs), self.echo_len))
        for m, h in enumerate(irs):
            y = fftconvolve(self.chirp * EMIT_GAIN, h)[lag:lag + self.echo_len]
            out[m, :len(y)] = y
        rng = np.random.default_rng([self.scene.seed, k, 1])
        out += rng.normal(0.0, 10 ** (ECHO_NOISE_DBFS / 20), out.shape)
        return out.astype(np.float32)

    def streams(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(array (4, n), binaural (2, n), teacher (16, n) or None) of slot k."""
        n_student = self.arrays['array'].channels
        n_arr = n_student + (self.arrays['teacher'].channels if self.teacher else 0)
        array = np.zeros((n_arr, self.slot_len))
        binaural = np.zeros((2, self.slot_len))
        start = k * self.slot_len
        for i, src in enumerate(self.scene.sources):
            if not src.active:
                continue
            irs_arr, irs_bin = self._source_rirs(i, k)
            seg = self.source_signal(i)[start:start + self.tail_len + self.slot_len]
            y = convolve_window(seg, irs_arr + irs_bin, self.tail_len, self.slot_len)
            array += y[:len(irs_arr)]
            binaural += y[len(irs_arr):]
        teacher = None
        if self.teacher:
            array, teacher = array[:n_student], array[n_student:]
        rng = np.random.default_rng([self.scene.seed, k, 2])
        for sig in (array, binaural):
            power = float(np.mean(sig ** 2))
            sig += rng.normal(0.0, math.sqrt(power / 10 ** (self.scene.snr_db / 10)) + 1e-7,
                              sig.shape)
        if teacher is not None:  # the same microphone self-noise as the student's
            noise = math.sqrt(float(np.mean(array ** 2)) / 10 ** (self.scene.snr_db / 10))
            teacher += np.random.default_rng([self.scene.seed, k, 3]).normal(
                0.0, noise, teacher.shape)
            teacher = teacher.astype(np.float32)
        return array.astype(np.float32), binaural.astype(np.float32), teacher

    def _source_rirs(self, i: int, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Impulse responses (delay-compensated) from source i to the array
        microphones (the teacher's after the student's) and to the two ears
        in slot k.

        They are rendered for a batch of :data:`BATCH_SLOTS` slots at once
        (one image-source run and one ray tracing per source and batch; the
        ray tracing's receivers are the array's and the head's centres at
        each pose of the batch, merged where they are closer than
        ``acoustics.TAIL_MERGE``). The binaural response is the image sources
        at the head centre through the HRIRs (direct path and early
        reflections, with the interaural cues) plus the ray-traced late part
        at each ear, omnidirectional.
        """
        batch = k // BATCH_SLOTS
        key = (i, batch)
        if key not in self._rirs:
            self._rirs = {kk: v for kk, v in self._rirs.items() if kk[1] == batch}
            self._rirs[key] = self._render_batch(i, batch)
        return self._rirs[key][k - batch * BATCH_SLOTS]

    def _render_batch(self, i: int, batch: int) -> list[tuple[list, list]]:
        slots = range(batch * BATCH_SLOTS, min(len(self.scene.poses), (batch + 1) * BATCH_SLOTS))
        receivers, layout = [], []
        points = acoustics.TailPoints()
        for k in slots:
            pose = self.scene.poses[k]
            mics = self.world_mics('array', pose)
            if self.teacher:  # same room run: the teacher hears exactly the same scene
                mics = np.hstack([mics, self.world_mics('teacher', pose)])
            head = base_to_world(pose, self.robot.arrays['binaural'].xyz)
            ears = self.world_mics('binaural', pose)
            g_arr = points.index(base_to_world(pose, self.robot.arrays['array'].xyz))
            g_head = points.index(head)
            receivers += [acoustics.Receiver(early=mics[:, m], tail=g_arr, at=mics[:, m])
                          for m in range(mics.shape[1])]
            receivers += [acoustics.Receiver(early=head, tail=g_head, at=ears[:, e],
                                             directivity=acoustics.HrtfDirectivity(
                                                 self.hrtf, e, pose.yaw))
                          for e in (0, 1)]
            layout.append(mics.shape[1])
        irs, lag = acoustics.impulse_responses(
            self.room(self.stream_rate), self.scene.sources[i].position, receivers,
            points.array, rays=self.rays, time_thres=self.tail_seconds,
            seed=self.scene.seed + 104729 * batch + i)
        out, j = [], 0
        for n_mics in layout:
            out.append(([h[lag:] for h in irs[j:j + n_mics]],
                        [h[lag:] for h in irs[j + n_mics:j + n_mics + 2]]))
            j += n_mics + 2
        return out

    def directions(self, pose: Pose2D) -> dict[str, list[Direction]]:
        """Ground-truth direction of each sounding source from each array."""
        out = {}
        for role in ('array', 'binaural'):
            xyz = self.robot.arrays[role].xyz
            out[role] = [Direction(s.cls, *direction_in_frame(pose, xyz, s.position))
                         for s in self.scene.active_sources]
        return out

    # --------------------------------------------------------------- slot
    def frame(self, pose: Pose2D):
        """Camera view at any pose, and the mask (255) of the sounding objects."""
        view = self.renderer.render(pose)
        mask = np.zeros(view.labels.shape, np.uint8)
        for s in self.scene.active_sources:
            mask[view.labels == s.box] = 255
        return view, mask

    def slot(self, k: int, audio: bool = True, streams: bool = True) -> Slot:
        """Render slot k (``audio=False``: images and ground truth only;
        ``streams=False``: no array and binaural streams (zeros), the echo is
        rendered -- several times faster, for echo-depth data)."""
        pose = self.scene.poses[k]
        view, mask = self.frame(pose)
        teacher = None
        echo = self.echo(k) if audio else np.zeros((2, self.echo_len), np.float32)
        if audio and streams:
            array, binaural, teacher = self.streams(k)
        else:
            array = np.zeros((self.arrays['array'].channels, self.slot_len), np.float32)
            binaural = np.zeros((2, self.slot_len), np.float32)
        return Slot(index=k, stamp_ns=T0_NS + int(round(k * self.slot_seconds * 1e9)),
                    pose=pose, rgb=view.rgb, depth=view.depth, labels=view.labels,
                    source_mask=mask, echo=echo, echo_rate=self.echo_rate, array=array,
                    binaural=binaural, stream_rate=self.stream_rate,
                    first_sample=k * self.slot_len, teacher=teacher,
                    directions=self.directions(pose),
                    occupancy=occupancy_grid(self.scene, pose))
