"""A small bag generator independent of the package (no av_perception import):
rosbags' own Writer and ROS 2 Humble typestore, the AudioChunk layout from
interfaces.md, sqlite3 storage as ``ros2 bag record`` writes on Humble.

It stands for "someone else's robot": same kind of sensors, its own frame
names (``body``, ``head_cam``/``head_cam_optical``, ``ears``, ``mics``), its
own camera (160 x 120 px, field of view a parameter), views ``period`` s
apart while the robot turns ``turn_deg`` per view in place, and
everything a command needs: camera, binaural and array streams, echoes,
/tf_static (with the echo head's optical frame, ``sonar_optical``, the
virtual camera of echo depth), odometry on /tf, ground truth (pose, depth,
mask, directions, and the occupancy of a box-shaped room in ``body``).
Any topic can be left out. :func:`room_depth` renders what the echo head's
virtual camera would see of that room: a perfect echo-depth predictor.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

AUDIO_CHUNK = 'other_msgs/msg/AudioChunk'   # same fields, renamed below
AUDIO_DEF = """std_msgs/Header header
uint32 sample_rate
uint16 channels
uint64 first_sample
float32[] data
"""
#: The retired per-source direction message (before SoundSourceArray): this
#: writer stands for an older release's bags, which must stay readable.
SOUND_DIR_DEF = """std_msgs/Header header
float32 azimuth
float32 elevation
float32 confidence
bool front_back_ambiguous
"""
T0 = 1_800_000_000 * 10**9
FS = 16000
#: radius of the optional larger ring on audio/teacher [m]
TEACHER_RADIUS = 0.15

BASE, ODOM, WORLD = 'body', 'odom', 'world'
CAM, OPTICAL, EARS, MICS, ECHO = 'head_cam', 'head_cam_optical', 'ears', 'mics', 'sonar'
#: The room around the robot's start (world frame): x0, x1, y0, y1, height [m].
ROOM = (-2.5, 3.5, -2.0, 2.6, 2.4)
#: Its ground-truth occupancy: cells [m], side of the square grid centred on body [m].
OCC_CELL, OCC_SIZE = 0.05, 10.0


def view_pose(i: int, turn_deg: float = 45.0, drive: float = 0.0) -> tuple[float, float, float]:
    """The robot's pose at view ``i`` in world (= odom): x [m], y [m], yaw [rad]."""
    return drive * i, 0.0, math.radians(turn_deg) * i


def room_occupancy(pose: tuple[float, float, float], room=ROOM) -> np.ndarray:
    """(rows = y, cols = x) int8 grid in ``body`` at ``pose``: 0 inside the
    room, 100 on its walls (the outermost cell inside), -1 outside; cell
    (0, 0)'s corner at (-OCC_SIZE/2, -OCC_SIZE/2)."""
    n = int(round(OCC_SIZE / OCC_CELL))
    c = -OCC_SIZE / 2 + (np.arange(n) + 0.5) * OCC_CELL
    bx, by = np.meshgrid(c, c)
    x, y, yaw = pose
    wx = x + math.cos(yaw) * bx - math.sin(yaw) * by
    wy = y + math.sin(yaw) * bx + math.cos(yaw) * by
    x0, x1, y0, y1, _ = room
    inside = (wx >= x0) & (wx <= x1) & (wy >= y0) & (wy <= y1)
    wall = inside & ((wx < x0 + OCC_CELL) | (wx > x1 - OCC_CELL) | (wy < y0 + OCC_CELL)
                     | (wy > y1 - OCC_CELL))
    out = np.full((n, n), -1, np.int8)
    out[inside] = 0
    out[wall] = 100
    return out


