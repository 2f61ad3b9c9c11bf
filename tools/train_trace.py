#!/usr/bin/env python3
"""Training traces: a guard for refactors of ``av_perception/train/``.

Every trainer of the package runs on tiny simulated data sets with fixed
seeds and one thread; the trace records each model's loss curve
(``curve.json``), a SHA-256 of its exported ONNX weights and its metadata.
Record a trace before a change and one after: identical traces mean the
change left training exactly as it was (same batches, same losses, same
weights), which no test at a feasible size can show.

    tools/train_trace.py data DIR          # the tiny data sets (about 2 min)
    tools/train_trace.py run DIR OUT.json  # train every model (about 1 min)
    tools/train_trace.py compare A.json B.json

Traces compare on one machine and one torch build (float results depend on
both). ``compare`` exits 1 if any model's weights or loss curve differ, and
lists metadata that differs (e.g. a key a change added on purpose).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault('OMP_NUM_THREADS', '1')


def weights(path: Path) -> dict:
    """SHA-256 (16 hex digits) of an ONNX file's initializers, and its metadata."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(str(path))
    h = hashlib.sha256()
    for t in sorted(m.graph.initializer, key=lambda t: t.name):
        h.update(t.name.encode())
        h.update(numpy_helper.to_array(t).tobytes())
    return {'weights_sha256': h.hexdigest()[:16],
            'metadata': {p.key: p.value for p in m.metadata_props}}


def _trace(checkpoints: Path, model: Path) -> dict:
    return {'curve': json.loads((checkpoints / 'curve.json').read_text()), **weights(model)}


def make_data(root: Path) -> None:
    """The tiny seeded data sets: direction (with the 16-mic teacher),
    echo, rotation (turns and binaural audio), av heatmap (close-ups)."""
    from av_perception.sim.bags import SceneJob, simulate, simulate_scene
    q = io.StringIO()
    simulate(root / 'direction', scenes=2, seed=9, poses=3, teacher=True, progress=q, jobs=2)
    for i in range(3):
        simulate_scene(SceneJob('train', i, 5, str(root / 'echo'), 3))
    simulate(root / 'rotation', scenes=3, seed=3, poses=8, jobs=2, progress=q)
    simulate(root / 'avh', scenes=5, seed=5, poses=4, view='sources', jobs=2, progress=q)


def run(root: Path, work: Path) -> dict:
    """Train every model on the data sets under ``root`` (in ``work``)."""
    import torch
    torch.set_num_threads(1)
    from av_perception.arrays import load_array
    from av_perception.echo import dataset as echo_dataset
    from av_perception.echo.features import spec_for
    from av_perception.train.av_heatmap import AvHeatmapConfig
    from av_perception.train.av_heatmap import train as train_av_heatmap
    from av_perception.train.direction import DirectionConfig
    from av_perception.train.direction import train as train_direction
    from av_perception.train.echo_depth import (StudentConfig, TeacherConfig, train_student,
                                                train_teacher)
    from av_perception.train.rotation import RotationConfig
    from av_perception.train.rotation import train as train_rotation

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    q = io.StringIO()
    res = {}
    for role, target, bags in (('array', 'teacher', 'direction'),
                               ('binaural', 'labels', 'rotation')):
        out = work / f'dir_{role}_{target}.onnx'
        train_direction(root / bags, out, DirectionConfig(array=role, target=target, epochs=3,
                                                          jobs=1), progress=q)
        res[f'direction_{role}_{target}'] = _trace(work / f'{out.stem}_checkpoints', out)
    teacher = work / 'teacher.onnx'
    train_teacher(root / 'echo', teacher, TeacherConfig(epochs=2, width=4, batch=4), progress=q)
    res['echo_teacher'] = _trace(work / 'teacher_checkpoints', teacher)
    echo_dataset.build(root / 'echo', work / 'echo_data', teacher,
                       spec_for(load_array('echo_head_cardioid')), progress=q)
    for v in ('sam', 'pseudo', 'gt'):
        out = work / f'student_{v}.onnx'
        train_student(work / 'echo_data', out,
                      StudentConfig(variant=v, sam_blocks=2, k=8, width=4, token_dim=16,
                                    epochs=3, batch=4, lr=3e-3), progress=q)
        res[f'echo_student_{v}'] = _trace(work / f'{out.stem}_checkpoints', out)
    rot = work / 'rot'
    train_rotation([root / 'rotation'], rot, RotationConfig(
        targets=('selfsup', 'labels'), epochs=3, binaural_epochs=2, batch=4), progress=q)
    for t, name in (('selfsup', 'rotation_visual.onnx'),
                    ('labels', 'rotation_visual_labels.onnx')):
        res[f'rotation_visual_{t}'] = _trace(rot / 'rotation_checkpoints' / t, rot / name)
    res['rotation_binaural_motion'] = _trace(rot / 'rotation_binaural_checkpoints',
                                             rot / 'rotation_binaural.onnx')
    for acoustic in (True, False):
        out = work / f'avh_{acoustic}.onnx'
        train_av_heatmap(root / 'avh', out, AvHeatmapConfig(
            epochs=2, batch=2, warmup=1, acoustic=acoustic, jobs=1), progress=q)
        res[f'av_heatmap_{"fused" if acoustic else "alone"}'] = _trace(
            work / f'{out.stem}_checkpoints', out)
    return res


def compare(a: dict, b: dict) -> tuple[list[str], dict[str, list[str]]]:
    """The models whose training differs (weights or loss curve, or that
    only one trace has), and per model the metadata keys that differ."""
    trained = sorted(k for k in a.keys() | b.keys()
                     if k not in a or k not in b or
                     (a[k]['weights_sha256'], a[k]['curve']) !=
                     (b[k]['weights_sha256'], b[k]['curve']))
    meta = {}
    for k in sorted(a.keys() & b.keys()):
        ma, mb = a[k]['metadata'], b[k]['metadata']
        keys = sorted(x for x in ma.keys() | mb.keys() if ma.get(x) != mb.get(x))
        if keys:
            meta[k] = keys
    return trained, meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    sub.add_parser('data').add_argument('dir', type=Path)
    r = sub.add_parser('run')
    r.add_argument('dir', type=Path)
    r.add_argument('out', type=Path)
    c = sub.add_parser('compare')
    c.add_argument('a', type=Path)
    c.add_argument('b', type=Path)
    args = p.parse_args(argv)
    if args.cmd == 'data':
        make_data(args.dir)
    elif args.cmd == 'run':
        res = run(args.dir, args.out.parent / f'{args.out.stem}_work')
        args.out.write_text(json.dumps(res, indent=1))
        print(json.dumps({k: v['weights_sha256'] for k, v in res.items()}, indent=1))
    else:
        a, b = (json.loads(f.read_text()) for f in (args.a, args.b))
        trained, meta = compare(a, b)
        print(f'{len(a.keys() & b.keys()) - len(trained)} of {len(a.keys() | b.keys())} models '
              'trained identically (weights and loss curves)'
              + (f'; differ: {", ".join(trained)}' if trained else ''))
        for k, keys in meta.items():
            print(f'{k}: metadata differs in {", ".join(keys)}')
        return 1 if trained else 0
    return 0


if __name__ == '__main__':
    sys.exit(main())
