"""Simulated scenes -> ROS 2 MCAP bags with the topics of the interface
contract, ground truth included (``gt/...``), written in parallel.

Each bag also carries the robot's wheel odometry on /tf (``odom`` ->
``base_link`` at every slot's stamp: the motion since the path's first
pose, perfect), as sim_world publishes it live."""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from av_perception.bag.io import BagWriter, stamp_ns
from av_perception.bag.messages import Messages
from av_perception.geometry.frames import OPTICAL_RPY, StaticFrame, yaw_quaternion
from av_perception.arrays import load_array
from av_perception.paths import share_dir
from av_perception.sim.randomize import DEVICES, PRESETS, draw, perturb_slot
from av_perception.sim.scene import Scene, describe, generate_scene, view_params
from av_perception.sim.texture_cache import shared_texture_cache
from av_perception.robot import load_robot
from av_perception.sim.world import T0_NS, SceneSimulator

#: Length of one AudioChunk of the continuous streams [s].
CHUNK_SECONDS = 0.1

TOPICS = {
    '/tf_static': 'tf2_msgs/msg/TFMessage',
    '/camera/image_raw': 'sensor_msgs/msg/Image',
    '/camera/camera_info': 'sensor_msgs/msg/CameraInfo',
    '/audio/echo': 'av_perception/msg/AudioChunk',
    '/audio/raw': 'av_perception/msg/AudioChunk',
    '/audio/binaural': 'av_perception/msg/AudioChunk',
    '/gt/depth': 'sensor_msgs/msg/Image',
    '/gt/camera_info': 'sensor_msgs/msg/CameraInfo',
    '/gt/occupancy': 'nav_msgs/msg/OccupancyGrid',
    '/gt/sound_direction': 'av_perception/msg/SoundSourceArray',
    '/gt/source_mask': 'sensor_msgs/msg/Image',
    '/gt/pose': 'geometry_msgs/msg/PoseStamped',
    '/audio/teacher': 'av_perception/msg/AudioChunk',  # only with --teacher
}


#: The simulated wheel odometry, written beside TOPICS (sim_world publishes
#: it with its own TF broadcaster, not from TOPICS).
ODOMETRY_TOPIC, ODOMETRY_TYPE = '/tf', 'tf2_msgs/msg/TFMessage'
#: Frame of the odometry (sim_world's ``odom_frame`` default).
ODOM_FRAME = 'odom'

#: Topics an echo-only bag (``simulate --echo-only``) does not have.
ECHO_ONLY_SKIPS = ('/audio/raw', '/audio/binaural', '/gt/sound_direction')


#: What a rendering depends on besides its arguments: the simulator's code,
#: the modules it writes bags and frames with, and the robot and array
#: descriptions (package paths, relative to av_perception/ and config/).
_RENDER_CODE = ('sim', 'arrays.py', 'robot.py', 'audio/chirp.py', 'bag/io.py',
                'bag/messages.py', 'geometry/frames.py')
_RENDER_CONFIG = ('robots', 'arrays')
#: Python distributions whose version changes what a rendering holds (room
#: acoustics, signal processing, the camera renderer).
_RENDER_LIBRARIES = ('pyroomacoustics', 'numpy', 'scipy', 'pybullet')
#: index.jsonl key of :func:`simulator_fingerprint`
FINGERPRINT_KEY = 'simulator'


def simulator_fingerprint() -> str:
    """16 hex digits of sha256 over the files a rendering depends on
    (``_RENDER_CODE``, ``_RENDER_CONFIG``) and the versions of its libraries
    and programs (:func:`render_tools`): two folders rendered with the
    same arguments and the same fingerprint hold the same bags. Written into
    every index.jsonl row, so a cached rendering made by an older simulator
    is recognised as stale (:func:`rendered_by_this_simulator`)."""
    pkg = Path(__file__).resolve().parent.parent
    files = []
    for name in _RENDER_CODE:
        p = pkg / name
        files += sorted(p.rglob('*.py')) if p.is_dir() else [p]
    for name in _RENDER_CONFIG:
        files += sorted((share_dir() / 'config' / name).glob('*.yaml'))
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    for line in render_tools():
        h.update(line.encode())
    return h.hexdigest()[:16]


