"""Node ``echo_depth``: depth, a laser scan and occupancy from the echoes of
the robot's chirp, and an echo map fused over the robot's motion.

Subscribes to ``audio/echo`` (AudioChunk, one per emitted chirp, sample 0 =
the emission instant), /tf and /tf_static, and, for each chunk, runs the
echo-depth student (ONNX Runtime; the execution provider is logged and in
/diagnostics). The depth image is what a camera at the virtual camera's
optical frame (``optical_frame``, default ``<echo array frame>_optical``)
would see; where that frame is on the robot comes from TF (base <- optical,
at the echo's stamp), never from a second parameter. Publishes, each with
the chunk's stamp:

- ``echo_depth/depth`` (sensor_msgs/Image 32FC1, the optical frame): metres
  along optical z, REP 117: +Inf where nothing returns within the model's
  range, NaN only where invalid;
- ``echo_depth/camera_info`` (sensor_msgs/CameraInfo): its intrinsics (from
  the model's contract), same header;
- ``echo_depth/points`` (sensor_msgs/PointCloud2, optional): x, y, z in the
  optical frame and ``return`` (1 on a surface; 0 for a clearing point at the
  range along a no-return pixel, which nav2's layers use to clear and, beyond
  their obstacle range, never mark);
- ``echo_depth/scan`` (sensor_msgs/LaserScan, ``scan_frame``, default the
  echo array frame): per image column the nearest surface in the height
  band, +Inf where the column is free to the range (nav2's obstacle layer
  with ``inf_is_valid`` clears to it), NaN where the echo says nothing;
- ``echo_depth/occupancy`` (nav_msgs/OccupancyGrid, ``base_frame``): this
  echo's view: free along each column's ray, occupied at its surface;
- ``echo_depth/map`` (nav_msgs/OccupancyGrid, ``map_frame`` (odom),
  transient local, every ``map_period``): every echo's free/occupied
  evidence fused with log-odds at the base's pose in ``map_frame`` at the
  echo's stamp (echo/mapping.py), what a robot in the dark, in smoke or by
  glass walls navigates by (nav2's static layer can subscribe to it).

A transform that has not arrived is waited for up to ``tf_timeout``; an echo
still without one is counted in /diagnostics (inputs ``occupancy``: the
camera pose, ``map``: the odometry) and left out of what needs it, never
guessed. The model's contract (sample rate, channels, window, array
geometry) must match the configured array and range, or the node refuses
to start. A chunk that does not fit (channels, sample rate, too short) is
dropped and counted; a chirp emitter paused on purpose shows as a pause.
"""

from __future__ import annotations

import collections
import time

import numpy as np
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2, PointField

from av_perception.arrays import DEFAULT_ECHO_ARRAY, load_array
from av_perception.audio.chunk import AudioBlock
from av_perception.echo.features import spec_for
from av_perception.echo.mapping import EchoMap, FusionParams, MapGrid
from av_perception.echo.model import EchoDepthModel
from av_perception.echo.occupancy import (CameraMount, GridSpec, depth_points, depth_rays,
                                          ray_points, rasterize, rep117_depth)
from av_perception.echo.scan import rays_to_scan, scan_bins
from av_perception.geometry.tf_buffer import TransformError
from av_perception.ros.inputs import AudioInput
from av_perception.ros.messages import array_to_image, header, ns_to_stamp
from av_perception.ros.node import AvNode
from av_perception.ros.qos import AUDIO_LIVE, LATCHED, RELIABLE
from av_perception.ros.spin import node_main
from av_perception.ros.tf import TfListener

#: Seconds without an echo (and no pause announced) after which the input is stale.
ECHO_STALE_AFTER = 3.0
#: Echoes waiting for their transforms at most (the oldest are counted and dropped).
MAX_PENDING = 32

#: Topics this node publishes (besides /diagnostics); see nodes/__init__.py.
PUBLISHES = ('echo_depth/depth', 'echo_depth/camera_info', 'echo_depth/occupancy',
             'echo_depth/points', 'echo_depth/scan', 'echo_depth/map')


