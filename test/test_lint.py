"""flake8 over the package, its tests, benches, tools and launch files, with
the configuration in setup.cfg (max line 99, as ament_flake8 checks ROS 2
Python packages): zero findings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_flake8_finds_nothing():
    r = subprocess.run([sys.executable, '-m', 'flake8', 'av_perception', 'test', 'bench',
                        'tools', 'launch', 'setup.py'], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0 and not r.stdout, r.stdout[-4000:] + r.stderr[-2000:]
