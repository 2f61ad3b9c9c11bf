"""Draw docs/echo_depth.png: for a few held-out test echoes, the echo (left
microphone's spectrogram), the depth the shipped student predicts from it,
the teacher's depth from the camera image, the ground truth, and the
occupancy grid made from the prediction (ground-truth obstacles in red).

    .venv/bin/python tools/echo_figure.py [--bags bench/.cache/doa_test] \
        [--out docs/echo_depth.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from av_perception.echo.evaluate import load_test
from av_perception.echo.model import EchoDepthModel
from av_perception.echo.occupancy import OCCUPIED, UNKNOWN, occupancy_from_depth
from av_perception.echo.teacher import Teacher
from av_perception.paths import shipped_model

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--bags', type=Path, default=ROOT / 'bench' / '.cache' / 'doa_test')
    ap.add_argument('--out', type=Path, default=ROOT / 'docs' / 'echo_depth.png')
    ap.add_argument('--rows', type=int, nargs='+', default=[3, 60, 130],
                    help='indices of the test echoes to show')
    args = ap.parse_args()
    net = EchoDepthModel()
    test = load_test(args.bags, net.spec, (net.height, net.width))
    teacher = Teacher(shipped_model('echo_teacher'), (net.height, net.width))
    rows = [r for r in args.rows if r < len(test.pairs.echo)]
    fig, axes = plt.subplots(len(rows), 6, figsize=(15, 2.9 * len(rows)))
    axes = np.atleast_2d(axes)
    vmax = 5.0
    for ax, i in zip(axes, rows):
        echo, rgb, gt = test.pairs.echo[i], test.pairs.rgb[i], test.pairs.gt[i]
        feats = net.features(echo)
        pred = net(echo)
        tdepth = teacher(rgb[None])[0][0]
        ax[0].imshow(feats[0], origin='lower', aspect='auto', cmap='magma',
                     extent=[0, 1e3 * net.spec.window / net.spec.sample_rate, 0,
                             net.spec.bins * net.spec.sample_rate / net.spec.n_fft / 1e3])
        ax[0].set_xlabel('ms after the chirp', fontsize=8)
        ax[0].set_ylabel('kHz')
        ax[1].imshow(rgb)
        for a, d in zip(ax[2:5], (pred, tdepth, gt)):
            a.imshow(d, cmap='turbo_r', vmin=0, vmax=vmax)
        grid = occupancy_from_depth(pred, net.k)
        ref = occupancy_from_depth(gt, net.k)
        show = np.full(grid.shape + (3,), 0.5)
        show[grid == 0] = 1.0
        show[grid == OCCUPIED] = 0.0
        show[(ref == OCCUPIED) & (grid != OCCUPIED)] = (0.9, 0.1, 0.1)
        show[(grid == UNKNOWN) & (ref != OCCUPIED)] = 0.5
        ax[5].imshow(show, origin='lower', extent=[-5, 5, -5, 5])
        ax[5].plot([0], [0], 'b^')
        ax[5].set_xlim(-1, 5)
        ax[5].set_ylim(-3, 3)
    for a, t in zip(axes[0], ('echo (left mic, log power)', 'camera (not used)',
                              'student (echo)', 'teacher (RGB)', 'ground truth',
                              'occupancy from the echo')):
        a.set_title(t, fontsize=9)
    for a in axes[:, 1:5].ravel():
        a.set_xticks([])
        a.set_yticks([])
    fig.colorbar(plt.cm.ScalarMappable(cmap='turbo_r', norm=plt.Normalize(0, vmax)),
                 ax=axes[:, 2:5].ravel().tolist(), label='depth [m]', shrink=0.8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=70, bbox_inches='tight')
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