def render_tools() -> list[str]:
    """'name version' of the libraries (``_RENDER_LIBRARIES``) and of the
    espeak-ng program (speech sources) a rendering depends on, part of
    :func:`simulator_fingerprint`: another version renders other bags."""
    from importlib import metadata
    out = []
    for name in _RENDER_LIBRARIES:
        try:
            out.append(f'{name} {metadata.version(name)}')
        except metadata.PackageNotFoundError:
            out.append(f'{name} missing')
    from av_perception.sim.signals import espeak_version
    try:
        out.append(f'espeak-ng {espeak_version()}')
    except RuntimeError:
        out.append('espeak-ng missing')
    return out


def rendered_by_this_simulator(folder: Path) -> bool:
    """True if ``folder`` has an index whose every row carries this code's
    :func:`simulator_fingerprint` (False: no index, or rendered by other
    code, or before fingerprints were written)."""
    index = Path(folder) / 'index.jsonl'
    if not index.is_file():
        return False
    fp = simulator_fingerprint()
    rows = [json.loads(line) for line in index.read_text().splitlines() if line.strip()]
    return bool(rows) and all(r.get(FINGERPRINT_KEY) == fp for r in rows)


def static_frames(sim: SceneSimulator) -> list[StaticFrame]:
    """base -> each array frame and the camera (+ its optical frame), and
    the echo head's optical frame: the virtual camera of echo depth (its
    depth images are what a camera at the echo head would see)."""
    r = sim.robot
    frames = [StaticFrame.from_rpy(r.base_frame, geom.frame_id, r.arrays[role].xyz, (0, 0, 0))
              for role, geom in sim.arrays.items() if role != 'teacher']  # teacher: virtual
    frames.append(StaticFrame.from_rpy(r.base_frame, r.camera.frame, r.camera.xyz, (0, 0, 0)))
    for body in (r.camera.frame, sim.arrays['echo'].frame_id):
        frames.append(StaticFrame.from_rpy(body, f'{body}_optical', (0, 0, 0), OPTICAL_RPY))
    return frames


def odometry(sim: SceneSimulator, pose) -> StaticFrame:
    """odom -> base at ``pose``: perfect wheel odometry, the robot's motion
    since the first pose of its path (the odom frame is that pose; the
    truth in the world frame is gt/pose), as sim_world publishes it."""
    p0 = sim.scene.poses[0]
    c, s = math.cos(-p0.yaw), math.sin(-p0.yaw)
    dx, dy = pose.x - p0.x, pose.y - p0.y
    return StaticFrame(ODOM_FRAME, sim.robot.base_frame, (c * dx - s * dy, s * dx + c * dy, 0.0),
                       yaw_quaternion(pose.yaw - p0.yaw))


def frame_messages(m: Messages, sim: SceneSimulator, ns: int, pose, rgb, depth,
                   source_mask) -> list[tuple[str, object]]:
    """Camera frame, its CameraInfo and the frame's ground truth (depth, mask
    of the sounding objects, robot pose)."""
    r = sim.robot
    cam = r.camera
    optical = f'{cam.frame}_optical'
    info = m.camera_info(cam.K, cam.width, cam.height, ns, optical)
    return [
        ('/camera/image_raw', m.image(rgb, 'rgb8', ns, optical)),
        ('/camera/camera_info', info),
        ('/gt/depth', m.image(depth, '32FC1', ns, optical)),
        ('/gt/camera_info', info),
        ('/gt/source_mask', m.image(source_mask, 'mono8', ns, optical)),
        ('/gt/pose', m.pose_stamped(pose.x, pose.y, pose.yaw, ns, r.world_frame)),
    ]


def slot_event_messages(m: Messages, sim: SceneSimulator, slot) -> list[tuple[str, object]]:
    """What happens once per slot: the echo of the chirp emitted at its
    start, and the slot's ground-truth occupancy."""
    ns = slot.stamp_ns
    occ = slot.occupancy
    out = [('/gt/occupancy', m.occupancy(occ.data, occ.resolution, occ.origin, ns,
                                         sim.robot.base_frame))]
    out.append(('/audio/echo', m.audio_chunk(slot.echo, slot.echo_rate, slot.index, ns,
                                             sim.arrays['echo'].frame_id)))
    return out


