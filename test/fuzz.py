"""Hypothesis strategies of malformed (and some valid) messages, and a helper
that feeds them to a running node's subscription callbacks.

A new node is fuzzed by its entry in ``av_perception.ros.load_targets.TARGETS``
(test_fuzz.py runs every input of every entry); a new input message type
needs one line in :data:`STRATEGIES`.
"""

from __future__ import annotations

import array

import numpy as np
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from builtin_interfaces.msg import Time
from hypothesis import strategies as st
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from av_perception.image import ENCODINGS
from av_perception.msg import AudioChunk

U32 = 2**32 - 1
#: sizes that break things: zero, small, typical, and huge declared ones
COUNTS = [0, 1, 2, 3, 4, 4, 4, 7, 64, 2**16, 2**31, U32]
VALUES = ['zeros', 'noise', 'nan', 'inf', 'huge', 'denormal']

stamps = st.builds(Time, sec=st.integers(-2**31, 2**31 - 1), nanosec=st.integers(0, U32))
FRAME_IDS = ['', 'mic_array', 'x' * 300, 'camera_optical', '\u00e9']
headers = st.builds(Header, stamp=stamps, frame_id=st.sampled_from(FRAME_IDS))


def _samples(n: int, kind: str) -> np.ndarray:
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1
    if kind == 'zeros':
        x[:] = 0
    elif kind == 'nan' and n:
        x[n // 2] = np.nan
    elif kind == 'inf' and n:
        x[-1] = -np.inf
    elif kind == 'huge':
        x *= 1e30
    elif kind == 'denormal':
        x[:] = 1e-42
    return x


@st.composite
def audio_chunks(draw) -> AudioChunk:
    """AudioChunks with any channel count, rate, length (whole frames or not),
    NaN/Inf/huge samples, any stamps and counters; often valid 4-mic 16 kHz.
    Every field within its type's range (uint16 channels...): a message that
    can be on the wire."""
    channels = draw(st.sampled_from([c for c in COUNTS if c < 2**16] + [2**16 - 1]))
    frames = draw(st.sampled_from([0, 1, 160, 1600, 1600]))
    extra = draw(st.sampled_from([0, 0, 0, 1, 3]))
    n = min(channels, 8) * frames + extra
    msg = AudioChunk(header=draw(headers), sample_rate=draw(st.sampled_from(
        [0, 1, 8000, 16000, 16000, 44100, U32])), channels=channels,
        first_sample=draw(st.integers(0, 2**64 - 1)))
    msg.data = array.array('f', _samples(n, draw(st.sampled_from(VALUES))).tobytes())
    return msg


@st.composite
def images(draw) -> Image:
    """Images with any declared size (up to 2^32 - 1 a side), encoding, step
    and endianness, and data that may be shorter than declared."""
    h, w = draw(st.sampled_from(COUNTS)), draw(st.sampled_from(COUNTS))
    enc = draw(st.sampled_from([*ENCODINGS, 'rgb8', 'mono8', '', 'yuv422', '32FC3',
                                'bayer_rggb8', 'RGB8']))
    px = {'u1': 1, 'u2': 2, 'f4': 4}.get(ENCODINGS.get(enc, ('u1', 1))[0], 1) * \
        ENCODINGS.get(enc, ('u1', 3))[1]
    step = draw(st.sampled_from([0, w * px, w * px, w * px + 3, U32])) & U32
    size = min(h * step, 300_000) if draw(st.booleans()) else draw(st.integers(0, 1000))
    msg = Image(header=draw(headers), height=h, width=w, encoding=enc,
                is_bigendian=draw(st.integers(0, 1)), step=step)
    msg.data = np.random.default_rng(size).bytes(size) if draw(st.booleans()) else bytes(size)
    return msg


@st.composite
def audio_common_data(draw) -> AudioDataStamped:
    """audio_common buffers of any byte length, stamp 0 included."""
    n = draw(st.sampled_from([0, 1, 2, 3, 8, 12800, 12800, 12801]))
    raw = draw(st.sampled_from(['zeros', 'random']))
    data = bytes(n) if raw == 'zeros' else np.random.default_rng(n).bytes(n)
    zero = draw(st.booleans())
    msg = AudioDataStamped(header=Header(stamp=Time()) if zero else draw(headers),
                           audio=AudioData(data=data))
    return msg


audio_common_infos = st.builds(
    AudioInfo, channels=st.sampled_from([0, 1, 4, 4, 255]),
    sample_rate=st.sampled_from([0, 16000, 16000, U32]),
    sample_format=st.sampled_from(['S16LE', 'S16LE', 's32le', 'F32LE', 'S24LE', 'U8', '', 'x']),
    bitrate=st.integers(0, U32),
    coding_format=st.sampled_from(['wave', 'wave', '', 'mp3', 'PCM']))

#: message type -> strategy of malformed (and some valid) messages.
STRATEGIES = {
    AudioChunk: audio_chunks(),
    Image: images(),
    AudioDataStamped: audio_common_data(),
    AudioInfo: audio_common_infos,
}


def callback_of(node, topic: str):
    """The (guarded) callback ``node`` gave its subscription to ``topic`` and
    whether it takes serialized bytes (``raw``), or None if it has none yet."""
    name = node.resolve_topic_name(topic)
    for sub in node.subscriptions:
        if sub.topic_name == name:
            return sub.callback, bool(getattr(sub, 'raw', False))
    return None


def deliver(callback, raw: bool, msg) -> None:
    """Hand ``msg`` to a subscription callback as rclpy would."""
    callback(serialize_message(msg) if raw else msg)
