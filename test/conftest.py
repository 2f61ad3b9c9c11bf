"""Shared test set-up: an isolated ROS 2 domain, and a harness that runs nodes
in one process with bounded waits (never fixed sleeps)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

# Before rclpy is imported anywhere: our own domain, discovery on this host only,
# so parallel runs (CI, a developer's second terminal) never cross.
os.environ['ROS_DOMAIN_ID'] = os.environ.get('AVP_TEST_DOMAIN_ID', str(100 + os.getpid() % 100))
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'

import pytest  # noqa: E402

DISCOVERY_TIMEOUT = 10.0


class RosHarness:
    """Nodes in one rclpy context on one executor, plus a probe node."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.nodes = []
        self.probe = self.add(rclpy.create_node('test_probe', context=self.context))

    def add(self, node):
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def node(self, cls, params: dict | None = None, **kwargs):
        """Create an av_perception node with parameter overrides."""
        from rclpy.parameter import Parameter
        overrides = [Parameter(k, value=v) for k, v in (params or {}).items()]
        return self.add(cls(context=self.context, parameter_overrides=overrides, **kwargs))

    def spin_until(self, predicate: Callable[[], bool], timeout: float = DISCOVERY_TIMEOUT,
                   what: str = 'condition') -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f'timed out after {timeout} s waiting for {what}')
            self.executor.spin_once(timeout_sec=0.05)

    def collect(self, msg_type, topic: str, qos=10) -> list:
        out: list = []
        self.probe.create_subscription(msg_type, topic, out.append, qos)
        return out

    def publisher(self, msg_type, topic: str, qos=10, wait_for: int = 1):
        """A probe publisher, returned once ``wait_for`` subscribers matched."""
        pub = self.probe.create_publisher(msg_type, topic, qos)
        self.spin_until(lambda: pub.get_subscription_count() >= wait_for,
                        what=f'a subscriber on {topic}')
        return pub

    def close(self) -> None:
        for n in self.nodes:
            self.executor.remove_node(n)
            n.destroy_node()
        self.executor.shutdown()
        self.context.try_shutdown()


@pytest.fixture
def ros():
    h = RosHarness()
    try:
        yield h
    finally:
        h.close()


def diag_values(arrays, status_name: str) -> dict[str, str]:
    """Key-values of the newest status called ``status_name`` in DiagnosticArrays."""
    for arr in reversed(arrays):
        for st in arr.status:
            if st.name == status_name:
                return {kv.key: kv.value for kv in st.values}
    names = sorted({st.name for arr in arrays for st in arr.status})
    raise AssertionError(f'no status {status_name!r} in /diagnostics; have {names}')


def recorder_received(diags, topic: str = '/audio/raw') -> int:
    """How many messages of ``topic`` the recorder reports received in its
    newest /diagnostics (0 before its first report)."""
    try:
        return int(diag_values(diags, f'recorder: {topic}')['received'])
    except AssertionError:
        return 0


#: Modules whose tests start nodes as processes (no `ros` fixture) or build the
#: package with colcon: ROS-layer tests too.
ROS_PROCESS_MODULES = {'test_packaging', 'test_launch', 'test_distros', 'test_colcon',
                       'test_multiprocess', 'test_burst'}


def pytest_configure(config):
    config.addinivalue_line('markers', 'ros: a ROS-layer test (nodes, topics, launch, colcon): '
                            'also run against the Jazzy venv (docs/robot.md, "Tested how")')


def pytest_collection_modifyitems(config, items):
    for item in items:
        if 'ros' in getattr(item, 'fixturenames', ()) or \
                item.module.__name__.split('.')[-1] in ROS_PROCESS_MODULES:
            item.add_marker(pytest.mark.ros)
