"""A trained model's metadata says which sensor randomization its bags came
from, read from the simulator's index beside them; a robot's own bags (no
index) are 'unrecorded', never guessed."""

from __future__ import annotations

import json

from av_perception.bag.provenance import INDEX, randomization
from av_perception.sim.randomize import PRESETS, draw


def _folder(path, entries):
    path.mkdir(parents=True)
    lines = []
    for name, record in entries:
        (path / name).mkdir()
        entry = {'bag': name, 'split': 'train', 'scene_id': 0}
        if record is not None:
            entry['randomize'] = record
        lines.append(json.dumps(entry))
    (path / INDEX).write_text('\n'.join(lines + ['{not json']) + '\n')


def test_counts_each_preset_and_keeps_the_ranges(tmp_path):
    wide = draw(PRESETS['wide'], 7, {'array': 4, 'binaural': 2}).record()
    _folder(tmp_path / 'a', [('train_00000', None), ('train_00001', wide)])
    _folder(tmp_path / 'b', [('train_00002', wide)])
    robot = tmp_path / 'robot' / 'rosbag2_1'
    robot.mkdir(parents=True)
    bags = [tmp_path / 'a' / 'train_00000', tmp_path / 'a' / 'train_00001',
            tmp_path / 'b' / 'train_00002', robot]
    meta = randomization(bags)
    assert meta['train_randomize'] == 'none 1 bags, unrecorded 1 bags, wide 2 bags'
    assert json.loads(meta['train_randomize_ranges']) == {'wide': PRESETS['wide'].ranges()}


def test_plain_simulated_bags_and_a_robots_bags(tmp_path):
    _folder(tmp_path / 'sim', [('train_00000', None), ('train_00001', None)])
    assert randomization([tmp_path / 'sim' / 'train_00000', tmp_path / 'sim' / 'train_00001']) \
        == {'train_randomize': 'none 2 bags'}
    assert randomization([tmp_path / 'elsewhere' / 'bag']) == \
        {'train_randomize': 'unrecorded 1 bags'}
