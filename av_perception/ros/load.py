"""Load harness: drive one node with its inputs at a chosen rate and measure it.

A :class:`LoadTarget` (one entry per node in
:data:`av_perception.ros.load_targets.TARGETS`) says what a node subscribes
to, how to make a valid input message, its nominal rate and which output
carries the stamp of the input it came from. :class:`LoadRun` starts the node
either in this process (its own executor thread, the shape of
``av-perception run``) or as a separate process (``av-perception run`` on a
params file), publishes the inputs from a separate probe node on a schedule,
and records:

- end-to-end latency, input publish -> output receipt, matched by header stamp;
- output rate;
- the node process's resident memory over time;
- the node's own /diagnostics (received, processed, dropped by reason, lost
  messages detected from gaps, stream events).

The figures are computed by :mod:`av_perception.loadstats` (no ROS).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile

from av_perception.loadstats import (LatencyMatcher, RssSampler, drained_seconds,
                                     percentiles_ms, recovery_seconds)
from av_perception.ros.qos import RELIABLE


def bench_setup() -> None:
    """For a benchmark's main: its own ROS domain on this host only (unless
    ROS_DOMAIN_ID is set), so that a load run never feeds, or is fed by,
    another graph running on the machine (child processes inherit it); and
    SIGTERM unwinds like Ctrl-C, so the nodes it started are stopped too.
    Call before rclpy is initialised."""
    os.environ.setdefault('ROS_DOMAIN_ID', str(200 + os.getpid() % 30))
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


#: What a burst may cost: resident memory growth [MB] and the time after it
#: until latency is back to normal [s].
RSS_LIMIT_MB = 50.0
RECOVERY_LIMIT_S = 2.0


@dataclass
class LoadInput:
    """One input topic of a node under load.

    Attributes:
        topic: topic name as the node subscribes to it (relative names resolve
            in the root namespace).
        msg_type: the message class.
        make: ``make(k, stamp_ns)`` -> the k-th message of the stream, stamped
            ``stamp_ns`` (a valid message: the node must be able to use it).
        qos: the publisher's QoS.
        once: published once before the stream starts (e.g. a latched AudioInfo).
    """

    topic: str
    msg_type: type
    make: Callable[[int, int], Any]
    qos: QoSProfile = field(default_factory=lambda: RELIABLE)
    once: bool = False


@dataclass
class LoadTarget:
    """How to load one node (see module docstring).

    Attributes:
        node: node name (key of ``av_perception.nodes.NODES``).
        params: parameters for the run (``{out}`` in a string value is replaced
            by the run's scratch directory).
        inputs: its inputs; the streamed ones (``once`` False) get ``rate_hz``.
        rate_hz: nominal message rate of each streamed input.
        output: (topic, type) of the output whose header stamp names its input,
            or None for a node whose only output is /diagnostics or a file.
        output_stamp: the output message's stamp [ns].
        offset_s: added to an output stamp to land in the period of the input
            that completed it (see :class:`~av_perception.loadstats.LatencyMatcher`).
        diag_input: name of the input in the node's /diagnostics (default: the
            first streamed input's topic).
        settle_s: nominal input a node needs before it is in its steady state
            (av_heatmap keeps the last 1.5 s of acoustic images): every
            warm-up lasts at least this long, so that filling that memory is
            not counted as growth under load [s].
    """

    node: str
    params: dict
    inputs: list[LoadInput]
    rate_hz: float
    output: tuple[str, type] | None = None
    output_stamp: Callable[[Any], int] | None = None
    offset_s: float = 0.0
    diag_input: str | None = None
    settle_s: float = 0.0

    @property
    def stream(self) -> list[LoadInput]:
        return [i for i in self.inputs if not i.once]

    @property
    def diag_name(self) -> str:
        return f'{self.node}: {self.diag_input or self.stream[0].topic}'


@dataclass
class Phase:
    """A stretch of publishing at one rate: [start, stop) on the monotonic clock."""

    name: str
    rate_hz: float
    start: float
    stop: float
    published: int


@dataclass
class LoadRun:
    """One node under load (see module docstring). Use as a context manager.

    Args:
        target: what to run and feed.
        workdir: scratch folder (params file, node log, recorder output).
        separate_process: run the node as its own process (else in this one).
        diagnostics_period: the node's /diagnostics period [s].
    """

    target: LoadTarget
    workdir: Path
    separate_process: bool = False
    diagnostics_period: float = 0.5
    phases: list = field(default_factory=list)
    diag: dict = field(default_factory=dict)
    #: (receipt time, values) of each report of the node's streamed input
    diag_history: list = field(default_factory=list)
    published: int = 0

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.period_ns = int(round(1e9 / self.target.rate_hz))
        self.matcher = LatencyMatcher(self.period_ns, int(round(self.target.offset_s * 1e9)))
        self.t0_ns = (time.time_ns() // 1_000_000_000 + 1) * 1_000_000_000
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.proc: subprocess.Popen | None = None
        self.node = None
        self.rss: RssSampler | None = None

    # ------------------------------------------------------------ set-up
    def params(self) -> dict:
        out = {'diagnostics_period': self.diagnostics_period}
        for k, v in self.target.params.items():
            out[k] = v.replace('{out}', str(self.workdir)) if isinstance(v, str) else v
        return out

    def __enter__(self) -> LoadRun:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.probe = rclpy.create_node('load_probe', context=self.context)
        self._probe_exec = SingleThreadedExecutor(context=self.context)
        self._probe_exec.add_node(self.probe)
        self.probe.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, RELIABLE)
        if self.target.output is not None:
            topic, mtype = self.target.output
            self.probe.create_subscription(mtype, topic, self._on_output, RELIABLE)
        self._spin_in_thread(self._probe_exec)
        try:
            self._start()
        except BaseException:  # stop what did start (a node process, threads)
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        if self.separate_process:
            self._start_process()
        else:
            self._start_in_process()
        self.rss = RssSampler(self.proc.pid if self.proc else os.getpid())
        self._start_thread(self._sample_rss)
        self.pubs = {i.topic: self.probe.create_publisher(i.msg_type, i.topic, i.qos)
                     for i in self.target.inputs}
        for inp in self.target.inputs:
            if inp.once:
                self.pubs[inp.topic].publish(inp.make(0, self.t0_ns))
        for inp in self.target.inputs:
            self._wait(lambda i=inp: self.pubs[i.topic].get_subscription_count() > 0, 30.0,
                       f'{self.target.node} to subscribe to {inp.topic}')
        for inp in self.target.inputs:  # e.g. the stream's format, before the stream
            if inp.once:
                name = f'{self.target.node}: {inp.topic}'
                self._wait(lambda n=name: int(self.diag.get(n, {}).get('received', 0)) > 0,
                           30.0, f'{self.target.node} to receive {inp.topic}')
        if self.target.output is not None:
            self._wait(lambda: self.probe.count_publishers(self.target.output[0]) > 0, 30.0,
                       f'{self.target.node} to publish {self.target.output[0]}')

    def _start_in_process(self) -> None:
        from rclpy.parameter import Parameter

        from av_perception.nodes import node_class
        from av_perception.ros.spin import executor_description, make_executor
        overrides = [Parameter(k, value=v) for k, v in self.params().items()]
        self.node = node_class(self.target.node)(context=self.context,
                                                 parameter_overrides=overrides)
        self._node_exec = make_executor(context=self.context)
        self._node_exec.add_node(self.node)
        self.node.monitor.set_fact('executor', executor_description(self._node_exec))
        self._spin_in_thread(self._node_exec)

    def _start_process(self) -> None:
        path = self.workdir / 'params.yaml'
        path.write_text(yaml.safe_dump({self.target.node: {'ros__parameters': self.params()}}))
        self._log = open(self.workdir / 'node.log', 'w')
        self.proc = subprocess.Popen([sys.executable, '-m', 'av_perception.cli', 'run',
                                      str(path)], stdout=self._log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ))

    def _start_thread(self, fn) -> None:
        th = threading.Thread(target=fn, daemon=True)
        th.start()
        self._threads.append(th)

    def _spin_in_thread(self, executor) -> None:
        def spin():
            while not self._stop.is_set() and self.context.ok():
                executor.spin_once(timeout_sec=0.05)
        self._start_thread(spin)

    def _sample_rss(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self.rss.sample()
            except (OSError, ValueError):  # the process has ended
                return

    def _wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f'{self.target.node} exited with {self.proc.returncode} '
                                   f'while waiting for {what}; log: {self.workdir / "node.log"}')
            if time.monotonic() > deadline:
                raise TimeoutError(f'timed out after {timeout} s waiting for {what}')
            time.sleep(0.02)

    # ------------------------------------------------------- callbacks
    def _on_output(self, msg) -> None:
        t = time.monotonic()
        with self._lock:
            self.matcher.received(self.target.output_stamp(msg), t)

    def _on_diag(self, arr: DiagnosticArray) -> None:
        t = time.monotonic()
        with self._lock:
            for st in arr.status:
                values = {kv.key: kv.value for kv in st.values}
                self.diag[st.name] = values
                if st.name == self.target.diag_name:
                    self.diag_history.append((t, values))

    # ---------------------------------------------------------- driving
    def publish(self, name: str, rate_hz: float, seconds: float) -> Phase:
        """Publish every streamed input at ``rate_hz`` for ``seconds``; the
        stamps advance by the nominal period whatever the rate (a stream
        arriving faster than real time)."""
        n = max(1, int(round(rate_hz * seconds)))
        start = time.monotonic()
        for j in range(n):
            due = start + j / rate_hz
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            k = self.published
            stamp = self.t0_ns + k * self.period_ns
            msgs = [(inp.topic, inp.make(k, stamp)) for inp in self.target.stream]
            with self._lock:  # before publishing: the output may come back at once
                self.matcher.sent(stamp, time.monotonic())
            for topic, msg in msgs:
                self.pubs[topic].publish(msg)
            self.published += 1
        phase = Phase(name, rate_hz, start, time.monotonic(), n)
        self.phases.append(phase)
        return phase

    def node_diag(self) -> dict:
        """The node's newest /diagnostics values for its streamed input."""
        with self._lock:
            return dict(self.diag.get(self.target.diag_name, {}))

    def settle(self, timeout: float = 20.0) -> dict:
        """Wait until the node has accounted for every published message
        (received + lost = published, received = processed + dropped) or
        ``timeout``; returns its final /diagnostics values."""
        def accounted() -> bool:
            d = self.node_diag()
            got = int(d.get('received', -1)) + int(d.get('lost', 0))
            done = int(d.get('processed', 0)) + int(d.get('dropped', 0))
            return got >= self.published and done >= int(d.get('received', 0))
        try:
            self._wait(accounted, timeout, 'the node to account for every message')
        except TimeoutError:
            pass
        time.sleep(2 * self.diagnostics_period)  # one more report after the last message
        return self.node_diag()

    def phase_figures(self, phase: Phase) -> dict:
        """Latency and output rate of the inputs published in one phase."""
        with self._lock:
            lats = self.matcher.latencies(phase.start, phase.stop)
            # over the phase's whole span: n inputs cover n periods
            hz = len(lats) / (phase.stop - phase.start + 1.0 / phase.rate_hz)
        return {**percentiles_ms(lats), 'hz': round(hz, 2), 'outputs': len(lats),
                'published': phase.published, 'rate_hz': phase.rate_hz}

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: the node shuts down cleanly
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stop.set()
        for th in self._threads:
            th.join(timeout=5)
        if self.node is not None and hasattr(self, '_node_exec'):
            self._node_exec.remove_node(self.node)
            self.node.destroy_node()
            self._node_exec.shutdown()
        self._probe_exec.shutdown()
        self.probe.destroy_node()
        self.context.try_shutdown()
        if self.proc is not None:
            self._log.close()


def burst(target: LoadTarget, workdir: Path, separate: bool, burst_seconds: float,
          baseline_seconds: float = 10.0, after_seconds: float = 10.0,
          factor: float = 10.0, diagnostics_period: float = 0.2,
          warmup_seconds: float = 2.0) -> dict:
    """Feed ``target`` at its nominal rate, then ``factor`` x that rate for
    ``burst_seconds``, then the nominal rate again; returns the figures:
    latency per phase, the input queue the node reports, resident memory
    growth, every message accounted for in the node's /diagnostics
    (published = received + lost, received = processed + dropped), and the
    seconds after the burst until latency is back to normal (no backlog of
    outputs later than max(1.5 x baseline p95, baseline p95 + 20 ms), see
    :func:`~av_perception.loadstats.recovery_seconds`); for a node
    without a stamped output, until its backlog is worked off).
    ``ok``: all accounted, growth < RSS_LIMIT_MB, recovery <= RECOVERY_LIMIT_S."""
    with LoadRun(target, workdir, separate_process=separate,
                 diagnostics_period=diagnostics_period) as run:
        run.publish('warmup', target.rate_hz, max(warmup_seconds, target.settle_s))
        depth = run.settle(timeout=10).get('queue')  # as the node reports it
        base = run.publish('baseline', target.rate_hz, baseline_seconds)
        hot = run.publish('burst', target.rate_hz * factor, burst_seconds)
        at_burst_end = run.published
        after = run.publish('after', target.rate_hz, after_seconds)
        final = run.settle(timeout=30)
        figs = {p.name: run.phase_figures(p) for p in (base, hot, after)}
        out: dict = {'input_hz': target.rate_hz, 'burst_hz': target.rate_hz * factor,
                     'burst_seconds': burst_seconds, 'queue': depth, **figs}
        if target.output is not None and figs['baseline']['p95_ms'] is not None:
            normal = max(1.5 * figs['baseline']['p95_ms'], figs['baseline']['p95_ms'] + 20.0)
            out['normal_ms'] = round(normal, 2)
            out['recovery_s'] = recovery_seconds(run.matcher.matched, hot.stop, normal / 1e3)
            out['recovery'] = 'latency'
        else:
            out['recovery_s'] = drained_seconds(run.diag_history, at_burst_end, hot.stop)
            out['recovery'] = 'backlog drained (no stamped output)'
        out['rss_mb_start'] = round(run.rss.between(hot.start - 1.0, hot.start)[-1], 1) \
            if run.rss.between(hot.start - 1.0, hot.start) else None
        out['rss_growth_mb'] = run.rss.growth_mb(hot.start, after.stop + 1.0)
        published = run.published
    received = int(final.get('received', 0))
    processed = int(final.get('processed', 0))
    dropped = int(final.get('dropped', 0))
    lost = int(final.get('lost', 0))
    out.update(published=published, received=received, processed=processed, dropped=dropped,
               lost=lost, drop_reasons={k[len('dropped.'):]: int(v) for k, v in final.items()
                                        if k.startswith('dropped.') and not k.endswith('.last')})
    # a best-effort stream without sequence numbers (camera images): frames its
    # queue overwrote before the node saw them cannot be counted by the node;
    # they are reported as 'unseen'
    best_effort = 'best_effort' in (out.get('queue') or '')
    out['unseen'] = published - received - lost
    out['accounted'] = (0 <= out['unseen'] if best_effort else out['unseen'] == 0) \
        and processed + dropped == received
    out['ok'] = bool(out['accounted'] and out['rss_growth_mb'] is not None
                     and out['rss_growth_mb'] < RSS_LIMIT_MB
                     and out['recovery_s'] is not None
                     and out['recovery_s'] <= RECOVERY_LIMIT_S)
    return out
