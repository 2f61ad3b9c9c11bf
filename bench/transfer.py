"""Benchmark: every learned model and its classic or trivial baseline on the
test split and on the shifted split, in one run (issue #23, item 4).

The same rooms count on both sides: ``simulate --split test`` and
``simulate --split shift`` with one seed and one number of rooms (default
30 rooms of seed 4242, 8 poses each, the robot's path view), simulated here
into bench/.cache when the folders given have no index. Each model is
scored with the package's own scoring code, as `av-perception eval` and the
per-model benches score it:

- 4-mic direction (``direction.evaluate.score``, role ``array``): the learned
  model (and its label-trained ablation) vs the best of SRP-PHAT,
  onset-weighted SRP-PHAT and NormMUSIC on that split, median error [deg]
  over every window;
- binaural direction (role ``binaural``): the learned models vs the better of
  GCC-PHAT and onset-weighted GCC-PHAT;
- echo depth (``echo.evaluate``): the students vs the mean-depth baseline
  (bench/results/echo_depth_train_mean.npy), delta1 and RMSE;
- yaw (``rotation.evaluate.score``): the self-supervised visual model (and
  its label-trained reference) vs OpenCV, median error [deg]; binaural
  direction from motion vs the better of GCC-PHAT and onset-weighted GCC-PHAT
  on the same segments;
- audio-visual heatmap (``av_heatmap.evaluate.score``): pointing (the map's
  peak on the sounding object, issue #24's metric for robot views) of the
  fused model (the node's) vs the better of the centre prior and the
  projected acoustic image alone, on the images of the same path views in
  which the sounding object is in view.

Targets on the shifted split, per model: at least as good as its baseline
there (``beats_baseline``), and within 15 % of its own test-split figure
(``holds``: an error at most 1.15x, a score at least 0.85x). A scorer that
cannot run on a split (a topic missing from its bags, no usable sample) is
recorded with the reason instead of figures. Writes
bench/results/transfer.json and prints each figure beside its baseline.

    nice .venv/bin/python bench/transfer.py [--test DIR] [--shift DIR] [--scenes 30] [--seed 4242]
"""

from __future__ import annotations

import os

for _v in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_v, '1')  # as bench/direction.py: one core per estimate

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import rendered  # noqa: E402
from paired import paired_ratio_ci  # noqa: E402

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'
MODELS = ROOT.parent / 'av_perception' / 'models'
MEAN_DEPTH = RESULTS / 'echo_depth_train_mean.npy'
SPLITS = ('test', 'shift')
#: The learned figure on the shifted split may be this much worse than on the test split.
HOLD = 0.15

#: model -> (task, its baseline, metric, True if higher is better)
ROWS = {
    'direction_respeaker4': ('4-mic direction', 'best of srp / srp_onset / normmusic',
                             'median_deg', False),
    'direction_respeaker4_labels': ('4-mic direction', 'best of srp / srp_onset / normmusic',
                                    'median_deg', False),
    'direction_binaural': ('binaural direction', 'best of gcc / gcc_onset', 'median_deg',
                           False),
    'direction_binaural_labels': ('binaural direction', 'best of gcc / gcc_onset',
                                  'median_deg', False),
    'echo_depth (sam student) delta1': ('echo depth', 'mean depth', 'delta1', True),
    'echo_depth (sam student) rmse': ('echo depth', 'mean depth', 'rmse', False),
    'echo_depth_pseudo delta1': ('echo depth', 'mean depth', 'delta1', True),
    'echo_depth_pseudo rmse': ('echo depth', 'mean depth', 'rmse', False),
    'echo_depth_gt delta1': ('echo depth', 'mean depth', 'delta1', True),
    'echo_depth_gt rmse': ('echo depth', 'mean depth', 'rmse', False),
    'rotation_visual (self-supervised)': ('yaw', 'opencv', 'median_deg', False),
    'rotation_visual_labels': ('yaw', 'opencv', 'median_deg', False),
    'rotation_binaural (from motion)': ('binaural direction', 'best of gcc / gcc_onset',
                                        'median_deg', False),
    'av_heatmap': ('av heatmap', 'best of centre prior / acoustic image alone', 'pointing',
                   True),
}


