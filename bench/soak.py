"""Soak: the simulated robot graph for minutes on end; does it leak, slow
down, drop or miss an echo?

Runs ``av-perception run`` on config/sim.yaml (sim_world, sound_direction on
the 4-mic array and on the binaural head, audio_monitor, recorder; the
recorder writes into a scratch folder) as its own process and watches it from
this one, for ``--minutes`` (10 by default) from the first echo on:

- resident memory of the graph's process every 2 s: growth (median of the
  last minute - median of the first) and its trend [MB/min];
- sound_direction's latency: receipt of its markers - acquisition time of
  the last sample of the window they were computed from (both on the wall
  clock, the one sim_world stamps with): p95 in the first and the last minute;
- every node's /diagnostics: messages dropped or lost, by node and input;
- ``audio/echo``: one per slot, numbered by ``first_sample``: echoes missing
  from the sequence, and the count the recorder's bag holds.

Writes bench/results/soak.json (``minutes``, ``rss_growth_mb``,
``p95_ms_first``, ``p95_ms_last``, ``dropped``, ``missed_echoes``, ...).

    nice -n 10 .venv/bin/python bench/soak.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from av_perception.arrays import load_array
from av_perception.loadstats import RssSampler, percentiles_ms
from av_perception.ros.load import bench_setup

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'
CONFIG = ROOT.parent / 'config' / 'sim.yaml'
WINDOW_S = load_array('respeaker4').doa_window  # sound_direction's default window


class Watcher:
    """The probe node's view of the graph (callbacks on the executor thread)."""

    def __init__(self, node) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from visualization_msgs.msg import MarkerArray

        from av_perception.ros import qos
        from av_perception.msg import AudioChunk
        self.lock = threading.Lock()
        self.echoes: list[tuple[float, int]] = []        # (receipt, emission index)
        self.latency: list[tuple[float, float]] = []     # (receipt, seconds)
        self.diag: dict[str, dict[str, str]] = {}
        node.create_subscription(AudioChunk, 'audio/echo', self.on_echo, qos.AUDIO)
        node.create_subscription(MarkerArray, 'sound_direction/markers', self.on_markers,
                                 qos.RELIABLE)
        node.create_subscription(DiagnosticArray, '/diagnostics', self.on_diag, qos.RELIABLE)

    def on_echo(self, msg) -> None:
        with self.lock:
            self.echoes.append((time.monotonic(), int(msg.first_sample)))

    def on_markers(self, msg) -> None:
        now_ns = time.time_ns()
        if not msg.markers:
            return
        st = msg.markers[0].header.stamp
        heard_ns = st.sec * 10**9 + st.nanosec + int(WINDOW_S * 1e9)
        with self.lock:
            self.latency.append((time.monotonic(), (now_ns - heard_ns) * 1e-9))

    def on_diag(self, arr) -> None:
        with self.lock:
            for s in arr.status:
                self.diag[s.name] = {kv.key: kv.value for kv in s.values}


def bag_count(bag: Path, topic: str) -> int | None:
    """Messages of ``topic`` in a finalized bag (its metadata.yaml)."""
    meta = bag / 'metadata.yaml'
    if not meta.is_file():
        return None
    info = yaml.safe_load(meta.read_text())['rosbag2_bagfile_information']
    for t in info['topics_with_message_count']:
        if t['topic_metadata']['name'] == topic:
            return int(t['message_count'])
    return 0


def node_params(params: dict, node: str) -> dict:
    """A node's ``ros__parameters`` in a parameter file, under its plain name
    or the any-namespace key ``/**/<node>`` the package's configs use."""
    for key in (f'/**/{node}', node):
        if key in params:
            return params[key]['ros__parameters']
    raise KeyError(f'{CONFIG}: no parameters for {node} (looked for /**/{node} and {node})')


