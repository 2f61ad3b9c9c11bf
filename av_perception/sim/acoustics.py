"""Room acoustics of a scene with pyroomacoustics: image sources (specular
early reflections, including off the furniture) plus ray tracing (diffuse
scattering and the late tail), frequency-dependent absorption per surface.

Three renderings come from one room model:

- echoes: the robot's speaker emits the chirp; the echo head's two
  microphones record the direct path and the room's answer (with the
  microphones' pick-up pattern, if the head's file gives one, on the direct
  path and the image sources; the late tail is omnidirectional);
- the microphone array: each sounding source at each microphone;
- the binaural head: two receivers at the head centre whose directivity is
  the KU100 HRIR of each image source's direction of arrival (pyroomacoustics'
  impulse-response directivities); HRIRs carry the interaural delay, so they
  are applied at the head centre, not at the ears. The late tail from ray
  tracing is omnidirectional.

Everything is pyroomacoustics (room model, image sources, ray tracing,
directivities); written here is only the HRTF-as-directivity adapter, the
room assembly from a scene, and the box faces' orientation (and, in
:mod:`av_perception.sim.fast_tail`, vectorised copies of the two Python loops
of its tail synthesis).
"""

from __future__ import annotations


import numpy as np
import pyroomacoustics as pra
from pyroomacoustics.directivities import CardioidFamily, Directivity, DirectionVector
from pyroomacoustics.room import wall_factory

from av_perception.arrays import DIRECTIVITIES
from av_perception.sim import fast_tail
from av_perception.sim.scene import Pose2D, Scene, base_to_world

# the ray-traced tail's two Python loops, vectorised (same draws, same result)
fast_tail.install()

#: Absorption above this is clipped: the database extrapolates some top bands
#: to 1.0, which would make, e.g., a carpet reflect nothing at all.
MAX_ABSORPTION = 0.9
SCATTERING = 0.15
#: Obstacles are lifted off the floor so their bottom face does not coincide
#: with the floor plane.
LIFT = 0.001


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


def build_room(scene: Scene, fs: int, max_order: int, rays: int, time_thres: float,
               receiver_radius: float = 0.25, seed: int = 0) -> pra.Room:
    """The scene's room with its furniture as obstacles (not the sound-making
    objects), ready for sources and microphones."""
    lx, ly, lz = scene.size
    corners = np.array([[0.0, lx, lx, 0.0], [0.0, 0.0, ly, ly]])
    base = pra.Room.from_corners(corners, fs=fs, max_order=max_order)
    bands = base.octave_bands
    # from_corners orders walls south (y=0), east, north, west for these corners
    side_names = ['south', 'east', 'north', 'west']
    mats = {k: pra.Material(energy_absorption=scene.materials[k], scattering=SCATTERING)
            for k in ('floor', 'ceiling')}
    base.extrude(lz, materials=mats)
    walls = []
    for i, w in enumerate(base.walls):
        name = side_names[i] if i < 4 else ('floor' if i == 4 else 'ceiling')
        absorption, scattering = material(scene.materials[name], bands)
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
        absorption, scattering = material(box.material, bands)
        for j, face in enumerate(_box_faces(lo, hi)):
            walls.append(wall_factory(face, absorption, scattering, f'box{k}_{j}'))
    room = pra.Room(walls, fs=fs, max_order=max_order, ray_tracing=rays > 0,
                    air_absorption=True)
    if rays > 0:
        room.set_ray_tracing(n_rays=rays, receiver_radius=receiver_radius,
                             time_thres=time_thres)
    return room


def rirs(room: pra.Room, source, mics: np.ndarray, seed: int,
         directivities: list | None = None) -> tuple[list[np.ndarray], int]:
    """Impulse responses from ``source`` to each column of ``mics`` (3, M),
    and the number of samples by which pyroomacoustics delays them (its
    fractional-delay filter is centred). ``directivities``: one per mic
    (None: omnidirectional)."""
    pra.random.seed(seed % (2**31))  # seeds both its numpy and its C++ generators
    room.add_source(np.asarray(source, float))
    room.add_microphone_array(pra.MicrophoneArray(np.asarray(mics, float), room.fs,
                                                  directivity=directivities))
    room.compute_rir()
    return [np.asarray(room.rir[m][0], np.float64) for m in range(mics.shape[1])], \
        pra.constants.get('frac_delay_length') // 2


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


def directional_hybrid(hybrid: np.ndarray, omni_ism: np.ndarray,
                       directional_ism: np.ndarray) -> np.ndarray:
    """A hybrid (image sources + ray tracing) impulse response with the
    image-source part heard through a receiver's directivity: ``hybrid``
    minus the omnidirectional image sources (what stays is the ray-traced
    tail, omnidirectional) plus the directional image sources. The three come
    from runs of the same room and seed (pyroomacoustics has no directivities
    with ray tracing)."""
    h = np.zeros(max(len(hybrid), len(directional_ism)))
    h[:len(hybrid)] += hybrid
    early = omni_ism[:len(hybrid)]
    h[:len(early)] -= early
    h[:len(directional_ism)] += directional_ism
    return h


def rt60_sabine(scene: Scene, band_hz: tuple[float, float] = (500.0, 1000.0)) -> float:
    """Sabine reverberation time [s] of the empty room (walls, floor, ceiling)
    averaged over the octave bands in ``band_hz``: 0.161 V / sum(S a)."""
    lx, ly, lz = scene.size
    areas = {'floor': lx * ly, 'ceiling': lx * ly, 'west': ly * lz, 'east': ly * lz,
             'south': lx * lz, 'north': lx * lz}
    absorption = 0.0
    for surface, area in areas.items():
        m = pra.Material(energy_absorption=scene.materials[surface])
        coeffs = np.clip(np.asarray(m.absorption_coeffs, float), 0.01, MAX_ABSORPTION)
        centres = np.asarray(m.energy_absorption['center_freqs'], float)
        sel = (centres >= band_hz[0]) & (centres <= band_hz[1])
        absorption += area * float(coeffs[sel].mean() if sel.any() else coeffs.mean())
    return 0.161 * lx * ly * lz / absorption


def line_of_sight(scene: Scene, a, b, ignore: tuple[int, ...] = ()) -> bool:
    """True if the segment a -> b (world frame) crosses no box (slab test);
    ``ignore``: indices of boxes not to test (e.g. the source's own object).
    The simulator models no diffraction, so an occluded source is heard only
    through reflections."""
    a = np.asarray(a, float)
    d = np.asarray(b, float) - a
    for i, box in enumerate(scene.boxes):
        if i in ignore:
            continue
        with np.errstate(divide='ignore', invalid='ignore'):
            t1 = (box.lo - a) / d
            t2 = (box.hi - a) / d
        tmin = np.nanmax(np.minimum(t1, t2))
        tmax = np.nanmin(np.maximum(t1, t2))
        if tmax >= max(tmin, 0.0) and tmin <= 1.0:
            return False
    return True