def split_rooms(split: str, scenes: int, seed: int, folder: Path | None = None) -> Path:
    """The split's rooms 0..scenes-1 (path view) in ``folder`` (default
    bench/.cache/transfer_<split>_<seed>), rendered when missing
    (``bench/rendered.py``); returns the folder. Shared with
    bench/transfer_wide.py."""
    folder = folder or ROOT / '.cache' / f'transfer_{split}_{seed}'
    return rendered.ensure(folder, scenes, note=f'{scenes} {split} rooms (seed {seed})',
                           seed=seed, split=split, jobs=1)


def describe(folder: Path) -> dict:
    rows = [json.loads(line) for line in (folder / 'index.jsonl').read_text().splitlines()]
    return {'folder': str(folder), 'rooms': len(rows), 'samples': sum(r['samples'] for r in rows),
            'splits': sorted({r['split'] for r in rows})}


def guarded(name: str, fn, log: io.StringIO):
    """``fn()``, or the reason it could not score (a missing topic, no sample)."""
    t = time.perf_counter()
    try:
        out = fn()
    except Exception as e:   # noqa: BLE001 -- recorded in the JSON, not hidden
        print(f'  {name}: not scored: {type(e).__name__}: {e}', flush=True)
        return {'unavailable': f'{type(e).__name__}: {e}', 'skipped_bags': skipped(log)}
    print(f'  {name}: {time.perf_counter() - t:.0f} s', flush=True)
    return out


def skipped(log: io.StringIO) -> list[str]:
    """The bag-level reports a scorer wrote (bags left out, and why)."""
    return [line.strip() for line in log.getvalue().splitlines()
            if line.strip() and ('skip' in line or 'left out' in line or 'warning' in line)]


def direction(folder: Path, models: Path) -> dict:
    from av_perception.direction.evaluate import score
    out = {}
    plan = {'array': (('srp', None), ('srp_onset', None), ('normmusic', None),
                      ('learned', 'direction_respeaker4'),
                      ('learned', 'direction_respeaker4_labels')),
            'binaural': (('gcc', None), ('gcc_onset', None), ('learned', 'direction_binaural'),
                         ('learned', 'direction_binaural_labels'))}
    for role, methods in plan.items():
        for method, stem in methods:
            key = stem or f'{role}_{method}'
            log = io.StringIO()

            def run(role=role, method=method, stem=stem, log=log):
                model = models / f'{stem}.onnx' if stem else None
                s = score(folder, role, method, model=model, progress=log)
                return {**s.summary(), '_errors': s.errors_deg, '_bags': s.bags}
            out[key] = guarded(key, run, log)
    return out


def echo(folder: Path, models: Path) -> dict:
    from av_perception.echo.evaluate import load_test, score_constant, score_student
    from av_perception.echo.model import EchoDepthModel
    default = EchoDepthModel(models / 'echo_depth.onnx')
    log = io.StringIO()
    test = guarded('echo test set', lambda: load_test(
        folder, default.spec, (default.height, default.width), progress=log), log)
    if isinstance(test, dict):
        return {k: test for k in ('mean_depth', 'echo_depth', 'echo_depth_pseudo',
                                  'echo_depth_gt')}
    out = {'mean_depth': guarded('mean depth', lambda: score_constant(
        test, np.load(MEAN_DEPTH), default.max_depth), log)}
    for stem in ('echo_depth', 'echo_depth_pseudo', 'echo_depth_gt'):
        out[stem] = guarded(stem, lambda stem=stem: score_student(
            folder, models / f'{stem}.onnx', test=test), log)
    for r in out.values():
        if 'unavailable' not in r:
            r['echoes'] = len(test.pairs.echo)
    return out