def audio_chunk_messages(m: Messages, sim: SceneSimulator, slot) -> list[tuple[str, object]]:
    """The slot's array and binaural streams cut into AudioChunks of
    CHUNK_SECONDS, in time order, each preceded by one ground-truth
    SoundSourceArray per array: the true direction of every source that
    sounds during that chunk, with id = the scene's source index + 1 (a
    source in a pause between words or bursts has no direction to find;
    an empty array: nothing sounds)."""
    step = int(round(CHUNK_SECONDS * slot.stream_rate))
    out = []
    active = [i for i, s in enumerate(sim.scene.sources) if s.active]
    for j in range(0, slot.array.shape[1], step):
        t = slot.stamp_ns + int(round(j / slot.stream_rate * 1e9))
        for role in ('array', 'binaural'):
            geom = sim.arrays[role]
            sources = [(i + 1, d.azimuth, d.elevation, True, 1.0, geom.front_back_ambiguous)
                       for i, d in zip(active, slot.directions[role])
                       if sim.sounding(i, slot.index, j, step)]
            out.append(('/gt/sound_direction', m.sound_sources(sources, t, geom.frame_id)))
        streams = [('/audio/raw', 'array', slot.array),
                   ('/audio/binaural', 'binaural', slot.binaural)]
        if slot.teacher is not None:
            streams.append(('/audio/teacher', 'teacher', slot.teacher))
        for topic, role, data in streams:
            out.append((topic, m.audio_chunk(data[:, j:j + step], slot.stream_rate,
                                             slot.first_sample + j, t,
                                             sim.arrays[role].frame_id)))
    return out


def write_slot(writer: BagWriter, m: Messages, sim: SceneSimulator, slot,
               streams: bool = True) -> int:
    """Write one slot's messages (bag time = header stamp), the odometry
    odom -> base on /tf at the slot's stamp first; returns how many.
    ``streams=False``: without the array / binaural streams and their
    ground-truth directions."""
    out = (frame_messages(m, sim, slot.stamp_ns, slot.pose, slot.rgb, slot.depth,
                          slot.source_mask)
           + slot_event_messages(m, sim, slot)
           + (audio_chunk_messages(m, sim, slot) if streams else []))
    writer.write(ODOMETRY_TOPIC, ODOMETRY_TYPE, slot.stamp_ns,
                 m.tf([odometry(sim, slot.pose)], slot.stamp_ns))
    for topic, msg in out:
        writer.write(topic, TOPICS[topic], stamp_ns(msg), msg)
    return len(out) + 1


@dataclass
class SceneJob:
    split: str
    scene_id: int
    seed: int
    out: str
    poses: int
    snr_db: tuple[float, float] = (10.0, 30.0)
    teacher: bool = False
    classes: tuple[str, ...] | None = None
    echo_only: bool = False   # camera, echo and ground truth; no array / binaural streams
    textures: tuple[str, ...] | None = None
    view: str = 'path'        # how poses are chosen: SceneParams.view
    robot: str = 'robots/sim.yaml'  # robot description (config/robots/)
    randomize: str = 'none'   # sensor randomization: a preset of sim.randomize.PRESETS

    def scene(self) -> Scene:
        """The room this job renders (deterministic: the ground truth behind
        its bag, for scoring that needs more than the bag carries)."""
        params = view_params(self.view, poses=self.poses, snr_db=self.snr_db)
        if self.classes:
            params = replace(params, classes=tuple(self.classes))
        if self.textures:
            params = replace(params, textures=tuple(self.textures))
        return generate_scene(self.scene_id, self.split, self.seed, params)


