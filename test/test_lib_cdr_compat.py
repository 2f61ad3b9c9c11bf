"""rosbags' CDR for AudioChunk must be byte-identical to rclpy's, so bags written
by BagWriter from rosbags objects replay to rclpy nodes and vice versa.

CDR leaves the content of alignment padding unspecified, and rclpy's serializer
does not clear it (it carries whatever was in the buffer before), so the bytes are
compared at every position except the padding; the padding positions are computed
from the CDR layout of AudioChunk, and rosbags' padding must be zeros.
"""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message

from av_perception.bag.types import typestore
from av_perception.msg import AudioChunk

MSGTYPE = 'av_perception/msg/AudioChunk'
SEC, NANOSEC = 1_700_000_123, 987_654_321


@pytest.fixture(scope='module')
def store():
    return typestore([MSGTYPE])


def both(store, frame_id: str, data: np.ndarray, first_sample: int):
    """The same AudioChunk as an rclpy message and as a rosbags object."""
    r = AudioChunk()
    r.header.stamp.sec = SEC
    r.header.stamp.nanosec = NANOSEC
    r.header.frame_id = frame_id
    r.sample_rate = 48_000
    r.channels = 4
    r.first_sample = first_sample
    r.data = data.tolist()
    t = store.types
    b = t[MSGTYPE](
        header=t['std_msgs/msg/Header'](
            stamp=t['builtin_interfaces/msg/Time'](sec=SEC, nanosec=NANOSEC),
            frame_id=frame_id),
        sample_rate=48_000, channels=4, first_sample=first_sample, data=data)
    return r, b


def padding_offsets(frame_id: str, n: int) -> tuple[set[int], int]:
    """Byte offsets of alignment padding in the CDR of an AudioChunk, and its size.

    Layout (after the 4-byte encapsulation header, alignment relative to the payload):
    int32 sec, uint32 nanosec, string frame_id (uint32 length incl. NUL + bytes),
    uint32 sample_rate, uint16 channels, uint64 first_sample, uint32 count + float32[n].
    """
    pad: set[int] = set()
    pos = 0

    def field(align: int, size: int) -> None:
        nonlocal pos
        while pos % align:
            pad.add(4 + pos)
            pos += 1
        pos += size

    field(4, 4)                                  # stamp.sec
    field(4, 4)                                  # stamp.nanosec
    field(4, 4 + len(frame_id.encode()) + 1)     # frame_id
    field(4, 4)                                  # sample_rate
    field(2, 2)                                  # channels
    field(8, 8)                                  # first_sample
    field(4, 4 + 4 * n)                          # data
    return pad, 4 + pos


# frame_id lengths 0..4 move every following field across alignment boundaries;
# first_sample > 2**32 checks the uint64 width.
@pytest.mark.parametrize('frame_id', ['', 'a', 'ab', 'abc', 'mic_array'])
@pytest.mark.parametrize('n', [0, 1, 8])
def test_rosbags_cdr_is_byte_identical_to_rclpy(store, frame_id, n):
    """serialize_cdr (rosbags) == serialize_message (rclpy) at every byte that carries
    data; same length; rosbags writes zeros into the padding."""
    data = np.linspace(-1, 1, n, dtype=np.float32)
    r, b = both(store, frame_id, data, first_sample=2**33 + 5)
    ours = bytes(store.serialize_cdr(b, MSGTYPE))
    theirs = serialize_message(r)
    pad, size = padding_offsets(frame_id, n)
    assert len(ours) == len(theirs) == size
    differing = [i for i in range(size) if ours[i] != theirs[i] and i not in pad]
    assert differing == [], f'bytes differ outside padding at {differing}'
    assert all(ours[i] == 0 for i in pad)


def test_rclpy_bytes_deserialize_in_rosbags_and_back(store):
    """rclpy's bytes read by rosbags give the same fields, and rosbags' bytes read by
    rclpy give the same message."""
    data = np.array([0.5, -0.25, 1.0, -1.0], np.float32)
    r, b = both(store, 'mic_array', data, first_sample=160)
    got = store.deserialize_cdr(serialize_message(r), MSGTYPE)
    assert (got.header.stamp.sec, got.header.stamp.nanosec, got.header.frame_id) == (
        SEC, NANOSEC, 'mic_array')
    assert (got.sample_rate, got.channels, got.first_sample) == (48_000, 4, 160)
    np.testing.assert_array_equal(got.data, data)
    back = deserialize_message(bytes(store.serialize_cdr(b, MSGTYPE)), AudioChunk)
    assert back == r