def rotation(folder: Path, models: Path) -> dict:
    from av_perception.rotation.evaluate import BINAURAL_MODELS, score
    log = io.StringIO()
    res = guarded('rotation', lambda: score(
        folder, model=models / 'rotation_visual.onnx',
        labels_model=models / 'rotation_visual_labels.onnx',
        binaural_models={k: models / f'{v}.onnx' for k, v in BINAURAL_MODELS.items()},
        progress=log), log)
    names = {'selfsup': 'rotation_visual', 'supervised': 'rotation_visual_labels',
             'opencv': 'opencv', 'binaural_motion': 'rotation_binaural',
             'binaural_gcc': 'binaural_gcc', 'binaural_gcc_onset': 'binaural_gcc_onset'}
    if 'unavailable' in res:
        return {k: res for k in names.values()}
    return {names[k]: e.summary(with_time=not k.startswith('binaural'))
            for k, e in res.items() if k in names}


def heatmap(folder: Path, models: Path) -> dict:
    from av_perception.av_heatmap.evaluate import score
    log = io.StringIO()
    s = guarded('av_heatmap', lambda: score(folder, model=models / 'av_heatmap.onnx',
                                            progress=log), log)
    if isinstance(s, dict):
        return {'av_heatmap': s, 'center_prior': s, 'acoustic': s}
    return {k: {**s.summary(m), '_pointing': s.values[m]['pointing']}
            for k, m in (('av_heatmap', 'fused'), ('center_prior', 'center_prior'),
                         ('acoustic', 'acoustic'))} | {
        'images': {'images': s.samples, 'silent': s.silent}}


def figures(split: dict) -> dict:
    """Per row of ROWS: (learned figure, baseline figure, baseline name) on one split,
    or the reason it is missing."""
    d, e, r, h = split['direction'], split['echo'], split['rotation'], split['heatmap']

    def fig(res: dict, metric: str):
        return None if 'unavailable' in res else res.get(metric)

    def best_classic(cands: dict[str, dict]):
        ok = {k: v['median_deg'] for k, v in cands.items()
              if 'unavailable' not in v and v.get('median_deg') is not None}
        if not ok:
            return None, None
        k = min(ok, key=ok.get)
        return ok[k], k

    arr_base, arr_name = best_classic({m: d[f'array_{m}'] for m in ('srp', 'srp_onset',
                                                                    'normmusic')})
    bin_base, bin_name = best_classic({m: d[f'binaural_{m}'] for m in ('gcc', 'gcc_onset')})
    out = {}
    for row, (task, _, metric, _) in ROWS.items():
        if row.startswith('direction_respeaker4'):
            out[row] = (fig(d[row], metric), arr_base, arr_name, d[row])
        elif row.startswith('direction_binaural'):
            out[row] = (fig(d[row], metric), bin_base, bin_name, d[row])
        elif row.startswith('echo_depth'):
            stem = row.split(' ')[0]
            out[row] = (fig(e[stem], metric), fig(e['mean_depth'], metric), 'mean_depth',
                        e[stem])
        elif row.startswith('rotation_visual'):
            stem = row.split(' ')[0]
            out[row] = (fig(r[stem], metric), fig(r['opencv'], metric), 'opencv', r[stem])
        elif row.startswith('rotation_binaural'):
            stem = row.split(' ')[0]
            base, name = best_classic({m: r[f'binaural_{m}'] for m in ('gcc', 'gcc_onset')})
            out[row] = (fig(r[stem], metric), base, name, r[stem])
        else:
            base = {k: fig(h[k], metric) for k in ('center_prior', 'acoustic')}
            base = {k: v for k, v in base.items() if v is not None}
            name = max(base, key=base.get) if base else 'center_prior'
            out[row] = (fig(h['av_heatmap'], metric), base.get(name), name, h['av_heatmap'])
    return out


