"""Unit tests of av_perception.bag: topic names, MCAP writing and reading, types."""

from __future__ import annotations

import os

import numpy as np
import pytest

from av_perception.bag.io import BagWriter, read_bag, relative_topic
from av_perception.bag.types import find_msg_file, package_msgtypes, typestore
from av_perception.errors import InputError

AUDIO = 'av_perception/msg/AudioChunk'
IMAGE = 'sensor_msgs/msg/Image'


@pytest.fixture(scope='module')
def store():
    return typestore(package_msgtypes() + [IMAGE])


def header(store, sec: int, nanosec: int, frame_id: str):
    t = store.types
    return t['std_msgs/msg/Header'](
        stamp=t['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec), frame_id=frame_id)


def audio_chunk(store, first_sample: int = 320):
    return store.types[AUDIO](
        header=header(store, 1_700_000_000, 123_456_789, 'mic_array'),
        sample_rate=16000, channels=4, first_sample=first_sample,
        data=np.linspace(-1, 1, 4 * 5, dtype=np.float32))


def image(store):
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8)
    return store.types[IMAGE](
        header=header(store, 1_700_000_000, 200_000_000, 'camera_optical'),
        height=2, width=3, encoding='rgb8', is_bigendian=0, step=9, data=pixels)


def assert_same_header(a, b):
    assert (a.stamp.sec, a.stamp.nanosec, a.frame_id) == (b.stamp.sec, b.stamp.nanosec,
                                                          b.frame_id)


# ---------------------------------------------------------------- topic names

@pytest.mark.parametrize('topic, namespace, expected', [
    ('/robot1/audio/raw', 'robot1', 'audio/raw'),
    ('/robot1/audio/raw', '/robot1/', 'audio/raw'),
    ('/audio/raw', '', 'audio/raw'),
    ('/audio/raw', 'robot1', 'audio/raw'),
    ('/robot2/audio/raw', 'robot1', 'robot2/audio/raw'),
    ('/robot10/audio/raw', 'robot1', 'robot10/audio/raw'),
    ('audio/raw', '', 'audio/raw'),
])
def test_relative_topic(topic, namespace, expected):
    """Bag topics map to the package's relative names; a topic outside the namespace
    (even one whose name merely starts with it) keeps its name without the leading slash."""
    assert relative_topic(topic, namespace) == expected


# ---------------------------------------------------------------- round trip

def test_write_read_round_trip(tmp_path, store):
    """An AudioChunk and an Image written as rosbags objects come back with equal
    fields, relative topics, their receive times, in time order."""
    chunk, img = audio_chunk(store), image(store)
    path = tmp_path / 'bag'
    with BagWriter(path, [IMAGE]) as w:
        w.write('/robot1/audio/raw', AUDIO, 1_000, chunk)
        w.write('/robot1/camera/image_raw', IMAGE, 2_000, img)
        w.write('/robot1/audio/raw', AUDIO, 3_000, audio_chunk(store, first_sample=325))
    assert w.closed
    assert w.counts == {'/robot1/audio/raw': 2, '/robot1/camera/image_raw': 1}

    msgs = list(read_bag(path, namespace='robot1'))
    assert [(m.topic, m.msgtype, m.timestamp) for m in msgs] == [
        ('audio/raw', AUDIO, 1_000), ('camera/image_raw', IMAGE, 2_000),
        ('audio/raw', AUDIO, 3_000)]

    a = msgs[0].msg
    assert_same_header(a.header, chunk.header)
    assert (a.sample_rate, a.channels, a.first_sample) == (16000, 4, 320)
    assert a.data.dtype == np.float32
    np.testing.assert_array_equal(a.data, chunk.data)
    assert msgs[2].msg.first_sample == 325

    i = msgs[1].msg
    assert_same_header(i.header, img.header)
    assert (i.height, i.width, i.encoding, i.is_bigendian, i.step) == (2, 3, 'rgb8', 0, 9)
    np.testing.assert_array_equal(i.data, img.data)


def test_read_only_wanted_topics(tmp_path, store):
    """topics= selects by relative name."""
    path = tmp_path / 'bag'
    with BagWriter(path, [IMAGE]) as w:
        w.write('/audio/raw', AUDIO, 1, audio_chunk(store))
        w.write('/camera/image_raw', IMAGE, 2, image(store))
    assert [m.topic for m in read_bag(path, topics=['camera/image_raw'])] == ['camera/image_raw']


def test_write_cdr_bytes_round_trip(tmp_path, store):
    """CDR bytes (as rclpy delivers with raw=True) written through write_cdr read back."""
    chunk = audio_chunk(store)
    path = tmp_path / 'bag'
    with BagWriter(path) as w:
        w.add_topic('/audio/raw', AUDIO)
        w.add_topic('/audio/raw', AUDIO)               # idempotent
        w.write_cdr('/audio/raw', 42, bytes(store.serialize_cdr(chunk, AUDIO)))
    (m,) = list(read_bag(path))
    assert (m.topic, m.timestamp) == ('audio/raw', 42)
    np.testing.assert_array_equal(m.msg.data, chunk.data)


def test_single_mcap_file_is_readable(tmp_path, store):
    """read_bag also takes the .mcap file inside a bag folder."""
    path = tmp_path / 'bag'
    with BagWriter(path) as w:
        w.write('/audio/raw', AUDIO, 7, audio_chunk(store))
    (mcap,) = path.glob('*.mcap')
    assert [(m.topic, m.timestamp) for m in read_bag(mcap)] == [('audio/raw', 7)]


# ---------------------------------------------------------------- errors

def test_writer_refuses_an_existing_path(tmp_path):
    """A recording never overwrites: an existing path is refused under 'output'."""
    with pytest.raises(InputError) as exc:
        BagWriter(tmp_path)
    assert exc.value.kind == 'output'
    assert str(tmp_path) in exc.value.got and 'exists' in exc.value.got


def test_read_non_bag_folder_is_an_input_error(tmp_path):
    """A folder without bag metadata is refused in one line naming it."""
    (tmp_path / 'notes.txt').write_text('not a bag')
    with pytest.raises(InputError) as exc:
        list(read_bag(tmp_path))
    assert exc.value.kind == 'bag'
    assert str(tmp_path) in exc.value.got


def test_read_missing_path_is_an_input_error(tmp_path):
    """A path that does not exist is refused as not a readable bag."""
    with pytest.raises(InputError) as exc:
        list(read_bag(tmp_path / 'nothing'))
    assert exc.value.kind == 'bag'


def test_read_random_bytes_mcap_is_an_input_error(tmp_path):
    """A .mcap file of random bytes is refused as not a readable bag."""
    p = tmp_path / 'random.mcap'
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(InputError) as exc:
        list(read_bag(p))
    assert exc.value.kind == 'bag'
    assert 'MCAP' in exc.value.expected


def test_read_truncated_mcap_is_an_input_error(tmp_path, store):
    """A recording cut in half (recorder killed) is refused as not a readable bag."""
    path = tmp_path / 'bag'
    with BagWriter(path) as w:
        w.write('/audio/raw', AUDIO, 1, audio_chunk(store))
    (mcap,) = path.glob('*.mcap')
    cut = tmp_path / 'cut.mcap'
    cut.write_bytes(mcap.read_bytes()[: os.path.getsize(mcap) // 2])
    with pytest.raises(InputError) as exc:
        list(read_bag(cut))
    assert exc.value.kind == 'bag'


def test_read_mcap_holding_only_the_magic_is_an_input_error(tmp_path, store):
    """A .mcap file cut right after its 8-byte magic is not a readable bag either
    (InputError, not a raw TypeError from the MCAP parser)."""
    path = tmp_path / 'bag'
    with BagWriter(path) as w:
        w.write('/audio/raw', AUDIO, 1, audio_chunk(store))
    (mcap,) = path.glob('*.mcap')
    magic = mcap.read_bytes()[:8]
    assert magic == b'\x89MCAP0\r\n'
    cut = tmp_path / 'magic.mcap'
    cut.write_bytes(magic)
    with pytest.raises(InputError) as exc:
        list(read_bag(cut))
    assert exc.value.kind == 'bag'


def test_find_msg_file_for_package_type():
    """The package's own AudioChunk.msg is found."""
    p = find_msg_file(AUDIO)
    assert p.name == 'AudioChunk.msg' and p.is_file()
    assert 'first_sample' in p.read_text()


def test_find_msg_file_unknown_type_is_an_input_error():
    """A type with no installed .msg file is refused, naming the type."""
    with pytest.raises(InputError) as exc:
        find_msg_file('no_such_pkg_xyz/msg/Nothing')
    assert exc.value.kind == 'msgtype'
    assert 'no_such_pkg_xyz/msg/Nothing' in exc.value.expected


@pytest.mark.parametrize('bad', ['AudioChunk', 'av_perception_msgs/AudioChunk',
                                 'av_perception_msgs/srv/AudioChunk'])
def test_find_msg_file_malformed_name_is_an_input_error(bad):
    """Only 'package/msg/Name' is a message type name."""
    with pytest.raises(InputError) as exc:
        find_msg_file(bad)
    assert exc.value.kind == 'msgtype'
    assert repr(bad) in exc.value.got


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_bags_with_the_old_interface_package_name_stay_readable(tmp_path, storage):
    """Bags written before the messages moved into the av_perception package
    name the type av_perception_msgs/msg/AudioChunk; a sqlite3 bag carries no
    definitions, so the reader must know the old name."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    old = 'av_perception_msgs/msg/AudioChunk'
    st = typestore([old])
    msg = st.types[old](header=header(st, 5, 6, 'mic_array'), sample_rate=16000, channels=2,
                        first_sample=7, data=np.ones(4, np.float32))
    path = tmp_path / 'old'
    plugin = StoragePlugin.SQLITE3 if storage == 'sqlite3' else StoragePlugin.MCAP
    with Writer(path, version=8, storage_plugin=plugin) as w:
        conn = w.add_connection('/audio/raw', old, typestore=st)
        w.write(conn, 5_000_000_006, st.serialize_cdr(msg, old))
    (got,) = list(read_bag(path))
    assert got.msgtype == old and got.topic == 'audio/raw'
    assert got.msg.first_sample == 7 and got.msg.channels == 2
