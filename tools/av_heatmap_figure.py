"""Draw overlays of the audio-visual heatmap on held-out images
(docs/av_heatmap_overlays.png): per sample the camera image with the
sounding object's outline, the node's overlay, and its per-sample cIoU, for
the model and the centre prior. Reads the benchmark's held-out bags.

    .venv/bin/python tools/av_heatmap_figure.py [--bags bench/.cache/av_heatmap_test_sources]
        [--model M] [--count 6] [--out docs/av_heatmap_overlays.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from av_perception.arrays import load_array  # noqa: E402
from av_perception.avl import metrics  # noqa: E402
from av_perception.avl.dataset import load_folder  # noqa: E402
from av_perception.avl.heatmap import HeatmapModel, overlay  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--bags', type=Path, default=ROOT / 'bench' / '.cache' / 'av_heatmap_test_sources')
    ap.add_argument('--model', type=Path, default=None)
    ap.add_argument('--count', type=int, default=6)
    ap.add_argument('--out', type=Path, default=ROOT / 'docs' / 'av_heatmap_overlays.png')
    args = ap.parse_args()
    model = HeatmapModel(args.model, load_array('respeaker4'))
    samples = [s for s in load_folder(args.bags, model.window)
               if s.mask is not None and s.mask.mean() > 0.01]
    # evenly spread over the held-out rooms, not chosen by score
    pick = [samples[i] for i in np.linspace(0, len(samples) - 1, args.count).astype(int)]
    prior = metrics.center_prior(*pick[0].mask.shape)
    fig, axes = plt.subplots(3, len(pick), figsize=(2.2 * len(pick), 6.9))
    for j, s in enumerate(pick):
        heat = model.heatmap(s.rgb, s.audio)
        rows = [(s.rgb, 'image + sounding object'),
                (overlay(s.rgb, heat), f'model, cIoU {metrics.ciou(heat, s.mask):.2f}'),
                (overlay(s.rgb, prior), f'centre prior, cIoU {metrics.ciou(prior, s.mask):.2f}')]
        for i, (img, title) in enumerate(rows):
            ax = axes[i, j]
            ax.imshow(img)
            ax.contour(s.mask, levels=[0.5], colors='white', linewidths=0.8)
            ax.set_title(title, fontsize=7)
            ax.axis('off')
    fig.suptitle('av_heatmap on held-out rooms (white: the sounding object)', fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