def soak(minutes: float, workdir: Path, progress=sys.stderr) -> dict:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    params = yaml.safe_load(CONFIG.read_text())
    node_params(params, 'recorder').update(output='bag', output_dir=str(workdir))
    slot = float(node_params(params, 'sim_world')['slot_seconds'])
    path = workdir / 'sim.yaml'
    path.write_text(yaml.safe_dump(params, sort_keys=False))  # rcl: later keys override
    log = open(workdir / 'graph.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'av_perception.cli', 'run', str(path)],
                            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    rclpy.init()
    probe = rclpy.create_node('soak_probe')
    w = Watcher(probe)
    ex = SingleThreadedExecutor()
    ex.add_node(probe)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ex.spin_once(timeout_sec=0.1)
    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    rss = RssSampler(proc.pid)
    try:
        deadline = time.monotonic() + 600
        while not w.echoes:  # sim_world renders its slots first
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f'the graph did not start; see {workdir / "graph.log"}')
            time.sleep(0.5)
        t0 = time.monotonic()
        end = t0 + minutes * 60
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f'the graph exited ({proc.returncode}) after '
                                   f'{(time.monotonic() - t0) / 60:.1f} min; see graph.log')
            rss.sample()
            done = (time.monotonic() - t0) / 60
            print(f'\r[soak] {done:5.1f}/{minutes:g} min, RSS {rss.samples[-1][1]:.0f} MB, '
                  f'{len(w.echoes)} echoes', end='', file=progress, flush=True)
            time.sleep(2.0)
        t_end = time.monotonic()
        time.sleep(2.0)  # a last /diagnostics report
        with w.lock:
            diag = dict(w.diag)
            echoes = list(w.echoes)
            latency = list(w.latency)
    finally:
        proc.send_signal(signal.SIGINT)  # the recorder closes its bag
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        stop.set()
        spinner.join(timeout=5)
        ex.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown()
        log.close()
        print(file=progress)

    span = min(60.0, (t_end - t0) / 2)
    first = [mb for t, mb in rss.samples if t0 <= t < t0 + span]
    last = [mb for t, mb in rss.samples if t_end - span <= t <= t_end]
    lat_first = percentiles_ms(lat for t, lat in latency if t0 <= t < t0 + span)
    lat_last = percentiles_ms(lat for t, lat in latency if t_end - span <= t <= t_end)
    ks = sorted({k for t, k in echoes if t <= t_end})
    expected = ks[-1] - ks[0] + 1
    missing = expected - len(ks)
    dropped = {name: {'dropped': int(v.get('dropped', 0)), 'lost': int(v.get('lost', 0))}
               for name, v in diag.items() if 'received' in v}
    in_bag = bag_count(workdir / 'bag', '/audio/echo')
    minutes = int((t_end - t0) // 60)
    per_minute = {
        'rss_mb': [round(float(np.median([mb for t, mb in rss.samples
                                          if t0 + 60 * i <= t < t0 + 60 * (i + 1)])), 1)
                   for i in range(minutes)],
        'p95_ms': [percentiles_ms(lat for t, lat in latency
                                  if t0 + 60 * i <= t < t0 + 60 * (i + 1))['p95_ms']
                   for i in range(minutes)]}
    return {
        'minutes': round((t_end - t0) / 60, 2),
        'rss_mb_first': round(float(np.median(first)), 1),
        'rss_mb_last': round(float(np.median(last)), 1),
        'rss_growth_mb': round(float(np.median(last) - np.median(first)), 2),
        'rss_trend_mb_per_min': rss.trend_mb_per_min(t0, t_end),
        'p95_ms_first': lat_first['p95_ms'], 'p95_ms_last': lat_last['p95_ms'],
        'p50_ms_first': lat_first['p50_ms'], 'p50_ms_last': lat_last['p50_ms'],
        'compared_over_s': round(span, 1),
        'dropped': sum(d['dropped'] + d['lost'] for d in dropped.values()),
        'dropped_by_input': {k: v for k, v in dropped.items() if v['dropped'] or v['lost']},
        'echoes': len(ks), 'echoes_expected': expected, 'missed_echoes': missing,
        'echoes_expected_by_clock': int((t_end - t0) / slot) + 1,
        'echoes_in_bag': in_bag,
        'per_minute': per_minute,
        'exit_code': proc.returncode,
        'load_average_1min_at_end': round(os.getloadavg()[0], 2),  # shared machine
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--minutes', type=float, default=10.0)
    ap.add_argument('--out', type=Path, default=RESULTS / 'soak.json')
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        res = soak(args.minutes, Path(tmp))
    print(f'[soak] {res["minutes"]} min: RSS {res["rss_mb_first"]} -> {res["rss_mb_last"]} MB '
          f'({res["rss_growth_mb"]:+} MB, trend {res["rss_trend_mb_per_min"]} MB/min); '
          f'sound_direction p95 {res["p95_ms_first"]} -> {res["p95_ms_last"]} ms; '
          f'{res["dropped"]} dropped/lost; echoes {res["echoes"]} of {res["echoes_expected"]} '
          f'({res["missed_echoes"]} missed; {res["echoes_in_bag"]} in the bag)')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + '\n')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    bench_setup()
    raise SystemExit(main())
