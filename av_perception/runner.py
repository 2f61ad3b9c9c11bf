"""``av-perception run PARAMS.yaml``: the nodes a params file names, in one process.

A standard ROS 2 params file is both the list of nodes and their parameters:
each top-level key is a node name (optionally with a namespace,
``/robot1/echo_depth``) that must be one of the package's nodes; ``/**``
applies to all. The same file works with ``--params-file`` under ``ros2 run``
and in the launch files.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from av_perception.errors import ConfigError
from av_perception.nodes import NODES


def nodes_in_params(path: str | Path) -> list[tuple[str, str]]:
    """(namespace, node name) for each node key of a params file.

    Raises:
        ConfigError: unreadable file, or a key that names no node of the package.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f'cannot read params file {path}: {exc.strerror}') from None
    except yaml.YAMLError as exc:
        raise ConfigError(f'{path}: not valid YAML ({exc.__class__.__name__})') from None
    if not isinstance(doc, dict) or not doc:
        raise ConfigError(f'{path}: expected a ROS 2 params file (node names as keys), '
                          f'got {type(doc).__name__}')
    out = []
    for key, body in doc.items():
        if key == '/**':
            continue
        parts = [p for p in str(key).split('/') if p]
        name, ns = parts[-1], '/' + '/'.join(parts[:-1])
        if name not in NODES:
            raise ConfigError(f'{path}: expected node names among {sorted(NODES)}, got {key!r}')
        if not isinstance(body, dict) or 'ros__parameters' not in body:
            raise ConfigError(f'{path}: node {key!r}: expected a "ros__parameters" mapping')
        out.append((ns, name))
    return out


def run_params(path: str | Path, extra_ros_args: list[str] | None = None) -> int:
    """Start every node named in ``path`` on one executor until Ctrl-C/SIGTERM."""
    from av_perception.nodes import node_class
    from av_perception.ros.spin import spin_nodes

    entries = nodes_in_params(path)
    factories = []
    for ns, name in entries:
        cls = node_class(name)
        factories.append(lambda cls=cls, ns=ns: cls(namespace=ns))
    args = ['av-perception', '--ros-args', '--params-file', str(path)] + (extra_ros_args or [])
    print(f'[run] starting {", ".join(n for _, n in entries)} from {path}', flush=True)
    return spin_nodes(factories, args=args)
