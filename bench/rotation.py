"""Benchmark: yaw between camera frames and binaural direction on held-out
simulated rooms (the same scoring code as `av-perception eval rotation`).

Test-split rooms (never trained on), turns in place of up to +-45 deg
between consecutive frames, in two sets: textured rooms (every texture of
the generator) and poorly textured rooms (plain walls, floor, ceiling and
furniture; only the sound-making objects keep their look). Scored: the
self-supervised visual model, the same network trained with labels (the
supervised reference), the OpenCV baseline (SIFT + homography, K from
camera_info), and on the same binaural segments the one binaural direction
network trained by each of its three teachers (from motion, without labels:
rotation_binaural; distilled from the acoustic image: direction_binaural;
from labels: direction_binaural_labels), the GCC-PHAT baseline and a
constant guess, and GCC-PHAT weighted by onsets (the node's ``gcc_onset``,
not the issue's baseline; beside it). Prints each figure beside its baseline (OpenCV, GCC-PHAT)
and the targets; writes bench/results/rotation.json. The binaural errors are
also given per sound class of the sounding source (`binaural_by_class`: the
class comes from the scene the bag was rendered from, rebuilt by its seed)
and over the broadband classes together (`binaural_broadband`); on the
shifted split also by the rooms' reverberation (`binaural_broadband_by_tail`:
the training rooms' 0.6 s impulse responses against the longer ones of its
halls, stairwells and tiled rooms). And what
the rotation node's direction topic would carry on these bags with the
motion model, tracked as the node tracks it and untracked
(`binaural_node_topic`).

    .venv/bin/python bench/rotation.py [--scenes 200] [--models av_perception/models]

200 rooms per set (11 min on 2 cores with the renders, 3 min once
rendered). With 20 the binaural ratios' room-resampled 95 % intervals
spanned x0.8 to x1.2 and more; with 60 the shifted broadband ratio's still
spanned x0.63 to x1.39, too wide to say whether issue #25's targets hold
(x0.74 to x1.08 with 200).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from av_perception.rotation.evaluate import (BINAURAL, BINAURAL_MODELS, TARGET_SELFSUP_DEG,
                                             Errors, report, score)
from av_perception.rotation.dataset import load_all
from av_perception.rotation.estimate import VisualRotation
from av_perception.sim.bags import SceneJob
from av_perception.sim.scene import Scene

import rendered
from paired import paired_ratio_ci

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'
SEED = 2026
SETS = {'textured': None, 'poorly_textured': ('plain',)}
#: The shifted split's rooms (issue #23: floor plans, materials, looks,
#: voices, music and appliances the training split never has), scored apart
#: from the test split's figures.
SHIFT = 'shift'
#: Broadband sound classes (the targets' second figure); music and voices
#: come with the shifted split.
BROADBAND = ('speech', 'noise', 'music', 'voice')
#: Targets of issue #25: the binaural network from motion against GCC-PHAT's
#: median on all segments, on broadband ones, and against the distilled one.
TARGET_MOTION_OVER_GCC = 1.0
TARGET_MOTION_OVER_GCC_BROADBAND = 0.8
TARGET_MOTION_OVER_TEACHER = 1.2
#: The impulse-response length of every training-split room [s]: a shifted
#: room with longer ones reverberates beyond anything trained on.
TRAINING_TAIL_S = Scene.tail_seconds


@dataclass(frozen=True)
class Segment:
    """What a scored binaural segment heard: the sound class of its one
    source, its room (split/set/scene id) and the room's impulse-response
    length [s]."""

    cls: str
    room: str
    tail_seconds: float


def merged(parts: list[Errors]) -> Errors:
    out = Errors()
    for p in parts:
        out.errors_deg += p.errors_deg
        out.seconds += p.seconds
        out.failures += p.failures
    return out


def sounding_classes(folder: Path, bags: list, textures,
                     split: str = 'test') -> list[Segment]:
    """The :class:`Segment` (sound class, room, tail) of the one source
    heard in each binaural segment that ``score`` scores, in its order
    (``bags``: ``folder``'s views as score reads them; bags, then views).
    The bags carry
    directions, not classes: each bag's scene is rebuilt from its seed
    (``SceneJob.scene``, what ``simulate`` rendered; pose k is the bag's k-th
    image, as in the av_heatmap benchmark), and the source whose direction
    from the head is the segment's true azimuth taken."""
    from av_perception.robot import load_robot
    from av_perception.sim.scene import direction_in_frame

    head = load_robot().arrays['binaural'].xyz
    out = []
    for bv in bags:
        sid = int(bv.path.name.rsplit('_', 1)[-1])
        scene = SceneJob(split, sid, SEED, str(folder), 8, textures=textures).scene()
        if len(scene.poses) != len(bv.views):
            raise RuntimeError(f'{bv.path} is not the benchmark\'s room {sid}')
        for pose, v in zip(scene.poses, bv.views):   # views: in stamp order
            if v.segment is None or len(v.azimuths) != 1:   # the segments score() scores
                continue
            miss, cls = min((abs(math.remainder(
                direction_in_frame(pose, head, src.position)[0] - v.azimuths[0], math.tau)),
                src.cls) for src in scene.active_sources)
            if miss > math.radians(0.5):
                raise RuntimeError(f'{bv.path}: no source of the rebuilt scene at the '
                                   f'segment\'s azimuth (nearest {math.degrees(miss):.1f} deg '
                                   'off)')
            out.append(Segment(cls, f'{split}/{folder.name}/{sid}', scene.tail_seconds))
    return out


def tracked(bags: list, spec, binaural_model: Path) -> dict:
    """The rotation node's binaural direction topic replayed on the bench's
    bags (``bags``: their views, loaded for ``spec``): the motion model
    hears each view's segment in stamp order
    (``BinauralDirection.hear``, the node's call; the views are 0.5 s apart,
    so the node hears every one) and the node's tracker
    (``SourceTracker.for_array``, the head, 'learned') decides what is
    published; beside it, every estimate published untracked. Over the
    views where exactly one source sounds: the share with a published
    source, and the share with one within 20 deg of the true (folded)
    azimuth."""
    from av_perception.arrays import load_array
    from av_perception.direction.tracker import SourceTracker
    from av_perception.rotation.estimate import BinauralDirection
    from av_perception.rotation.features import fold_front

    head = load_array(spec.array)
    est = BinauralDirection(binaural_model, array=spec.array)
    counts = {k: {'published': 0, 'within_20_deg': 0} for k in ('tracked', 'untracked')}
    n = 0
    for bv in bags:
        tracker = SourceTracker.for_array(head, 'learned')
        for k, v in enumerate(bv.views):
            if v.segment is None:
                continue
            heard = est.hear(v.segment, (k + 1) * 500_000_000)
            out = {'tracked': [s.azimuth for s in tracker.update(heard)],
                   'untracked': [s.azimuth for s in heard.sources]}
            if len(v.azimuths) != 1:
                continue
            n += 1
            truth = fold_front(v.azimuths[0])
            for m, azs in out.items():
                counts[m]['published'] += bool(azs)
                counts[m]['within_20_deg'] += any(
                    abs(math.degrees(math.remainder(a - truth, math.tau))) <= 20.0 for a in azs)
    return {'views': n, **{m: {k: round(c / max(n, 1), 3) for k, c in r.items()}
                           for m, r in counts.items()}}


def by_class(classes: list[str], errors: dict[str, Errors]) -> dict:
    """Median error [deg] and count of each binaural estimator per class."""
    rows = defaultdict(lambda: defaultdict(list))
    for m, e in errors.items():
        if len(e.errors_deg) != len(classes):
            raise RuntimeError(f'{m}: {len(e.errors_deg)} errors for {len(classes)} segments')
        for cls, err in zip(classes, e.errors_deg):
            rows[cls][m].append(err)
    return {cls: {'n': len(next(iter(r.values()))),
                  **{m: round(float(np.median(v)), 2) for m, v in r.items()}}
            for cls, r in sorted(rows.items())}


def by_tail(errors: dict[str, Errors], segments: list[Segment], lines: list[str]) -> dict:
    """Median error [deg] of each binaural estimator on the broadband
    segments of rooms whose impulse responses are as long as the training
    rooms' (:data:`TRAINING_TAIL_S`) and of those with longer ones, with
    their segment and room counts; their lines appended to ``lines``."""
    broad = np.isin([g.cls for g in segments], BROADBAND)
    long = np.array([g.tail_seconds > TRAINING_TAIL_S + 1e-9 for g in segments])
    out = {}
    for name, mask in (('training_tail', broad & ~long), ('longer_tail', broad & long)):
        rooms = {g.room for g, k in zip(segments, mask) if k}
        out[name] = {'n': int(mask.sum()), 'rooms': len(rooms),
                     **{m: round(float(np.median(subset(errors[m], mask).errors_deg)), 2)
                        if mask.any() else None for m in BINAURAL}}
        lines.append(f'{SHIFT:>6} {"broadband, " + name:>24}: ' + ', '.join(
            f'{m[9:]} {out[name][m]}' for m in BINAURAL)
            + f' deg (n = {out[name]["n"]}, {len(rooms)} rooms)')
    out['training_tail_s'] = TRAINING_TAIL_S
    return out


def subset(errors: Errors, mask: np.ndarray) -> Errors:
    """The errors of the segments in ``mask``."""
    return Errors([e for e, k in zip(errors.errors_deg, mask) if k])


def binaural_targets(res: dict, errors: dict[str, Errors], segments: list[Segment]) -> dict:
    """The targets of issue #25 on one split's results (``res`` holds the
    binaural summaries of all segments and of the broadband ones;
    ``segments``: what each heard), each ratio with its 95 % interval
    (``_ci95``: whole rooms resampled, both methods together,
    :func:`paired.paired_ratio_ci`): whether a ratio near a target is the
    model's or the draw of these rooms'."""
    motion, gcc = res['binaural_motion']['median_deg'], res['binaural_gcc']['median_deg']
    bb = res['binaural_broadband']
    teacher = res['binaural_teacher']['median_deg']
    labels = res['binaural_labels']['median_deg']
    broad = np.isin([g.cls for g in segments], BROADBAND)
    rooms = np.asarray([g.room for g in segments])

    def ci(m: str, base: str, mask: np.ndarray | None = None) -> list | None:
        keep = np.ones(len(rooms), bool) if mask is None else mask
        a, b = np.asarray(errors[m].errors_deg), np.asarray(errors[base].errors_deg)
        return paired_ratio_ci(a[keep], b[keep], groups=rooms[keep])
    return {
        'motion_over_gcc': round(motion / gcc, 3),
        'motion_over_gcc_ci95': ci('binaural_motion', 'binaural_gcc'),
        'motion_over_gcc_met': motion <= TARGET_MOTION_OVER_GCC * gcc,
        'motion_over_gcc_broadband': round(bb['binaural_motion']['median_deg']
                                           / bb['binaural_gcc']['median_deg'], 3),
        'motion_over_gcc_broadband_ci95': ci('binaural_motion', 'binaural_gcc', broad),
        'motion_over_gcc_broadband_met': bb['binaural_motion']['median_deg']
        <= TARGET_MOTION_OVER_GCC_BROADBAND * bb['binaural_gcc']['median_deg'],
        'motion_over_teacher': round(motion / teacher, 3),
        'motion_over_teacher_ci95': ci('binaural_motion', 'binaural_teacher'),
        'motion_over_teacher_met': motion <= TARGET_MOTION_OVER_TEACHER * teacher,
        # not targets: whether the motion teacher or the network is what falls
        # short (the label-trained network against GCC-PHAT and against motion)
        'labels_over_gcc': round(labels / gcc, 3),
        'labels_over_gcc_ci95': ci('binaural_labels', 'binaural_gcc'),
        'labels_over_gcc_broadband': round(bb['binaural_labels']['median_deg']
                                           / bb['binaural_gcc']['median_deg'], 3),
        'labels_over_gcc_broadband_ci95': ci('binaural_labels', 'binaural_gcc', broad),
        'motion_over_labels': round(motion / labels, 3),
        'motion_over_labels_ci95': ci('binaural_motion', 'binaural_labels'),
        # not a target of the issue (its baseline is GCC-PHAT): the node's
        # onset-weighted GCC-PHAT, the stronger classic method where rooms echo
        'motion_over_gcc_onset': round(motion / res['binaural_gcc_onset']['median_deg'], 3),
        'motion_over_gcc_onset_ci95': ci('binaural_motion', 'binaural_gcc_onset'),
        'motion_over_gcc_onset_broadband': round(
            bb['binaural_motion']['median_deg'] / bb['binaural_gcc_onset']['median_deg'], 3),
        'motion_over_gcc_onset_broadband_ci95': ci('binaural_motion', 'binaural_gcc_onset',
                                                   broad)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--scenes', type=int, default=200, help='rooms per set')
    ap.add_argument('--data', type=Path, default=ROOT / '.cache' / 'rotation_test')
    ap.add_argument('--models', type=Path, default=ROOT.parent / 'av_perception' / 'models')
    args = ap.parse_args()
    per_set = {}
    segments = {}
    node_topic = {}
    lines = []
    visual = args.models / 'rotation_visual.onnx'
    spec = VisualRotation(visual).spec
    binaural = {k: args.models / f'{v}.onnx' for k, v in BINAURAL_MODELS.items()}
    sets = {**{name: ('test', textures) for name, textures in SETS.items()},
            SHIFT: (SHIFT, None)}
    for name, (split, textures) in sets.items():
        folder = args.data / name
        rendered.ensure(folder, args.scenes, note=f'{args.scenes} held-out {name} rooms',
                        seed=SEED, split=split, textures=textures)
        bags, pairs = load_all(folder, spec, need_audio=True, need_truth=True)
        per_set[name] = score(folder, model=visual,
                              labels_model=args.models / 'rotation_visual_labels.onnx',
                              binaural_models=binaural, loaded=(bags, pairs))
        lines += report(per_set[name], label=f'{name:>15} ')
        segments[name] = sounding_classes(folder, bags, textures, split)
        node_topic[name] = tracked(bags, spec, binaural['binaural_motion'])
    methods = ('selfsup', 'supervised', 'opencv')
    every = {m: merged([per_set[s][m] for s in SETS]) for m in (*methods, *BINAURAL)}
    lines += report(every, label=f'{"all (test)":>15} ')
    test_segments = sum((segments[s] for s in SETS), [])
    results = summarise(every, [g.cls for g in test_segments], lines, 'test')
    for name in SETS:
        results[name] = {m: per_set[name][m].summary() for m in methods}
        for m in BINAURAL:
            results[name][m] = per_set[name][m].summary(with_time=False)
    results[SHIFT] = summarise(per_set[SHIFT], [g.cls for g in segments[SHIFT]], lines, SHIFT)
    results[SHIFT]['binaural_broadband_by_tail'] = by_tail(per_set[SHIFT], segments[SHIFT],
                                                           lines)
    poor = results['poorly_textured']
    results['targets'] = {
        'selfsup_median_deg_le': TARGET_SELFSUP_DEG,
        'selfsup_median_met': results['selfsup']['median_deg'] <= TARGET_SELFSUP_DEG,
        'selfsup_no_worse_than_opencv_poorly_textured':
            poor['selfsup']['median_deg'] <= poor['opencv']['median_deg'],
        'binaural_test': binaural_targets(results, every, test_segments),
        'binaural_shift': binaural_targets(results[SHIFT], per_set[SHIFT], segments[SHIFT])}
    results['data'] = {'seed': SEED, 'split': 'test', 'rooms_per_set': args.scenes,
                       'pairs': results['selfsup']['n'],
                       'binaural_segments': results['binaural_gcc']['n'],
                       'shift': {'split': SHIFT, 'rooms': args.scenes,
                                 'pairs': results[SHIFT]['selfsup']['n'],
                                 'binaural_segments': results[SHIFT]['binaural_gcc']['n']}}
    results['binaural_node_topic'] = node_topic
    lines += [f'{name:>15} rotation/sound_direction (motion model): of {r["views"]} one-source '
              f'views, tracked: published {r["tracked"]["published"]:.2f}, within 20 deg '
              f'{r["tracked"]["within_20_deg"]:.2f}; untracked: '
              f'{r["untracked"]["published"]:.2f}, {r["untracked"]["within_20_deg"]:.2f}'
              for name, r in node_topic.items()]
    results['models'] = {k: _model_note(f) for k, f in binaural.items()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'rotation.json').write_text(json.dumps(results, indent=2) + '\n')
    print('\n'.join(lines))
    print(f'targets: {results["targets"]}')


def summarise(errors: dict[str, Errors], classes: list[str], lines: list[str],
              label: str) -> dict:
    """Summaries of one split's errors: every method, the binaural ones per
    sound class and over the broadband classes; their lines appended to
    ``lines``."""
    out = {m: errors[m].summary() for m in ('selfsup', 'supervised', 'opencv')}
    for m in BINAURAL:
        out[m] = errors[m].summary(with_time=False)
    out['binaural_by_class'] = by_class(classes, {m: errors[m] for m in BINAURAL})
    broad = np.isin(classes, BROADBAND)
    out['binaural_broadband'] = {m: subset(errors[m], broad).summary(with_time=False)
                                 for m in BINAURAL}
    for cls, r in out['binaural_by_class'].items():
        lines.append(f'{label:>6} {"binaural " + cls:>24}: ' + ', '.join(
            f'{m[9:]} {r[m]:.1f}' for m in BINAURAL) + f' deg (n = {r["n"]})')
    lines.append(f'{label:>6} {"binaural broadband":>24}: ' + ', '.join(
        f'{m[9:]} {out["binaural_broadband"][m]["median_deg"]:.1f}' for m in BINAURAL)
        + f' deg (n = {int(broad.sum())})')
    return out


def _model_note(path: Path) -> dict:
    """What trained a binaural model (its ONNX metadata)."""
    from av_perception.inference import OnnxModel
    meta = OnnxModel(path).metadata
    return {k: meta[k] for k in ('model_id', 'target', 'teacher', 'sign_scale', 'train_bags')
            if k in meta}


if __name__ == '__main__':
    main()
