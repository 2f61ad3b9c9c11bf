"""A small bag generator independent of the package (no av_perception import):
rosbags' own Writer and ROS 2 Humble typestore, the AudioChunk layout from
interfaces.md, sqlite3 storage as ``ros2 bag record`` writes on Humble.

It stands for "someone else's robot": same kind of sensors, its own frame
names (``body``, ``head_cam``/``head_cam_optical``, ``ears``, ``mics``), its
own camera (160 x 120 px, field of view a parameter), views ``period`` s
apart while the robot turns ``turn_deg`` per view in place, and
everything a command needs: camera, binaural and array streams, echoes,
/tf_static, odometry on /tf, ground truth (pose, depth, mask, directions).
Any topic can be left out.
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
SOUND_DIR_DEF = """std_msgs/Header header
float32 azimuth
float32 elevation
float32 confidence
bool front_back_ambiguous
"""
T0 = 1_800_000_000 * 10**9
FS = 16000

BASE, ODOM, WORLD = 'body', 'odom', 'world'
CAM, OPTICAL, EARS, MICS, ECHO = 'head_cam', 'head_cam_optical', 'ears', 'mics', 'sonar'


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
              truth_frame: str | None = None) -> Path:
    """Write one bag (sqlite3) to ``path``.

    The robot stands at the origin of ``world`` and turns ``turn_deg`` CCW
    between views (moving ``drive`` m forward per view, 0: in place); one
    static source sounds at world azimuth 30 deg. ``skip``: topics (relative)
    left out; ``gt_pose``/``odometry``: whether gt/pose and the odom -> body
    transforms are written; ``echo``: channels, sample rate [Hz] and samples
    of the echo chunks; ``truth_frame``: the frame of every gt/sound_direction
    (default: the array's own).
    """
    import cv2
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
    }
    if not gt_pose:
        skip = (*skip, 'gt/pose')
    if not odometry:
        skip = (*skip, 'tf')
    out = []   # (time, topic, msg)
    out.append((T0, 'tf_static', T['tf2_msgs/msg/TFMessage'](transforms=[
        tf(T0, BASE, CAM, (0.05, 0.0, 0.8)), tf(T0, CAM, OPTICAL, (0, 0, 0), optical=True),
        tf(T0, BASE, EARS, (0.0, 0.0, 1.0)), tf(T0, BASE, MICS, (0.0, 0.0, 0.9)),
        tf(T0, BASE, ECHO, (0.05, 0.0, 0.8))])))
    src_world = math.radians(30.0)
    mask = np.zeros((height, width), np.uint8)
    mask[height // 3:2 * height // 3, width // 3:2 * width // 3] = 255
    samples_per_view = int(round(period * FS))
    for i in range(views):
        t = T0 + int(round(i * period * 1e9))
        yaw = math.radians(turn_deg) * i
        x = drive * i
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
        for j in range(0, n, FS // 10):
            tj = t + int(round(j / FS * 1e9))
            first = i * n + j
            out.append((tj, 'audio/binaural', chunk(tj, EARS, binaural[:, j:j + FS // 10],
                                                    first)))
            out.append((tj, 'audio/raw', chunk(tj, MICS, array[:, j:j + FS // 10], first)))
            for frame, az in ((EARS, rel), (MICS, rel)):
                out.append((tj, 'gt/sound_direction', T['av_perception/msg/SoundDirection'](
                    header=header(tj, truth_frame or frame), azimuth=az, elevation=0.0, confidence=1.0,
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
