"""Running nodes: one node as its own process (the ``ros2 run`` shape), or
several in one process on one executor (``av-perception run``)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Sequence

import rclpy
from rclpy.executors import Executor, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from av_perception.errors import ConfigError


def make_executor(threads: int | None = None, context=None) -> Executor:
    """The executor for the package's nodes (``context``: rclpy's default one if None).

    - ``threads`` given: a MultiThreadedExecutor with that many threads;
    - else rclpy's EventsExecutor where it exists (Jazzy and later: callbacks
      dispatched from C++, several times less overhead per message than the
      Python executors, which could not keep up with the simulated robot's
      ~100 messages/s in one process);
    - else (Humble's rclpy has no ``rclpy.experimental``) a
      SingleThreadedExecutor.

    :func:`executor_description` says which, for /diagnostics.
    """
    if threads:
        return MultiThreadedExecutor(num_threads=threads, context=context)
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:  # Humble (rclpy 3.x): no rclpy.experimental
        return SingleThreadedExecutor(context=context)
    return EventsExecutor(context=context)


def executor_description(executor: Executor) -> str:
    """What runs a node's callbacks, as its /diagnostics reports it."""
    name = type(executor).__name__
    if isinstance(executor, SingleThreadedExecutor):
        return f'{name} (this rclpy has no EventsExecutor)'
    return name


def spin_nodes(factories: Sequence[Callable[[], Node]], args: Sequence[str] | None = None,
               threads: int | None = None, stop: threading.Event | None = None) -> int:
    """Create the nodes in one context and spin them on one executor until
    Ctrl-C, SIGTERM or ``stop``, then destroy them (recorders finalize their
    bags) and shut down.

    Signals only set a flag; the executor is spun in short steps so that the
    shutdown runs in order in this thread (the EventsExecutor does not return
    from ``spin()`` on a signal).

    Returns:
        Process exit code: 0 on a clean shutdown, 2 on a configuration error.
    """
    stop = stop or threading.Event()
    rclpy.init(args=list(args) if args is not None else None,
               signal_handler_options=SignalHandlerOptions.NO)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    nodes: list[Node] = []
    executor = None
    code = 0
    try:
        for make in factories:
            nodes.append(make())
        executor = make_executor(threads)
        for n in nodes:
            executor.add_node(n)
            if hasattr(n, 'monitor'):
                n.monitor.set_fact('executor', executor_description(executor))
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except ConfigError as exc:
        print(f'error: {exc}', file=sys.stderr)
        code = 2
    finally:
        if executor is not None:
            executor.shutdown()
        for n in reversed(nodes):
            n.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def node_main(factory: Callable[[], Node], argv: Sequence[str] | None = None) -> int:
    """Entry point of a node's console script."""
    return spin_nodes([factory], args=sys.argv if argv is None else argv)
