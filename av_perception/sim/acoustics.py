"""Room acoustics of a scene with pyroomacoustics: image sources (specular
early reflections, including off the furniture) plus ray tracing (diffuse
scattering and the late tail), frequency-dependent absorption per surface.

Three renderings come from one room model (:class:`RoomModel`, built once
per scene and sample rate):

- echoes: the robot's speaker emits the chirp; the echo head's two
  microphones record the direct path and the room's answer (with the
  microphones' pick-up pattern, if the head's file gives one, on the direct
  path and the image sources; the late tail is omnidirectional);
- the microphone array: each sounding source at each microphone;
- the binaural head: the image sources heard at the head centre through the
  KU100 HRIR of each one's direction of arrival (pyroomacoustics'
  impulse-response directivities); HRIRs carry the interaural delay, so they
  are applied at the head centre, not at the ears. The late tail from ray
  tracing is omnidirectional, at each ear.

:func:`impulse_responses` renders them as pyroomacoustics' hybrid simulation
does, from its own functions (image sources, ray tracing, tail synthesis),
but runs the image sources once for every receiver and the ray tracing once
per source for a whole batch of receivers, to one point per microphone group
(the ray tracing's cost grows with its receivers, and microphones a few
centimetres apart share their late energy envelope).

Everything is pyroomacoustics (room model, image sources, ray tracing,
directivities); written here is only the HRTF-as-directivity adapter, the
room assembly from a scene, the box faces' orientation and the split of the
hybrid simulation into its two parts (and, in
:mod:`av_perception.sim.fast_tail` and :mod:`av_perception.sim.fast_bands`,
vectorised or closed-form copies of its tail synthesis loops and octave
filter bank).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyroomacoustics as pra
from pyroomacoustics.directivities import CardioidFamily, Directivity, DirectionVector
from pyroomacoustics.room import wall_factory
from pyroomacoustics.simulation import compute_ism_rir, compute_rt_rir
from pyroomacoustics.utilities import design_highpass_filter_sos
from scipy.signal import sosfiltfilt

from av_perception.arrays import DIRECTIVITIES
from av_perception.sim import fast_tail
from av_perception.sim.fast_bands import OctaveBands
from av_perception.sim.scene import Pose2D, Scene, base_to_world, segment_hits_box

# the ray-traced tail's two Python loops, vectorised (same draws, same result)
fast_tail.install()

#: Absorption above this is clipped: the database extrapolates some top bands
#: to 1.0, which would make, e.g., a carpet reflect nothing at all.
MAX_ABSORPTION = 0.9
SCATTERING = 0.15
#: Obstacles are lifted off the floor so their bottom face does not coincide
#: with the floor plane.
LIFT = 0.001
#: Radius of the ray tracing's receiver spheres [m].
RECEIVER_RADIUS = 0.25
#: Microphone groups whose centres are closer than this share one ray-tracing
#: receiver [m] (well inside its sphere; e.g. the array and the head, 5 cm
#: apart, and every pose where the robot only turned).
TAIL_MERGE = 0.1


def material(name: str, bands) -> tuple[np.ndarray, np.ndarray]:
    """(absorption, scattering) per octave band of a database material."""
    m = pra.Material(energy_absorption=name, scattering=SCATTERING)
    m.resample(bands)
    return (np.clip(np.asarray(m.absorption_coeffs, float), 0.01, MAX_ABSORPTION),
            np.asarray(m.scattering_coeffs, float))


def _box_faces(lo, hi) -> list[np.ndarray]:
    """The six faces of a box, corners ordered so that each face's normal
    points INTO the box, i.e. away from the air, as pyroomacoustics expects of
    every wall (a room's walls point outwards, away from the air too). With
    the opposite order the faces are silently ignored by the image sources."""
    x0, y0, z0 = lo
    x1, y1, z1 = hi
    outward = [
        [(x0, y0, z0), (x0, y0, z1), (x0, y1, z1), (x0, y1, z0)],
        [(x1, y0, z0), (x1, y1, z0), (x1, y1, z1), (x1, y0, z1)],
        [(x0, y0, z0), (x1, y0, z0), (x1, y0, z1), (x0, y0, z1)],
        [(x0, y1, z0), (x0, y1, z1), (x1, y1, z1), (x1, y1, z0)],
        [(x0, y0, z0), (x0, y1, z0), (x1, y1, z0), (x1, y0, z0)],
        [(x0, y0, z1), (x1, y0, z1), (x1, y1, z1), (x0, y1, z1)],
    ]
    return [np.asarray(f, float).T[:, ::-1] for f in outward]


class _Room(pra.Room):
    """A pyroomacoustics room whose walls off the convex hull are given (they
    depend on the walls only, so a scene computes them once, with
    :func:`non_convex_walls`, instead of once per room run: pyroomacoustics'
    ``find_non_convex_walls`` is a Python double loop, profiled at a sixth of
    a sample)."""

    def __init__(self, walls, obstructing: list[int], **kwargs) -> None:
        self._obstructing = list(obstructing)
        super().__init__(walls, **kwargs)

    def _init_room_engine(self, *args):
        super()._init_room_engine(*(args or (self.walls, self._obstructing)))


def non_convex_walls(walls) -> list[int]:
    """Indices of the walls whose centre lies on no face of the convex hull
    of the walls' corners: pyroomacoustics' ``find_non_convex_walls``
    (same hull, same coplanarity test and tolerance, same result) with its
    double Python loop over walls and hull faces vectorised (it was most of
    the time to build a furnished room)."""
    from pyroomacoustics.parameters import eps
    from scipy.spatial import ConvexHull

    corners = np.concatenate([w.corners.T for w in walls[1:]], axis=0)
    hull = ConvexHull(corners, incremental=True)
    p0, p1, p2 = (hull.points[hull.simplices[:, k]] for k in range(3))
    normal = np.cross(p1 - p0, p2 - p0)                               # (faces, 3)
    centre = np.array([np.mean(w.corners, axis=1) for w in walls])    # (walls, 3)
    d = centre[:, None, :] - p0[None, :, :]                            # (walls, faces, 3)
    dist = normal[None, :, 0] * d[..., 0] + normal[None, :, 1] * d[..., 1] \
        + normal[None, :, 2] * d[..., 2]
    on_hull = (np.abs(dist) < eps).any(axis=1)
    return [i for i in range(len(walls)) if not on_hull[i]]


class RoomModel:
    """A scene's room at one sample rate, built once per scene: the walls
    (floor plan extruded to the ceiling, materials resampled to the octave
    bands and clipped), the furniture as closed boxes, which walls are off the
    convex hull, and the enclosed volume. :meth:`room` makes pyroomacoustics
    rooms of it, each ready for one source and its receivers.

    Args:
        scene: the scene (world frame, metres).
        fs: sample rate [Hz].
        max_order: image-source order.
    """

    def __init__(self, scene: Scene, fs: int, max_order: int) -> None:
        self.fs = int(fs)
        self.max_order = int(max_order)
        base = pra.Room.from_corners(scene.plan.T, fs=fs, max_order=max_order)
        self.bands = OctaveBands(fs=fs, n_fft=base.octave_bands.n_fft,
                                 base_frequency=base.octave_bands.base_freq,
                                 slope=base.octave_bands.slope)
        # from_corners makes a wall from each corner to the next (the plan is
        # counter-clockwise, as it wants), extrude adds the floor and ceiling
        names = [name for name, _, _ in scene.walls] + ['floor', 'ceiling']
        mats = {k: pra.Material(energy_absorption=scene.materials[k], scattering=SCATTERING)
                for k in ('floor', 'ceiling')}
        base.extrude(scene.size[2], materials=mats)
        walls = []
        for name, w in zip(names, base.walls):
            absorption, scattering = material(scene.materials[name], self.bands)
            walls.append(wall_factory(w.corners, absorption, scattering, name))
        for k, box in enumerate(scene.boxes):
            if box.label != 'furniture':
                # The sound-making objects (0.25-0.45 m) are small against the
                # wavelengths of speech and noise, around which sound diffracts;
                # as rigid closed boxes (pyroomacoustics has no diffraction) they
                # would shadow their own source for every microphone below their top.
                continue
            lo, hi = box.lo.copy(), box.hi.copy()
            lo[2] = max(lo[2], LIFT)
            absorption, scattering = material(box.material, self.bands)
            for j, face in enumerate(_box_faces(lo, hi)):
                walls.append(wall_factory(face, absorption, scattering, f'box{k}_{j}'))
        self.walls = walls
        self.obstructing = non_convex_walls(walls)
        self.volume = self.room(0, 0.0).get_volume()

    def room(self, rays: int, time_thres: float, receiver_radius: float = RECEIVER_RADIUS
             ) -> pra.Room:
        """A fresh pyroomacoustics room of this model (with air absorption).
        Image sources are computed as in a hybrid simulation (their energy
        reduced by what the walls scatter, which the ray tracing carries), so
        the two parts of :func:`impulse_responses` add up as pyroomacoustics'
        own hybrid responses do; ``rays`` > 0 also sets up ray tracing to
        ``time_thres`` [s] with receivers of ``receiver_radius`` [m]."""
        room = _Room(self.walls, self.obstructing, fs=self.fs, max_order=self.max_order,
                     ray_tracing=True, air_absorption=True)
        room.octave_bands = self.bands
        if rays > 0:
            room.set_ray_tracing(n_rays=rays, receiver_radius=receiver_radius,
                                 time_thres=time_thres)
        return room


@dataclass(frozen=True)
class Receiver:
    """One impulse response to render (see :func:`impulse_responses`).

    Attributes:
        early: where the image sources (direct path and specular reflections
            up to the model's order) are heard, world frame [m]; None: no
            early part.
        tail: index of the ray-tracing point whose energy histogram shapes
            the late, omnidirectional part; None: no late part.
        at: the receiver's own position, world frame [m]: the late part
            starts at the direct path's arrival there.
        directivity: pyroomacoustics directivity of the early part (None:
            omnidirectional).
    """

    early: np.ndarray | None
    tail: int | None
    at: np.ndarray
    directivity: object = None


class TailPoints:
    """The ray tracing's receivers of one run: a point per group of
    microphones, merged with an earlier point closer than
    :data:`TAIL_MERGE` (the ray tracing's cost grows with its receivers;
    points that close have the same late envelope)."""

    def __init__(self) -> None:
        self._points: list[np.ndarray] = []

    def index(self, point) -> int:
        """Index of the receiver for a group centred at ``point`` (world frame [m])."""
        point = np.asarray(point, float)
        for i, q in enumerate(self._points):
            if np.linalg.norm(q - point) < TAIL_MERGE:
                return i
        self._points.append(point)
        return len(self._points) - 1

    @property
    def array(self) -> np.ndarray:
        """(3, P) receiver positions."""
        return np.asarray(self._points, float).T


def impulse_responses(model: RoomModel, source, receivers: list[Receiver],
                      tail_points: np.ndarray | None, rays: int, time_thres: float,
                      seed: int) -> tuple[list[np.ndarray], int]:
    """Impulse responses from ``source`` (world frame [m]) to each receiver,
    as pyroomacoustics' hybrid simulation makes them (image sources + ray
    tracing, frequency-dependent absorption, air absorption, its 10 Hz
    high-pass), and the number of samples by which they are delayed (its
    fractional-delay filter is centred).

    One image-source run serves every receiver's early part, and one ray
    tracing from the source serves every late part: its receivers are the
    ``tail_points`` (3, P), one per group of microphones a few centimetres
    apart (an array, a head, over all the poses of a batch of slots), whose
    late energy envelopes differ by far less than the ray tracing's own
    Monte-Carlo noise. Each receiver's late part is still its own random
    impulse train, so no two are coherent (as before). Deterministic in
    ``seed``.
    """
    pra.random.seed(seed % (2**31))  # seeds both its numpy and its C++ generators
    source = np.asarray(source, float)
    fdl = pra.constants.get('frac_delay_length')
    early_at = [r.early for r in receivers if r.early is not None]
    if early_at:
        ism = model.room(0, 0.0)
        ism.add_source(source)
        ism.add_microphone_array(pra.MicrophoneArray(np.asarray(early_at, float).T, model.fs))
        ism.image_source_model()
        src = ism.sources[0]
    rt = None
    if any(r.tail is not None for r in receivers):
        rt = model.room(rays, time_thres)
        rt.add_source(source)
        rt.add_microphone_array(pra.MicrophoneArray(np.asarray(tail_points, float), model.fs))
        rt.ray_tracing()
    room = rt if rt is not None else ism
    hpf = None
    if pra.constants.get('rir_hpf_enable'):
        hpf = design_highpass_filter_sos(model.fs, pra.constants.get('rir_hpf_fc'),
                                         **pra.constants.get('rir_hpf_kwargs'))
    out = []
    m = 0
    for r in receivers:
        parts = []
        if r.early is not None:
            # Furniture can block the direct path and every reflection up to
            # the model's order; such a receiver hears only the late part
            # (pyroomacoustics' compute_ism_rir fails on no visible source).
            if ism.visibility[0][m, :].any():
                parts.append(compute_ism_rir(src, np.asarray(r.early, float), r.directivity,
                                             src.directions[m, :, :], ism.visibility[0][m, :],
                                             fdl, room.c, model.fs, model.bands,
                                             min_phase=False, air_abs_coeffs=room.air_absorption))
            m += 1
        if r.tail is not None:
            t0 = float(np.linalg.norm(source - np.asarray(r.at, float))) / rt.c
            parts.append(compute_rt_rir(t0, rt.rt_histograms[r.tail][0],
                                        rt.rt_directional_responses[r.tail],
                                        rt.rt_args['hist_bin_size'],
                                        rt.rt_args['hist_bin_size_samples'], model.volume, fdl,
                                        rt.c, model.fs, model.bands,
                                        air_abs_coeffs=rt.air_absorption))
        h = np.zeros(max((len(p) for p in parts), default=fdl))
        for p in parts:
            h[:len(p)] += p
        if hpf is not None:
            h = np.ascontiguousarray(sosfiltfilt(hpf, h))
        out.append(h)
    return out, fdl // 2


class HrtfDirectivity(Directivity):
    """One ear of a binaural head as a pyroomacoustics directivity: the HRIR
    of the direction of arrival, in a head turned by ``yaw`` [rad] about +z.

    pyroomacoustics gives directions of arrival in the room frame (azimuth CCW
    from +x, colatitude from +z); the head frame is the room frame turned by
    the robot's yaw (REP 103: azimuth +pi/2 is the head's left).
    """

    def __init__(self, hrtf, ear: int, yaw: float) -> None:
        self.hrtf = hrtf
        self.ear = ear
        self.yaw = yaw
        # Diffuse-field normalisation: unit energy averaged over all measured
        # directions and both ears, so the HRTF-filtered early sound and the
        # omnidirectional late tail keep their physical balance.
        self.gain = 1.0 / float(np.sqrt(np.mean(np.sum(hrtf.irs.astype(np.float64) ** 2,
                                                       axis=-1))))

    @property
    def is_impulse_response(self) -> bool:
        return True

    @property
    def filter_len_ir(self) -> int:
        return int(self.hrtf.taps)

    def sample_rays(self, n_rays, rng=None):
        """Only used for directive sources; an ear is a receiver. Uniform."""
        rng = rng or np.random.default_rng(0)
        v = rng.normal(size=(n_rays, 3))
        return v / np.linalg.norm(v, axis=1, keepdims=True), np.ones((n_rays, 1))

    def get_response(self, azimuth, colatitude=None, magnitude=False, degrees=True):
        az = np.atleast_1d(np.radians(azimuth) if degrees else np.asarray(azimuth, float))
        if colatitude is None:
            col = np.full_like(az, np.pi / 2)
        else:
            col = np.atleast_1d(np.radians(colatitude) if degrees else
                                np.asarray(colatitude, float))
        idx = self.hrtf.index(az - self.yaw, np.pi / 2 - col)
        return self.hrtf.irs[np.atleast_1d(idx), self.ear].astype(np.float64) * self.gain


def mic_positions(pose: Pose2D, mount_xyz, geometry_positions: np.ndarray) -> np.ndarray:
    """World positions (3, M) of an array's microphones at a robot pose
    (array axes parallel to the base frame)."""
    pts = [base_to_world(pose, np.asarray(mount_xyz) + p) for p in geometry_positions]
    return np.asarray(pts).T


def mic_directivities(geometry, yaw: float) -> list | None:
    """pyroomacoustics directivities of an array's microphones (the
    first-order pattern of ``geometry.directivity``, each turned to its
    ``facing`` plus the robot's ``yaw`` [rad]), or None for omni."""
    if geometry.directivity == 'omni':
        return None
    p = DIRECTIVITIES[geometry.directivity]
    return [CardioidFamily(DirectionVector(azimuth=float(np.degrees(yaw + az)),
                                           colatitude=float(90.0 - np.degrees(el)),
                                           degrees=True), p=p)
            for az, el in geometry.facing]


