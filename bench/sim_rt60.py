"""Benchmark: the reverberation the simulator renders, per split.

For SCENES rooms of each split, renders the impulse response from the first
sounding source to the 4-mic array's centre at the robot's first pose, as
the simulator does (image sources + ray tracing for the scene's
``tail_seconds``), and measures its reverberation time in the 500 Hz and
1 kHz octave bands (Schroeder integration, T20 extrapolated to 60 dB),
beside the Sabine estimate of the room's materials. The training rooms'
responses stop after 0.6 s, so their measured times saturate however
reverberant the room's materials are; the shifted split's run for about the
room's reverberation time (up to 3 s). Writes bench/results/sim_rt60.json.

    .venv/bin/python bench/sim_rt60.py [--scenes 120] [--splits train shift]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from av_perception.sim.acoustics import (Receiver, RoomModel, impulse_responses,
                                         measured_rt60, rt60_sabine)
from av_perception.sim.scene import base_to_world, generate_scene
from av_perception.robot import load_robot

RESULTS = Path(__file__).resolve().parent / 'results'
FS = 16000


def _stats(values) -> dict:
    v = np.asarray(values, float)
    q = np.percentile(v, [0, 5, 25, 50, 75, 95, 100])
    return {'n': int(v.size), **{k: round(float(x), 3) for k, x in
                                 zip(('min', 'p5', 'p25', 'median', 'p75', 'p95', 'max'), q)}}


def measure(split: str, scenes: int) -> dict:
    robot = load_robot()
    measured, sabine, by_kind = [], [], defaultdict(list)
    for i in range(scenes):
        scene = generate_scene(i, split, 0)
        model = RoomModel(scene, FS, 3)
        mic = base_to_world(scene.poses[0], robot.arrays['array'].xyz)
        irs, _ = impulse_responses(model, scene.active_sources[0].position,
                                   [Receiver(mic, 0, mic)], mic[:, None], rays=1000,
                                   time_thres=scene.tail_seconds, seed=scene.seed)
        rt = measured_rt60(irs[0], FS)
        measured.append(rt)
        sabine.append(rt60_sabine(scene))
        by_kind[scene.kind].append(rt)
    return {'measured_rt60_s': _stats(measured), 'sabine_rt60_s': _stats(sabine),
            'measured_rt60_s_by_kind': {k: _stats(v) for k, v in sorted(by_kind.items())},
            'share_over_1s': round(float(np.mean(np.asarray(measured) > 1.0)), 3),
            'share_over_2s': round(float(np.mean(np.asarray(measured) > 2.0)), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--scenes', type=int, default=120)
    ap.add_argument('--splits', nargs='+', default=['train', 'shift'])
    args = ap.parse_args()
    out = {'band_hz': [500, 1000], 'seed': 0, 'scenes': args.scenes,
           'splits': {split: measure(split, args.scenes) for split in args.splits}}
    if 'train' in out['splits'] and len(out['splits']) > 1:  # the baseline: training rooms
        base = out['splits']['train']['measured_rt60_s']
        out['p95_ratio_vs_train'] = {
            split: round(r['measured_rt60_s']['p95'] / base['p95'], 2)
            for split, r in out['splits'].items() if split != 'train'}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'sim_rt60.json').write_text(json.dumps(out, indent=2) + '\n')
    for split, r in out['splits'].items():
        m, s = r['measured_rt60_s'], r['sabine_rt60_s']
        print(f'{split}: measured RT60 {m["min"]:.2f}-{m["max"]:.2f} s (median {m["median"]:.2f}, '
              f'p5-p95 {m["p5"]:.2f}-{m["p95"]:.2f}); Sabine {s["min"]:.2f}-{s["max"]:.2f} s')
    for split, ratio in out.get('p95_ratio_vs_train', {}).items():
        print(f'{split} vs train rooms: p95 of the measured RT60 x{ratio:.2f}')


if __name__ == '__main__':
    main()
