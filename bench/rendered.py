"""The benches' simulated rooms, rendered once into bench/.cache and
rendered again when the simulator changed.

A cached folder (under bench/.cache) counts only if its index carries this
checkout's :func:`~av_perception.sim.bags.simulator_fingerprint`; one
rendered by other simulator code (or before fingerprints were written) is
removed and rendered anew, so no figure is scored on an older simulator's
rooms. A folder given by the user (anywhere else) is never removed: it is
scored as it is, with a warning if another simulator rendered it.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from av_perception.sim.bags import rendered_by_this_simulator, simulate

CACHE = Path(__file__).resolve().parent / '.cache'


def _cached(folder: Path) -> bool:
    """True if ``folder`` lies in bench/.cache (the benches' own renders)."""
    return folder.resolve().is_relative_to(CACHE.resolve())


def fresh(folder: Path) -> Path:
    """``folder``; emptied first if it is in bench/.cache and something in it
    was rendered by another simulator version (bags without an index count
    as such). Returns it."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not rendered_by_this_simulator(folder):
        if not _cached(folder):
            print(f'[bench] warning: {folder} was not rendered by this simulator version '
                  '(scored as it is)', flush=True)
            return folder
        print(f'[bench] {folder} was rendered by another simulator version: rendering again',
              flush=True)
        shutil.rmtree(folder)
    return folder


def _rows(folder: Path) -> int:
    """How many bags ``folder``'s index lists (0 without an index)."""
    index = folder / 'index.jsonl'
    if not index.is_file():
        return 0
    return sum(1 for line in index.read_text().splitlines() if line.strip())


def ensure(folder: Path, scenes: int = 0, note: str = '', **kwargs) -> Path:
    """``folder`` holding ``simulate(folder, scenes, **kwargs)``'s bags,
    rendered now unless this simulator already rendered it (or, outside
    bench/.cache, unless it has an index); returns it. ``note`` says what is
    rendered (printed). A cached folder holding another number of rooms than
    ``scenes`` (a bench run with another ``--scenes``) is rendered anew, so
    the figures are never scored on fewer rooms than asked for."""
    folder = fresh(folder)
    held = _rows(folder) if scenes and 'ids' not in kwargs and _cached(folder) else 0
    if held not in (0, scenes):
        print(f'[bench] {folder} holds {held} rooms, {scenes} asked for: '
              'rendering again', flush=True)
        shutil.rmtree(folder)
    if rendered_by_this_simulator(folder) or \
            (not _cached(folder) and (folder / 'index.jsonl').is_file()):
        return folder
    print(f'[bench] simulating {note or folder.name} into {folder}', flush=True)
    kwargs.setdefault('progress', io.StringIO())
    simulate(folder, scenes, **kwargs)
    return folder
