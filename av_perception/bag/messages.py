"""Build rosbags message objects (for writing bags without ROS).

The field layouts are the standard ROS 2 ones; the objects serialize to the
same CDR as rclpy's messages.
"""

from __future__ import annotations

import math

import numpy as np

from av_perception import image as imgcodec
from av_perception.bag.types import package_msgtypes, typestore
from av_perception.geometry.frames import StaticFrame, unit_vector


class Messages:
    """Factories for the message types the package writes to bags."""

    def __init__(self, store=None) -> None:
        self.store = store or typestore(package_msgtypes())
        self.T = self.store.types

    def _t(self, name: str):
        return self.T[name]

    def time(self, ns: int):
        ns = int(ns)
        return self._t('builtin_interfaces/msg/Time')(sec=ns // 10**9, nanosec=ns % 10**9)

    def header(self, ns: int, frame_id: str):
        return self._t('std_msgs/msg/Header')(stamp=self.time(ns), frame_id=frame_id)

    def image(self, array: np.ndarray, encoding: str, ns: int, frame_id: str):
        raw = imgcodec.encode(array, encoding)
        return self._t('sensor_msgs/msg/Image')(
            header=self.header(ns, frame_id), height=raw.height, width=raw.width,
            encoding=raw.encoding, is_bigendian=0, step=raw.step,
            data=np.frombuffer(raw.data, np.uint8))

    def camera_info(self, K: np.ndarray, width: int, height: int, ns: int, frame_id: str):
        K = np.asarray(K, float)
        P = np.zeros((3, 4))
        P[:, :3] = K
        roi = self._t('sensor_msgs/msg/RegionOfInterest')(x_offset=0, y_offset=0, height=0,
                                                          width=0, do_rectify=False)
        return self._t('sensor_msgs/msg/CameraInfo')(
            header=self.header(ns, frame_id), height=height, width=width,
            distortion_model='plumb_bob', d=np.zeros(5), k=K.reshape(-1), r=np.eye(3).reshape(-1),
            p=P.reshape(-1), binning_x=0, binning_y=0, roi=roi)

    def audio_chunk(self, samples: np.ndarray, rate: int, first_sample: int, ns: int,
                    frame_id: str):
        samples = np.asarray(samples, np.float32)
        return self._t('av_perception/msg/AudioChunk')(
            header=self.header(ns, frame_id), sample_rate=int(rate),
            channels=int(samples.shape[0]), first_sample=int(first_sample),
            data=np.ascontiguousarray(samples.T).reshape(-1))

    def sound_sources(self, sources, ns: int, frame_id: str):
        """A SoundSourceArray in ``frame_id`` at ``ns``; ``sources``: tuples
        (id, azimuth [rad], elevation [rad], elevation_known, confidence,
        front_back_ambiguous); empty: nothing sounds."""
        t = 'av_perception/msg/'
        vec = self._t('geometry_msgs/msg/Vector3')
        out = []
        for sid, az, el, el_known, conf, amb in sources:
            x, y, z = unit_vector(az, el)
            out.append(self._t(t + 'SoundSource')(
                id=int(sid), direction=vec(x=x, y=y, z=z), azimuth=float(az),
                elevation=float(el), elevation_known=bool(el_known),
                confidence=float(conf), front_back_ambiguous=bool(amb)))
        return self._t(t + 'SoundSourceArray')(header=self.header(ns, frame_id), sources=out)

    def pose(self, x: float, y: float, z: float, yaw: float):
        g = 'geometry_msgs/msg/'
        return self._t(g + 'Pose')(
            position=self._t(g + 'Point')(x=float(x), y=float(y), z=float(z)),
            orientation=self._t(g + 'Quaternion')(x=0.0, y=0.0, z=math.sin(yaw / 2),
                                                  w=math.cos(yaw / 2)))

    def pose_stamped(self, x: float, y: float, yaw: float, ns: int, frame_id: str):
        return self._t('geometry_msgs/msg/PoseStamped')(header=self.header(ns, frame_id),
                                                        pose=self.pose(x, y, 0.0, yaw))

    def occupancy(self, data: np.ndarray, resolution: float, origin_xy, ns: int,
                  frame_id: str):
        data = np.asarray(data, np.int8)
        info = self._t('nav_msgs/msg/MapMetaData')(
            map_load_time=self.time(ns), resolution=float(resolution),
            width=int(data.shape[1]), height=int(data.shape[0]),
            origin=self.pose(origin_xy[0], origin_xy[1], 0.0, 0.0))
        return self._t('nav_msgs/msg/OccupancyGrid')(header=self.header(ns, frame_id),
                                                     info=info, data=data.reshape(-1))

    def tf(self, frames: list[StaticFrame], ns: int):
        g = 'geometry_msgs/msg/'
        out = []
        for f in frames:
            tr = self._t(g + 'Transform')(
                translation=self._t(g + 'Vector3')(x=f.xyz[0], y=f.xyz[1], z=f.xyz[2]),
                rotation=self._t(g + 'Quaternion')(x=f.quat_xyzw[0], y=f.quat_xyzw[1],
                                                   z=f.quat_xyzw[2], w=f.quat_xyzw[3]))
            out.append(self._t(g + 'TransformStamped')(header=self.header(ns, f.parent),
                                                       child_frame_id=f.child, transform=tr))
        return self._t('tf2_msgs/msg/TFMessage')(transforms=out)
