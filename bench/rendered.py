"""The benches' simulated rooms, rendered once into bench/.cache and
rendered again when the simulator changed.

A cached folder counts only if its index carries this checkout's
:func:`~av_perception.sim.bags.simulator_fingerprint`; a folder rendered by
other simulator code (or before fingerprints were written) is removed and
rendered anew, so no figure is scored on an older simulator's rooms.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from av_perception.sim.bags import rendered_by_this_simulator, simulate


def fresh(folder: Path) -> Path:
    """``folder``, emptied if something in it was rendered by another
    simulator version (bags without an index count as such); returns it."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not rendered_by_this_simulator(folder):
        print(f'[bench] {folder} was rendered by another simulator version: rendering again',
              flush=True)
        shutil.rmtree(folder)
    return folder


def ensure(folder: Path, scenes: int = 0, note: str = '', **kwargs) -> Path:
    """``folder`` holding ``simulate(folder, scenes, **kwargs)``'s bags,
    rendered now unless this simulator already rendered it; returns it.
    ``note`` says what is rendered (printed)."""
    folder = fresh(folder)
    if rendered_by_this_simulator(folder):
        return folder
    print(f'[bench] simulating {note or folder.name} into {folder}', flush=True)
    kwargs.setdefault('progress', io.StringIO())
    simulate(folder, scenes, **kwargs)
    return folder
