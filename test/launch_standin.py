"""A minimal stand-in for the ``launch`` / ``launch_ros`` API that the
package's launch files use, to load and evaluate them where no launch
package is installable (neither is on PyPI).

It records the actions a launch file builds and evaluates them for given
launch arguments the way launch_ros does: DeclareLaunchArgument defaults,
IfCondition on "true"/"false", GroupAction scopes, PushRosNamespace,
SetRemap and SetParameter apply to the nodes of their group, and each Node
becomes the command line launch_ros would run
(``<exe> --ros-args -r __node:=<name> -r __ns:=<ns> --params-file <f> -p k:=v -r a:=b``).
What it cannot prove: the real launch's process handling, event handlers and
substitution types other than LaunchConfiguration. (Checked once by hand with
the real launch and launch_ros sources, see the distro table in docs/robot.md.)
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path


class LaunchConfiguration:
    def __init__(self, name: str) -> None:
        self.name = name


class DeclareLaunchArgument:
    def __init__(self, name: str, default_value: str | None = None, description: str = '',
                 **_) -> None:
        self.name, self.default_value, self.description = name, default_value, description


class IfCondition:
    def __init__(self, predicate) -> None:
        self.predicate = predicate

    def holds(self, args: dict) -> bool:
        value = resolve(self.predicate, args).strip().lower()
        if value not in ('true', 'false', '1', '0'):
            raise ValueError(f'IfCondition: expected true/false, got {value!r}')
        return value in ('true', '1')


class _Action:
    def __init__(self, *args, condition=None, **kwargs) -> None:
        self.args, self.kwargs, self.condition = args, kwargs, condition


class GroupAction(_Action):
    pass


class PushRosNamespace(_Action):
    pass


class SetRemap(_Action):
    pass


class SetParameter(_Action):
    pass


class Node(_Action):
    pass


class LaunchDescription:
    def __init__(self, entities=()) -> None:
        self.entities = list(entities)


def resolve(value, args: dict) -> str:
    if isinstance(value, LaunchConfiguration):
        if value.name not in args:
            raise KeyError(f'launch argument {value.name!r} is not declared')
        return str(args[value.name])
    return str(value)


@dataclass
class LaunchedNode:
    """A node as launch_ros would start it."""

    executable: str
    name: str
    namespace: str
    params_files: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    remaps: list = field(default_factory=list)
    arguments: list = field(default_factory=list)

    def command(self, bin_dir: Path) -> list[str]:
        cmd = [str(bin_dir / self.executable), *self.arguments]
        cmd += [] if '--ros-args' in cmd else ['--ros-args']
        cmd += ['-r', f'__node:={self.name}', '-r', f'__ns:={self.namespace}']
        for f in self.params_files:
            cmd += ['--params-file', f]
        for k, v in self.params.items():
            cmd += ['-p', f'{k}:={v}']
        for a, b in self.remaps:
            cmd += ['-r', f'{a}:={b}']
        return cmd


def _join_ns(outer: str, inner: str) -> str:
    if inner.startswith('/'):
        return inner.rstrip('/') or '/'
    parts = [p for p in (outer.strip('/'), inner.strip('/')) if p]
    return '/' + '/'.join(parts)


def evaluate(desc: LaunchDescription, launch_args: dict | None = None) -> list[LaunchedNode]:
    """The nodes a launch description starts for ``launch_args``."""
    args: dict = {}
    for e in desc.entities:
        if isinstance(e, DeclareLaunchArgument):
            args[e.name] = e.default_value
    unknown = set(launch_args or {}) - set(args)
    if unknown:
        raise KeyError(f'undeclared launch arguments {sorted(unknown)}')
    args.update(launch_args or {})
    out: list[LaunchedNode] = []

    def walk(entities, ns: str, remaps: list, params: dict) -> None:
        remaps, params = list(remaps), dict(params)
        for e in entities:
            if e is None or isinstance(e, DeclareLaunchArgument):
                continue
            if getattr(e, 'condition', None) is not None and not e.condition.holds(args):
                continue
            if isinstance(e, GroupAction):
                walk(e.args[0], ns, remaps, params)
            elif isinstance(e, PushRosNamespace):
                ns = _join_ns(ns, resolve(e.args[0] if e.args else e.kwargs['namespace'], args))
            elif isinstance(e, SetRemap):
                remaps.append((resolve(e.kwargs['src'], args), resolve(e.kwargs['dst'], args)))
            elif isinstance(e, SetParameter):
                params[e.kwargs['name']] = resolve(e.kwargs['value'], args)
            elif isinstance(e, Node):
                kw = e.kwargs
                node_ns = _join_ns(ns, kw.get('namespace') or '')
                files = [resolve(p, args) for p in kw.get('parameters', [])
                         if not isinstance(p, dict)]
                inline = {k: v for p in kw.get('parameters', []) if isinstance(p, dict)
                          for k, v in p.items()}
                out.append(LaunchedNode(
                    executable=kw['executable'], name=kw.get('name', kw['executable']),
                    namespace=node_ns, params_files=files, params={**params, **inline},
                    remaps=remaps + [tuple(r) for r in kw.get('remappings', [])],
                    arguments=[resolve(a, args) for a in kw.get('arguments', [])]))
            else:
                raise TypeError(f'the stand-in does not know {type(e).__name__}')

    walk(desc.entities, '/', [], {})
    return out


@contextlib.contextmanager
def standin_modules(share_dir: Path):
    """``launch``, ``launch_ros`` and ``ament_index_python`` stand-ins in
    sys.modules while the block runs (real ones, if any, are put back)."""
    def module(name: str, **attrs) -> types.ModuleType:
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        return m
    mods = {
        'launch': module('launch', LaunchDescription=LaunchDescription),
        'launch.actions': module('launch.actions', DeclareLaunchArgument=DeclareLaunchArgument,
                                 GroupAction=GroupAction),
        'launch.conditions': module('launch.conditions', IfCondition=IfCondition),
        'launch.substitutions': module('launch.substitutions',
                                       LaunchConfiguration=LaunchConfiguration),
        'launch_ros': module('launch_ros'),
        'launch_ros.actions': module('launch_ros.actions', Node=Node,
                                     PushRosNamespace=PushRosNamespace, SetRemap=SetRemap,
                                     SetParameter=SetParameter),
        'ament_index_python': module('ament_index_python'),
        'ament_index_python.packages': module(
            'ament_index_python.packages',
            get_package_share_directory=lambda pkg: str(share_dir)),
    }
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def load_launch_file(path: Path, share_dir: Path) -> LaunchDescription:
    """Import a launch file with the stand-ins and call generate_launch_description()."""
    with standin_modules(share_dir):
        spec = importlib.util.spec_from_file_location(f'launchfile_{path.stem}', path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod.generate_launch_description()
