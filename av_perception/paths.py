"""Where the package's shared files (config, launch, msg) are.

Installed by colcon or pip, they are in ``<prefix>/share/av_perception``; in a
source checkout (editable install) they are beside the Python package.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = 'av_perception'
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_dir() -> Path:
    """The package's share directory (config/, launch/, msg/)."""
    if (_SOURCE_ROOT / 'package.xml').is_file() and (_SOURCE_ROOT / 'config').is_dir():
        return _SOURCE_ROOT
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    for prefix in prefixes + [sys.prefix]:
        candidate = Path(prefix) / 'share' / PACKAGE
        if (candidate / 'config').is_dir():
            return candidate
    raise FileNotFoundError(f'cannot find share/{PACKAGE} (config/) under '
                            f'{prefixes + [sys.prefix]} or {_SOURCE_ROOT}')


def config_path(name: str | os.PathLike) -> Path:
    """A config file by path, or by name relative to the package's config/."""
    path = Path(name)
    if path.is_file():
        return path
    candidate = share_dir() / 'config' / path
    if candidate.is_file():
        return candidate
    raise FileNotFoundError(f'no config file {str(name)!r} (looked in . and {candidate.parent})')


def shipped_model(name: str) -> Path:
    """A model shipped in the package (``av_perception/models/<name>.onnx``)."""
    return Path(__file__).resolve().parent / 'models' / f'{name}.onnx'


def inside(base: str | os.PathLike, name: str | os.PathLike) -> Path:
    """``name`` (relative to ``base``, or absolute) as a path that stays
    inside ``base``: a name that leads out of it through ``..``, an absolute
    path elsewhere or a symbolic link is refused, so a path taken from a
    params file or a command line cannot write anywhere else.

    Raises:
        ConfigError: the path would leave ``base`` (one line, both named).
    """
    from av_perception.errors import ConfigError
    root = Path(base).resolve()
    path = (root / name).resolve()  # follows '..' and existing symbolic links
    if path != root and root not in path.parents:
        raise ConfigError(f'expected a path inside {root}, got {str(name)!r} (resolves to '
                          f'{path})')
    return path
