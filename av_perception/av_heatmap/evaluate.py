"""Scoring audio-visual localization on any bags that carry
``camera/image_raw``, ``audio/raw``, ``camera/camera_info``, the array ->
camera transform on /tf_static, and ``gt/source_mask``
(``av-perception eval av-heatmap`` and bench/av_heatmap.py).

Scored samples are the images whose mask is non-empty (the sounding object
is in view); every such image is scored, whatever its size or place. A
sample whose audio is silent gets no heatmap from the node and counts as a
failure for the methods that listen (pointing miss, pixel AUC 0.5, cIoU 0).

Metrics per sample (:mod:`.metrics`): ``pointing`` (peak within width/32 px
of the mask), ``pixel_auc`` (AUC-ROC of the map against the mask),
``size_ciou`` (top-|G| pixels), and the paper's ``ciou`` (median
threshold); summaries: their means, the share of size-cIoU >= 0.5, the
paper's cIoU success rate and AUC, retrieval R@1/5/10 among 100 candidates
for the models.

Methods, all on the same samples in one run:

- ``center_prior``: a Gaussian in the image's centre;
- ``random``: independent uniform pixel values (a random peak);
- ``acoustic``: the array's SRP-PHAT acoustic image projected into the
  image (marginalised over 0.5-6 m), times the fused model's horizon prior
  on the vertical axis (:func:`~av_perception.av_heatmap.projection.elevation_prior`:
  its contract's ``prior_sigma`` and ``prior_center``, 15 deg if it has none): the
  geometric cue alone, as the fused model takes it;
- ``alone``: an audio-visual model without the acoustic image (``--alone``);
- ``fused_semantic``: the fused model's own cosine map, without the
  acoustic image;
- ``fused``: the fused model (the node's heatmap).

``acoustic`` and ``fused`` take the acoustic memory of the last 1.5 s
(:class:`~av_perception.av_heatmap.projection.AcousticMemory`: the bag's windows in
time order, carried through its odometry on /tf, each weighted by its map's
contrast), as the node does;
``acoustic_window`` and ``fused_window`` take each image's own window alone.

Oracles (``oracle=True``; they read ground truth, they are not methods):
``oracle_direction`` / ``oracle_direction_fused``: the true directions of the
sounding sources (gt/sound_direction, azimuth only as the planar array)
as an acoustic image (3 deg Gaussian) alone (with the horizon prior) and
fused with the model; ``virtual_array`` / ``virtual_array_fused``: the
acoustic image of the simulator's 16-mic, 30 cm virtual array
(audio/teacher, bags made with ``simulate --teacher``).

The bags' array stream must be the model's array (``array``: channels and
sample rate), and their camera (``camera/camera_info``) must have the field
of view the model was trained for, where the model says so (metadata
``hfov_deg``, written by ``train av-heatmap``; a model without it is scored
with a warning that the cameras were not checked). A bag without
gt/source_mask, camera/camera_info or the array -> camera transform, or that
fails those checks, is reported and left out.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from av_perception.arrays import load_array
from av_perception.audio.level import level_dbfs
from av_perception.av_heatmap import metrics
from av_perception.av_heatmap.dataset import MASK_TOPIC, NEEDS, AvSample, load_samples
from av_perception.av_heatmap.frontend import PRIOR_SIGMA_DEG
from av_perception.av_heatmap.heatmap import HEATMAP_SCALE, HeatmapModel, fused_score, to_heatmap
from av_perception.av_heatmap.projection import (AcousticImage, AcousticProjector, direction_map,
                                                 elevation_prior, grid_directions)
from av_perception.bag.contents import CAMERA_INFO, UnusableBag, each_bag, list_bags
from av_perception.errors import InputError

SILENCE_DBFS = -60.0
#: Default largest difference between a bag camera's and the model's field of view [deg].
HFOV_TOLERANCE_DEG = 5.0
#: the per-sample metrics
METRICS = ('pointing', 'pixel_auc', 'size_ciou', 'ciou')
#: what a silent window scores (the node publishes nothing)
FAILURE = {'pointing': 0.0, 'pixel_auc': 0.5, 'size_ciou': 0.0, 'ciou': 0.0}


@dataclass
class Scores:
    """Per-sample metrics of each method, and the models' embeddings."""

    values: dict = field(default_factory=dict)       # method -> metric -> [value]
    embeddings: dict = field(default_factory=dict)   # model method -> (audio [], image [])
    samples: int = 0         # images with audio
    silent: int = 0          # scored samples whose audio was silent
    object_share: list = field(default_factory=list)  # mask area / image area per scored sample

    def add(self, method: str, sample: dict) -> None:
        per = self.values.setdefault(method, {k: [] for k in METRICS})
        for k in METRICS:
            per[k].append(float(sample[k]))

    @property
    def methods(self) -> list[str]:
        return list(self.values)

    def summary(self, method: str, candidates: int = 100) -> dict:
        v = {k: np.asarray(x, float) for k, x in self.values[method].items()}
        out = {'pointing': round(float(v['pointing'].mean()), 4),
               'pixel_auc': round(float(v['pixel_auc'].mean()), 4),
               'size_ciou': round(float(v['size_ciou'].mean()), 4),
               'size_ciou_success': round(metrics.success_rate(v['size_ciou']), 4),
               'ciou': round(metrics.success_rate(v['ciou']), 4),
               'auc': round(metrics.auc(v['ciou']), 4),
               'mean_ciou': round(float(v['ciou'].mean()), 4), 'n': int(len(v['ciou']))}
        if method in self.embeddings:
            a, i = self.embeddings[method]
            r = metrics.retrieval(np.stack(a), np.stack(i), candidates)
            out.update({k: round(x, 4) if isinstance(x, float) else x for k, x in r.items()})
        return out


