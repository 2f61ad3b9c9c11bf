"""Camera renderer of the simulated world (pybullet, CPU TinyRenderer, no ROS).

One :class:`SceneRenderer` per scene: it opens its own pybullet client in
DIRECT mode, builds the room once (floor and ceiling as thin slabs over the
bounding box ``[0, Lx] x [0, Ly]``, each wall of the floor plan as a thin box
just outside it, plus every ``scene.boxes`` entry) with procedural textures
and the scene's light, and then renders the robot's camera at any
:class:`~av_perception.sim.scene.Pose2D`:

* ``rgb``: H x W x 3 uint8, row 0 at the top, column 0 at the left;
* ``depth``: H x W float32, metres along the optical z axis (planar depth,
  not ray length); ``+inf`` where nothing lies closer than the far plane
  (REP 118);
* ``labels``: H x W int32, index into ``scene.boxes`` of the object seen at
  each pixel, -1 for room surfaces (and for nothing).

Camera model (``CameraSpec``): at ``camera.xyz`` in the base frame, looking
along base +x, pinhole with fx = fy = (W/2)/tan(hfov/2) and principal point
(W/2, H/2); optical frame z forward, x right, y down. Pixel coordinates
follow OpenCV and ROS ``CameraInfo``: pixel (u, v) (column, row, integers)
samples the ray ``K^-1 (u, v, 1)``, i.e. integer coordinates are pixel
centres, and a point (X, Y, Z) in the optical frame appears at
(fx X / Z + cx, fy Y / Z + cy).

Several renderers may live in one process (each has its own client) and in
parallel worker processes (texture files are cached in
:func:`~av_perception.sim.texture_cache.cache_dir`: per process, or one per
`simulate` run that its workers share).
"""

from __future__ import annotations

import functools
import math
import os
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet as p
from PIL import Image

from av_perception.sim.scene import (DEFAULT_LIGHTING, SHIFT_TEXTURES, TEXTURES, Pose2D, Scene,
                                     base_to_world)
from av_perception.robot import RobotSpec
from av_perception.sim.texture_cache import cache_dir

__all__ = ['View', 'SceneRenderer', 'source_mask', 'texture_image', 'TEXTURE_SIZE',
           'TEXTURE_TILE_M', 'WALL_THICKNESS']

#: Texels per side of a texture tile.
TEXTURE_SIZE = 256
#: World size of one texture tile [m] (textures repeat every this many metres).
TEXTURE_TILE_M = 2.0
#: Thickness of the floor, ceiling and wall boxes (outside the interior) [m].
WALL_THICKNESS = 0.1

#: Every texture the renderer draws: the training families and the shifted split's.
ALL_TEXTURES = TEXTURES + SHIFT_TEXTURES


@dataclass
class View:
    """One camera image.

    Attributes:
        rgb: H x W x 3 uint8.
        depth: H x W float32, planar depth (optical z) [m]; +inf beyond far.
        labels: H x W int32, ``scene.boxes`` index per pixel, -1 elsewhere.
    """

    rgb: np.ndarray
    depth: np.ndarray
    labels: np.ndarray


def source_mask(view: View, box_index: int) -> np.ndarray:
    """H x W uint8 mask: 255 on the pixels of ``scene.boxes[box_index]``, else 0."""
    return np.where(view.labels == int(box_index), np.uint8(255), np.uint8(0))


# ------------------------------------------------------------------ textures
def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f'av_perception.texture:{name}'.encode()))


@functools.lru_cache(maxsize=32)
def _pattern(name: str, n: int = TEXTURE_SIZE) -> np.ndarray:
    """Grey pattern in [0, 1] (n x n float, read-only) of :func:`_make_pattern`,
    made once per process (rooms tint the same few patterns in many colours)."""
    pattern = _make_pattern(name, n)
    pattern.setflags(write=False)
    return pattern


