"""Scoring rotation and binaural direction on any bags that carry
``camera/image_raw``, ``camera/camera_info``, ``audio/binaural``, ``gt/pose``
and ``gt/sound_direction`` (``av-perception eval rotation`` and
bench/rotation); a bag without one of them, or whose camera's field of view
is not the model's, is reported and left out.

Yaw is scored on every pair of consecutive frames between which the robot
turned in place (``dataset.turn_pairs``: from gt/pose, up to
``--max-pair-seconds`` apart): the error is the absolute angle between the
estimated and the true yaw [deg]. The OpenCV baseline uses each bag's own
CameraInfo. The binaural direction is
scored on every frame's binaural segment in which exactly one source sounds
(gt/sound_direction), against its azimuth folded into the front half-plane:
the binaural direction network as each of its teachers trained it (from
motion, distilled from the acoustic image, from labels), beside the classic
baseline on the same segments, GCC-PHAT between the two ears
(``av_perception.direction.classic``, the delay's angle to the ear axis), and a
constant guess (straight ahead, 0).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from av_perception.arrays import load_array
from av_perception.direction.classic import ClassicDoa
from av_perception.errors import ConfigError
from av_perception.paths import shipped_model
from av_perception.rotation.dataset import BagOptions, load_all
from av_perception.rotation.estimate import (BinauralDirection, OpenCvRotation, VisualRotation,
                                             check_same_contract)
from av_perception.rotation.features import fold_front, wrap

#: Target of the issue: self-supervised median yaw error [deg].
TARGET_SELFSUP_DEG = 2.0
#: The binaural estimators scored, in report order: the network by each of
#: its teachers (shipped model files), GCC-PHAT, GCC-PHAT weighted by onsets
#: (the node's ``gcc_onset``), the constant guess.
BINAURAL_MODELS = {'binaural_motion': 'rotation_binaural',
                   'binaural_teacher': 'direction_binaural',
                   'binaural_labels': 'direction_binaural_labels'}
BINAURAL = (*BINAURAL_MODELS, 'binaural_gcc', 'binaural_gcc_onset', 'binaural_constant')


@dataclass
class Errors:
    """Absolute errors [deg] and the time per estimate [s] of one method."""

    errors_deg: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    failures: int = 0   # estimates the method could not make (counted with yaw 0)

    def summary(self, with_time: bool = True) -> dict:
        e = np.asarray(self.errors_deg, float)
        out = {'median_deg': round(float(np.median(e)), 2) if e.size else None,
               'mean_deg': round(float(e.mean()), 2) if e.size else None, 'n': int(e.size)}
        if with_time:
            out['ms_per_pair'] = (round(1e3 * float(np.median(self.seconds)), 2)
                                  if self.seconds else None)
        if self.failures:
            out['failures'] = self.failures
        return out


def _angle_deg(a: float, b: float) -> float:
    return float(np.degrees(abs(wrap(a - b))))


def score(bags_dir: str | Path, model: str | Path | None = None,
          labels_model: str | Path | None = None, binaural_models: dict | None = None,
          namespace: str = '', opencv: bool = True, progress=None,
          options: BagOptions = BagOptions(), loaded: tuple[list, list] | None = None
          ) -> dict[str, Errors]:
    """Errors of the self-supervised visual model (``model``, default the
    shipped one), the supervised reference (``labels_model``, default the
    shipped ``rotation_visual_labels``), OpenCV, and the binaural
    estimators of BINAURAL (``binaural_models`` overrides model files by
    name; a segment GCC-PHAT cannot score counts as azimuth 0 and as a
    failure).

    ``options``: namespace, odometry frame names, which views are turn pairs,
    the accepted field-of-view difference (``rotation.dataset.BagOptions``).
    ``loaded``: ``load_all(bags_dir, ..., need_audio=True, need_truth=True)``'s
    bags and pairs when the caller has read them already (not read again).

    Raises:
        InputError: no bag with the topics scoring needs.
        ConfigError: no turn pairs.
    """
    visual = VisualRotation(model)
    reference = VisualRotation(labels_model or shipped_model('rotation_visual_labels'))
    files = {k: shipped_model(v) for k, v in BINAURAL_MODELS.items()}
    files.update(binaural_models or {})
    spec = visual.spec
    audio = {k: BinauralDirection(f, array=spec.array) for k, f in files.items()}
    if reference.spec != spec:
        raise ConfigError('the scored visual models were trained on different input contracts')
    for a in audio.values():
        check_same_contract(visual, a)
    head = load_array(spec.array)
    classic = {'binaural_gcc': ClassicDoa(head, method='gcc'),
               'binaural_gcc_onset': ClassicDoa(head, method='gcc', onset=True)}
    bags, pairs = loaded or load_all(bags_dir, spec, namespace, need_audio=True,
                                     progress=progress, options=options, need_truth=True)
    out = {'selfsup': Errors(), 'supervised': Errors(), 'opencv': Errors(),
           **{k: Errors() for k in BINAURAL}}
    cv = {}
    for p in pairs:
        bv = bags[p.bag]
        a, b = bv.views[p.first], bv.views[p.second]
        for name, est in (('selfsup', visual), ('supervised', reference)):
            t = time.perf_counter()
            y = est.estimate(a.grey, b.grey).yaw
            out[name].seconds.append(time.perf_counter() - t)
            out[name].errors_deg.append(_angle_deg(y, p.yaw))
        if opencv:
            if p.bag not in cv:
                cv[p.bag] = OpenCvRotation(bv.K)
            t = time.perf_counter()
            y = cv[p.bag].estimate(a.image, b.image)
            out['opencv'].seconds.append(time.perf_counter() - t)
            if y is None:
                out['opencv'].failures += 1
                y = 0.0
            out['opencv'].errors_deg.append(_angle_deg(y, p.yaw))
    for bv in bags:
        if not any(v.azimuths for v in bv.views):
            print(f'warning: binaural direction not scored in {bv.path}: no gt/sound_direction '
                  'in the frame of its audio/binaural during a segment', flush=True,
                  file=progress if progress is not None else sys.stderr)
        for v in bv.views:
            if v.segment is None or len(v.azimuths) != 1:
                continue
            truth = fold_front(v.azimuths[0])
            for name, est in audio.items():
                t = time.perf_counter()
                az = est.azimuth(v.segment)
                out[name].seconds.append(time.perf_counter() - t)
                out[name].errors_deg.append(_angle_deg(az, truth))
            for name, gcc in classic.items():
                found = gcc.estimate(v.segment)
                if not found:
                    out[name].failures += 1
                out[name].errors_deg.append(_angle_deg(
                    fold_front(found[0].azimuth) if found else 0.0, truth))
            out['binaural_constant'].errors_deg.append(_angle_deg(0.0, truth))
    if not opencv:
        del out['opencv']
    return out


def report(results: dict[str, Errors], label: str = '') -> list[str]:
    """Printable lines: each figure beside its baseline (OpenCV for the yaw,
    GCC-PHAT for the binaural direction: ratio) and the yaw target."""
    lines = []
    base = results.get('opencv')
    base_med = base.summary()['median_deg'] if base else None
    for name in ('selfsup', 'supervised', 'opencv'):
        if name not in results:
            continue
        s = results[name].summary()
        ratio = (f' (x{s["median_deg"] / base_med:.2f} of OpenCV)'
                 if base_med and name != 'opencv' else '')
        target = (f'; target <= {TARGET_SELFSUP_DEG} deg: '
                  f'{"met" if s["median_deg"] <= TARGET_SELFSUP_DEG else "NOT met"}'
                  if name == 'selfsup' else '')
        fails = f', {s["failures"]} failed pairs' if s.get('failures') else ''
        lines.append(f'{label}{name:>10}: median {s["median_deg"]} deg{ratio}, mean '
                     f'{s["mean_deg"]} deg, {s["ms_per_pair"]} ms/pair, n {s["n"]}{fails}'
                     f'{target}')
    g = results['binaural_gcc'].summary(with_time=False) if 'binaural_gcc' in results else None
    for name in BINAURAL:
        if name not in results or not results[name].errors_deg:
            continue
        s = results[name].summary(with_time=False)
        ratio = (f' (x{s["median_deg"] / g["median_deg"]:.2f} of GCC-PHAT)'
                 if g and g['median_deg'] and name != 'binaural_gcc' else '')
        fails = f', {s["failures"]} failed' if s.get('failures') else ''
        lines.append(f'{label}{name:>19}: median {s["median_deg"]} deg{ratio}, mean '
                     f'{s["mean_deg"]} deg, n {s["n"]}{fails}')
    return lines
