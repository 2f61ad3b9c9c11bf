"""Message <-> library conversions, validated (no cv_bridge).

Each ``*_to_*`` function raises :class:`av_perception.errors.InputError` for a
message that cannot be used; nodes count it and go on.
"""

from __future__ import annotations

import array
import importlib

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from av_perception import image as imgcodec
from av_perception.audio.chunk import AudioBlock, deinterleave, interleave
from av_perception.errors import InputError
from av_perception.msg import AudioChunk


def stamp_to_ns(stamp: Time) -> int:
    """builtin_interfaces/Time -> nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """Nanoseconds -> builtin_interfaces/Time."""
    ns = int(ns)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def header(stamp_ns: int, frame_id: str) -> Header:
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


def float_array(values: np.ndarray) -> array.array:
    """numpy -> array.array('f'), the fast form for a float32[] field."""
    out = array.array('f')
    out.frombytes(np.ascontiguousarray(values, dtype=np.float32).tobytes())
    return out


def chunk_to_block(msg: AudioChunk) -> AudioBlock:
    """AudioChunk -> AudioBlock (channels x frames), validated."""
    data = msg.data
    flat = (np.frombuffer(data, dtype=np.float32) if isinstance(data, array.array)
            else np.asarray(data, dtype=np.float32))
    samples = deinterleave(flat, int(msg.channels))
    return AudioBlock(samples=samples, sample_rate=int(msg.sample_rate),
                      first_sample=int(msg.first_sample),
                      stamp_ns=stamp_to_ns(msg.header.stamp), frame_id=msg.header.frame_id)


def block_to_chunk(block: AudioBlock) -> AudioChunk:
    """AudioBlock -> AudioChunk."""
    msg = AudioChunk()
    msg.header = header(block.stamp_ns, block.frame_id)
    msg.sample_rate = int(block.sample_rate)
    msg.channels = int(block.channels)
    msg.first_sample = int(block.first_sample)
    msg.data = float_array(interleave(block.samples))
    return msg


def image_to_array(msg: Image, want: str | None = None) -> np.ndarray:
    """sensor_msgs/Image -> numpy; ``want`` converts colour to 'rgb8'/'bgr8'."""
    return imgcodec.decode_message(msg, want=want)


def array_to_image(array: np.ndarray, encoding: str, hdr: Header) -> Image:
    """numpy -> sensor_msgs/Image with the given header."""
    raw = imgcodec.encode(array, encoding)
    msg = Image(header=hdr, height=raw.height, width=raw.width, encoding=raw.encoding,
                is_bigendian=int(raw.is_bigendian), step=raw.step)
    msg.data = raw.data
    return msg


def import_message(msgtype: str):
    """``pkg/msg/Name`` -> the Python message class, or InputError."""
    try:
        pkg, kind, name = msgtype.split('/')
        return getattr(importlib.import_module(f'{pkg}.{kind}'), name)
    except (ValueError, ImportError, AttributeError):
        raise InputError('unknown_type', 'a message type installed in this environment',
                         msgtype) from None
