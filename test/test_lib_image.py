"""Unit tests of av_perception.image: sensor_msgs/Image fields <-> numpy."""

from __future__ import annotations

import numpy as np
import pytest

from av_perception.errors import InputError
from av_perception.image import ENCODINGS, MAX_PIXELS, RawImage, decode, encode


def sample(encoding: str, h: int = 5, w: int = 7, seed: int = 0) -> np.ndarray:
    """A random image of the encoding's dtype and shape, covering its value range."""
    rng = np.random.default_rng(seed)
    base, nch = ENCODINGS[encoding]
    shape = (h, w, nch) if nch > 1 else (h, w)
    if base == 'f4':
        return rng.normal(0, 1000, shape).astype(np.float32)
    info = np.iinfo(np.dtype(base))
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(base)


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
def test_encode_decode_round_trip(encoding):
    """encode then decode returns the same pixels, dtype and shape for every encoding."""
    arr = sample(encoding)
    raw = encode(arr, encoding)
    base, nch = ENCODINGS[encoding]
    itemsize = np.dtype(base).itemsize
    assert (raw.height, raw.width, raw.encoding) == (5, 7, encoding)
    assert raw.step == 7 * nch * itemsize
    assert len(raw.data) == raw.step * raw.height
    assert raw.is_bigendian is False
    out = decode(raw)
    assert out.dtype == arr.dtype
    assert out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def test_encode_writes_little_endian_16bit():
    """16UC1 value 258 (0x0102) is written as bytes 02 01."""
    raw = encode(np.array([[258]], dtype=np.uint16), '16UC1')
    assert raw.data == b'\x02\x01'
    assert raw.is_bigendian is False


def test_decoded_array_is_writable_and_owns_its_data():
    """The decoded array is a copy: writing it does not need or touch the message buffer."""
    raw = encode(sample('rgb8'), 'rgb8')
    out = decode(raw)
    assert out.flags.writeable
    out[:] = 0
    assert decode(raw).any()


# ---------------------------------------------------------------- padding, endianness

def test_rgb8_rows_with_padding():
    """Rows of 2 rgb8 pixels (6 bytes) in a 9-byte step: the 3 padding bytes are skipped."""
    pad = b'\xee\xee\xee'
    data = bytes([1, 2, 3, 4, 5, 6]) + pad + bytes([7, 8, 9, 10, 11, 12]) + pad
    out = decode(RawImage(height=2, width=2, encoding='rgb8', step=9, data=data))
    expected = np.array([[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]], np.uint8)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out, expected)


def test_16uc1_rows_with_padding():
    """Rows of 3 uint16 pixels (6 bytes) in an 8-byte step."""
    rows = [np.array([1, 2, 3], '<u2').tobytes() + b'\xff\xff',
            np.array([400, 500, 65535], '<u2').tobytes() + b'\xff\xff']
    out = decode(RawImage(height=2, width=3, encoding='16UC1', step=8, data=b''.join(rows)))
    np.testing.assert_array_equal(out, [[1, 2, 3], [400, 500, 65535]])
    assert out.dtype == np.uint16


def test_data_longer_than_step_times_height_is_accepted():
    """Trailing bytes after the last row are ignored."""
    out = decode(RawImage(height=1, width=2, encoding='mono8', step=2, data=b'\x05\x06junk'))
    np.testing.assert_array_equal(out, [[5, 6]])


def test_big_endian_16uc1():
    """is_bigendian data: bytes 01 02 are 258, and the result is in native byte order."""
    values = np.array([[1, 258], [65535, 4096]], dtype='>u2')
    raw = RawImage(height=2, width=2, encoding='16UC1', step=4, data=values.tobytes(),
                   is_bigendian=True)
    out = decode(raw)
    np.testing.assert_array_equal(out, [[1, 258], [65535, 4096]])
    assert out.dtype == np.dtype('=u2')