def room_depth(pose: tuple[float, float, float], k: np.ndarray, size: tuple[int, int],
               echo_xyz=(0.05, 0.0, 0.8), echo_yaw_deg: float = 0.0, room=ROOM) -> np.ndarray:
    """Depth [m along optical z] of the echo head's virtual camera (at
    ``echo_xyz`` in body, turned ``echo_yaw_deg`` CCW, optical z along its x)
    in the room, the robot at ``pose``: (h, w) float32, pixel centres at
    integer coordinates."""
    h, w = size
    k = np.asarray(k, float).reshape(3, 3)
    u, v = np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float))
    ox, oy = (u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1]
    fwd, left, up = np.ones_like(ox), -ox, -oy          # optical -> the head's body axes
    a = math.radians(echo_yaw_deg)
    bx, by = math.cos(a) * fwd - math.sin(a) * left, math.sin(a) * fwd + math.cos(a) * left
    x, y, yaw = pose
    d = np.stack([math.cos(yaw) * bx - math.sin(yaw) * by,
                  math.sin(yaw) * bx + math.cos(yaw) * by, up], -1)      # world, per m of z
    o = (x + math.cos(yaw) * echo_xyz[0] - math.sin(yaw) * echo_xyz[1],
         y + math.sin(yaw) * echo_xyz[0] + math.cos(yaw) * echo_xyz[1], echo_xyz[2])
    x0, x1, y0, y1, top = room
    t = np.full(u.shape, np.inf)
    for axis, planes in ((0, (x0, x1)), (1, (y0, y1)), (2, (0.0, top))):
        for plane in planes:
            with np.errstate(divide='ignore', invalid='ignore'):
                ti = (plane - o[axis]) / d[..., axis]
            t = np.where((ti > 1e-9) & (ti < t), ti, t)
    return t.astype(np.float32)


def _store():
    store = get_typestore(Stores.ROS2_HUMBLE)
    types = {}
    types.update(get_types_from_msg(AUDIO_DEF, 'av_perception/msg/AudioChunk'))
    types.update(get_types_from_msg(SOUND_DIR_DEF, 'av_perception/msg/SoundDirection'))
    store.register(types)
    return store


