"""Node ``echo_depth``: depth and occupancy from the echoes of the robot's chirp.

Subscribes to ``audio/echo`` (AudioChunk, one per emitted chirp, sample 0 =
the emission instant) and, for each chunk, runs the echo-depth student
(ONNX Runtime; the execution provider is logged and in /diagnostics).
Publishes, each with the chunk's stamp:

- ``echo_depth/depth`` (sensor_msgs/Image 32FC1): metres along the optical z
  axis of the virtual camera (``optical_frame``), NaN where the prediction
  reaches the model's maximum range (unknown);
- ``echo_depth/camera_info`` (sensor_msgs/CameraInfo): its intrinsics (from
  the model's contract), same header;
- ``echo_depth/occupancy`` (nav_msgs/OccupancyGrid, ``base_frame``): free
  along each image column's ray up to the nearest predicted surface in the
  height band, occupied at it, unknown beyond and outside the view;
- ``echo_depth/points`` (sensor_msgs/PointCloud2, optional): xyz in the
  optical frame.

The model's contract (sample rate, channels, window, array geometry) must
match the configured array and range, or the node refuses to start. A chunk
that does not fit (channels, sample rate, too short) is dropped and counted.
"""

from __future__ import annotations

import time

import numpy as np
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from av_perception.arrays import DEFAULT_ECHO_ARRAY, load_array
from av_perception.echo.features import spec_for
from av_perception.echo.model import EchoDepthModel
from av_perception.echo.occupancy import CameraMount, GridSpec, depth_points, occupancy_from_depth
from av_perception.audio.chunk import AudioBlock
from av_perception.ros.inputs import AudioInput
from av_perception.ros.messages import array_to_image, header
from av_perception.ros.node import AvNode
from av_perception.ros.qos import AUDIO_LIVE, RELIABLE
from av_perception.ros.spin import node_main


#: Seconds without an echo (and no pause announced) after which the input is stale.
ECHO_STALE_AFTER = 3.0

#: Topics this node publishes (besides /diagnostics); see nodes/__init__.py.
PUBLISHES = ('echo_depth/depth', 'echo_depth/camera_info', 'echo_depth/occupancy',
             'echo_depth/points')


