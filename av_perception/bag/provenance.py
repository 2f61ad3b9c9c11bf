"""Where bags came from, as far as their folders record it, for the metadata
of the models trained on them.

The simulator (``av-perception simulate``) writes ``index.jsonl`` beside its
bags: one line per bag with, when the bag's sensors were randomized, the
preset, its ranges and the bag's draw (``sim.randomize``). A robot's own
bags have no such index: their distribution is the robot's, and the
metadata says it is not recorded. The file is read as data; nothing here
imports the simulator.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

#: the simulator's per-folder index of its bags
INDEX = 'index.jsonl'
#: a bag the folder's index does not list (e.g. a robot's own bag)
UNRECORDED = 'unrecorded'


def _index(folder: Path) -> dict[str, dict]:
    """The entries of ``folder``'s index by bag name (empty without one;
    unreadable lines are left out: their bags count as unrecorded)."""
    path = folder / INDEX
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get('bag'), str):
            out[entry['bag']] = entry
    return out


def randomization(bags: Sequence[str | Path]) -> dict[str, str]:
    """The sensor randomization of the training bags, as model metadata:
    ``train_randomize``, how many bags came from each preset (``none``: the
    simulator without randomization; ``unrecorded``: bags no index lists),
    e.g. ``'wide 200 bags'`` or ``'none 100 bags, wide 100 bags'``; and,
    when a preset other than none is among them, ``train_randomize_ranges``:
    the JSON of each such preset's ranges (gain dB, phase deg, position mm,
    clock ppm, noise, camera)."""
    indexes: dict[Path, dict[str, dict]] = {}
    counts: Counter[str] = Counter()
    ranges: dict[str, object] = {}
    for bag in map(Path, bags):
        if bag.parent not in indexes:
            indexes[bag.parent] = _index(bag.parent)
        entry = indexes[bag.parent].get(bag.name)
        if entry is None:
            counts[UNRECORDED] += 1
            continue
        record = entry.get('randomize')
        name = record.get('name', UNRECORDED) if isinstance(record, dict) else 'none'
        counts[name] += 1
        if isinstance(record, dict) and 'ranges' in record:
            ranges[name] = record['ranges']
    out = {'train_randomize': ', '.join(f'{k} {n} bags' for k, n in sorted(counts.items()))}
    if ranges:
        out['train_randomize_ranges'] = json.dumps(ranges, sort_keys=True)
    return out
