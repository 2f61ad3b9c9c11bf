"""Per-input and per-node health figures reported in /diagnostics.

Pure Python (no ROS): nodes feed it, ``av_perception.ros.node`` turns
:meth:`NodeMonitor.report` into diagnostic_msgs/DiagnosticStatus. All buffers
are bounded, so a node that runs for days does not grow.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

OK, WARN, ERROR, STALE = 0, 1, 2, 3


@dataclass
class InputStats:
    """Rate, latency and drops of one input topic.

    Attributes:
        name: topic (or logical input) name.
        window: seconds over which the rate is measured.
        stale_after: seconds without a message after which the input is STALE
            (0: never, e.g. for optional inputs).
    """

    name: str
    window: float = 5.0
    stale_after: float = 0.0
    received: int = 0
    processed: int = 0
    #: messages that never arrived, inferred from the stream (sequence gaps)
    lost: int = 0
    #: the subscription's queue policy (e.g. 'keep_last 10, reliable'), if known
    queue: str = ''
    drops: Counter = field(default_factory=Counter)
    events: Counter = field(default_factory=Counter)
    last_detail: dict = field(default_factory=dict)
    _arrivals: deque = field(default_factory=lambda: deque(maxlen=4096))
    _latency: deque = field(default_factory=lambda: deque(maxlen=512))
    _age: deque = field(default_factory=lambda: deque(maxlen=512))
    _drops_reported: int = 0
    _events_reported: int = 0
    #: the publisher (or this node) paused the stream on purpose: not a fault
    paused: bool = False
    pauses: int = 0
    _paused_at: float = 0.0
    _resumed_at: float | None = None

    def set_paused(self, paused: bool, now: float) -> None:
        """The stream was paused (or resumed) on purpose at ``now`` [s]: while
        paused, no message is expected and the input reports the pause, not
        staleness; staleness counts again from the resumption."""
        if paused and not self.paused:
            self.pauses += 1
            self._paused_at = now
        elif not paused and self.paused:
            self._resumed_at = now
        self.paused = paused

    def on_receive(self, now: float, stamp: float | None = None) -> None:
        """A message arrived at ``now`` [s, monotonic or ROS time]; ``stamp`` is
        its header stamp on the same clock as ``now`` when comparable."""
        self.received += 1
        self._arrivals.append(now)
        # only the last ``window`` seconds are ever read (and the newest): kept
        # that short, 47 inputs of the simulated graph hold a few KB, not 6 MB
        while len(self._arrivals) > 1 and now - self._arrivals[0] > self.window:
            self._arrivals.popleft()
        if stamp is not None and stamp > 0:
            self._age.append(now - stamp)

    def on_processed(self, latency: float) -> None:
        """The message was used; ``latency`` [s] from arrival to output."""
        self.processed += 1
        self._latency.append(latency)

    def on_drop(self, kind: str, detail: str) -> bool:
        """The message was dropped for ``kind``. Returns True the first time
        this kind is seen (the caller logs it once)."""
        first = kind not in self.drops
        self.drops[kind] += 1
        self.last_detail[kind] = detail
        return first

    def on_event(self, kind: str, detail: str) -> bool:
        """Something noteworthy that did not cost the message (a gap in a
        stream, a stamp jump). Returns True the first time of this kind."""
        first = kind not in self.events
        self.events[kind] += 1
        self.last_detail[kind] = detail
        return first

    def on_lost(self, count: int, detail: str) -> bool:
        """``count`` messages never arrived (a gap in the stream's sequence:
        lost in transport or queue overflow before this node saw them).
        Returns True the first time."""
        first = self.lost == 0
        self.lost += int(count)
        self.last_detail['lost'] = detail
        return first

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())

    def rate(self, now: float) -> float:
        """Messages per second over the last ``window`` seconds."""
        recent = [t for t in self._arrivals if now - t <= self.window]
        if len(recent) < 2:
            return 0.0
        span = now - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0

    def report(self, now: float) -> tuple[int, str, dict[str, str]]:
        """(level, message, key-values) for /diagnostics."""
        values: dict[str, str] = {
            'received': str(self.received),
            'processed': str(self.processed),
            'dropped': str(self.dropped),
            'rate_hz': f'{self.rate(now):.2f}',
        }
        if self._latency:
            lat = np.asarray(self._latency) * 1e3
            values['latency_ms_p50'] = f'{np.percentile(lat, 50):.2f}'
            values['latency_ms_p95'] = f'{np.percentile(lat, 95):.2f}'
        if self.queue:
            values['queue'] = self.queue
        if self.lost:
            values['lost'] = str(self.lost)
            values['lost.last'] = self.last_detail.get('lost', '')
        if self.pauses:
            values['paused'] = str(self.paused).lower()
            values['pauses'] = str(self.pauses)
        if self._age:
            values['input_age_ms_p50'] = f'{np.percentile(np.asarray(self._age) * 1e3, 50):.2f}'
        for kind, count in sorted(self.drops.items()):
            values[f'dropped.{kind}'] = str(count)
            values[f'dropped.{kind}.last'] = self.last_detail.get(kind, '')
        for kind, count in sorted(self.events.items()):
            values[f'events.{kind}'] = str(count)
            values[f'events.{kind}.last'] = self.last_detail.get(kind, '')
        level, message = OK, 'ok'
        new_events = sum(self.events.values()) - self._events_reported
        if new_events:
            level = WARN
            message = f'{new_events} stream events since last report: ' + ', '.join(
                f'{k} x{v}' for k, v in sorted(self.events.items()))
        self._events_reported = sum(self.events.values())
        new_drops = self.dropped - self._drops_reported
        if new_drops:
            level = WARN
            message = f'dropped {new_drops} since last report: ' + ', '.join(
                f'{k} x{v}' for k, v in sorted(self.drops.items()))
        self._drops_reported = self.dropped
        if self.paused:
            return level, f'paused on purpose for {now - self._paused_at:.1f} s', values
        if self.stale_after > 0:
            last = self._arrivals[-1] if self._arrivals else None
            if self._resumed_at is not None:
                last = max(last or self._resumed_at, self._resumed_at)
            if last is None or now - last > self.stale_after:
                level, message = STALE, f'no message for {self.stale_after:.1f} s'
        return level, message, values


class NodeMonitor:
    """All inputs of a node plus free-form facts (model id, provider, ...).

    Thread-safe: callbacks of a multi-threaded executor may feed it at once.
    """

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.inputs: dict[str, InputStats] = {}
        self.facts: dict[str, str] = {}
        self.errors: dict[str, str] = {}

    def input(self, name: str, **kwargs) -> InputStats:
        with self._lock:
            if name not in self.inputs:
                self.inputs[name] = InputStats(name, **kwargs)
            return self.inputs[name]

    def set_fact(self, key: str, value) -> None:
        with self._lock:
            self.facts[key] = str(value)

    def set_error(self, key: str, message: str | None) -> None:
        """A persistent fault (e.g. device gone); ``None`` clears it."""
        with self._lock:
            if message is None:
                self.errors.pop(key, None)
            else:
                self.errors[key] = message

    def report(self) -> list[tuple[str, int, str, dict[str, str]]]:
        """One (name, level, message, values) per input, plus one for the node."""
        now = self._clock()
        out = []
        with self._lock:
            for name, stats in self.inputs.items():
                level, message, values = stats.report(now)
                out.append((name, level, message, values))
            level = ERROR if self.errors else OK
            message = '; '.join(self.errors.values()) if self.errors else 'ok'
            values = dict(self.facts)
            values.update({f'error.{k}': v for k, v in self.errors.items()})
            out.append(('', level, message, values))
        return out