class EchoDepthNode(AvNode):
    """Depth image, occupancy grid and points from echoes."""

    def __init__(self, **kwargs) -> None:
        super().__init__('echo_depth', **kwargs)
        model = self.param('model', '', 'ONNX echo-depth model ("": the shipped '
                           'models/echo_depth.onnx).', read_only=True)
        array_file = self.param('array', DEFAULT_ECHO_ARRAY, 'Echo array geometry: a name '
                                'under config/arrays/ or a path.', read_only=True)
        max_range = self.param('max_range', 12.0, 'Range the echo window covers [m] '
                               '(window = 2 max_range / 343 s).', lo=0.5, hi=100.0,
                               read_only=True)
        self.optical_frame = self.param('optical_frame', 'camera_link_optical',
                                        'Optical frame of the virtual camera (the depth image '
                                        'and points).', read_only=True)
        self.base_frame = self.param('base_frame', 'base_link', 'Frame of the occupancy grid.',
                                     read_only=True)
        xyz = self.param('camera_xyz', [0.10, 0.0, 0.50], 'Virtual camera body frame in the '
                         'base frame [m] (x forward, y left, z up).', read_only=True)
        rpy = self.param('camera_rpy', [0.0, 0.0, 0.0], 'Its roll, pitch, yaw in the base '
                         'frame [rad].', read_only=True)
        size = self.param('grid_size', 10.0, 'Side of the occupancy grid [m].', lo=1.0,
                          hi=100.0, read_only=True)
        res = self.param('grid_resolution', 0.1, 'Occupancy cell size [m].', lo=0.01, hi=1.0,
                         read_only=True)
        z_min = self.param('obstacle_z_min', GridSpec.z_min, 'Lowest obstacle height in the '
                           'base frame [m] (lower, echo depth\'s floor errors become phantom '
                           'obstacles).', lo=-10.0, hi=10.0, read_only=True)
        z_max = self.param('obstacle_z_max', 2.0, 'Highest obstacle height in the base frame '
                           '[m].', lo=-10.0, hi=10.0, read_only=True)
        self.publish_points = self.param('publish_points', False, 'Also publish '
                                         'echo_depth/points (PointCloud2).',
                                         on_change='publish_points')
        self.topic = self.param('audio_topic', 'audio/echo', 'AudioChunk echo input topic.',
                                read_only=True)
        geom = load_array(array_file)
        spec = spec_for(geom, max_range)
        self.net = EchoDepthModel(model or None, expect={
            'sample_rate': spec.sample_rate, 'channels': spec.channels, 'window': spec.window,
            'geometry': spec.geometry})
        self.get_logger().info(f'model {self.net.path} ({self.net.model_id}) on '
                               f'{self.net.provider}')
        self.frame_id = geom.frame_id
        self.mount = CameraMount(tuple(xyz), tuple(rpy))
        self.grid = GridSpec(size, res, z_min, z_max)
        self.mount.optical_to_base()  # fails early on a bad pose
        self.depth_pub = self.create_publisher(Image, 'echo_depth/depth', RELIABLE)
        self.info_pub = self.create_publisher(CameraInfo, 'echo_depth/camera_info', RELIABLE)
        self.occ_pub = self.create_publisher(OccupancyGrid, 'echo_depth/occupancy', RELIABLE)
        self.points_pub = self.create_publisher(PointCloud2, 'echo_depth/points', RELIABLE)
        # latest wins: a backlog of echoes would only delay the depth; an emitter
        # paused on purpose (audio/echo/enabled) shows as a pause, not as stale
        self.audio = AudioInput(self, self.topic, self.on_chunk, channels=spec.channels,
                                sample_rate=spec.sample_rate, stale_after=ECHO_STALE_AFTER,
                                qos=AUDIO_LIVE, continuous=False)
        self.monitor.set_fact('execution_provider', self.net.provider)
        self.monitor.set_fact('model_id', self.net.model_id)
        self.monitor.set_fact('array', f'{geom.name} ({geom.channels} mics, '
                                       f'{geom.sample_rate} Hz, {spec.window} samples per echo)')

    def on_chunk(self, block: AudioBlock) -> None:
        start = time.monotonic()
        depth = self.net(block.samples, block.sample_rate)
        depth = np.where(depth < 0.999 * self.net.max_depth, depth, np.nan).astype(np.float32)
        self.publish(depth, block.stamp_ns)
        self.monitor.set_fact('inference_ms', f'{1e3 * (time.monotonic() - start):.1f}')

    def publish(self, depth: np.ndarray, stamp_ns: int) -> None:
        hdr = header(stamp_ns, self.optical_frame)
        self.depth_pub.publish(array_to_image(depth, '32FC1', hdr))
        self.info_pub.publish(self.camera_info(hdr))
        grid = occupancy_from_depth(depth, self.net.k, self.mount, self.grid)
        occ = OccupancyGrid(header=header(stamp_ns, self.base_frame))
        occ.info.map_load_time = hdr.stamp
        occ.info.resolution = float(self.grid.resolution)
        occ.info.width = occ.info.height = int(grid.shape[0])
        occ.info.origin.position.x, occ.info.origin.position.y = self.grid.origin
        occ.info.origin.orientation.w = 1.0
        occ.data = grid.reshape(-1).tolist()
        self.occ_pub.publish(occ)
        if self.publish_points:
            self.points_pub.publish(self.points(depth, hdr))

    def camera_info(self, hdr) -> CameraInfo:
        k = self.net.k
        info = CameraInfo(header=hdr, height=self.net.height, width=self.net.width,
                          distortion_model='plumb_bob')
        info.d = [0.0] * 5
        info.k = [float(v) for v in k.reshape(-1)]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [float(k[0, 0]), 0.0, float(k[0, 2]), 0.0, 0.0, float(k[1, 1]),
                  float(k[1, 2]), 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    def points(self, depth: np.ndarray, hdr) -> PointCloud2:
        pts = depth_points(depth, self.net.k).reshape(-1, 3)
        pts = np.ascontiguousarray(pts[np.isfinite(pts).all(axis=1)], np.float32)
        msg = PointCloud2(header=hdr, height=1, width=len(pts), is_bigendian=False,
                          point_step=12, row_step=12 * len(pts), is_dense=True)
        msg.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                      for i, n in enumerate('xyz')]
        msg.data = pts.tobytes()
        return msg


def main(argv=None) -> int:
    return node_main(EchoDepthNode, argv)

