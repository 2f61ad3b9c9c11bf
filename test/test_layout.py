"""Layout rules that keep the science usable on a robot: nothing outside
``av_perception/sim`` imports the simulator except the simulator's own node
and the ``simulate`` command, so a robot install never needs pybullet,
espeak-ng or the HRTF data to run its perception; robot description types
live in ``av_perception/robot.py``."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / 'av_perception'
#: The simulator's node and the CLI (its `simulate` command) may import it.
ALLOWED = {'nodes/sim_world.py', 'cli.py'}


def _sim_imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            mod = node.module
            if mod == 'av_perception' and any(a.name == 'sim' for a in node.names):
                out.append(f'{path.name}:{node.lineno} from av_perception import sim')
            elif mod == 'av_perception.sim' or mod.startswith('av_perception.sim.'):
                out.append(f'{path.name}:{node.lineno} from {mod}')
        elif isinstance(node, ast.Import):
            out += [f'{path.name}:{node.lineno} import {a.name}' for a in node.names
                    if a.name == 'av_perception.sim' or a.name.startswith('av_perception.sim.')]
    return out


def test_nothing_outside_sim_imports_the_simulator():
    offenders = {}
    for path in sorted(PKG.rglob('*.py')):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith('sim/') or rel in ALLOWED:
            continue
        found = _sim_imports(path)
        if found:
            offenders[rel] = found
    assert not offenders, f'modules outside sim/ import the simulator: {offenders}'


def test_the_guard_sees_an_import(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('def f():\n    from av_perception.sim.scene import Box\n')
    assert _sim_imports(bad) == ['bad.py:2 from av_perception.sim.scene']


def test_robot_description_types_live_beside_arrays():
    from av_perception import robot
    assert {'RobotSpec', 'CameraSpec', 'MountedArray', 'ChirpSpec', 'load_robot'} <= set(
        vars(robot))
    import av_perception.sim.scene as scene
    assert not hasattr(scene, 'load_robot') and not hasattr(scene, 'RobotSpec')


def test_the_cli_adds_its_commands_per_capability():
    """cli.py: one ``_add_<capability>_commands`` per capability, and every
    train / eval subcommand comes from one of them."""
    import argparse

    from av_perception import cli
    for cap in ('direction', 'echo_depth', 'rotation', 'av_heatmap', 'simulation', 'robot',
                'tool'):
        assert callable(getattr(cli, f'_add_{cap}_commands')), cap
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for group in ('train', 'eval'):
        kinds = next(a for a in sub.choices[group]._actions
                     if isinstance(a, argparse._SubParsersAction)).choices
        want = {'direction', 'echo-depth', 'rotation', 'av-heatmap'}
        if group == 'train':
            want.add('echo-teacher')
        else:
            want.add('echo-map')
        assert set(kinds) == want, (group, sorted(kinds))
