"""`av-perception check-array` says whether a recording agrees with the
array file, and finds a deliberately swapped channel order."""

from __future__ import annotations

import subprocess
from dataclasses import replace
import sys
from pathlib import Path

import pytest
import soundfile

from av_perception.sim.world import SceneSimulator
from test_sound_direction import _scene

EXE = Path(sys.executable).parent / 'av-perception'


@pytest.fixture(scope='module')
def recording(tmp_path_factory):
    """One second of a noise source at 60 deg, recorded by the 4-mic array."""
    scene = _scene([60.0], cls=('noise',))
    scene = replace(scene, poses=scene.poses * 2)
    with SceneSimulator(scene) as sim:
        x = __import__('numpy').concatenate([sim.slot(0).array, sim.slot(1).array], axis=1)
    d = tmp_path_factory.mktemp('rec')
    soundfile.write(d / 'ok.wav', x.T, 16000, subtype='FLOAT')
    soundfile.write(d / 'swapped.wav', x[[1, 0, 2, 3]].T, 16000, subtype='FLOAT')
    soundfile.write(d / 'two.wav', x[:2].T, 16000, subtype='FLOAT')
    return d


def _check(path, *extra):
    return subprocess.run([str(EXE), 'check-array', '--array', 'respeaker4', '--recording',
                           str(path), '--azimuth', '60', *extra], capture_output=True, text=True,
                          timeout=120)


def test_matching_recording_is_ok(recording):
    r = _check(recording / 'ok.wav')
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith('OK')


def test_swapped_channels_are_found(recording):
    r = _check(recording / 'swapped.wav')
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'MISMATCH' in r.stdout and '[1, 0, 2, 3]' in r.stdout


def test_wrong_channel_count_is_one_clear_line(recording):
    r = _check(recording / 'two.wav')
    assert r.returncode == 2
    assert 'expected 4 channels' in r.stderr and 'Traceback' not in r.stderr
