"""Scoring audio-visual localization on any bags that carry
``camera/image_raw``, ``audio/raw`` and ``gt/source_mask``
(``av-perception eval av-heatmap`` and bench/av_heatmap.py).

Scored samples are the images whose mask is non-empty (the sounding object
is in view), as the paper's benchmarks score annotated frames only. A
sample whose audio is silent gets no heatmap from the node and counts as a
failure (cIoU 0). The centre prior is scored on the same samples.
Retrieval uses the same samples: the true partner among 100 candidates.

The bags' array stream must be the model's array (``array``: channels and
sample rate), and their camera (``camera/camera_info``) must have the field
of view the model was trained for, where the model says so (metadata
``hfov_deg``, written by ``train av-heatmap``; a model without it is scored
with a warning that the cameras were not checked). A bag without
gt/source_mask, or that fails those checks, is reported and left out.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from av_perception.arrays import load_array
from av_perception.avl import metrics
from av_perception.avl.dataset import MASK_TOPIC, NEEDS, load_folder
from av_perception.avl.heatmap import HeatmapModel, level_dbfs, to_heatmap

SILENCE_DBFS = -60.0
#: Default largest difference between a bag camera's and the model's field of view [deg].
HFOV_TOLERANCE_DEG = 5.0


@dataclass
class Scores:
    """Per-sample cIoU of each method, and the model's embeddings."""

    cious: dict = field(default_factory=dict)        # method -> [cIoU]
    audio_emb: list = field(default_factory=list)
    image_emb: list = field(default_factory=list)
    samples: int = 0         # images with audio
    silent: int = 0          # scored samples whose audio was silent

    def summary(self, method: str, candidates: int = 100) -> dict:
        c = self.cious[method]
        out = {'ciou': round(metrics.success_rate(c), 4), 'auc': round(metrics.auc(c), 4),
               'mean_ciou': round(float(np.mean(c)), 4), 'n': len(c)}
        if method != 'center_prior' and self.audio_emb:
            r = metrics.retrieval(np.stack(self.audio_emb), np.stack(self.image_emb), candidates)
            out.update({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()})
        return out


def score(bags_dir: str | Path, model: str | Path | None = None, namespace: str = '',
          array: str = 'respeaker4', raw_cosine: bool = False, progress=None,
          hfov_tolerance: float = HFOV_TOLERANCE_DEG) -> Scores:
    """Score a model (default: the shipped one) and the centre prior.

    With ``raw_cosine`` the unclipped cosine map is scored as well (method
    ``model_raw_cosine``), to show what clipping at 0 changes.
    """
    geometry = load_array(array)
    hm = HeatmapModel(model, geometry)
    model_fov = hm.model.metadata.get('hfov_deg')
    samples = load_folder(bags_dir, hm.window, namespace, progress=progress, geometry=geometry,
                          fov=None if model_fov is None else (float(model_fov), hfov_tolerance),
                          needs=(*NEEDS, MASK_TOPIC))
    if model_fov is None:
        print(f'warning: model {hm.model.path.name} does not say which field of view it was '
              'trained for (no hfov_deg in its metadata): the bags\' cameras are not checked',
              file=progress or sys.stderr, flush=True)
    out = Scores(cious={'model': [], 'center_prior': []})
    if raw_cosine:
        out.cious['model_raw_cosine'] = []
    prior = None
    for s in samples:
        out.samples += 1
        if s.mask is None or not s.mask.any():
            continue
        h, w = s.mask.shape
        if prior is None or prior.shape != (h, w):
            prior = metrics.center_prior(h, w)
        out.cious['center_prior'].append(metrics.ciou(prior, s.mask))
        cos, ga, gv = hm.run([s.rgb], [s.audio])
        out.audio_emb.append(ga[0])
        out.image_emb.append(gv[0])
        if level_dbfs(s.audio) < SILENCE_DBFS:  # the node publishes nothing
            out.silent += 1
            for k in out.cious:
                if k != 'center_prior':
                    out.cious[k].append(0.0)
            continue
        out.cious['model'].append(metrics.ciou(to_heatmap(cos[0], h, w), s.mask))
        if raw_cosine:
            out.cious['model_raw_cosine'].append(metrics.ciou(cos[0], s.mask))
    if not out.cious['model']:
        from av_perception.errors import InputError
        raise InputError('bags', 'images whose gt/source_mask shows a sounding object',
                         f'none among {out.samples} images in {bags_dir}')
    return out


def print_summary(name: str, res: dict, file=sys.stdout) -> None:
    keys = [k for k in ('ciou', 'auc', 'mean_ciou', 'r1_a2i', 'r5_a2i', 'r10_a2i', 'r1_i2a',
                        'r5_i2a', 'r10_i2a', 'n') if k in res]
    print(f'{name:22s} ' + '  '.join(f'{k} {res[k]}' for k in keys), file=file)
