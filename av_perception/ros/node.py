"""The node framework every av_perception node is built on.

:class:`AvNode` adds to ``rclpy.node.Node``:

- :meth:`AvNode.param`: parameters declared with descriptors (description,
  ranges, read-only, allowed values), so ``ros2 param describe`` explains them
  and a params YAML with a value out of range is refused at start-up; every
  parameter is either read-only or takes effect when set at run time (its
  ``on_change``);
- :meth:`AvNode.enable_switch`: pause and resume at run time (the live
  parameter ``enabled`` and the service ``~/enable``, std_srvs/SetBool), the
  state latched on a topic so that consumers tell a pause from a fault;
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
                                ParameterType, SetParametersResult)
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Bool
from std_srvs.srv import SetBool

from av_perception.errors import ConfigError, InputError
from av_perception.monitor import InputStats, NodeMonitor
from av_perception.ros.qos import LATCHED, RELIABLE

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
        self._live: dict[str, Callable[[Any], None]] = {}
        self._choices: dict[str, Sequence[str]] = {}
        self.add_on_set_parameters_callback(self._on_set_parameters)
        period = self.param('diagnostics_period', 1.0,
                            'Period of /diagnostics reports [s].', lo=0.1, hi=60.0,
                            read_only=True)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE)
        self._diag_timer = self.create_timer(period, self.publish_diagnostics)

    # ----------------------------------------------------------- parameters
    def param(self, name: str, default: Any, description: str, *,
              lo: float | None = None, hi: float | None = None, step: float = 0,
              choices: Sequence[str] | None = None, read_only: bool = False,
              array_type: type | None = None,
              on_change: Callable[[Any], None] | str | None = None) -> Any:
        """Declare a parameter with a descriptor and return its value.

        Args:
            name: parameter name (dots for nested YAML keys).
            default: default value; its Python type is the parameter's type.
                An empty list needs ``array_type``.
            description: what it is, with its unit.
            lo, hi, step: inclusive range for numbers (step 0: continuous).
            choices: allowed values for a string parameter.
            read_only: True where changing it at run time would not take effect.
            on_change: for a writable parameter (required): what setting it at
                run time does: a callable given the new value (it may raise
                ConfigError/InputError/ValueError to refuse it), or the name of
                the attribute of this node that holds the value.

        Raises:
            ConfigError: a value outside ``choices`` (ranges are enforced by rclpy
                and surface as a ConfigError too).
            TypeError: a writable parameter without ``on_change`` (a programming
                error: set_parameters would report success and change nothing).
        """
        if not read_only and on_change is None:
            raise TypeError(f'{self.get_name()}: parameter {name!r} is writable but has no '
                            'on_change: say what setting it does, or declare it read_only')
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
        if choices:
            self._choices[name] = list(choices)
        if isinstance(on_change, str):
            attr = on_change
            self._live[name] = lambda v: setattr(self, attr, v)
        elif on_change is not None:
            self._live[name] = on_change
        return value

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Run-time changes: check the allowed values, then apply each
        parameter's ``on_change``; a refused value leaves the parameter as it was."""
        for p in params:
            allowed = self._choices.get(p.name)
            if allowed and p.value not in allowed:
                return SetParametersResult(successful=False, reason=(
                    f'{p.name}: expected one of {allowed}, got {p.value!r}'))
        for p in params:
            apply = self._live.get(p.name)
            if apply is None:
                continue
            value = list(p.value) if isinstance(p.value, (list, tuple)) else p.value
            try:
                apply(value)
            except (ConfigError, InputError, ValueError) as exc:
                return SetParametersResult(successful=False, reason=f'{p.name}: {exc}')
            self.get_logger().info(f'parameter {p.name} set to {value!r}')
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------- on / off
    def enable_switch(self, apply: Callable[[bool], None], state_topic: str) -> bool:
        """Pause and resume this node at run time without restarting it.

        Declares the live parameter ``enabled`` and the service ``~/enable``
        (std_srvs/SetBool: true resumes, false pauses; nav2's costmap filters
        are switched the same way), which sets that parameter, so both paths
        run ``apply(enabled)``. The state is published latched (std_msgs/Bool,
        transient local) on ``state_topic``, which consumers of this node's
        output subscribe to (:class:`~av_perception.ros.inputs.AudioInput`),
        so a pause shows in their /diagnostics as a pause, not as lost data.

        Returns:
            The initial state (the parameter's value at start-up); ``apply`` is
            not called for it.
        """
        self._state_pub = self.create_publisher(Bool, state_topic, LATCHED)

        def change(value: bool) -> None:
            apply(bool(value))
            now = time.monotonic()
            for stats in self.monitor.inputs.values():  # e.g. the sound card
                stats.set_paused(not value, now)
            self.monitor.set_fact('enabled', bool(value))
            self._state_pub.publish(Bool(data=bool(value)))

        enabled = self.param('enabled', True, 'False pauses the node (no output, device '
                             'released) until set true again; also ~/enable (SetBool).',
                             on_change=change)
        self.monitor.set_fact('enabled', enabled)
        for stats in self.monitor.inputs.values():
            stats.set_paused(not enabled, time.monotonic())
        self._state_pub.publish(Bool(data=enabled))
        self.create_service(SetBool, '~/enable', self._on_enable)
        return enabled

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response
                   ) -> SetBool.Response:
        result = self.set_parameters([Parameter('enabled', value=bool(request.data))])[0]
        response.success = result.successful
        response.message = ('running' if request.data else 'paused') if result.successful \
            else result.reason
        return response

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