def rt60_sabine(scene: Scene, band_hz: tuple[float, float] = (500.0, 1000.0)) -> float:
    """Sabine reverberation time [s] of the empty room (walls, floor, ceiling)
    averaged over the octave bands in ``band_hz``: 0.161 V / sum(S a)."""
    lz = scene.size[2]
    plan = scene.plan
    x, y = plan[:, 0], plan[:, 1]
    floor = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))
    areas = {'floor': floor, 'ceiling': floor}
    for name, a, b in scene.walls:
        areas[name] = float(np.hypot(*(b - a))) * lz
    absorption = 0.0
    for surface, area in areas.items():
        m = pra.Material(energy_absorption=scene.materials[surface])
        coeffs = np.clip(np.asarray(m.absorption_coeffs, float), 0.01, MAX_ABSORPTION)
        centres = np.asarray(m.energy_absorption['center_freqs'], float)
        sel = (centres >= band_hz[0]) & (centres <= band_hz[1])
        absorption += area * float(coeffs[sel].mean() if sel.any() else coeffs.mean())
    return 0.161 * floor * lz / absorption


def measured_rt60(h: np.ndarray, fs: int, band_hz: tuple[float, float] = (500.0, 1000.0)
                  ) -> float:
    """Reverberation time [s] of an impulse response, measured in the octave
    bands whose centres lie in ``band_hz`` (those :func:`rt60_sabine`
    averages): Schroeder backward integration, the -5 to -25 dB decay
    extrapolated to 60 dB (T20; pyroomacoustics' ``measure_rt60``)."""
    bands = OctaveBands(fs=fs, n_fft=pra.constants.get('octave_bands_n_fft'),
                        base_frequency=pra.constants.get('octave_bands_base_freq'))
    sel = [b for b, c in enumerate(bands.centers) if band_hz[0] <= c <= band_hz[1]]
    mid = np.asarray(bands.analysis(np.asarray(h, float), band=sel)).reshape(len(h), -1)
    return float(pra.experimental.measure_rt60(mid.sum(axis=-1), fs=fs, decay_db=20))


def line_of_sight(scene: Scene, a, b, ignore: tuple[int, ...] = ()) -> bool:
    """True if the segment a -> b (world frame) crosses no box (slab test);
    ``ignore``: indices of boxes not to test (e.g. the source's own object).
    The simulator models no diffraction, so an occluded source is heard only
    through reflections."""
    return not any(segment_hits_box(a, b, box.lo, box.hi)
                   for i, box in enumerate(scene.boxes) if i not in ignore)
