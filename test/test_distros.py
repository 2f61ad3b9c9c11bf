"""ROS 2 Humble, Jazzy and Kilted. This machine runs Kilted's rclpy (PyPI
wheels, the default venv) and Jazzy's (a second venv: ``AVP_DISTRO=jazzy
tools/setup.sh``, whose ROS-layer test run is in docs/robot.md). Humble's rclpy
is not installable here, so it is emulated: a node runs with
``rclpy.experimental`` made unimportable (Humble has none), and every rclpy
name the package uses is checked against Humble's rclpy API, read from its
source (test/data/rclpy_humble_api.json)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import diag_values

ROOT = Path(__file__).resolve().parent.parent
HUMBLE = json.loads((ROOT / 'test' / 'data' / 'rclpy_humble_api.json').read_text())
#: keyword arguments of rclpy.init in Humble (rclpy/__init__.py at the same commit)
HUMBLE_INIT_KWARGS = {'args', 'context', 'domain_id', 'signal_handler_options'}

BLOCK_EXPERIMENTAL = textwrap.dedent('''
    import importlib.abc, sys
    class HumbleRclpy(importlib.abc.MetaPathFinder):
        """Humble's rclpy (3.x) has no rclpy.experimental."""
        def find_spec(self, name, path=None, target=None):
            if name == 'rclpy.experimental' or name.startswith('rclpy.experimental.'):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, HumbleRclpy())
    from av_perception.cli import main
    sys.exit(main(sys.argv[1:]))
''')


@pytest.mark.parametrize('humble', [True, False], ids=['without-rclpy.experimental', 'kilted'])
def test_a_node_runs_and_publishes_on_either_executor(ros, tmp_path, humble):
    from diagnostic_msgs.msg import DiagnosticArray
    from tf2_msgs.msg import TFMessage

    from av_perception.ros import qos
    params = tmp_path / 'p.yaml'
    params.write_text(textwrap.dedent('''
        /**/static_frames:
          ros__parameters:
            diagnostics_period: 0.2
            frames: [mic_array]
            mic_array: {parent: base_link, xyz: [0.0, 0.0, 0.3], rpy: [0.0, 0.0, 0.0]}
    '''))
    cmd = ([sys.executable, '-c', BLOCK_EXPERIMENTAL] if humble
           else [str(Path(sys.executable).parent / 'av-perception')]) + ['run', str(params)]
    tf = ros.collect(TFMessage, '/tf_static', qos.LATCHED)
    diags = ros.collect(DiagnosticArray, '/diagnostics')
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ros.spin_until(lambda: tf and any(st.name == 'static_frames' for a in diags
                                          for st in a.status),
                       timeout=30, what='static_frames output')
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert 'Traceback' not in out
    assert [t.child_frame_id for t in tf[-1].transforms] == ['mic_array']
    executor = diag_values(diags, 'static_frames')['executor']
    assert executor.startswith('SingleThreadedExecutor' if humble else 'EventsExecutor'), executor


def _rclpy_uses() -> tuple[list, list, list]:
    """(from-imports (module, name, guarded), rclpy.<attr> calls, node method calls)."""
    imports, calls, methods = [], [], []
    for path in (ROOT / 'av_perception').rglob('*.py'):
        tree = ast.parse(path.read_text())
        guarded = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(
                    isinstance(h.type, ast.Name) and h.type.id in ('ImportError',
                                                                   'ModuleNotFoundError')
                    for h in node.handlers):
                guarded |= {id(n) for b in node.body for n in ast.walk(b)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.split('.')[0] == 'rclpy':
                for a in node.names:
                    imports.append((node.module, a.name, id(node) in guarded, path.name))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if isinstance(owner, ast.Name) and owner.id == 'rclpy':
                    calls.append((node.func.attr, [k.arg for k in node.keywords], path.name))
                if 'nodes' in path.parts or 'ros' in path.parts:
                    is_node = (isinstance(owner, ast.Name) and owner.id in ('self', 'node')) or (
                        isinstance(owner, ast.Attribute) and owner.attr == 'node')
                    if is_node:
                        methods.append((node.func.attr, path.name))
    return imports, calls, methods


def test_every_rclpy_name_the_package_uses_exists_in_humble():
    imports, calls, methods = _rclpy_uses()
    mods = HUMBLE['modules']
    for module, name, guarded, where in imports:
        if module.startswith('rclpy.experimental'):
            assert guarded, f'{where}: rclpy.experimental is not in Humble: guard the import'
            continue
        assert module in mods, f'{where}: no module {module} in Humble\'s rclpy'
        assert name in mods[module] or f'{module}.{name}' in mods, \
            f'{where}: {module}.{name} is not in Humble\'s rclpy'
    for attr, kwargs, where in calls:
        assert attr in mods['rclpy'], f'{where}: rclpy.{attr} is not in Humble'
        if attr == 'init':
            assert set(kwargs) <= HUMBLE_INIT_KWARGS, (where, kwargs)
    node_api = set(HUMBLE['classes']['rclpy.node.Node'])
    ours = {n.name for p in (ROOT / 'av_perception').rglob('*.py')
            for c in ast.walk(ast.parse(p.read_text())) if isinstance(c, ast.ClassDef)
            for n in c.body if isinstance(n, ast.FunctionDef)}
    ros_like = ('create_', 'declare_', 'get_', 'add_on_', 'destroy_', 'count_', 'set_')
    for attr, where in methods:
        if attr.startswith(ros_like) and attr not in ours:
            assert attr in node_api, f'{where}: Node.{attr} is not in Humble\'s rclpy'
