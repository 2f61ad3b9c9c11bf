"""A ROS user's path: `colcon build` of av_perception_msgs and av_perception
in a workspace, against the PyPI-wheel venv as the underlay, and the built
packages are the ones that run after sourcing install/setup.sh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
IGNORE = shutil.ignore_patterns('.venv', '.git', 'build', 'install', 'log', '__pycache__',
                                '*.egg-info', '.pytest_cache', '.hypothesis', 'bags', 'out')


def test_colcon_build_against_the_wheel_underlay(tmp_path):
    src = tmp_path / 'src' / 'av_perception'
    shutil.copytree(ROOT, src, ignore=IGNORE)
    env = {'HOME': os.environ.get('HOME', '/root'), 'PATH': f'{VENV / "bin"}:/usr/bin:/bin',
           'AMENT_PREFIX_PATH': str(VENV), 'CMAKE_PREFIX_PATH': str(VENV),
           'ROS_DOMAIN_ID': os.environ['ROS_DOMAIN_ID'],
           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    # The package root is itself a package, so colcon does not crawl below it:
    # the interface package is named by a second base path (as in the README).
    build = subprocess.run(
        [str(VENV / 'bin' / 'colcon'), 'build', '--base-paths', 'src/av_perception',
         'src/av_perception/interfaces', '--event-handlers', 'console_direct-',
         '--cmake-args', f'-DPython3_EXECUTABLE={VENV / "bin" / "python"}', '-G', 'Ninja',
         '-DBUILD_TESTING=OFF'],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert 'Summary: 2 packages finished' in build.stdout, build.stdout

    install = tmp_path / 'install'
    lib = install / 'av_perception' / 'lib' / 'av_perception'
    assert {'static_frames', 'recorder', 'audio_common_adapter', 'av-perception'} <= {
        p.name for p in lib.iterdir()}
    share = install / 'av_perception' / 'share' / 'av_perception'
    assert (share / 'launch' / 'robot.launch.py').is_file()
    assert (share / 'config' / 'robot.yaml').is_file()
    assert (install / 'av_perception' / 'share' / 'ament_index' / 'resource_index' / 'packages'
            / 'av_perception').is_file()

    check = ('import av_perception_msgs.msg as m, av_perception, av_perception.paths as p; '
             'print(m.__file__); print(av_perception.__file__); print(p.share_dir()); '
             'print(m.AudioChunk(channels=4).channels)')
    run = subprocess.run(['bash', '-c', f'. install/setup.sh && python -c "{check}" && '
                          f'{lib / "av-perception"} nodes'],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    msgs_file, pkg_file, share_dir, channels = run.stdout.splitlines()[:4]
    assert msgs_file.startswith(str(install)), msgs_file
    assert pkg_file.startswith(str(install)), pkg_file
    assert share_dir == str(share)
    assert channels == '4'
    assert 'static_frames' in run.stdout