class _Pending:
    """An echo's depth waiting for the transforms its outputs need."""

    def __init__(self, depth: np.ndarray, stamp_ns: int) -> None:
        self.depth = depth
        self.stamp_ns = stamp_ns
        self.since = time.monotonic()
        self.mount: CameraMount | None = None


class EchoDepthNode(AvNode):
    """Depth image, scan, occupancy grid, echo map and points from echoes."""

    def __init__(self, **kwargs) -> None:
        super().__init__('echo_depth', **kwargs)
        model = self.param('model', '', 'ONNX echo-depth model ("": the shipped '
                           'models/echo_depth.onnx).', read_only=True)
        array_file = self.param('array', DEFAULT_ECHO_ARRAY, 'Echo array geometry: a name '
                                'under config/arrays/ or a path.', read_only=True)
        max_range = self.param('max_range', 12.0, 'Range the echo window covers [m] '
                               '(window = 2 max_range / 343 s).', lo=0.5, hi=100.0,
                               read_only=True)
        optical = self.param('optical_frame', '', 'Optical frame of the virtual camera (the '
                             'depth image, points); its pose comes from TF. "": '
                             '<echo array frame>_optical.', read_only=True)
        self.base_frame = self.param('base_frame', 'base_link', 'The robot\'s base frame (the '
                                     'occupancy grid; the map fuses its pose).', read_only=True)
        self.map_frame = self.param('map_frame', 'odom', 'Fixed frame of echo_depth/map (the '
                                    'odometry frame, REP 105).', read_only=True)
        scan_frame = self.param('scan_frame', '', 'Frame of echo_depth/scan, horizontal, at the '
                                'echo head ("": the echo array frame).', read_only=True)
        self.tf_timeout = self.param('tf_timeout', 0.5, 'How long an echo waits for its '
                                     'transforms [s] before it is counted as without TF.',
                                     lo=0.0, hi=10.0, read_only=True)
        size = self.param('grid_size', 10.0, 'Side of the occupancy grid [m].', lo=1.0,
                          hi=100.0, read_only=True)
        res = self.param('grid_resolution', 0.1, 'Occupancy cell size [m] (grid and map).',
                         lo=0.01, hi=1.0, read_only=True)
        z_min = self.param('obstacle_z_min', GridSpec.z_min, 'Lowest obstacle height in the '
                           'base frame [m] (lower, echo depth\'s floor errors become phantom '
                           'obstacles).', lo=-10.0, hi=10.0, read_only=True)
        z_max = self.param('obstacle_z_max', 2.0, 'Highest obstacle height in the base frame '
                           '[m].', lo=-10.0, hi=10.0, read_only=True)
        self.publish_points = self.param('publish_points', False, 'Also publish '
                                         'echo_depth/points (PointCloud2).',
                                         on_change='publish_points')
        self.map_period = self.param('map_period', 1.0, 'Period of echo_depth/map [s].',
                                     lo=0.1, hi=60.0, on_change=self._set_map_period)
        self.topic = self.param('audio_topic', 'audio/echo', 'AudioChunk echo input topic.',
                                read_only=True)
        geom = load_array(array_file)
        spec = spec_for(geom, max_range)
        self.net = EchoDepthModel(model or None, expect={
            'sample_rate': spec.sample_rate, 'channels': spec.channels, 'window': spec.window,
            'geometry': spec.geometry})
        self.get_logger().info(f'model {self.net.path} ({self.net.model_id}) on '
                               f'{self.net.provider}')
        self.optical_frame = optical or f'{geom.frame_id}_optical'
        self.scan_frame = scan_frame or geom.frame_id
        self.grid = GridSpec(size, res, z_min, z_max)
        self.fusion = FusionParams(resolution=res).check()
        self.map: EchoMap | None = None       # made with the first camera pose
        self.scan_layout: tuple[float, float, int] | None = None
        self.depth_pub = self.create_publisher(Image, 'echo_depth/depth', RELIABLE)
        self.info_pub = self.create_publisher(CameraInfo, 'echo_depth/camera_info', RELIABLE)
        self.occ_pub = self.create_publisher(OccupancyGrid, 'echo_depth/occupancy', RELIABLE)
        self.points_pub = self.create_publisher(PointCloud2, 'echo_depth/points', RELIABLE)
        self.scan_pub = self.create_publisher(LaserScan, 'echo_depth/scan', RELIABLE)
        self.map_pub = self.create_publisher(OccupancyGrid, 'echo_depth/map', LATCHED)
        self.pending: collections.deque[_Pending] = collections.deque()
        self.pose_stats = self.input('occupancy')
        self.map_stats = self.input('map')
        self.tf = TfListener(self, on_update=self._process_pending)
        # latest wins: a backlog of echoes would only delay the depth; an emitter
        # paused on purpose (audio/echo/enabled) shows as a pause, not as stale
        self.audio = AudioInput(self, self.topic, self.on_chunk, channels=spec.channels,
                                sample_rate=spec.sample_rate, stale_after=ECHO_STALE_AFTER,
                                qos=AUDIO_LIVE, continuous=False)
        self._retry = self.create_timer(0.05, self._process_pending)
        self._map_timer = self.create_timer(self.map_period, self._publish_map)
        self._last_stamp = 0
        self.monitor.set_fact('execution_provider', self.net.provider)
        self.monitor.set_fact('model_id', self.net.model_id)
        self.monitor.set_fact('array', f'{geom.name} ({geom.channels} mics, '
                                       f'{geom.sample_rate} Hz, {spec.window} samples per echo)')
        self.monitor.set_fact('frames', f'depth in {self.optical_frame}, scan in '
                                        f'{self.scan_frame}, grid in {self.base_frame}, map in '
                                        f'{self.map_frame}')

    def _set_map_period(self, seconds: float) -> None:
        self.map_period = seconds
        if hasattr(self, '_map_timer'):
            self._map_timer.cancel()
            self._map_timer = self.create_timer(seconds, self._publish_map)

    # ------------------------------------------------------------- echoes
    def on_chunk(self, block: AudioBlock) -> None:
        start = time.monotonic()
        depth = rep117_depth(self.net(block.samples, block.sample_rate), self.net.max_depth)
        hdr = header(block.stamp_ns, self.optical_frame)
        self.depth_pub.publish(array_to_image(depth, '32FC1', hdr))
        self.info_pub.publish(self.camera_info(hdr))
        if self.publish_points:
            self.points_pub.publish(self.points(depth, hdr))
        self.monitor.set_fact('inference_ms', f'{1e3 * (time.monotonic() - start):.1f}')
        self.pending.append(_Pending(depth, block.stamp_ns))
        while len(self.pending) > MAX_PENDING:
            self._without_tf(self.pending.popleft(), 'the echoes came faster than their '
                             'transforms')
        self._process_pending()

    def _process_pending(self) -> None:
        """Publish what each waiting echo's transforms now allow, in order;
        count and drop those that waited longer than tf_timeout."""
        buf = self.tf.buffer
        while self.pending:
            p = self.pending[0]
            expired = time.monotonic() - p.since > self.tf_timeout
            try:
                if p.mount is None:
                    cam = buf.lookup(self.base_frame, self.optical_frame, p.stamp_ns)
                    p.mount = CameraMount.from_optical(cam.xyz, cam.quat_xyzw)
                    scan_tf = buf.lookup(self.scan_frame, self.base_frame, p.stamp_ns)
                    self._publish_view(p, scan_tf)
                pose = buf.lookup(self.map_frame, self.base_frame, p.stamp_ns)
            except TransformError as exc:
                if not expired:
                    return  # wait for it (a later TF message or the retry timer)
                self._without_tf(p, str(exc))
                self.pending.popleft()
                continue
            self._fuse(p, pose)
            self.pending.popleft()

    def _without_tf(self, p: _Pending, why: str) -> None:
        stats = self.pose_stats if p.mount is None else self.map_stats
        stats.on_receive(time.monotonic())
        self.drop('occupancy' if p.mount is None else 'map', 'no_transform',
                  f'expected the transform within {self.tf_timeout} s, got: {why}')

    def _publish_view(self, p: _Pending, scan_tf) -> None:
        """This echo's occupancy grid (base frame) and laser scan."""
        self.pose_stats.on_receive(time.monotonic())
        rays = depth_rays(p.depth, self.net.k, p.mount, self.grid, self.net.max_depth)
        grid = rasterize(*ray_points(rays, self.grid), self.grid)
        self.occ_pub.publish(self.grid_msg(MapGrid(grid, self.grid.resolution, self.grid.origin,
                                                   self.base_frame), p.stamp_ns))
        if self.scan_layout is None:  # the optical axis' azimuth in the scan frame
            axis = scan_tf.matrix[:3, :3] @ p.mount.optical_to_base()[0] @ [0.0, 0.0, 1.0]
            self.scan_layout = scan_bins(self.net.k, self.net.width,
                                         float(np.arctan2(axis[1], axis[0])))
        scan = rays_to_scan(rays, scan_tf.apply, *self.scan_layout, self.net.max_depth)
        msg = LaserScan(header=header(p.stamp_ns, self.scan_frame), angle_min=scan.angle_min,
                        angle_max=scan.angle_max, angle_increment=scan.angle_increment,
                        range_min=0.05, range_max=scan.range_max)
        msg.ranges = scan.ranges.tolist()
        self.scan_pub.publish(msg)
        self.pose_stats.on_processed(time.monotonic() - p.since)

    def _fuse(self, p: _Pending, pose) -> None:
        self.map_stats.on_receive(time.monotonic())
        if self.map is None:
            self.map = EchoMap(self.fusion, self.map_frame, self.grid, p.mount,
                               self.net.max_depth)
        self.map.mount = p.mount
        self.map.add_depth(p.depth, self.net.k, pose)
        self._last_stamp = max(self._last_stamp, p.stamp_ns)
        self.map_stats.on_processed(time.monotonic() - p.since)
        self.monitor.set_fact('map_echoes', self.map.echoes)

    def _publish_map(self) -> None:
        if self.map is not None and self.map.echoes:
            self.map_pub.publish(self.grid_msg(self.map.occupancy(), self._last_stamp))

    # ----------------------------------------------------------- messages
    def grid_msg(self, grid: MapGrid, stamp_ns: int) -> OccupancyGrid:
        msg = OccupancyGrid(header=header(stamp_ns, grid.frame_id))
        msg.info.map_load_time = ns_to_stamp(stamp_ns)
        msg.info.resolution = float(grid.resolution)
        msg.info.height, msg.info.width = (int(v) for v in grid.data.shape)
        msg.info.origin.position.x, msg.info.origin.position.y = (float(v) for v in grid.origin)
        msg.info.origin.orientation.w = 1.0
        msg.data = grid.data.reshape(-1).tolist()
        return msg

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
        """Surface points (return 1) and, along no-return pixels, clearing
        points at the range (return 0)."""
        surface = depth_points(depth, self.net.k).reshape(-1, 3)
        clear = depth_points(np.where(np.isposinf(depth), self.net.max_depth, np.nan),
                             self.net.k).reshape(-1, 3)
        finite = [(p[np.isfinite(p).all(axis=1)], r) for p, r in ((surface, 1.0), (clear, 0.0))]
        pts = [np.c_[p, np.full(len(p), r)] for p, r in finite]
        data = np.ascontiguousarray(np.concatenate(pts), np.float32)
        msg = PointCloud2(header=hdr, height=1, width=len(data), is_bigendian=False,
                          point_step=16, row_step=16 * len(data), is_dense=True)
        msg.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                      for i, n in enumerate(('x', 'y', 'z', 'return'))]
        msg.data = data.tobytes()
        return msg


def main(argv=None) -> int:
    return node_main(EchoDepthNode, argv)