def sample_metrics(heatmap: np.ndarray, mask: np.ndarray) -> dict:
    """The four per-sample metrics of one map against one mask."""
    return {'pointing': float(metrics.pointing(heatmap, mask)),
            'pixel_auc': metrics.pixel_auc(heatmap, mask),
            'size_ciou': metrics.size_ciou(heatmap, mask), 'ciou': metrics.ciou(heatmap, mask)}


def _ranking(fused: np.ndarray) -> np.ndarray:
    """A fused score as a map in (0, 1] (the heatmap before its score)."""
    return np.exp((fused - fused.max()) / HEATMAP_SCALE).astype(np.float32)


class _Context:
    """What the methods share on a bag: projectors per view, priors."""

    def __init__(self, imager: AcousticImage, prior_sigma: float = PRIOR_SIGMA_DEG,
                 prior_center: float = 0.0) -> None:
        self.imager = imager
        # the horizon prior of the fused model's contract (the acoustic image
        # alone is scored as the fusion takes it)
        self.prior_sigma = prior_sigma or PRIOR_SIGMA_DEG
        self.prior_center = prior_center
        self._proj: dict = {}
        self._virtual: AcousticImage | None = None
        self._truth_dirs = grid_directions(np.radians(np.arange(-180.0, 180.0, 1.0)))

    def projector(self, view, directions: np.ndarray, key: str) -> AcousticProjector:
        k = (key, view.K.tobytes(), view.width, view.height, view.array_from_optical)
        if k not in self._proj:
            self._proj[k] = AcousticProjector(view, directions)
        return self._proj[k]

    def prior(self, view) -> np.ndarray:
        k = ('prior', view.K.tobytes(), view.width, view.height, view.array_from_optical)
        if k not in self._proj:
            self._proj[k] = elevation_prior(view, sigma_deg=self.prior_sigma,
                                            center_deg=self.prior_center)
        return self._proj[k]

    def acoustic(self, s: AvSample, window: int) -> np.ndarray:
        return self.projector(s.view, self.imager.directions, 'array').project(
            self.imager(s.audio[:, :window]))

    def truth(self, s: AvSample) -> np.ndarray | None:
        if not s.truth:
            return None
        power = np.max([direction_map(self._truth_dirs, [np.cos(az), np.sin(az), 0.0])
                        for az, _ in s.truth], axis=0)
        return self.projector(s.view, self._truth_dirs, 'truth').project(power)

    def virtual(self, s: AvSample, window: int) -> np.ndarray | None:
        if s.teacher is None:
            return None
        if self._virtual is None:
            self._virtual = AcousticImage(load_array('teacher16'), self.imager.kind)
        return self.projector(s.view, self._virtual.directions, 'virtual').project(
            self._virtual(s.teacher[:, :window]))


def score(bags_dir: str | Path, model: str | Path | None = None,
          alone: str | Path | None = None, namespace: str = '', array: str = 'respeaker4',
          oracle: bool = False, progress=None,
          hfov_tolerance: float = HFOV_TOLERANCE_DEG) -> Scores:
    """Score the fused model (default: the shipped one), an audio-visual
    model alone (``alone``, optional), the acoustic image alone and the
    baselines, bag by bag (module docstring).

    Raises:
        InputError: no usable bag, or no image with the sounding object in view.
    """
    geometry = load_array(array)
    hm = HeatmapModel(model, geometry)
    other = HeatmapModel(alone, geometry) if alone else None
    if not hm.fused:
        raise InputError('model', 'a model fused with the acoustic image (acoustic 1 in its '
                         'metadata; give a model alone with --alone)', str(model))
    model_fov = hm.model.metadata.get('hfov_deg')
    fov = None if model_fov is None else (float(model_fov), hfov_tolerance)
    if model_fov is None:
        print(f'warning: model {hm.model.path.name} does not say which field of view it was '
              'trained for (no hfov_deg in its metadata): the bags\' cameras are not checked',
              file=progress or sys.stderr, flush=True)
    ctx = _Context(hm.acoustic_image, hm.spec.prior_sigma, hm.spec.prior_center)
    rng = np.random.default_rng(0)
    out = Scores()
    bags = list_bags(bags_dir)
    index = {str(b): i for i, b in enumerate(bags)}

    def load(path: Path) -> None:
        samples = load_samples(path, hm.window, index[str(path)], namespace,
                               geometry=geometry, fov=fov, oracle=oracle)
        if samples and samples[0].view is None:
            raise UnusableBag(path, 'the transform from the array frame to the camera '
                              'optical frame on /tf_static or /tf', 'none')
        _score_bag(samples, hm, other, ctx, rng, oracle, out)

    each_bag(bags, load, (*NEEDS, MASK_TOPIC, CAMERA_INFO), namespace, 'av-heatmap scoring',
             progress or sys.stderr,
             (lambda: f'{len(out.object_share)} scored images') if progress is not None
             else None)
    if 'fused' not in out.values:
        raise InputError('bags', 'images whose gt/source_mask shows a sounding object',
                         f'none among {out.samples} images in {bags_dir}')
    return out