def simulate_scene(job: SceneJob) -> dict:
    """Render one scene into its own bag folder; returns a summary."""
    scene = job.scene()
    path = Path(job.out) / f'{job.split}_{job.scene_id:05d}'
    start = time.perf_counter()
    m = Messages()
    robot = load_robot(job.robot)
    spec = PRESETS[job.randomize]
    rand = None
    offsets = None
    if not spec.off:
        channels = {role: load_array(robot.arrays[role].geometry).channels for role in DEVICES}
        rand = draw(spec, scene.seed, channels)
        offsets = rand.offsets_m if spec.mic_position_mm else None
    with SceneSimulator(scene, robot, teacher=job.teacher, mic_offsets=offsets) as sim, \
            BagWriter(path) as writer:
        skip = set(ECHO_ONLY_SKIPS if job.echo_only else ())
        if not job.teacher or job.echo_only:
            skip.add('/audio/teacher')
        for topic, msgtype in TOPICS.items():
            if topic not in skip:
                writer.add_topic(topic, msgtype)
        writer.add_topic(ODOMETRY_TOPIC, ODOMETRY_TYPE)
        writer.write('/tf_static', TOPICS['/tf_static'], T0_NS, m.tf(static_frames(sim), T0_NS))
        count = 1
        nominal = {role: sim.arrays[role].positions for role in DEVICES}
        for k in range(len(scene.poses)):
            slot = sim.slot(k, streams=not job.echo_only)
            if rand is not None:
                slot = perturb_slot(slot, rand, nominal)
            count += write_slot(writer, m, sim, slot, streams=not job.echo_only)
    out = {'bag': path.name, 'split': job.split, 'scene_id': job.scene_id,
           'samples': len(scene.poses), 'messages': count,
           'seconds': time.perf_counter() - start, 'scene': describe(scene)}
    if rand is not None:   # the distribution the bag's samples come from
        out['randomize'] = rand.record()
    return out


def simulate(out: Path, scenes: int, seed: int = 0, split: str = 'train', first: int = 0,
             jobs: int = 0, poses: int = 8, snr_db: tuple[float, float] = (10.0, 30.0),
             teacher: bool = False, ids: list[int] | None = None,
             classes: tuple[str, ...] | None = None, echo_only: bool = False,
             progress=sys.stderr, textures: tuple[str, ...] | None = None,
             view: str = 'path', robot: str = 'robots/sim.yaml',
             randomize: str = 'none') -> list[dict]:
    """Write ``scenes`` bags (scene ids ``first``... or ``ids``) into ``out``
    (in parallel over ``jobs`` processes, 0: one per core); deterministic for
    a given seed. ``randomize``: a preset of ``sim.randomize.PRESETS`` (none:
    the bags as without it, byte for byte). Returns the summaries, also
    written to ``out/index.jsonl``."""
    if randomize not in PRESETS:
        raise ValueError(f'randomize must be one of {sorted(PRESETS)}, got {randomize!r}')
    out.mkdir(parents=True, exist_ok=True)
    ids = list(ids) if ids is not None else [first + i for i in range(scenes)]
    scenes = len(ids)
    todo = [SceneJob(split, i, seed, str(out), poses, tuple(snr_db), teacher, classes,
                     echo_only, textures, view, robot, randomize) for i in ids]
    load_robot(robot)  # a bad robot description fails here, in one line, not in a worker
    jobs = jobs or mp.cpu_count()
    results = []
    start = time.perf_counter()
    ctx = mp.get_context('spawn')  # pybullet and OpenMP do not survive fork
    with shared_texture_cache(), ctx.Pool(min(jobs, max(1, scenes))) as pool:
        for res in pool.imap_unordered(simulate_scene, todo):
            results.append(res)
            done = len(results)
            samples = sum(r['samples'] for r in results)
            rate = samples / (time.perf_counter() - start)
            bar = '#' * int(30 * done / scenes)
            print(f'\r[simulate] [{bar:<30}] {done}/{scenes} scenes, {samples} samples, '
                  f'{rate:.2f} samples/s', end='', file=progress, flush=True)
    print(file=progress)
    results.sort(key=lambda r: r['scene_id'])
    fp = simulator_fingerprint()
    with open(out / 'index.jsonl', 'w') as f:
        for r in results:
            row = {k: v for k, v in r.items() if k != 'seconds'}
            f.write(json.dumps({**row, FINGERPRINT_KEY: fp}) + '\n')
    return results
