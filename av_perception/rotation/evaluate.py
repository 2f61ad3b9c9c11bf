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
(gt/sound_direction), against its azimuth folded into the front half-plane,
beside the classic baseline on the same segments: GCC-PHAT between the two
ears (``av_perception.doa.classic``, the delay's angle to the ear axis).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from av_perception.arrays import load_array
from av_perception.doa.classic import ClassicDoa
from av_perception.errors import ConfigError
from av_perception.paths import shipped_model
from av_perception.rotation.dataset import BagOptions, load_all
from av_perception.rotation.estimate import BinauralDirection, OpenCvRotation, VisualRotation
from av_perception.rotation.features import fold_front, wrap

#: Targets of the issue: self-supervised median yaw error, binaural median error [deg].
TARGET_SELFSUP_DEG = 2.0
TARGET_BINAURAL_DEG = 10.0


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
          labels_model: str | Path | None = None, binaural_model: str | Path | None = None,
          namespace: str = '', opencv: bool = True, progress=None,
          labels_binaural_model: str | Path | None = None,
          options: BagOptions = BagOptions()) -> dict[str, Errors]:
    """Errors of the self-supervised visual model (``model``, default the
    shipped one), the supervised reference (``labels_model``, default the
    shipped ``rotation_visual_labels``), OpenCV, and the binaural model
    (and its label-trained reference, ``binaural_supervised``, and the
    GCC-PHAT baseline, ``binaural_gcc``; a segment it cannot score counts
    as azimuth 0 and as a failure).

    ``options``: namespace, odometry frame names, which views are turn pairs,
    the accepted field-of-view difference (``rotation.dataset.BagOptions``).

    Raises:
        InputError: no bag with the topics scoring needs.
        ConfigError: no turn pairs.
    """
    visual = VisualRotation(model)
    reference = VisualRotation(labels_model or shipped_model('rotation_visual_labels'))
    audio = BinauralDirection(binaural_model)
    audio_ref = BinauralDirection(labels_binaural_model
                                  or shipped_model('rotation_binaural_labels'))
    spec = visual.spec
    if reference.spec != spec or audio.spec != spec or audio_ref.spec != spec:
        raise ConfigError('the scored models were trained on different input contracts')
    gcc = ClassicDoa(load_array(spec.array), method='gcc')
    bags, pairs = load_all(bags_dir, spec, namespace, need_audio=True, progress=progress,
                           options=options, need_truth=True)
    out = {'selfsup': Errors(), 'supervised': Errors(), 'opencv': Errors(),
           'binaural': Errors(), 'binaural_supervised': Errors(), 'binaural_gcc': Errors()}
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
            if v.audio is not None and len(v.azimuths) == 1:
                t = time.perf_counter()
                az = audio.azimuth(v.audio)
                out['binaural'].seconds.append(time.perf_counter() - t)
                out['binaural'].errors_deg.append(_angle_deg(az, fold_front(v.azimuths[0])))
                out['binaural_supervised'].errors_deg.append(
                    _angle_deg(audio_ref.azimuth(v.audio), fold_front(v.azimuths[0])))
                found = gcc.estimate(v.segment)
                if not found:
                    out['binaural_gcc'].failures += 1
                out['binaural_gcc'].errors_deg.append(_angle_deg(
                    fold_front(found[0].azimuth) if found else 0.0, fold_front(v.azimuths[0])))
    if not opencv:
        del out['opencv']
    return out


def report(results: dict[str, Errors], label: str = '') -> list[str]:
    """Printable lines: each figure beside the OpenCV baseline (ratio) and the targets."""
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
    b = results['binaural'].summary(with_time=False)
    g = results['binaural_gcc'].summary(with_time=False) if 'binaural_gcc' in results else None
    if b['n']:
        ratio = (f' (x{b["median_deg"] / g["median_deg"]:.2f} of GCC-PHAT)'
                 if g and g['median_deg'] else '')
        lines.append(f'{label}{"binaural":>19}: median {b["median_deg"]} deg{ratio}, mean '
                     f'{b["mean_deg"]} deg, n {b["n"]}; target <= {TARGET_BINAURAL_DEG} deg: '
                     f'{"met" if b["median_deg"] <= TARGET_BINAURAL_DEG else "NOT met"}')
    for name, title in (('binaural_supervised', 'binaural supervised'),
                        ('binaural_gcc', 'binaural GCC-PHAT')):
        if name in results and results[name].errors_deg:
            s = results[name].summary(with_time=False)
            fails = f', {s["failures"]} failed' if s.get('failures') else ''
            lines.append(f'{label}{title:>19}: median {s["median_deg"]} deg, mean '
                         f'{s["mean_deg"]} deg, n {s["n"]}{fails}')
    return lines