def _score_bag(samples: list[AvSample], hm: HeatmapModel, other: HeatmapModel | None,
               ctx: _Context, rng, oracle: bool, out: Scores) -> None:
    """Every method on one bag's samples (see :func:`score`)."""
    prior = None
    hm.memory.clear()
    for s in samples:
        out.samples += 1
        # every window joins the acoustic memory, in time order
        silent = level_dbfs(s.audio[:, :hm.window]) < SILENCE_DBFS
        a = None if silent else hm.acoustic(s.audio, s.view, s.stamp_ns, s.odom)
        if s.mask is None or not s.mask.any():
            continue
        h, w = s.mask.shape
        out.object_share.append(float(s.mask.mean()))
        if prior is None or prior.shape != (h, w):
            prior = metrics.center_prior(h, w)
        out.add('center_prior', sample_metrics(prior, s.mask))
        out.add('random', sample_metrics(metrics.random_map(h, w, rng), s.mask))
        horizon = ctx.prior(s.view)
        listening = ['acoustic', 'fused_semantic', 'fused', 'acoustic_window', 'fused_window'] \
            + (['alone'] if other else [])
        cos, ga, gv = hm.run([s.rgb], [s.audio[:, :hm.window]])
        out.embeddings.setdefault('fused', ([], []))
        out.embeddings['fused'][0].append(ga[0])
        out.embeddings['fused'][1].append(gv[0])
        if other is not None:
            cos_o, ga_o, gv_o = other.run([s.rgb], [s.audio[:, :other.window]])
            out.embeddings.setdefault('alone', ([], []))
            out.embeddings['alone'][0].append(ga_o[0])
            out.embeddings['alone'][1].append(gv_o[0])
        oracles = {}
        if oracle:
            # no direction known in the window (a pause): the oracle misses
            oracles = {'oracle_direction': ctx.truth(s),
                       'virtual_array': ctx.virtual(s, hm.window)}
            if s.teacher is None:
                oracles.pop('virtual_array')
            listening += [f'{k}{x}' for k in oracles for x in ('', '_fused')]
        if silent:
            out.silent += 1
            for k in listening:
                out.add(k, FAILURE)
            continue
        out.add('acoustic', sample_metrics(a * horizon, s.mask))
        cos_img = metrics.resize_map(cos[0], h, w)
        out.add('fused_semantic', sample_metrics(to_heatmap(cos[0], h, w), s.mask))
        out.add('fused', _fused_metrics(hm, cos_img, a, s))
        single = ctx.acoustic(s, hm.window)          # this window alone, no memory
        out.add('acoustic_window', sample_metrics(single * horizon, s.mask))
        out.add('fused_window', _fused_metrics(hm, cos_img, single, s))
        if other is not None:
            out.add('alone', sample_metrics(to_heatmap(cos_o[0], h, w), s.mask))
        for k, acoustic in oracles.items():
            if acoustic is None:
                out.add(k, FAILURE)
                out.add(f'{k}_fused', FAILURE)
            else:
                out.add(k, sample_metrics(acoustic * horizon, s.mask))
                out.add(f'{k}_fused', _fused_metrics(hm, cos_img, acoustic, s))


def _fused_metrics(hm: HeatmapModel, cos_img: np.ndarray, acoustic: np.ndarray,
                   s: AvSample) -> dict:
    """The fused model's metrics with a given projected acoustic image (the
    array's, or an oracle's), as the node fuses it."""
    geo = hm.geometric(acoustic, s.view)
    f = fused_score(cos_img.astype(np.float64), geo.astype(np.float64),
                    hm.spec.fusion_weight, hm.spec.fusion_floor)
    return sample_metrics(_ranking(f), s.mask)


#: summary keys, in printing order
SUMMARY_KEYS = ('pointing', 'pixel_auc', 'size_ciou', 'size_ciou_success', 'ciou', 'auc',
                'r1_a2i', 'r1_i2a', 'r10_a2i', 'n')


def print_summary(name: str, res: dict, file=sys.stdout) -> None:
    keys = [k for k in SUMMARY_KEYS if k in res]
    print(f'{name:24s} ' + '  '.join(f'{k} {res[k]}' for k in keys), file=file)
