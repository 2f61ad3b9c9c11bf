"""Unit tests of av_perception.arrays: microphone array geometry from config files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from av_perception.arrays import KINDS, load_array
from av_perception.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = 'array.yaml') -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


LINEAR2 = """\
name: linear2
frame_id: mic_array
sample_rate: 48000
kind: linear
mics:
  - {name: a, position: [0.0, 0.05, 0.0]}
  - {name: b, position: [0.0, -0.05, 0.0]}
"""


def test_respeaker4_geometry():
    """The 4-mic circular ReSpeaker file: 4 channels at 16 kHz in the mic_array frame."""
    g = load_array('respeaker4')
    assert g.name == 'respeaker4'
    assert g.frame_id == 'mic_array'
    assert g.sample_rate == 16000
    assert g.kind == 'circular'
    assert g.channels == 4
    assert g.mic_names == ('mic0', 'mic1', 'mic2', 'mic3')
    assert g.positions.shape == (4, 3)
    assert g.speaker is None


def test_respeaker4_aperture_is_its_diameter():
    """Opposite mics of a 32.5 mm radius circle are 65 mm apart."""
    assert load_array('respeaker4').aperture == pytest.approx(0.065, abs=1e-3)


def test_respeaker4_mics_lie_on_the_circle():
    """Every ReSpeaker mic is 32.5 mm from the array centre, in the z = 0 plane."""
    pos = load_array('respeaker4').positions
    np.testing.assert_allclose(np.linalg.norm(pos, axis=1), 0.0325, atol=1e-5)
    np.testing.assert_array_equal(pos[:, 2], 0.0)


def test_binaural_geometry():
    """The binaural head: left then right ear, 18 cm apart, left at +y (REP 103)."""
    g = load_array('binaural')
    assert g.channels == 2
    assert g.kind == 'binaural'
    assert g.mic_names == ('left', 'right')
    assert g.positions[0, 1] > 0 > g.positions[1, 1]
    assert g.aperture == pytest.approx(0.18, abs=1e-9)


def test_echo_head_geometry():
    """The echolocation head: two mics at 44.1 kHz and a speaker at the origin."""
    g = load_array('echo_head')
    assert g.channels == 2
    assert g.kind == 'echo'
    assert g.sample_rate == 44100
    assert g.speaker is not None
    np.testing.assert_array_equal(g.speaker, [0.0, 0.0, 0.0])


def test_load_by_path_equals_load_by_name():
    """A geometry file given by path is the same as by name."""
    path = Path(__file__).resolve().parent.parent / 'config' / 'arrays' / 'respeaker4.yaml'
    a, b = load_array(path), load_array('respeaker4')
    assert a.mic_names == b.mic_names
    np.testing.assert_array_equal(a.positions, b.positions)


def test_binaural_is_front_back_ambiguous():
    """Two ears on the y axis cannot tell a source in front from its mirror behind."""
    assert load_array('binaural').front_back_ambiguous


def test_circular_4_mics_are_not_front_back_ambiguous():
    """A planar 4-mic circle resolves front from back."""
    assert not load_array('respeaker4').front_back_ambiguous


def test_two_mic_linear_is_front_back_ambiguous(tmp_path):
    """A 2-mic linear array (written to a temp file) is front-back ambiguous."""
    g = load_array(write(tmp_path, LINEAR2))
    assert g.channels == 2 and g.kind == 'linear' and g.sample_rate == 48000
    assert g.front_back_ambiguous
    assert g.aperture == pytest.approx(0.1)


def test_three_collinear_mics_are_front_back_ambiguous(tmp_path):
    """Three mics on one line are as ambiguous as two."""
    text = LINEAR2 + '  - {name: c, position: [0.0, 0.0, 0.0]}\n'
    assert load_array(write(tmp_path, text)).front_back_ambiguous


def test_front_back_ambiguous_is_a_plain_bool():
    """The property is annotated ``bool``: a numpy.bool_ fails ``is False`` checks and JSON."""
    for name in ('respeaker4', 'binaural'):
        value = load_array(name).front_back_ambiguous
        assert type(value) is bool, type(value)
        assert json.dumps(value) in ('true', 'false')


def one_line_config_error(arg) -> str:
    with pytest.raises(ConfigError) as exc:
        load_array(arg)
    msg = str(exc.value)
    assert '\n' not in msg, msg
    return msg


def test_missing_array_name_is_a_config_error():
    """An array name with no file under config/arrays names what was looked for."""
    msg = one_line_config_error('no_such_array_xyz')
    assert 'no_such_array_xyz' in msg


def test_missing_file_path_is_a_config_error(tmp_path):
    """A path to a file that does not exist is a ConfigError, not FileNotFoundError."""
    msg = one_line_config_error(tmp_path / 'missing.yaml')
    assert 'missing.yaml' in msg


def test_invalid_yaml_is_a_config_error(tmp_path):
    """A file that is not YAML is refused in one line naming the file."""
    p = write(tmp_path, 'name: x\nmics: [\n  {name: a, position: [0, 0\n')
    msg = one_line_config_error(p)
    assert str(p) in msg and 'YAML' in msg


def test_yaml_that_is_not_a_mapping_is_a_config_error(tmp_path):
    """A YAML list instead of a mapping is refused."""
    msg = one_line_config_error(write(tmp_path, '- a\n- b\n'))
    assert 'mapping' in msg


def test_missing_mics_is_a_config_error(tmp_path):
    """A file without mics is refused, naming the file and the missing key."""
    p = write(tmp_path, 'name: x\nframe_id: mic_array\nsample_rate: 16000\nkind: linear\n')
    msg = one_line_config_error(p)
    assert str(p) in msg and 'mics' in msg


def test_missing_sample_rate_is_a_config_error(tmp_path):
    """sample_rate is required."""
    msg = one_line_config_error(write(tmp_path, LINEAR2.replace('sample_rate: 48000\n', '')))
    assert 'sample_rate' in msg


def test_non_positive_sample_rate_is_a_config_error(tmp_path):
    """A zero sample rate is refused."""
    msg = one_line_config_error(write(tmp_path, LINEAR2.replace('48000', '0')))
    assert 'sample_rate' in msg and 'got 0' in msg


def test_two_dimensional_positions_are_a_config_error(tmp_path):
    """Mic positions need x, y and z."""
    text = LINEAR2.replace('[0.0, 0.05, 0.0]', '[0.0, 0.05]')
    text = text.replace('[0.0, -0.05, 0.0]', '[0.0, -0.05]')
    msg = one_line_config_error(write(tmp_path, text))
    assert '3-D' in msg


def test_duplicate_mic_names_are_a_config_error(tmp_path):
    """Two channels called 'a' would make the channel order ambiguous."""
    msg = one_line_config_error(write(tmp_path, LINEAR2.replace('name: b', 'name: a')))
    assert 'unique' in msg and "'a', 'a'" in msg


def test_bad_kind_is_a_config_error(tmp_path):
    """An unknown kind is refused, listing the accepted kinds."""
    spherical = LINEAR2.replace('kind: linear', 'kind: spherical')
    msg = one_line_config_error(write(tmp_path, spherical))
    assert "'spherical'" in msg
    assert all(k in msg for k in KINDS)


def test_doa_window_comes_from_the_file_with_a_default(tmp_path):
    """respeaker4 asks for 0.5 s analysis windows, binaural 0.256 s; a file
    without doa_window gets 0.256 s; a nonsense value is a one-line error."""
    assert load_array('respeaker4').doa_window == 0.5
    assert load_array('binaural').doa_window == 0.256
    assert load_array(write(tmp_path, LINEAR2)).doa_window == 0.256
    msg = one_line_config_error(write(tmp_path, LINEAR2 + 'doa_window: 60\n', 'w.yaml'))
    assert 'doa_window' in msg and '60' in msg


def test_directional_echo_head_geometry():
    """The cardioid echo head: same layout as echo_head, microphones turned
    30 deg outwards; every other file is omnidirectional."""
    g, omni = load_array('echo_head_cardioid'), load_array('echo_head')
    assert g.directivity == 'cardioid' and omni.directivity == 'omni'
    np.testing.assert_array_equal(g.positions, omni.positions)
    np.testing.assert_allclose(np.degrees(g.facing), [[30.0, 0.0], [-30.0, 0.0]])


@pytest.mark.parametrize('extra, problem', [
    ('directivity: shotgun\n', 'directivity must be one of'),
    ('directivity: cardioid\n', 'facing must be'),
])
def test_bad_directivity_is_a_one_line_config_error(tmp_path, extra, problem):
    """An unknown pattern, or a facing that is not [azimuth, elevation] per
    microphone, is refused in one line."""
    text = LINEAR2 + extra
    if problem == 'facing must be':
        text = text.replace('position: [0.0, 0.05, 0.0]}',
                            'position: [0.0, 0.05, 0.0], facing: [10.0]}')
    assert problem in one_line_config_error(write(tmp_path, text))
