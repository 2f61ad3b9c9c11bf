"""Message definitions for bags: rosbags' ROS 2 Kilted store plus any type whose
``.msg`` file is installed (av_perception, audio_common_msgs, ...).

Bags written before the messages moved into the ``av_perception`` package
name them ``av_perception_msgs/msg/...``; those names stay readable (same
definitions, see :data:`LEGACY_PACKAGES`). The per-source ``SoundDirection``
that ``SoundSourceArray`` replaced is no longer a package message; its
definition stays here (:data:`LEGACY_DEFINITIONS`) so that old bags read."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from av_perception.errors import InputError

_REPO = Path(__file__).resolve().parent.parent.parent
_FIELD_TYPE = re.compile(r'^\s*([A-Za-z][\w/]*)(?:\[[^\]]*\])?\s+\w+')
#: Old interface package names -> the package whose .msg files define them now.
LEGACY_PACKAGES = {'av_perception_msgs': 'av_perception'}
#: Retired message types, by every name bags may carry them under -> their
#: definition: read from old bags, never published.
SOUND_DIRECTION_DEF = """std_msgs/Header header
float32 azimuth
float32 elevation
float32 confidence
bool front_back_ambiguous
"""
LEGACY_DEFINITIONS = {'av_perception/msg/SoundDirection': SOUND_DIRECTION_DEF,
                      'av_perception_msgs/msg/SoundDirection': SOUND_DIRECTION_DEF}
_PRIMITIVES = {'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16',
               'uint16', 'int32', 'uint32', 'int64', 'uint64', 'string', 'wstring', 'time',
               'duration'}


def msg_dirs(package: str) -> list[Path]:
    """Folders that may hold ``<package>``'s .msg files: every ament prefix's
    share, this venv's share, and this source tree (msg/, interfaces/compat/)."""
    package = LEGACY_PACKAGES.get(package, package)
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    dirs = [Path(p) / 'share' / package / 'msg' for p in prefixes + [sys.prefix]]
    if package == 'av_perception':
        dirs.append(_REPO / 'msg')
    dirs.append(_REPO / 'interfaces' / 'compat' / package / 'msg')
    return dirs


def find_msg_file(msgtype: str) -> Path:
    """``pkg/msg/Name`` -> path of its .msg file.

    Raises:
        InputError: no .msg file for the type on this machine.
    """
    parts = msgtype.split('/')
    if len(parts) != 3 or parts[1] != 'msg':
        raise InputError('msgtype', "a message type 'package/msg/Name'", repr(msgtype))
    pkg, _, name = parts
    for d in msg_dirs(pkg):
        if (d / f'{name}.msg').is_file():
            return d / f'{name}.msg'
    raise InputError('msgtype', f'a .msg file for {msgtype} in an ament prefix',
                     'none found (is the interface package installed?)')


def _dependencies(text: str, pkg: str) -> set[str]:
    deps = set()
    for line in text.splitlines():
        line = line.split('#', 1)[0]
        m = _FIELD_TYPE.match(line)
        if not m or '=' in line.split()[1 if len(line.split()) > 1 else 0]:
            continue
        ftype = m.group(1)
        base = ftype.split('<')[0]
        if base in _PRIMITIVES:
            continue
        if base == 'Header':
            deps.add('std_msgs/msg/Header')
        elif '/' in base:
            p, n = base.split('/')[0], base.split('/')[-1]
            deps.add(f'{p}/msg/{n}')
        else:
            deps.add(f'{pkg}/msg/{base}')
    return deps


def typestore(msgtypes: Iterable[str] = ()) -> Typestore:
    """rosbags' ROS 2 Kilted typestore with ``msgtypes`` (and their
    dependencies) registered from their installed .msg files where missing."""
    store = get_typestore(Stores.ROS2_KILTED)
    todo = [t for t in msgtypes if t not in store.fielddefs]
    seen: set[str] = set()
    found: dict = {}
    while todo:
        t = todo.pop()
        if t in seen or t in store.fielddefs:
            continue
        seen.add(t)
        text = LEGACY_DEFINITIONS.get(t) or find_msg_file(t).read_text()
        found.update(get_types_from_msg(text, t))
        todo.extend(d for d in _dependencies(text, t.split('/')[0]) if d not in store.fielddefs)
    if found:
        store.register(found)
    return store


def package_msgtypes() -> list[str]:
    """The message types this package defines or needs beyond rosbags' store."""
    return ['av_perception/msg/AudioChunk', 'av_perception/msg/SoundSourceArray',
            *LEGACY_DEFINITIONS,
            'audio_common_msgs/msg/AudioData', 'audio_common_msgs/msg/AudioDataStamped',
            'audio_common_msgs/msg/AudioInfo']
