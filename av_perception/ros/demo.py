"""``av-perception demo``: the simulated robot with every node of the package
in one process for about a minute, recorded to an MCAP bag, then a report
(PNG) and a metrics JSON of what the nodes published against the simulator's
ground truth.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from pathlib import Path

import yaml

from av_perception.errors import ConfigError
from av_perception.paths import config_path

#: The params file the demo runs (the simulated robot and every node).
DEMO_PARAMS = 'sim.yaml'


def demo_params(out: Path, params: str | Path = DEMO_PARAMS) -> Path:
    """The demo's params file: ``params`` with the recorder writing to
    ``out/bag``; written to ``out/params.yaml``."""
    path = config_path(params)
    doc = yaml.safe_load(path.read_text())
    rec = next((k for k in doc if str(k).rstrip('/').split('/')[-1] == 'recorder'), None)
    if rec is None:
        raise ConfigError(f'{path}: expected a recorder entry to record the demo')
    doc[rec]['ros__parameters'].update({'output_dir': str(out), 'output': 'bag'})
    target = out / 'params.yaml'
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    return target


def run_demo(out: str | Path = 'out/demo', seconds: float = 60.0,
             params: str | Path = DEMO_PARAMS, progress=sys.stdout) -> int:
    """Run the demo graph for ``seconds``, then write the report.

    ``out`` is the demo's own folder: its previous ``bag/`` is replaced.
    Returns the process exit code.
    """
    from av_perception import report
    from av_perception.nodes import node_class
    from av_perception.ros.spin import spin_nodes
    from av_perception.runner import nodes_in_params

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if (out / 'bag').exists():
        shutil.rmtree(out / 'bag')
    path = demo_params(out, params)
    entries = nodes_in_params(path)
    made = {}

    def factory(name: str, ns: str):
        def make():
            node = node_class(name)(namespace=ns)
            made[(ns, name)] = node
            return node
        return make

    stop = threading.Event()

    def tick() -> None:
        playing = None  # when the simulated robot started playing (after rendering its room)
        while not stop.wait(5.0):
            sim = next((n for (_, name), n in made.items() if name == 'sim_world'), None)
            if sim is not None and not sim.ready.is_set():
                print(f'[demo] rendering the room: {sim.monitor.facts.get("slots_rendered", "")}'
                      ' slots', file=progress, flush=True)
                continue
            playing = playing or time.monotonic()
            elapsed = time.monotonic() - playing
            rec = next((n for (_, name), n in made.items() if name == 'recorder'), None)
            count = sum(rec.writer.counts.values()) if rec is not None else 0
            print(f'[demo] {elapsed:5.0f}/{seconds:.0f} s  {len(made)} nodes  {count} messages '
                  'recorded', file=progress, flush=True)
            if elapsed >= seconds:
                stop.set()

    print(f'[demo] starting {", ".join(n for _, n in entries)} for {seconds:.0f} s',
          file=progress, flush=True)
    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    code = spin_nodes([factory(name, ns) for ns, name in entries],
                      args=['av-perception', '--ros-args', '--params-file', str(path)],
                      stop=stop)
    stop.set()
    if code != 0:
        return code
    print('[demo] writing the report', file=progress, flush=True)
    metrics = report.build(out / 'bag', out)
    print(f'[demo] bag:     {out / "bag"}  ({sum(metrics["topics"].values())} messages; '
          '`ros2 bag play` it into RViz with config/av_perception.rviz)', file=progress)
    print(f'[demo] report:  {out / "report.png"}', file=progress)
    print(f'[demo] metrics: {out / "metrics.json"}', file=progress, flush=True)
    return 0
