"""A ROS user's path: a clone in ``ws/src``, a plain ``colcon build`` (no
``--base-paths``) against the PyPI-wheel venv as the underlay; the one
package it finds generates the messages and installs the Python package,
the node executables, launch and config files, and what runs after sourcing
``install/setup.sh`` is the built copy. rosdep sees the same package
(catkin_pkg's discovery, which ``rosdep install --from-paths src`` uses)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from catkin_pkg.packages import find_packages

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
IGNORE = shutil.ignore_patterns('.venv*', '.git', 'build', 'install', 'log', '__pycache__',
                                '*.egg-info', '.pytest_cache', '.hypothesis', 'bags', 'out',
                                '.cache', 'data')


def _workspace(tmp_path: Path) -> Path:
    """A workspace with this repository cloned (copied) into src/."""
    shutil.copytree(ROOT, tmp_path / 'src' / 'av_perception', ignore=IGNORE)
    return tmp_path


def _env() -> dict[str, str]:
    return {'HOME': os.environ.get('HOME', '/root'), 'PATH': f'{VENV / "bin"}:/usr/bin:/bin',
            'AMENT_PREFIX_PATH': str(VENV), 'CMAKE_PREFIX_PATH': str(VENV),
            'ROS_DOMAIN_ID': os.environ['ROS_DOMAIN_ID'],
            'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}


def test_rosdep_and_colcon_discover_the_package(tmp_path):
    ws = _workspace(tmp_path)
    found = find_packages(str(ws / 'src'))  # what rosdep install --from-paths src reads
    assert [p.name for p in found.values()] == ['av_perception']
    listed = subprocess.run([str(VENV / 'bin' / 'colcon'), 'list'], cwd=ws, env=_env(),
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ['av_perception', 'src/av_perception', '(ros.ament_cmake)']


def test_plain_colcon_build_against_the_wheel_underlay(tmp_path):
    ws = _workspace(tmp_path)
    env = _env()
    build = subprocess.run(
        [str(VENV / 'bin' / 'colcon'), 'build', '--event-handlers', 'console_direct-',
         '--cmake-args', f'-DPython3_EXECUTABLE={VENV / "bin" / "python"}', '-G', 'Ninja',
         '-DBUILD_TESTING=OFF'],
        cwd=ws, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert 'Summary: 1 package finished' in build.stdout, build.stdout

    install = ws / 'install' / 'av_perception'
    lib = install / 'lib' / 'av_perception'
    from av_perception.nodes import NODES
    assert set(NODES) | {'av-perception'} == {p.name for p in lib.iterdir()}
    share = install / 'share' / 'av_perception'
    assert (share / 'launch' / 'robot.launch.py').is_file()
    assert (share / 'config' / 'robot.yaml').is_file()
    assert (share / 'msg' / 'AudioChunk.msg').is_file()
    assert (install / 'share' / 'ament_index' / 'resource_index' / 'packages'
            / 'av_perception').is_file()
    site = install / 'lib' / f'python{sys.version_info[0]}.{sys.version_info[1]}' / \
        'site-packages' / 'av_perception'
    assert (site / 'models' / 'echo_depth.onnx').is_file()
    assert 'Library modules' in (site / '__init__.py').read_text()  # ours, not rosidl's empty one

    check = ('import av_perception.msg as m, av_perception, av_perception.paths as p; '
             'print(m.__file__); print(av_perception.__file__); print(p.share_dir()); '
             'print(m.AudioChunk(channels=4).channels)')
    run = subprocess.run(['bash', '-c', f'. install/setup.sh && python -c "{check}" && '
                          f'{lib / "av-perception"} nodes'],
                         cwd=ws, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    msgs_file, pkg_file, share_dir, channels = run.stdout.splitlines()[:4]
    assert msgs_file.startswith(str(install)), msgs_file
    assert pkg_file.startswith(str(install)), pkg_file
    assert share_dir == str(share)
    assert channels == '4'
    assert 'static_frames' in run.stdout
