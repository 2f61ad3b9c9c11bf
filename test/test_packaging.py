"""The package's shape as ROS users expect it: launch files name only
executables and params files that exist, every node has its console script,
package.xml is format 3, and the CLI fails with one readable line."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from av_perception.nodes import NODES
from av_perception.runner import nodes_in_params

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _console_scripts() -> set[str]:
    """Console scripts declared in setup.py (parsed, not executed)."""
    tree = ast.parse((ROOT / 'setup.py').read_text())
    nodes = next(n for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 and any(getattr(t, 'id', '') == 'NODES' for t in n.targets))
    return {elt.value for elt in nodes.value.elts} | {'av-perception'}


def _launch_nodes(path: Path) -> list[dict]:
    """Keyword arguments of every launch_ros Node(...) call in a launch file."""
    out = []
    for call in ast.walk(ast.parse(path.read_text())):
        if isinstance(call, ast.Call) and getattr(call.func, 'id', '') == 'Node':
            out.append({kw.arg: kw.value for kw in call.keywords})
    return out


def test_every_registered_node_has_a_console_script():
    assert set(NODES) | {'av-perception'} == _console_scripts()


LAUNCH_FILES = sorted((ROOT / 'launch').glob('*.launch.py'))


def test_there_are_launch_files():
    assert LAUNCH_FILES


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_existing_executables_and_params(path):
    nodes = _launch_nodes(path)
    assert nodes, f'{path.name} starts no Node'
    scripts = _console_scripts()
    for kw in nodes:
        assert isinstance(kw['package'], ast.Constant) and kw['package'].value == 'av_perception'
        exe = kw['executable']
        assert isinstance(exe, ast.Constant), f'{path.name}: executable must be a literal'
        assert exe.value in scripts, f'{path.name}: no executable {exe.value!r}'
    # params files: every 'config', '<file>.yaml' literal pair names an existing
    # file, and that file configures every node the launch file starts
    consts = [c.value for c in ast.walk(ast.parse(path.read_text()))
              if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    yamls = [c for c in consts if c.endswith('.yaml')]
    assert yamls, f'{path.name} names no params file'
    for name in yamls:
        params = ROOT / 'config' / name
        assert params.is_file(), f'{path.name}: no config/{name}'
        configured = {n for _, n in nodes_in_params(params)}
        started = {kw['name'].value for kw in nodes if 'name' in kw}
        assert started <= configured | {'recorder'}, (started, configured)


@pytest.mark.parametrize('path', sorted((ROOT / 'config').glob('*.yaml')), ids=lambda p: p.name)
def test_params_files_name_only_package_nodes(path):
    assert nodes_in_params(path)


def test_package_xml_is_format_3_and_names_the_package():
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    assert root.findtext('name') == 'av_perception'
    assert root.find('export/build_type').text == 'ament_python'
    assert (ROOT / 'resource' / 'av_perception').is_file()
    msgs = ET.parse(ROOT / 'interfaces/av_perception_msgs/package.xml').getroot()
    assert msgs.findtext('member_of_group') == 'rosidl_interface_packages'


def test_msg_files_match_the_interface_contract():
    """Field names and types of AudioChunk and SoundDirection as in interfaces.md."""
    def fields(name):
        lines = [ln.split('#')[0].split() for ln in (ROOT / 'msg' / name).read_text().splitlines()]
        return [tuple(ln) for ln in lines if ln]
    assert fields('AudioChunk.msg') == [
        ('std_msgs/Header', 'header'), ('uint32', 'sample_rate'), ('uint16', 'channels'),
        ('uint64', 'first_sample'), ('float32[]', 'data')]
    assert fields('SoundDirection.msg') == [
        ('std_msgs/Header', 'header'), ('float32', 'azimuth'), ('float32', 'elevation'),
        ('float32', 'confidence'), ('bool', 'front_back_ambiguous')]


def _cli(*args, timeout=60):
    return subprocess.run([str(BIN / 'av-perception'), *args], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_help_lists_the_commands():
    r = _cli('--help')
    assert r.returncode == 0
    for cmd in ('run', 'record', 'doctor'):
        assert cmd in r.stdout


@pytest.mark.parametrize('content, needle', [
    ('not_a_node:\n  ros__parameters: {}\n', 'expected node names'),
    (': : :\n', 'not valid YAML'),
    ('static_frames: 3\n', 'ros__parameters'),
])
def test_cli_run_with_a_bad_params_file_fails_in_one_line(tmp_path, content, needle):
    bad = tmp_path / 'bad.yaml'
    bad.write_text(content)
    r = _cli('run', str(bad))
    assert r.returncode == 2
    assert needle in r.stderr
    assert 'Traceback' not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_run_with_a_parameter_out_of_range_fails_in_one_line(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text(yaml.safe_dump({'audio_monitor': {'ros__parameters': {'silent_dbfs': 5.0}}}))
    r = _cli('run', str(bad))
    assert r.returncode == 2, r.stderr
    assert 'silent_dbfs' in r.stderr and 'Traceback' not in r.stderr


def test_cli_run_missing_file_fails_in_one_line():
    r = _cli('run', '/nonexistent/params.yaml')
    assert r.returncode == 2
    assert r.stderr.strip().count('\n') == 0 and 'cannot read' in r.stderr


def test_run_robot_config_starts_and_stops_cleanly_on_sigterm(tmp_path):
    """All nodes of config/robot.yaml start in one process and shut down
    cleanly on SIGTERM; the recorder's bag is finalized."""
    proc = subprocess.Popen([str(BIN / 'av-perception'), 'run', str(ROOT / 'config/robot.yaml')],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ))
    watchdog = threading.Timer(30.0, proc.kill)  # bound the wait for the start-up line
    watchdog.start()
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if 'recording [' in line:
            break
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=20)
    watchdog.cancel()
    log = ''.join(lines) + rest
    assert proc.returncode == 0, log
    assert 'Traceback' not in log
    assert 'bag closed' in log
    assert (tmp_path / 'bags/robot/metadata.yaml').is_file()


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / 'README.md').read_text()
    ci = (ROOT / '.ci' / 'run').read_text().strip().splitlines()[-1]
    assert ci == 'tools/setup.sh && .venv/bin/python -m pytest -q test'
    assert f'\n{ci}\n' in readme


def test_robot_nodes_do_not_import_torch_or_the_simulator():
    """What a robot computer runs needs no torch, pybullet or HRTF data."""
    code = ('import sys\n'
            'import av_perception.nodes.sound_direction, av_perception.nodes.recorder\n'
            'import av_perception.nodes.audio_common_adapter, av_perception.nodes.static_frames\n'
            'import av_perception.nodes.audio_monitor, av_perception.doa.learned\n'
            'import av_perception.nodes.audio_capture, av_perception.nodes.chirp_emitter\n'
            'bad = [m for m in ("torch", "pybullet", "shroom", "sofar") if m in sys.modules]\n'
            'print(bad)\n')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == '[]'