def test_big_endian_32fc1_with_padding():
    """Big-endian float depth with a padded row: values come back exact."""
    row = np.array([1.5, -2.25], dtype='>f4').tobytes() + b'\x00' * 4
    raw = RawImage(height=1, width=2, encoding='32FC1', step=12, data=row, is_bigendian=True)
    out = decode(raw)
    np.testing.assert_array_equal(out, [[1.5, -2.25]])
    assert out.dtype == np.dtype('=f4')


# ---------------------------------------------------------------- colour conversion

def test_rgb8_to_bgr8_swaps_red_and_blue():
    """want='bgr8' on an rgb8 image reverses the channel order of every pixel."""
    rgb = np.array([[[255, 0, 10], [1, 2, 3]]], np.uint8)
    out = decode(encode(rgb, 'rgb8'), want='bgr8')
    np.testing.assert_array_equal(out, [[[10, 0, 255], [3, 2, 1]]])


def test_bgr8_to_rgb8_swaps_blue_and_red():
    """want='rgb8' on a bgr8 image reverses the channel order of every pixel."""
    bgr = np.array([[[200, 100, 50]]], np.uint8)
    out = decode(encode(bgr, 'bgr8'), want='rgb8')
    np.testing.assert_array_equal(out, [[[50, 100, 200]]])


def test_same_colour_encoding_wanted_is_unchanged():
    """want equal to the image's own encoding returns the pixels as they are."""
    rgb = sample('rgb8')
    np.testing.assert_array_equal(decode(encode(rgb, 'rgb8'), want='rgb8'), rgb)


def test_mono8_is_expanded_to_colour():
    """A grey image wanted as rgb8 has three equal channels per pixel."""
    mono = np.array([[0, 128], [255, 7]], np.uint8)
    for want in ('rgb8', 'bgr8'):
        out = decode(encode(mono, 'mono8'), want=want)
        assert out.shape == (2, 2, 3)
        for c in range(3):
            np.testing.assert_array_equal(out[:, :, c], mono)


def test_depth_image_wanted_as_colour_is_refused():
    """A 16-bit depth image cannot be shown as rgb8: refused under 'encoding'."""
    with pytest.raises(InputError) as exc:
        decode(encode(sample('16UC1'), '16UC1'), want='rgb8')
    assert exc.value.kind == 'encoding'
    assert "'16UC1'" in exc.value.got and 'rgb8' in exc.value.expected


def test_other_wanted_encoding_must_match():
    """want='mono8' on an rgb8 image is not a conversion this module does."""
    with pytest.raises(InputError) as exc:
        decode(encode(sample('rgb8'), 'rgb8'), want='mono8')
    assert exc.value.kind == 'encoding'
    assert "'mono8'" in exc.value.expected and "'rgb8'" in exc.value.got


# ---------------------------------------------------------------- rejected input

def test_unsupported_encoding_is_refused():
    """yuv422 is not supported: the message lists supported encodings and names it."""
    with pytest.raises(InputError) as exc:
        decode(RawImage(height=1, width=2, encoding='yuv422', step=4, data=b'\x00' * 4))
    assert exc.value.kind == 'encoding'
    assert 'rgb8' in exc.value.expected and '16UC1' in exc.value.expected
    assert "'yuv422'" in exc.value.got


@pytest.mark.parametrize('h, w', [(0, 4), (4, 0), (-1, 4)])
def test_empty_image_is_refused(h, w):
    """An image without pixels is refused under 'size'."""
    with pytest.raises(InputError) as exc:
        decode(RawImage(height=h, width=w, encoding='mono8', step=4, data=b''))
    assert exc.value.kind == 'size'
    assert f'{w}x{h}' in exc.value.got


def test_huge_dimensions_are_refused_before_allocation():
    """A corrupt 100000x100000 header is refused on its dimensions alone (no data needed)."""
    with pytest.raises(InputError) as exc:
        decode(RawImage(height=100_000, width=100_000, encoding='rgb8', step=300_000, data=b''))
    assert exc.value.kind == 'size'
    assert str(MAX_PIXELS) in exc.value.expected
    assert '100000x100000' in exc.value.got


