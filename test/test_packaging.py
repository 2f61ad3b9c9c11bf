"""The package's shape as ROS users expect it: launch files name only
executables and params files that exist, every node has its console script,
package.xml is format 3, and the CLI fails with one readable line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from av_perception.runner import nodes_in_params

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _console_scripts() -> set[str]:
    """Console scripts of the installed distribution (setup.py's entry points)."""
    from importlib.metadata import distribution
    return {ep.name for ep in distribution('av_perception').entry_points
            if ep.group == 'console_scripts'}


@pytest.mark.parametrize('path', sorted((ROOT / 'config').glob('*.yaml')), ids=lambda p: p.name)
def test_params_files_name_only_package_nodes(path):
    assert nodes_in_params(path)


def test_msg_files_match_the_interface_contract():
    """Field names and types of AudioChunk, SoundSourceArray and SoundSource
    as in interfaces.md; the retired SoundDirection is no package message."""
    def fields(name):
        lines = [ln.split('#')[0].split() for ln in (ROOT / 'msg' / name).read_text().splitlines()]
        return [tuple(ln) for ln in lines if ln]
    assert fields('AudioChunk.msg') == [
        ('std_msgs/Header', 'header'), ('uint32', 'sample_rate'), ('uint16', 'channels'),
        ('uint64', 'first_sample'), ('float32[]', 'data')]
    assert fields('SoundSourceArray.msg') == [
        ('std_msgs/Header', 'header'), ('SoundSource[]', 'sources')]
    assert fields('SoundSource.msg') == [
        ('uint32', 'id'), ('geometry_msgs/Vector3', 'direction'), ('float32', 'azimuth'),
        ('float32', 'elevation'), ('bool', 'elevation_known'), ('float32', 'confidence'),
        ('bool', 'front_back_ambiguous')]
    assert not (ROOT / 'msg' / 'SoundDirection.msg').exists()


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
            'import av_perception.nodes.audio_monitor, av_perception.direction.learned\n'
            'import av_perception.nodes.audio_capture, av_perception.nodes.chirp_emitter\n'
            'bad = [m for m in ("torch", "pybullet", "shroom", "sofar") if m in sys.modules]\n'
            'print(bad)\n')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == '[]'


def test_run_refuses_a_bare_node_key_under_a_namespace(tmp_path):
    """A bare key applies in the root namespace only: under --namespace it
    would silently leave the node on its defaults, so run refuses it."""
    bare = tmp_path / 'bare.yaml'
    bare.write_text('static_frames:\n  ros__parameters:\n    frames: []\n')
    r = _cli('run', str(bare), '--namespace', 'robot1')
    assert r.returncode == 2
    assert '/**/static_frames' in r.stderr and 'Traceback' not in r.stderr


def test_params_keys_resolve_per_namespace():
    from av_perception.runner import nodes_in_params
    sim = ROOT / 'config' / 'sim.yaml'
    assert ('/', 'sim_world') in nodes_in_params(sim)
    assert ('/binaural', 'sound_direction') in nodes_in_params(sim)
    assert ('/robot1/binaural', 'sound_direction') in nodes_in_params(sim, 'robot1')
    assert all(ns.startswith('/robot1') for ns, _ in nodes_in_params(sim, '/robot1/'))
