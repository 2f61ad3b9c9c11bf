"""Where the simulator's camera renderer keeps its texture images (no ROS,
no pybullet): a directory per process, or one a parent process shares with
its workers and removes.

A pool's worker processes end without running atexit handlers, so a cache
each made for itself stays behind in the temp folder (up to 265 MB per
worker and run: 97 directories, 7 GB, had piled up on the development
machine). :func:`shared_texture_cache` gives the workers of a block one
cache, through the environment they inherit, and removes it when the block
ends; texture files are written atomically, so the workers share it safely
and draw each texture once per run instead of once per worker.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

#: Environment variable naming the texture cache a parent process owns.
TEXTURE_CACHE_ENV = 'AVP_TEXTURE_CACHE'

_lock = threading.Lock()
_own: dict = {'pid': None, 'dir': None}


def _remove(path: str, owner_pid: int) -> None:
    # atexit handlers survive fork: only the creating process removes its dir
    if os.getpid() == owner_pid:
        shutil.rmtree(path, ignore_errors=True)


def cache_dir() -> Path:
    """The texture cache directory: the one a parent process shares
    (:func:`shared_texture_cache`), else this process's own (a new one after
    a fork, removed at exit; a child never removes its parent's)."""
    shared = os.environ.get(TEXTURE_CACHE_ENV)
    if shared:
        path = Path(shared)
    else:
        with _lock:
            if _own['pid'] != os.getpid():
                made = tempfile.mkdtemp(prefix='avp_textures_')
                atexit.register(_remove, made, os.getpid())
                _own['dir'], _own['pid'] = made, os.getpid()
            path = Path(_own['dir'])
    path.mkdir(parents=True, exist_ok=True)  # in case a tmp cleaner removed it
    return path


@contextlib.contextmanager
def shared_texture_cache() -> Iterator[Path]:
    """One texture cache for the worker processes started inside the block
    (module docstring), removed when it ends."""
    path = tempfile.mkdtemp(prefix='avp_textures_')
    before = os.environ.get(TEXTURE_CACHE_ENV)
    os.environ[TEXTURE_CACHE_ENV] = path
    try:
        yield Path(path)
    finally:
        if before is None:
            os.environ.pop(TEXTURE_CACHE_ENV, None)
        else:
            os.environ[TEXTURE_CACHE_ENV] = before
        shutil.rmtree(path, ignore_errors=True)
