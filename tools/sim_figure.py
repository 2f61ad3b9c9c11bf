"""Draw one simulated sample (docs/sim_sample.png): camera image, depth,
sounding-object mask, occupancy, the echo of the chirp, the array and
binaural signals.

    .venv/bin/python tools/sim_figure.py [--scene 3] [--split test] [--out docs/sim_sample.png]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from av_perception.sim.scene import describe, generate_scene  # noqa: E402
from av_perception.sim.world import SceneSimulator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--scene', type=int, default=3)
    ap.add_argument('--split', default='test')
    ap.add_argument('--pose', type=int, default=0)
    ap.add_argument('--out', type=Path, default=Path('docs/sim_sample.png'))
    args = ap.parse_args()
    scene = generate_scene(args.scene, args.split)
    with SceneSimulator(scene) as sim:
        s = sim.slot(args.pose)
    fig, ax = plt.subplots(3, 3, figsize=(13, 11))
    ax[0, 0].imshow(s.rgb)
    ax[0, 0].set_title('camera/image_raw')
    im = ax[0, 1].imshow(s.depth, cmap='viridis')
    fig.colorbar(im, ax=ax[0, 1], label='m')
    ax[0, 1].set_title('gt/depth (optical z)')
    ax[0, 2].imshow(s.rgb)
    ax[0, 2].imshow(np.ma.masked_equal(s.source_mask, 0), cmap='autumn', alpha=0.6)
    ax[0, 2].set_title('gt/source_mask: ' + ', '.join(x.cls for x in scene.active_sources))
    occ = s.occupancy
    ext = [occ.origin[0], occ.origin[0] + occ.data.shape[1] * occ.resolution,
           occ.origin[1], occ.origin[1] + occ.data.shape[0] * occ.resolution]
    show = np.where(occ.data < 0, 50, 100 - occ.data)
    ax[1, 0].imshow(show, origin='lower', extent=ext, cmap='gray', vmin=0, vmax=100)
    ax[1, 0].arrow(0, 0, 0.8, 0, width=0.08, color='r')
    for d in s.directions['array']:
        ax[1, 0].plot([0, d.distance * math.cos(d.azimuth)],
                      [0, d.distance * math.sin(d.azimuth)], 'c--')
    ax[1, 0].set_title('gt/occupancy (base frame), source directions')
    ax[1, 0].set_xlabel('x [m]')
    ax[1, 0].set_ylabel('y [m]')
    rng_m = np.arange(s.echo.shape[1]) / s.echo_rate * 343.0 / 2
    for c, lab in enumerate(('left', 'right')):
        ax[1, 1].plot(rng_m, s.echo[c] + 0.3 * c, lw=0.5, label=lab)
    ax[1, 1].set_xlabel('range c t / 2 [m]')
    ax[1, 1].set_title('audio/echo (chirp at t=0, direct path first)')
    ax[1, 1].legend()
    env = np.abs(s.echo[:, 200:]).max()
    ax[1, 2].plot(rng_m, s.echo.mean(0), lw=0.5)
    ax[1, 2].set_ylim(-2 * env, 2 * env)
    centre = float(s.depth[s.depth.shape[0] // 2, s.depth.shape[1] // 2])
    ax[1, 2].axvline(centre, color='r', ls='--', label=f'depth at image centre {centre:.2f} m')
    ax[1, 2].set_xlabel('range [m]')
    ax[1, 2].set_title('echo, zoomed past the direct path')
    ax[1, 2].legend()
    t = np.arange(s.array.shape[1]) / s.stream_rate
    for c in range(s.array.shape[0]):
        ax[2, 0].plot(t, s.array[c] + 0.2 * c, lw=0.4)
    ax[2, 0].set_title('audio/raw (4-mic array)')
    ax[2, 0].set_xlabel('s')
    for c, lab in enumerate(('left', 'right')):
        ax[2, 1].plot(t, s.binaural[c] + 0.2 * c, lw=0.4, label=lab)
    ax[2, 1].set_title('audio/binaural')
    ax[2, 1].legend()
    spec = 20 * np.log10(np.abs(np.fft.rfft(s.array[0] * np.hanning(len(s.array[0])))) + 1e-9)
    ax[2, 2].plot(np.fft.rfftfreq(len(s.array[0]), 1 / s.stream_rate), spec, lw=0.5)
    ax[2, 2].set_xlabel('Hz')
    ax[2, 2].set_title('spectrum of mic 0')
    for a in (ax[0, 0], ax[0, 1], ax[0, 2]):
        a.axis('off')
    fig.suptitle(describe(scene), fontsize=9)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