def _panorama(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A textured 360 deg strip (blobs at several scales), uint8 grey."""
    import cv2
    out = np.zeros((height, width), np.float32)
    for scale in (4, 16, 64):
        small = rng.random((max(2, height // scale), max(2, width // scale))).astype(np.float32)
        out += cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC) * scale
    out -= out.min()
    return (255 * out / out.max()).astype(np.uint8)


def write_bag(path: Path, *, views: int = 6, period: float = 2.0, turn_deg: float = 45.0,
              hfov_deg: float = 90.0, width: int = 160, height: int = 120,
              skip: tuple[str, ...] = (), gt_pose: bool = True, odometry: bool = True,
              namespace: str = '', seed: int = 0, drive: float = 0.0,
              echo: tuple[int, int, int] = (2, 16000, 1600),
              truth_frame: str | None = None, echo_xyz=(0.05, 0.0, 0.8),
              echo_yaw_deg: float = 0.0, echo_optical: bool = True,
              teacher: int = 0) -> Path:
    """Write one bag (sqlite3) to ``path``.

    The robot stands at the origin of ``world`` and turns ``turn_deg`` CCW
    between views (moving ``drive`` m forward per view, 0: in place); one
    static source sounds at world azimuth 30 deg. ``skip``: topics (relative)
    left out; ``gt_pose``/``odometry``: whether gt/pose and the odom -> body
    transforms are written; ``echo``: channels, sample rate [Hz] and samples
    of the echo chunks; ``truth_frame``: the frame of every gt/sound_direction
    (default: the array's own); ``echo_xyz`` [m], ``echo_yaw_deg``: where the
    echo head (``sonar``) is on ``body``; ``echo_optical``: whether /tf_static
    has its optical frame ``sonar_optical``; ``teacher``: microphones of a
    larger ring (radius TEACHER_RADIUS, frame ``ring``, the first on +x, counter-
    clockwise) recorded on audio/teacher (0: none).
    """
    rng = np.random.default_rng(seed)
    store = _store()
    T = store.types
    ns = '/' + namespace.strip('/') if namespace else ''
    pano_w = int(round(width * 360.0 / hfov_deg))
    pano = _panorama(rng, pano_w, height)
    f = width / 2.0 / math.tan(math.radians(hfov_deg) / 2.0)
    K = np.array([f, 0, width / 2.0, 0, f, height / 2.0, 0, 0, 1.0])

    def stamp(t_ns: int):
        return T['builtin_interfaces/msg/Time'](sec=t_ns // 10**9, nanosec=t_ns % 10**9)

    def header(t_ns: int, frame: str):
        return T['std_msgs/msg/Header'](stamp=stamp(t_ns), frame_id=frame)

    def quat(yaw: float):
        return T['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=math.sin(yaw / 2),
                                                 w=math.cos(yaw / 2))

    def tf(t_ns, parent, child, xyz, yaw=0.0, optical=False):
        if optical:  # body (x fwd, y left, z up) -> optical (z fwd, x right, y down)
            q = T['geometry_msgs/msg/Quaternion'](x=-0.5, y=0.5, z=-0.5, w=0.5)
        else:
            q = quat(yaw)
        return T['geometry_msgs/msg/TransformStamped'](
            header=header(t_ns, parent), child_frame_id=child,
            transform=T['geometry_msgs/msg/Transform'](
                translation=T['geometry_msgs/msg/Vector3'](x=xyz[0], y=xyz[1], z=xyz[2]),
                rotation=q))

    def image(t_ns, frame, data, encoding, step):
        h, w = data.shape[:2]
        return T['sensor_msgs/msg/Image'](header=header(t_ns, frame), height=h, width=w,
                                          encoding=encoding, is_bigendian=0, step=step,
                                          data=np.ascontiguousarray(data).reshape(-1)
                                          .view(np.uint8))

    def chunk(t_ns, frame, samples, first, rate=FS):
        return T['av_perception/msg/AudioChunk'](
            header=header(t_ns, frame), sample_rate=rate, channels=samples.shape[0],
            first_sample=first, data=np.ascontiguousarray(samples.T.astype(np.float32))
            .reshape(-1))

    topics = {
        'tf_static': 'tf2_msgs/msg/TFMessage', 'tf': 'tf2_msgs/msg/TFMessage',
        'camera/image_raw': 'sensor_msgs/msg/Image',
        'camera/camera_info': 'sensor_msgs/msg/CameraInfo',
        'audio/binaural': 'av_perception/msg/AudioChunk',
        'audio/raw': 'av_perception/msg/AudioChunk',
        'audio/echo': 'av_perception/msg/AudioChunk',
        'gt/pose': 'geometry_msgs/msg/PoseStamped',
        'gt/depth': 'sensor_msgs/msg/Image',
        'gt/source_mask': 'sensor_msgs/msg/Image',
        'gt/sound_direction': 'av_perception/msg/SoundDirection',
        'gt/occupancy': 'nav_msgs/msg/OccupancyGrid',
    }
    if teacher:
        topics['audio/teacher'] = 'av_perception/msg/AudioChunk'
    if not gt_pose:
        skip = (*skip, 'gt/pose')
    if not odometry:
        skip = (*skip, 'tf')
    out = []   # (time, topic, msg)
    out.append((T0, 'tf_static', T['tf2_msgs/msg/TFMessage'](transforms=[
        tf(T0, BASE, CAM, (0.05, 0.0, 0.8)), tf(T0, CAM, OPTICAL, (0, 0, 0), optical=True),
        tf(T0, BASE, EARS, (0.0, 0.0, 1.0)), tf(T0, BASE, MICS, (0.0, 0.0, 0.9)),
        tf(T0, BASE, ECHO, echo_xyz, math.radians(echo_yaw_deg))]
        + ([tf(T0, ECHO, f'{ECHO}_optical', (0, 0, 0), optical=True)] if echo_optical else []))))
    src_world = math.radians(30.0)
    mask = np.zeros((height, width), np.uint8)
    mask[height // 3:2 * height // 3, width // 3:2 * width // 3] = 255
    samples_per_view = int(round(period * FS))
    for i in range(views):
        t = T0 + int(round(i * period * 1e9))
        x, _, yaw = view_pose(i, turn_deg, drive)
        # the camera sees the panorama column at its heading (a left turn
        # moves the scene right): a cylindrical crop, good enough here
        c0 = int(round(-yaw / (2 * math.pi) * pano_w)) % pano_w
        cols = (np.arange(width) + c0 - width // 2) % pano_w
        grey = pano[:, cols]
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
        out.append((t, 'camera/image_raw', image(t, OPTICAL, rgb, 'rgb8', 3 * width)))
        out.append((t, 'camera/camera_info', T['sensor_msgs/msg/CameraInfo'](
            header=header(t, OPTICAL), height=height, width=width, distortion_model='plumb_bob',
            d=np.zeros(5), k=K, r=np.eye(3).reshape(-1),
            p=np.array([K[0], 0, K[2], 0, 0, K[4], K[5], 0, 0, 0, 1, 0.0]), binning_x=0,
            binning_y=0, roi=T['sensor_msgs/msg/RegionOfInterest'](
                x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))))
        out.append((t, 'gt/pose', T['geometry_msgs/msg/PoseStamped'](
            header=header(t, WORLD), pose=T['geometry_msgs/msg/Pose'](
                position=T['geometry_msgs/msg/Point'](x=x, y=0.0, z=0.0),
                orientation=quat(yaw)))))
        depth = np.full((height, width), 3.0, np.float32)
        out.append((t, 'gt/depth', image(t, OPTICAL, depth, '32FC1', 4 * width)))
        out.append((t, 'gt/source_mask', image(t, OPTICAL, mask, 'mono8', width)))
        occ = room_occupancy((x, 0.0, yaw))
        out.append((t, 'gt/occupancy', T['nav_msgs/msg/OccupancyGrid'](
            header=header(t, BASE), info=T['nav_msgs/msg/MapMetaData'](
                map_load_time=stamp(t), resolution=OCC_CELL, width=occ.shape[1],
                height=occ.shape[0], origin=T['geometry_msgs/msg/Pose'](
                    position=T['geometry_msgs/msg/Point'](x=-OCC_SIZE / 2, y=-OCC_SIZE / 2,
                                                          z=0.0), orientation=quat(0.0))),
            data=occ.reshape(-1))))
        # odometry at 10 Hz between this view and the next, turning smoothly
        for k in range(int(round(period * 10))):
            tk = t + k * 10**8
            yk = yaw + math.radians(turn_deg) * k / (period * 10)
            out.append((tk, 'tf', T['tf2_msgs/msg/TFMessage'](transforms=[
                tf(tk, ODOM, BASE, (x + drive * k / (period * 10), 0.0, 0.0), yk)])))
        # audio: a noise source from the world azimuth 30 deg, 0.1 s chunks
        rel = math.remainder(src_world - yaw, 2 * math.pi)
        lag = int(round(4 * math.sin(rel)))      # interaural delay [samples]
        n = samples_per_view
        src = rng.normal(0, 0.1, n + 16)
        left, right = src[8 - lag:8 - lag + n], src[8 + lag:8 + lag + n]
        binaural = np.stack([left, right])
        array = np.stack([src[8:8 + n]] * 4) + rng.normal(0, 0.001, (4, n))
        # the ring hears the source earlier at the microphones that face it
        lead = [int(round(TEACHER_RADIUS * math.cos(rel - 2 * math.pi * k / max(teacher, 1))
                          / 343.0 * FS)) for k in range(teacher)]
        ring = np.stack([src[8 + d:8 + d + n] for d in lead]) if teacher else None
        for j in range(0, n, FS // 10):
            tj = t + int(round(j / FS * 1e9))
            first = i * n + j
            out.append((tj, 'audio/binaural', chunk(tj, EARS, binaural[:, j:j + FS // 10],
                                                    first)))
            out.append((tj, 'audio/raw', chunk(tj, MICS, array[:, j:j + FS // 10], first)))
            if ring is not None:
                out.append((tj, 'audio/teacher', chunk(tj, 'ring', ring[:, j:j + FS // 10],
                                                       first)))
            for frame, az in ((EARS, rel), (MICS, rel)):
                out.append((tj, 'gt/sound_direction', T['av_perception/msg/SoundDirection'](
                    header=header(tj, truth_frame or frame), azimuth=az, elevation=0.0,
                    confidence=1.0,
                    front_back_ambiguous=frame == EARS)))
        out.append((t, 'audio/echo', chunk(t, ECHO, rng.normal(0, 0.01, echo[::2]), i,
                                           echo[1])))
    with Writer(path, version=8) as writer:
        conns = {}
        for topic, msgtype in topics.items():
            if topic in skip:
                continue
            name = '/' + topic if topic in ('tf', 'tf_static') else f'{ns}/{topic}'
            conns[topic] = writer.add_connection(name, msgtype, typestore=store)
        for t, topic, msg in sorted(out, key=lambda e: e[0]):
            if topic in conns:
                writer.write(conns[topic], t, store.serialize_cdr(msg, topics[topic]))
    return path