def test_one_pixel_over_the_limit_is_refused():
    """MAX_PIXELS is a hard limit: one more row than 8192x8192 is refused."""
    with pytest.raises(InputError) as exc:
        decode(RawImage(height=MAX_PIXELS // 8192 + 1, width=8192, encoding='mono8',
                        step=8192, data=b''))
    assert exc.value.kind == 'size'


def test_step_smaller_than_a_row_is_refused():
    """4 rgb8 pixels need 12 bytes per row; step 11 is refused and the need is named."""
    with pytest.raises(InputError) as exc:
        decode(RawImage(height=1, width=4, encoding='rgb8', step=11, data=b'\x00' * 12))
    assert exc.value.kind == 'step'
    assert '12 bytes' in exc.value.expected and 'step 11' in exc.value.got


def test_step_not_a_multiple_of_item_size_is_refused():
    """A 16-bit image with a 7-byte step would split a pixel across rows."""
    with pytest.raises(InputError) as exc:
        decode(RawImage(height=2, width=3, encoding='16UC1', step=7, data=b'\x00' * 14))
    assert exc.value.kind == 'step'
    assert 'multiple of 2 bytes' in exc.value.expected and 'step 7' in exc.value.got


def test_data_shorter_than_step_times_height_is_refused():
    """3 rows of 8 bytes need 24 bytes; 23 are refused, with both counts named."""
    with pytest.raises(InputError) as exc:
        decode(RawImage(height=3, width=8, encoding='mono8', step=8, data=b'\x00' * 23))
    assert exc.value.kind == 'data_length'
    assert '24 bytes' in exc.value.expected and '23 bytes' in exc.value.got


def test_encode_unknown_encoding_is_refused():
    """encode refuses an encoding it cannot write."""
    with pytest.raises(InputError) as exc:
        encode(np.zeros((2, 2), np.uint8), 'bayer_rggb8')
    assert exc.value.kind == 'encoding'
    assert "'bayer_rggb8'" in exc.value.got


@pytest.mark.parametrize('shape, encoding', [((4, 4), 'rgb8'), ((4, 4, 4), 'rgb8'),
                                             ((4, 4, 3), 'mono8'), ((4,), '16UC1')])
def test_encode_wrong_shape_is_refused(shape, encoding):
    """A colour encoding needs (H, W, 3), a single-channel one (H, W)."""
    with pytest.raises(InputError) as exc:
        encode(np.zeros(shape, np.uint8), encoding)
    assert exc.value.kind == 'shape'
    assert encoding in exc.value.expected and str(shape) in exc.value.got


@pytest.mark.parametrize('dtype, encoding', [(np.float32, 'rgb8'), (np.float64, 'mono16'),
                                             (np.int16, '16UC1'), (np.bool_, 'mono8')])
def test_encode_wrong_dtype_is_refused(dtype, encoding):
    """Floats cannot be 8/16-bit integer pixels, nor signed ints unsigned ones."""
    nch = ENCODINGS[encoding][1]
    shape = (2, 2, 3) if nch > 1 else (2, 2)
    with pytest.raises(InputError) as exc:
        encode(np.zeros(shape, dtype), encoding)
    assert exc.value.kind == 'dtype'
    assert encoding in exc.value.expected and np.dtype(dtype).name in exc.value.got


def test_encode_integers_as_float_depth():
    """Integer depth values are exact in 32FC1 (widening to float is allowed)."""
    out = decode(encode(np.array([[1, 70000]], np.int64), '32FC1'))
    np.testing.assert_array_equal(out, [[1.0, 70000.0]])


def test_encode_refuses_a_wider_integer_dtype_that_would_wrap():
    """uint16 pixels do not fit mono8: 300 must not be silently written as 300 % 256 = 44."""
    with pytest.raises(InputError) as exc:
        encode(np.array([[300, 5]], np.uint16), 'mono8')
    assert exc.value.kind == 'dtype'
