"""Draw overlays of the audio-visual heatmap on held-out images of the
robot's own path (docs/av_heatmap_overlays.png): per sample the camera
image with the sounding object's outline, the fused model's overlay with
its peak (+), the projected acoustic image alone, and the model without the
acoustic image; with each one's pointing hit or miss. Samples are spread
evenly over the benchmark's held-out bags with the object in view, not
chosen by score.

    .venv/bin/python tools/av_heatmap_figure.py [--bags bench/.cache/av_heatmap_test_path]
        [--model M] [--alone M] [--count 6] [--out docs/av_heatmap_overlays.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from av_perception.arrays import load_array  # noqa: E402
from av_perception.av_heatmap import metrics  # noqa: E402
from av_perception.av_heatmap.dataset import load_folder  # noqa: E402
from av_perception.av_heatmap.heatmap import ALONE_MODEL, HeatmapModel, overlay  # noqa: E402
from av_perception.av_heatmap.projection import elevation_prior  # noqa: E402
from av_perception.paths import shipped_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--bags', type=Path,
                    default=ROOT / 'bench' / '.cache' / 'av_heatmap_test_path')
    ap.add_argument('--model', type=Path, default=None)
    ap.add_argument('--alone', type=Path, default=shipped_model(ALONE_MODEL))
    ap.add_argument('--count', type=int, default=6)
    ap.add_argument('--out', type=Path, default=ROOT / 'docs' / 'av_heatmap_overlays.png')
    args = ap.parse_args()
    geom = load_array('respeaker4')
    model = HeatmapModel(args.model, geom)
    alone = HeatmapModel(args.alone, geom)
    samples = [s for s in load_folder(args.bags, model.window)
               if s.mask is not None and s.mask.any() and s.view is not None]
    pick = [samples[i] for i in np.linspace(0, len(samples) - 1, args.count).astype(int)]
    fig, axes = plt.subplots(4, len(pick), figsize=(2.2 * len(pick), 9.2))
    for j, s in enumerate(pick):
        w = s.audio[:, :model.window]
        loc = model.localize(s.rgb, w, s.view)
        acoustic = loc.acoustic * elevation_prior(s.view)
        other = alone.localize(s.rgb, w[:, :alone.window]).heatmap

        def hit(heat):
            return 'hit' if metrics.pointing(heat, s.mask) else 'miss'
        rows = [(s.rgb, f'image ({100 * s.mask.mean():.1f} % object)', None),
                (overlay(s.rgb, loc.heatmap / max(loc.score, 1e-6)),
                 f'fused, score {loc.score:.2f}: {hit(loc.fused)}', loc.peak),
                (overlay(s.rgb, acoustic), f'acoustic image alone: {hit(acoustic)}',
                 metrics.peak(acoustic, s.mask.shape)),
                (overlay(s.rgb, other), f'model without it: {hit(other)}',
                 metrics.peak(other, s.mask.shape))]
        for i, (img, title, peak) in enumerate(rows):
            ax = axes[i, j]
            ax.imshow(img)
            ax.contour(s.mask, levels=[0.5], colors='white', linewidths=0.8)
            if peak is not None:
                ax.plot([peak[1]], [peak[0]], marker='+', color='magenta', markersize=10, mew=2)
            ax.set_title(title, fontsize=7)
            ax.axis('off')
    fig.suptitle('av_heatmap on the robot\'s path through held-out rooms (white: the sounding '
                 'object, +: peak; overlays scaled to their peak)', fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
