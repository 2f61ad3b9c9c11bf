"""Unit tests of av_perception.audio.pcm: audio_common PCM bytes -> float32."""

from __future__ import annotations

import numpy as np
import pytest

from av_perception.audio.chunk import deinterleave
from av_perception.audio.pcm import decode_pcm
from av_perception.errors import InputError


def test_s16le_full_scale_and_half_scale():
    """int16 -32768 is -1.0 full scale, 16384 is +0.5, 0 is silence, 32767 just under +1."""
    data = np.array([-32768, 16384, 0, 32767], dtype='<i2').tobytes()
    out = decode_pcm(data, 'S16LE', 1)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([-1.0, 0.5, 0.0, 32767 / 32768], np.float32))


def test_s16le_is_little_endian():
    """Bytes 00 40 are 0x4000 = 16384 little-endian (0.5), not 0x0040 (big-endian)."""
    out = decode_pcm(b'\x00\x40\x00\xc0', 'S16LE', 1)
    np.testing.assert_array_equal(out, [0.5, -0.5])


def test_s32le_full_scale_and_half_scale():
    """int32 -2**31 is -1.0 and 2**30 is +0.5."""
    data = np.array([-2**31, 2**30, 0, -2**29], dtype='<i4').tobytes()
    out = decode_pcm(data, 'S32LE', 2)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [-1.0, 0.5, 0.0, -0.25])


def test_f32le_values_pass_through():
    """Float PCM is already full scale +/-1 and is returned unchanged."""
    values = np.array([0.25, -0.75, 1.0, -1.0, 0.0, 0.125], dtype='<f4')
    out = decode_pcm(values.tobytes(), 'F32LE', 3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, values)


def test_lower_case_format_names_are_accepted():
    """'s16le' is the same format as 'S16LE'."""
    data = np.array([16384, -16384], dtype='<i2').tobytes()
    np.testing.assert_array_equal(decode_pcm(data, 's16le', 1), decode_pcm(data, 'S16LE', 1))
    np.testing.assert_array_equal(decode_pcm(data, 's16le', 1), [0.5, -0.5])


def test_output_stays_interleaved_for_deinterleave():
    """Stereo S16LE L R L R decodes frame-major, so deinterleave gives L and R rows."""
    data = np.array([16384, -16384, 8192, -8192], dtype='<i2').tobytes()
    blk = deinterleave(decode_pcm(data, 'S16LE', 2), 2)
    np.testing.assert_array_equal(blk, [[0.5, 0.25], [-0.5, -0.25]])


def test_unknown_format_is_refused():
    """An unsupported format (8-bit unsigned) names the accepted ones and what came."""
    with pytest.raises(InputError) as exc:
        decode_pcm(b'\x00\x01', 'U8', 1)
    err = exc.value
    assert err.kind == 'sample_format'
    assert 'S16LE' in err.expected and 'S32LE' in err.expected and 'F32LE' in err.expected
    assert "'U8'" in err.got


def test_byte_count_not_whole_frames_is_refused():
    """6 bytes are not whole stereo S16LE frames (4 bytes each): refused under 'length'."""
    with pytest.raises(InputError) as exc:
        decode_pcm(b'\x00' * 6, 'S16LE', 2)
    err = exc.value
    assert err.kind == 'length'
    assert 'multiple of 4 bytes' in err.expected and '2 channels of S16LE' in err.expected
    assert err.got == '6 bytes'


def test_odd_byte_count_for_s32le_is_refused():
    """5 bytes are not a whole S32LE sample."""
    with pytest.raises(InputError) as exc:
        decode_pcm(b'\x00' * 5, 'S32LE', 1)
    assert exc.value.kind == 'length'
    assert 'multiple of 4 bytes' in str(exc.value) and '5 bytes' in str(exc.value)


def test_zero_channels_is_refused():
    """A format with zero channels cannot describe a frame."""
    with pytest.raises(InputError) as exc:
        decode_pcm(b'\x00\x00', 'S16LE', 0)
    assert exc.value.kind == 'channels'
    assert exc.value.got == '0'
