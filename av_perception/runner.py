"""``av-perception run PARAMS.yaml``: the nodes a params file names, in one process.

A standard ROS 2 params file is both the list of nodes and their parameters.
Each top-level key names one of the package's nodes:

- ``/**/echo_depth``: the node ``echo_depth`` in whatever namespace it runs
  (``--namespace robot1`` puts it in ``/robot1``); the package's own files
  use this form, so one file serves any number of robots;
- ``/**/binaural/sound_direction``: a second instance in the sub-namespace
  ``binaural`` of the robot's namespace;
- ``/robot1/echo_depth``: that node in exactly that namespace (only read
  when the run's namespace makes it so);
- ``echo_depth`` (a bare name): the root namespace only. With ``--namespace``
  such a key would silently not apply, so it is refused.

``/**`` applies to all nodes. rcl merges every key that matches a node, later
ones overriding earlier ones. The same file works with ``--params-file``
under ``ros2 run`` and in the launch files.

Namespaced robots keep their transforms apart as nav2's multi-robot bring-up
does: ``/tf`` and ``/tf_static`` are remapped to the robot's ``tf`` and
``tf_static`` (``/robot1/tf``), frame names are not prefixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from av_perception.errors import ConfigError
from av_perception.nodes import NODES

#: Remappings of a namespaced robot (nav2 multi-robot practice, REP 105 frames unprefixed).
TF_REMAPS = (('/tf', 'tf'), ('/tf_static', 'tf_static'))


@dataclass(frozen=True)
class NodeEntry:
    """One node a params file names.

    Attributes:
        name: the node name (a key of ``av_perception.nodes.NODES``).
        sub_namespace: namespace below the robot's (``'binaural'``), '' for none.
        fixed_namespace: the absolute namespace of a key like ``/robot1/echo_depth``
            (None for ``/**/...`` and bare keys).
        key: the key as written in the file.
    """

    name: str
    sub_namespace: str
    fixed_namespace: str | None
    key: str

    def namespace(self, robot: str = '') -> str | None:
        """The node's namespace when the run's namespace is ``robot`` ('' = root),
        or None if the key does not apply there."""
        robot = '/' + robot.strip('/') if robot.strip('/') else ''
        if self.fixed_namespace is not None:
            inside = not robot or self.fixed_namespace == robot \
                or self.fixed_namespace.startswith(robot + '/')
            return self.fixed_namespace if inside else None
        sub = f'/{self.sub_namespace}' if self.sub_namespace else ''
        return (robot + sub) or '/'


def _load(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f'cannot read params file {path}: {exc.strerror}') from None
    except yaml.YAMLError as exc:
        raise ConfigError(f'{path}: not valid YAML ({exc.__class__.__name__})') from None
    if not isinstance(doc, dict) or not doc:
        raise ConfigError(f'{path}: expected a ROS 2 params file (node names as keys), '
                          f'got {type(doc).__name__}')
    return doc


def params_entries(path: str | Path) -> list[NodeEntry]:
    """The node entries of a params file, in file order (``/**`` alone is skipped).

    Raises:
        ConfigError: unreadable file, a key that names no node of the package, or
            an entry without ``ros__parameters``.
    """
    path = Path(path)
    out = []
    for key, body in _load(path).items():
        key = str(key)
        if key == '/**':
            continue
        parts = [p for p in key.split('/') if p]
        name = parts[-1] if parts else ''
        if name not in NODES:
            raise ConfigError(f'{path}: expected node names among {sorted(NODES)}, got {key!r}')
        if not isinstance(body, dict) or 'ros__parameters' not in body:
            raise ConfigError(f'{path}: node {key!r}: expected a "ros__parameters" mapping')
        if parts[0] == '**':
            out.append(NodeEntry(name, '/'.join(parts[1:-1]), None, key))
        elif key.startswith('/') and len(parts) > 1:
            out.append(NodeEntry(name, '', '/' + '/'.join(parts[:-1]), key))
        elif '*' in key:
            raise ConfigError(f'{path}: {key!r}: only the "/**/<node>" wildcard is supported')
        else:  # a bare name, or '/name': the root namespace
            out.append(NodeEntry(name, '', '/', key))
    return out


def nodes_in_params(path: str | Path, namespace: str = '') -> list[tuple[str, str]]:
    """(namespace, node name) of each node a params file starts in the robot
    namespace ``namespace`` ('' = root), one per distinct node.

    Raises:
        ConfigError: as :func:`params_entries`; or a bare key while ``namespace``
            is set (it would not apply to the namespaced node).
    """
    robot = namespace.strip('/')
    out: list[tuple[str, str]] = []
    for e in params_entries(path):
        if robot and e.fixed_namespace == '/':
            raise ConfigError(f'{path}: key {e.key!r} applies in the root namespace only, not '
                              f'under namespace /{robot}: write it as "/**/{e.name}"')
        ns = e.namespace(robot)
        if ns is not None and (ns, e.name) not in out:
            out.append((ns, e.name))
    return out


def ros_arguments(path: str | Path, namespace: str = '', use_sim_time: bool = False,
                  extra: list[str] | None = None) -> list[str]:
    """The process's ROS arguments: the params file, the namespaced robot's
    TF remappings, use_sim_time for every node, then ``extra``."""
    args = ['--ros-args', '--params-file', str(path)]
    if namespace.strip('/'):
        for src, dst in TF_REMAPS:
            args += ['-r', f'{src}:={dst}']
    if use_sim_time:
        args += ['-p', 'use_sim_time:=true']
    return args + list(extra or [])


def run_params(path: str | Path, extra_ros_args: list[str] | None = None,
               namespace: str = '', use_sim_time: bool = False) -> int:
    """Start every node named in ``path`` (in robot namespace ``namespace``) on
    one executor until Ctrl-C/SIGTERM."""
    from av_perception.nodes import node_class
    from av_perception.ros.spin import spin_nodes

    entries = nodes_in_params(path, namespace)
    factories = []
    for ns, name in entries:
        cls = node_class(name)
        factories.append(lambda cls=cls, ns=ns: cls(namespace=ns))
    args = ['av-perception'] + ros_arguments(path, namespace, use_sim_time, extra_ros_args)
    where = f' in /{namespace.strip("/")}' if namespace.strip('/') else ''
    print(f'[run] starting {", ".join(n for _, n in entries)}{where} from {path}', flush=True)
    return spin_nodes(factories, args=args)
