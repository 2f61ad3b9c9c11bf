"""Running nodes: one node as its own process (the ``ros2 run`` shape), or
several in one process on one executor (``av-perception run``)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from av_perception.errors import ConfigError


def spin_nodes(factories: Sequence[Callable[[], Node]], args: Sequence[str] | None = None,
               threads: int | None = None) -> int:
    """Create the nodes in one context and spin them on one executor until
    Ctrl-C or SIGTERM, then destroy them (recorders finalize their bags).

    Each node's callbacks run in its own default (mutually exclusive) group:
    one node never runs two callbacks at once, different nodes run in parallel.

    Returns:
        Process exit code: 0 on a clean shutdown, 2 on a configuration error.
    """
    rclpy.init(args=list(args) if args is not None else None)
    nodes: list[Node] = []
    code = 0
    try:
        for make in factories:
            nodes.append(make())
        executor = MultiThreadedExecutor(num_threads=threads or max(2, len(nodes)))
        for n in nodes:
            executor.add_node(n)
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
    except ConfigError as exc:
        print(f'error: {exc}', file=sys.stderr)
        code = 2
    finally:
        for n in reversed(nodes):
            n.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code


def node_main(factory: Callable[[], Node], argv: Sequence[str] | None = None) -> int:
    """Entry point of a node's console script."""
    return spin_nodes([factory], args=sys.argv if argv is None else argv)