def depth_mix(test: dict, shift: dict) -> dict:
    """How much of an echo model's RMSE change between the splits comes from
    their mix of true depths: RMSE pooled over the pixels of each split, and
    the test split's per-range errors weighted by the shifted split's shares
    (what the model would score there if it were as good per range as on the
    test split). ``from_mix``: the share of the pooled change this explains."""
    ranges = [k for k in test if test[k] and shift[k]]

    def pooled(errs: dict, shares: dict) -> float:
        return float(np.sqrt(sum(shares[k]['share'] * errs[k]['rmse'] ** 2 for k in ranges)
                             / sum(shares[k]['share'] for k in ranges)))

    t, s, mix = pooled(test, test), pooled(shift, shift), pooled(test, shift)
    return {'pooled_rmse_test': round(t, 3), 'pooled_rmse_shift': round(s, 3),
            'test_at_shift_mix': round(mix, 3),
            'from_mix': round((mix - t) / (s - t), 3) if s != t else None,
            'share_beyond_6m': {'test': test['>= 6 m']['share'] if test.get('>= 6 m') else 0.0,
                                'shift': shift['>= 6 m']['share'] if shift.get('>= 6 m') else 0.0}}


def verdicts(per_split: dict) -> dict:
    """The table: per model, its and its baseline's figure on both splits, the
    ratios, and pass/fail of the two targets on the shifted split."""
    test, shift = figures(per_split['test']), figures(per_split['shift'])
    d = per_split['shift']['direction']
    table = {}
    for row, (task, baseline, metric, higher) in ROWS.items():
        (lt, bt, bn_t, rt), (ls, bs, bn_s, rs) = test[row], shift[row]
        entry = {'task': task, 'baseline': baseline, 'metric': metric,
                 'higher_is_better': higher,
                 'test': {'learned': lt, 'baseline': bt, 'baseline_method': bn_t},
                 'shift': {'learned': ls, 'baseline': bs, 'baseline_method': bn_s}}
        why = [f'{s}: {r["unavailable"]}' for s, r in (('test', rt), ('shift', rs))
               if 'unavailable' in r]
        if why or None in (lt, bt, ls, bs):
            entry.update({'beats_baseline': None, 'holds': None, 'pass': None,
                          'not_scored': why or ['a figure is missing']})
            table[row] = entry
            continue
        # learned / baseline on each split, and shift / test of the learned figure
        entry['test']['ratio_to_baseline'] = round(lt / bt, 3) if bt else None
        entry['shift']['ratio_to_baseline'] = round(ls / bs, 3) if bs else None
        entry['shift_over_test'] = round(ls / lt, 3) if lt else None
        beats = ls >= bs if higher else ls <= bs
        holds = ls >= (1 - HOLD) * lt if higher else ls <= (1 + HOLD) * lt
        entry.update({'beats_baseline': bool(beats), 'holds': bool(holds),
                      'pass': bool(beats and holds)})
        if row == 'av_heatmap':   # pointing is a share of 60-70 images: how sure
            h = per_split['shift']['heatmap']
            entry['shift']['ratio_ci95'] = paired_ratio_ci(
                h['av_heatmap']['_pointing'], h[bn_s]['_pointing'], stat=np.mean)
        elif metric == 'rmse':
            entry['depth_mix'] = depth_mix(rt['by_range'], rs['by_range'])
        elif row.startswith('direction_'):   # how sure the shifted split's ratio is
            base = d[f'array_{bn_s}'] if row.startswith('direction_respeaker4') else \
                d[f'binaural_{bn_s}']
            entry['shift']['ratio_ci95'] = paired_ratio_ci(d[row]['_errors'], base['_errors'],
                                                           groups=d[row]['_bags'])
        table[row] = entry
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--scenes', type=int, default=30, help='rooms per split')
    ap.add_argument('--seed', type=int, default=4242)
    ap.add_argument('--test', type=Path, help='test-split bags (default bench/.cache/'
                    'transfer_test_<seed>, simulated if it has no index)')
    ap.add_argument('--shift', type=Path, help='shifted-split bags (default bench/.cache/'
                    'transfer_shift_<seed>)')
    ap.add_argument('--models', type=Path, default=MODELS)
    ap.add_argument('--no-heatmap', action='store_true', help='leave the av heatmap out')
    args = ap.parse_args()
    given = {'test': args.test, 'shift': args.shift}
    data = {}
    per_split = {}
    for split in SPLITS:
        folder = split_rooms(split, args.scenes, args.seed, given[split])
        data[split] = describe(folder)
        print(f'[{split}] {folder}: {data[split]["rooms"]} rooms', flush=True)
        t = time.perf_counter()
        per_split[split] = {'direction': direction(folder, args.models),
                            'echo': echo(folder, args.models),
                            'rotation': rotation(folder, args.models)}
        if args.no_heatmap:
            per_split[split]['heatmap'] = {k: {'unavailable': '--no-heatmap'}
                                           for k in ('av_heatmap', 'center_prior', 'acoustic')}
        else:
            per_split[split]['heatmap'] = heatmap(folder, args.models)
        data[split]['score_seconds'] = round(time.perf_counter() - t, 1)
    table = verdicts(per_split)
    for split in per_split.values():   # per-window errors: for the intervals, not the JSON
        for r in split['direction'].values():
            r.pop('_errors', None)
            r.pop('_bags', None)
        for r in split['heatmap'].values():
            r.pop('_pointing', None)
    scored = [r for r in table.values() if r['pass'] is not None]
    results = {
        'table': table,
        'summary': {'models_scored': len(scored),
                    'pass': sorted(k for k, r in table.items() if r['pass']),
                    'fail': sorted(k for k, r in table.items() if r['pass'] is False),
                    'not_scored': sorted(k for k, r in table.items() if r['pass'] is None)},
        'targets': {'beats_baseline': 'on the shifted split, learned >= baseline',
                    'holds': f'shifted-split figure within {int(HOLD * 100)} % of the '
                             'model\'s own test-split figure (worse side only)'},
        'raw': per_split,
        'data': {**data, 'seed': args.seed, 'rooms_per_split': args.scenes,
                 'poses_per_room': 8, 'view': 'path',
                 'av_heatmap_note': 'pointing (av_perception.av_heatmap.evaluate) on the '
                 'path-view images whose sounding object is in view'},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'transfer.json').write_text(json.dumps(results, indent=2) + '\n')
    print(f'\n{"model":34s} {"metric":10s} {"test (base, x)":>24s} {"shift (base, x)":>24s} '
          f'{"shift/test":>10s}  verdict')
    for row, r in table.items():
        if r['pass'] is None:
            print(f'{row:34s} {r["metric"]:10s} not scored: {"; ".join(r["not_scored"])}')
            continue
        t, s = r['test'], r['shift']
        print(f'{row:34s} {r["metric"]:10s} '
              f'{t["learned"]:7.3f} ({t["baseline"]:7.3f}, x{t["ratio_to_baseline"]:.2f}) '
              f'{s["learned"]:7.3f} ({s["baseline"]:7.3f}, x{s["ratio_to_baseline"]:.2f}) '
              f'{r["shift_over_test"]:10.2f}  '
              f'{"PASS" if r["pass"] else "FAIL"} (beats baseline {r["beats_baseline"]}, '
              f'holds {r["holds"]})'
              + (f' shift ratio 95% CI {s["ratio_ci95"]}' if s.get('ratio_ci95') else ''))
        if r.get('depth_mix'):
            m = r['depth_mix']
            print(f'{"":34s} pooled RMSE test {m["pooled_rmse_test"]:.3f}, shift '
                  f'{m["pooled_rmse_shift"]:.3f}; test at the shift\'s depth mix '
                  f'{m["test_at_shift_mix"]:.3f} ({m["from_mix"]:.0%} of the change)')
    print(f'pass {len(results["summary"]["pass"])} / {len(scored)} scored; '
          f'wrote {RESULTS / "transfer.json"}')


if __name__ == '__main__':
    main()
