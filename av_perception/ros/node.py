"""The node framework every av_perception node is built on.

:class:`AvNode` adds to ``rclpy.node.Node``:

- :meth:`AvNode.param`: parameters declared with descriptors (description,
  ranges, read-only, allowed values), so ``ros2 param describe`` explains them
  and a params YAML with a value out of range is refused at start-up;
- /diagnostics (diagnostic_msgs/DiagnosticArray) once per
  ``diagnostics_period``: per input its rate, latency, and drops by reason,
  plus the node's facts (model id, execution provider, ...);
- :meth:`AvNode.guard`: wraps a subscription callback so that bad input is
  counted and logged once per kind (what was expected and what came), and the
  node keeps running whatever a message holds.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType)
from rclpy.node import Node
from rclpy.parameter import Parameter

from av_perception.errors import ConfigError, InputError
from av_perception.monitor import InputStats, NodeMonitor
from av_perception.ros.qos import RELIABLE

_LEVELS = {0: DiagnosticStatus.OK, 1: DiagnosticStatus.WARN, 2: DiagnosticStatus.ERROR,
           3: DiagnosticStatus.STALE}

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}

_ARRAY_TYPES = {
    float: (ParameterType.PARAMETER_DOUBLE_ARRAY, Parameter.Type.DOUBLE_ARRAY),
    int: (ParameterType.PARAMETER_INTEGER_ARRAY, Parameter.Type.INTEGER_ARRAY),
    str: (ParameterType.PARAMETER_STRING_ARRAY, Parameter.Type.STRING_ARRAY),
    bool: (ParameterType.PARAMETER_BOOL_ARRAY, Parameter.Type.BOOL_ARRAY),
}


class AvNode(Node):
    """Base class of the package's nodes (see module docstring)."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.monitor = NodeMonitor(clock=time.monotonic)
        period = self.param('diagnostics_period', 1.0,
                            'Period of /diagnostics reports [s].', lo=0.1, hi=60.0,
                            read_only=True)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE)
        self._diag_timer = self.create_timer(period, self.publish_diagnostics)

    # ----------------------------------------------------------- parameters
    def param(self, name: str, default: Any, description: str, *,
              lo: float | None = None, hi: float | None = None, step: float = 0,
              choices: Sequence[str] | None = None, read_only: bool = False,
              array_type: type | None = None) -> Any:
        """Declare a parameter with a descriptor and return its value.

        Args:
            name: parameter name (dots for nested YAML keys).
            default: default value; its Python type is the parameter's type.
                An empty list needs ``array_type``.
            description: what it is, with its unit.
            lo, hi, step: inclusive range for numbers (step 0: continuous).
            choices: allowed values for a string parameter.
            read_only: True where changing it at run time would not take effect.

        Raises:
            ConfigError: a value outside ``choices`` (ranges are enforced by rclpy
                and surface as a ConfigError too).
        """
        desc = ParameterDescriptor(description=description, read_only=read_only)
        if choices:
            desc.additional_constraints = 'one of: ' + ', '.join(choices)
        if isinstance(default, bool):
            desc.type = ParameterType.PARAMETER_BOOL
        elif isinstance(default, int) and (lo is not None or hi is not None):
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi),
                                               step=int(step))]
        elif isinstance(default, float) and (lo is not None or hi is not None):
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo),
                                                            to_value=float(hi), step=float(step))]
        declared: Any = default
        if isinstance(default, list):
            elem = array_type or (type(default[0]) if default else str)
            desc.type, ptype = _ARRAY_TYPES[elem]
            if not default:  # rclpy cannot infer an array's type from []
                declared = ptype
        else:
            desc.type = _TYPES[type(default)]
        try:
            value = self.declare_parameter(name, declared, desc).value
            if value is None and isinstance(default, list):
                value = []
        except Exception as exc:  # rclpy raises several types for a bad override
            raise ConfigError(f'{self.get_name()}: parameter {name!r}: {exc}') from None
        if choices and value not in choices:
            raise ConfigError(f'{self.get_name()}: parameter {name!r}: expected one of '
                              f'{list(choices)}, got {value!r}')
        if isinstance(default, list) and value is not None:
            value = list(value)
        return value

    # ------------------------------------------------------ subscriptions
    def create_subscription(self, msg_type, topic: str, callback, qos_profile, **kwargs):
        """rclpy's, plus: an input already known to the monitor under this
        topic name reports its queue policy (history, depth, reliability) in
        /diagnostics, so a bounded queue can be checked from outside."""
        sub = super().create_subscription(msg_type, topic, callback, qos_profile, **kwargs)
        if topic in self.monitor.inputs:
            q = sub.qos_profile
            self.monitor.inputs[topic].queue = (
                f'{q.history.name.lower()} {q.depth}, {q.reliability.name.lower()}')
        return sub

    # -------------------------------------------------------- bad input
    def input(self, name: str, stale_after: float = 0.0) -> InputStats:
        """The health figures of one input (created on first use)."""
        return self.monitor.input(name, stale_after=stale_after)

    def drop(self, input_name: str, kind: str, detail: str) -> None:
        """Count a dropped message; log the first of each kind as a warning."""
        if self.input(input_name).on_drop(kind, detail):
            self.get_logger().warning(
                f'{input_name}: dropping messages ({kind}): {detail}. Counted in '
                f'/diagnostics; further ones of this kind are not logged.')

    def guard(self, input_name: str, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        """Wrap a subscription callback: InputError -> counted drop; any other
        exception -> counted as ``internal_error`` with its traceback logged
        once; the node keeps running either way."""
        stats = self.input(input_name)

        @functools.wraps(callback)
        def wrapped(msg: Any) -> None:
            start = time.monotonic()
            stats.on_receive(start)
            try:
                callback(msg)
                stats.on_processed(time.monotonic() - start)
            except InputError as exc:
                self.drop(input_name, exc.kind, f'expected {exc.expected}, got {exc.got}')
            except Exception as exc:  # noqa: BLE001 - a node must survive any message
                first = stats.on_drop('internal_error', f'{type(exc).__name__}: {exc}')
                if first:
                    self.get_logger().error(
                        f'{input_name}: callback failed, message dropped:\n'
                        + traceback.format_exc())
        return wrapped

    # ------------------------------------------------------ diagnostics
    def publish_diagnostics(self) -> None:
        """Publish the node's DiagnosticArray (also called by the timer)."""
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        node = self.get_fully_qualified_name()
        for name, level, message, values in self.monitor.report():
            st = DiagnosticStatus(level=_LEVELS[level], message=message, hardware_id=node)
            st.name = f'{node.lstrip("/")}: {name}' if name else node.lstrip('/')
            st.values = [KeyValue(key=k, value=v) for k, v in values.items()]
            arr.status.append(st)
        self._diag_pub.publish(arr)