def _make_pattern(name: str, n: int) -> np.ndarray:
    """Grey pattern in [0, 1] (n x n float), deterministic per name.

    Feature sizes are ~10-30 cm at a 2 m tile (n = 256 texels), coarse enough
    to survive a 128 px camera at a few metres, with non-periodic variation
    (jittered sizes and intensities) so that local features are distinctive.
    """
    if name not in ALL_TEXTURES:
        raise ValueError(f'unknown texture {name!r}; expected one of {ALL_TEXTURES}')
    rng = _rng(name)
    v, u = np.mgrid[0:n, 0:n]
    s = n / 256.0  # texels per nominal texel
    lo, hi = 0.42, 1.0
    if name == 'plain':
        return np.ones((n, n))
    if name == 'checker':
        cell = int(32 * s)
        q = ((u // cell) + (v // cell)) % 2
        jitter = rng.uniform(-0.08, 0.08, (n // cell + 1, n // cell + 1))
        return np.clip(np.where(q == 0, hi, lo) + jitter[v // cell, u // cell], 0, 1)
    if name == 'stripes':
        # vertical stripes of random widths, alternating light/dark, plus a
        # few horizontal breaks so that stripe ends give corners
        edges = np.cumsum(rng.integers(int(12 * s), int(36 * s), 64))
        edges = edges[edges < n]
        idx = np.searchsorted(edges, u[0], side='right')
        col = np.where(idx % 2 == 0, hi, lo) + rng.uniform(-0.06, 0.06, idx.max() + 1)[idx]
        img = np.broadcast_to(col, (n, n)).copy()
        for _ in range(6):
            r0 = int(rng.integers(0, n - int(20 * s)))
            c0, c1 = sorted(rng.integers(0, n, 2))
            img[r0:r0 + int(8 * s), c0:c1 + 1] = lo + 0.5 * (hi - lo)
        return np.clip(img, 0, 1)
    if name == 'grid':
        cell, line = int(40 * s), int(7 * s)
        on = ((u % cell) < line) | ((v % cell) < line)
        fill = rng.uniform(0.72, 1.0, (n // cell + 1, n // cell + 1))[v // cell, u // cell]
        return np.where(on, lo - 0.05, fill)
    if name == 'noise':
        cell = int(16 * s)
        k = n // cell
        blocks = rng.uniform(lo - 0.05, hi, (k, k))
        return np.kron(blocks, np.ones((cell, cell)))[:n, :n]
    if name == 'wood':
        # planks along u with dark seams, staggered plank ends, soft grain
        plank_h = int(36 * s)
        row = v // plank_h
        nrows = n // plank_h + 1
        offs = rng.integers(0, n, nrows)
        plank_len = int(128 * s)
        uu = (u + offs[row]) % n
        pid = row * 4 + uu // plank_len
        shade = rng.uniform(0.62, 0.95, nrows * 4 + 4)[pid]
        phase = rng.uniform(0, 2 * np.pi, nrows * 4 + 4)[pid]
        grain = 0.08 * np.sin(2 * np.pi * v / (9.0 * s) + 0.6 * np.sin(2 * np.pi * u / (70 * s))
                              + phase)
        seam = ((v % plank_h) < int(3 * s)) | ((uu % plank_len) < int(3 * s))
        return np.clip(np.where(seam, 0.3, shade + grain), 0, 1)
    if name == 'bricks':
        bh, bw, mortar = int(24 * s), int(64 * s), int(4 * s)
        row = v // bh
        shift = np.where(row % 2 == 0, 0, bw // 2)
        col = (u + shift) // bw
        local_u = (u + shift) % bw
        ncol = n // bw + 2
        tone = rng.uniform(0.45, 0.85, (n // bh + 1, ncol))[row, col]
        is_mortar = ((v % bh) < mortar) | (local_u < mortar)
        return np.where(is_mortar, 1.0, tone)
    if name == 'dots':
        img = np.full((n, n), hi)
        cell = int(40 * s)
        for cy in range(cell // 2, n, cell):
            for cx in range(cell // 2, n, cell):
                jy, jx = rng.integers(-cell // 5, cell // 5 + 1, 2)
                r = rng.uniform(6 * s, 12 * s)
                tone = rng.uniform(lo - 0.1, lo + 0.15)
                # wrap-around distance so that the tile repeats seamlessly
                dy = (v - (cy + jy) + n // 2) % n - n // 2
                dx = (u - (cx + jx) + n // 2) % n - n // 2
                img[dy * dy + dx * dx <= r * r] = tone
        return img
    return _shift_pattern(name, rng, u, v, s, lo, hi)


def _smooth_noise(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    """n x n smooth random field in [0, 1], periodic over the tile
    (``cells`` x ``cells`` random values, bilinear, wrapped)."""
    grid = rng.uniform(0.0, 1.0, (cells, cells))
    t = np.arange(n) * cells / n
    i0 = np.floor(t).astype(int)
    f = t - i0
    i1 = (i0 + 1) % cells
    rows = grid[i0][:, i0] * (1 - f)[None, :] + grid[i0][:, i1] * f[None, :]
    rows1 = grid[i1][:, i0] * (1 - f)[None, :] + grid[i1][:, i1] * f[None, :]
    return rows * (1 - f)[:, None] + rows1 * f[:, None]


def _shift_pattern(name, rng, u, v, s, lo, hi) -> np.ndarray:
    """The texture families only the shifted split has (see :func:`_make_pattern`)."""
    n = u.shape[0]
    if name == 'marble':
        # light stone with dark, meandering veins
        turb = (_smooth_noise(rng, n, 4) + 0.5 * _smooth_noise(rng, n, 8)
                + 0.25 * _smooth_noise(rng, n, 16))
        veins = np.abs(np.sin(2 * np.pi * (u + v) / n * 2 + 5.0 * turb))
        return np.clip(0.55 + 0.45 * veins ** 0.3 - 0.1 * _smooth_noise(rng, n, 32), 0, 1)
    if name == 'hexagons':
        # hexagonal tiles of random tones with dark joints
        r = 22.0 * s
        qx = u / (1.5 * r)
        col = np.floor(qx).astype(int)
        vv = v / (np.sqrt(3) * r) - 0.5 * (col % 2)
        row = np.floor(vv).astype(int)
        # distance to the nearest of the candidate centres (own and neighbours)
        best = np.full(u.shape, np.inf)
        ids = np.zeros(u.shape, int)
        edge = np.zeros(u.shape)
        for dc in (-1, 0, 1):
            c = col + dc
            for dr in (-1, 0, 1):
                rr = row + dr
                dx = u - (c + 0.5) * 1.5 * r
                dy = v - (rr + 0.5 + 0.5 * (c % 2)) * np.sqrt(3) * r
                d = np.hypot(dx, dy)  # the nearest centre's cell is a hexagon
                closer = d < best
                best = np.where(closer, d, best)
                ids = np.where(closer, (c * 131 + rr * 17) % 997, ids)
                # hexagonal norm (flat-topped cell of circumradius r): 1 on its rim
                hexn = np.maximum(np.abs(dy), (np.sqrt(3) * np.abs(dx) + np.abs(dy)) / 2)
                edge = np.where(closer, hexn / (np.sqrt(3) / 2 * r), edge)
        tone = rng.uniform(0.5, 1.0, 997)[ids]
        return np.where(edge > 0.88, lo - 0.1, tone)
    if name == 'herringbone':
        # parquet: planks at +-45 degrees in alternating columns
        w, length = 12.0 * s, 48.0 * s
        a = (u + v) / np.sqrt(2)
        b = (u - v) / np.sqrt(2)
        zig = (np.floor(a / length) + np.floor(b / length)) % 2 == 0
        along, across = np.where(zig, a, b), np.where(zig, b, a)
        pid = (np.floor(across / w) * 7 + np.floor(along / length) * 3).astype(int) % 101
        seam = (np.mod(across, w) < 1.5 * s) | (np.mod(along, length) < 1.5 * s)
        shade = rng.uniform(0.55, 0.95, 101)[pid]
        return np.where(seam, 0.3, shade)
    if name == 'terrazzo':
        # pale matrix with chips of many sizes and tones
        img = 0.85 + 0.08 * _smooth_noise(rng, n, 16)
        for _ in range(int(260 * s * s)):
            cy, cx = rng.uniform(0, n, 2)
            r = rng.uniform(2.0, 9.0) * s
            k = int(np.ceil(r / np.sqrt(0.6))) + 1  # the chip's window, wrapped at the edges
            rows = np.arange(int(cy) - k, int(cy) + k + 1)
            cols = np.arange(int(cx) - k, int(cx) + k + 1)
            dy, dx = np.meshgrid(rows - cy, cols - cx, indexing='ij')
            chip = dy * dy + 0.6 * dx * dx <= r * r
            window = np.ix_(rows % n, cols % n)
            img[window] = np.where(chip, rng.uniform(0.2, 0.7), img[window])
        return img
    if name == 'waves':
        # wavy bands of alternating tone
        phase = 2 * np.pi * v / n * 6 + 1.5 * np.sin(2 * np.pi * u / n * 3)
        band = np.floor(phase / np.pi).astype(int) % 7
        return rng.uniform(lo, hi, 7)[band] + 0.05 * np.sin(phase * 4)
    raise AssertionError(name)  # pragma: no cover - ALL_TEXTURES covers all names


def texture_image(name: str, color, size: int = TEXTURE_SIZE) -> np.ndarray:
    """The texture ``name`` tinted by ``color`` (RGB in [0, 1]): size x size x 3 uint8.

    Deterministic in (name, color, size).
    """
    c = np.clip(np.asarray(color, dtype=float).reshape(3), 0.0, 1.0)
    img = _pattern(name, size)[:, :, None] * c[None, None, :] * 255.0
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _texture_file(name: str, color) -> Path:
    """PNG of the texture (cached in ``cache_dir()``; written atomically, so
    processes sharing the cache never read half a file)."""
    c = tuple(int(round(float(x) * 255)) for x in np.clip(np.asarray(color, float), 0, 1))
    path = cache_dir() / f'{name}_{c[0]:02x}{c[1]:02x}{c[2]:02x}.png'
    if not path.exists():
        tmp = path.with_name(f'.{path.stem}.{os.getpid()}.{threading.get_ident()}.png')
        # uncompressed: pybullet reads it once, and deflating it cost more than drawing it
        Image.fromarray(texture_image(name, np.asarray(c) / 255.0)).save(tmp, compress_level=0)
        os.replace(tmp, path)
    return path


# -------------------------------------------------------------------- meshes
# Faces of an axis-aligned box: (normal axis, sign). For each face the texture
# u runs along the first in-plane axis, v along the second (z on vertical
# faces, so patterns stand upright on walls and sides).
_FACES = ((0, -1), (0, 1), (1, -1), (1, 1), (2, -1), (2, 1))
_INPLANE = {0: (1, 2), 1: (0, 2), 2: (0, 1)}


def _box_mesh(size) -> tuple[list, list, list, list]:
    """Vertices (centred on the origin), indices, normals and uvs of a box whose
    texture repeats every TEXTURE_TILE_M metres."""
    half = np.asarray(size, dtype=float) / 2.0
    verts, normals, uvs, idx = [], [], [], []
    for axis, sign in _FACES:
        a, b = _INPLANE[axis]
        n = [0.0, 0.0, 0.0]
        n[axis] = float(sign)
        corners = []
        for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            q = [0.0, 0.0, 0.0]
            q[axis] = sign * half[axis]
            q[a] = sa * half[a]
            q[b] = sb * half[b]
            corners.append(q)
        # counter-clockwise seen from outside the box
        e1 = np.subtract(corners[1], corners[0])
        e2 = np.subtract(corners[2], corners[0])
        order = (0, 1, 2, 3) if np.dot(np.cross(e1, e2), n) > 0 else (0, 3, 2, 1)
        base = len(verts)
        for k in order:
            q = corners[k]
            verts.append(q)
            normals.append(n)
            uvs.append([(q[a] + half[a]) / TEXTURE_TILE_M, (q[b] + half[b]) / TEXTURE_TILE_M])
        idx += [base, base + 1, base + 2, base, base + 2, base + 3]
    return verts, idx, normals, uvs


def _room_boxes(scene: Scene) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    """(surface, lo, hi, yaw) of the thin boxes enclosing the room: floor and
    ceiling slabs over the bounding box, and a box just outside each wall of
    the floor plan (``yaw`` [rad] turns it about +z around its centre from
    the axis-aligned [lo, hi]; 0 for walls along an axis, which are given in
    the world frame). Walls extend by the thickness past convex corners, so
    the corners are closed, and not past reflex ones, where they would reach
    into the room."""
    lx, ly, lz = (float(v) for v in scene.size)
    t = WALL_THICKNESS
    out = [('floor', np.array([-t, -t, -t]), np.array([lx + t, ly + t, 0.0]), 0.0),
           ('ceiling', np.array([-t, -t, lz]), np.array([lx + t, ly + t, lz + t]), 0.0)]
    walls = scene.walls
    n = len(walls)
    for i, (name, a, b) in enumerate(walls):
        d = b - a
        length = float(np.hypot(*d))
        u = d / length
        normal = np.array([u[1], -u[0]])  # outwards: the room is on the left
        before, after = walls[i - 1], walls[(i + 1) % n]
        ext_a = t if _turn(before[2] - before[1], d) > 0 else 0.0
        ext_b = t if _turn(d, after[2] - after[1]) > 0 else 0.0
        if u[0] == 0.0 or u[1] == 0.0:  # along an axis: an axis-aligned box
            pts = np.array([a - ext_a * u, b + ext_b * u])
            pts = np.vstack([pts, pts + t * normal])
            out.append((name, np.append(pts.min(axis=0), -t), np.append(pts.max(axis=0), lz + t),
                        0.0))
            continue
        centre = (a - ext_a * u + b + ext_b * u) / 2 + normal * t / 2
        half = np.array([(length + ext_a + ext_b) / 2, t / 2])
        out.append((name, np.append(centre - half, -t), np.append(centre + half, lz + t),
                    float(np.arctan2(u[1], u[0]))))
    return out


def _turn(a, b) -> float:
    """z of the cross product of two 2-D vectors: > 0 where b turns left of a."""
    return float(a[0] * b[1] - a[1] * b[0])


# ------------------------------------------------------------------ renderer
class SceneRenderer:
    """Renders the robot's camera in one scene (own pybullet DIRECT client).

    Use as a context manager, or call :meth:`close` when done.
    """

    def __init__(self, scene: Scene, robot: RobotSpec) -> None:
        self.scene = scene
        self.robot = robot
        cam = robot.camera
        self.width, self.height = int(cam.width), int(cam.height)
        self.near, self.far = float(cam.near), float(cam.far)
        if not (0.0 < self.near < self.far):
            raise ValueError(f'camera clipping planes must satisfy 0 < near < far, '
                             f'got {self.near}, {self.far}')
        self.K = cam.K
        self.fx = float(cam.fx)
        fov_y = math.degrees(2.0 * math.atan((self.height / 2.0) / self.fx))
        proj = list(p.computeProjectionMatrixFOV(fov=fov_y, aspect=self.width / self.height,
                                                 nearVal=self.near, farVal=self.far))
        # TinyRenderer samples column u at x = u (OpenCV convention already)
        # but row v at y = v + 1 (its vertical flip); shift the image down by
        # one row so that pixel (u, v) sees the ray K^-1 (u, v, 1). Column-major
        # element 9 is P[1][2]: y_ndc -= P[1][2].
        proj[9] = 2.0 / self.height
        self._proj = tuple(proj)
        self._client = p.connect(p.DIRECT)
        if self._client < 0:
            raise RuntimeError('pybullet: cannot open a DIRECT client')
        self._textures: dict[tuple, int] = {}
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------- building
    def _texture(self, name: str, color) -> int:
        key = (name, tuple(int(round(float(x) * 255)) for x in color))
        tex = self._textures.get(key)
        if tex is None:
            tex = p.loadTexture(str(_texture_file(name, color)), physicsClientId=self._client)
            if tex < 0:
                raise RuntimeError(f'pybullet: cannot load texture {name} {color}')
            self._textures[key] = tex
        return tex

    def _add_box(self, lo, hi, color, texture: str, yaw: float = 0.0) -> int:
        """A textured box [lo, hi] (world frame [m]) turned by ``yaw`` [rad]
        about +z around its centre."""
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        size = hi - lo
        if np.any(size <= 0):
            raise ValueError(f'box with non-positive size {size.tolist()}')
        verts, idx, normals, uvs = _box_mesh(size)
        vis = p.createVisualShape(p.GEOM_MESH, vertices=verts, indices=idx, normals=normals,
                                  uvs=uvs, rgbaColor=[1, 1, 1, 1], physicsClientId=self._client)
        if vis < 0:
            raise RuntimeError('pybullet: cannot create a visual shape')
        body = p.createMultiBody(baseMass=0.0, baseCollisionShapeIndex=-1,
                                 baseVisualShapeIndex=vis,
                                 basePosition=((lo + hi) / 2.0).tolist(),
                                 baseOrientation=p.getQuaternionFromEuler([0.0, 0.0, yaw]),
                                 physicsClientId=self._client)
        if body < 0:
            raise RuntimeError('pybullet: cannot create a body')
        p.changeVisualShape(body, -1, rgbaColor=[1, 1, 1, 1],
                            textureUniqueId=self._texture(texture, color),
                            physicsClientId=self._client)
        return body

    def _build(self) -> None:
        scene = self.scene
        owners: dict[int, int] = {}
        for surf, lo, hi, yaw in _room_boxes(scene):
            body = self._add_box(lo, hi, scene.wall_colors[surf],
                                 scene.wall_textures.get(surf, 'plain'), yaw)
            owners[body] = -1
        for i, box in enumerate(scene.boxes):
            body = self._add_box(box.lo, box.hi, box.color, box.texture)
            owners[body] = i
        # segmentation id -> label; the last entry serves id -1 (nothing drawn)
        lut = np.full(max(owners) + 2, -1, dtype=np.int32)
        for body, label in owners.items():
            lut[body] = label
        self._label_lut = lut

    # ------------------------------------------------------------ rendering
    def camera_eye(self, pose: Pose2D) -> np.ndarray:
        """The camera's optical centre in the world frame at ``pose``."""
        return base_to_world(pose, self.robot.camera.xyz)

    def view_matrix(self, pose: Pose2D):
        eye = self.camera_eye(pose)
        fwd = np.array([math.cos(pose.yaw), math.sin(pose.yaw), 0.0])
        return p.computeViewMatrix(cameraEyePosition=eye.tolist(),
                                   cameraTargetPosition=(eye + fwd).tolist(),
                                   cameraUpVector=[0.0, 0.0, 1.0])

    def render(self, pose: Pose2D) -> View:
        """Render the camera with the robot base at ``pose``."""
        if self._client is None:
            raise RuntimeError('SceneRenderer is closed')
        w, h = self.width, self.height
        light = self.scene.lighting or DEFAULT_LIGHTING
        _, _, rgba, zbuf, seg = p.getCameraImage(
            w, h, viewMatrix=self.view_matrix(pose), projectionMatrix=self._proj,
            lightDirection=list(light.direction), lightColor=list(light.color), shadow=0,
            lightAmbientCoeff=light.ambient, lightDiffuseCoeff=light.diffuse,
            lightSpecularCoeff=light.specular, renderer=p.ER_TINY_RENDERER,
            physicsClientId=self._client)
        rgb = np.ascontiguousarray(np.reshape(rgba, (h, w, 4))[:, :, :3], dtype=np.uint8)
        zbuf = np.reshape(zbuf, (h, w)).astype(np.float64)
        seg = np.reshape(seg, (h, w)).astype(np.int64)
        near, far = self.near, self.far
        depth = (far * near / (far - (far - near) * zbuf)).astype(np.float32)
        # ids >= 2**24 would carry link indices; we ask for object ids only
        labels = self._label_lut[np.clip(seg, -1, len(self._label_lut) - 2)]
        depth[seg < 0] = np.inf
        return View(rgb=rgb, depth=depth, labels=labels.astype(np.int32, copy=False))

    # ------------------------------------------------------------ lifetime
    def close(self) -> None:
        client, self._client = getattr(self, '_client', None), None
        if client is not None and client >= 0:
            try:
                p.disconnect(physicsClientId=client)
            except p.error:
                pass

    def __enter__(self) -> SceneRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; prefer close()
        try:
            self.close()
        except Exception:
            pass
