"""The readable messages of a damaged MCAP bag (truncated by a crash or a
full disk, or with corrupt bytes), read by a linear scan of its records.

An MCAP file written by rosbags (and rosbag2) is a sequence of records
``opcode (1 byte) | length (uint64 LE) | content``; messages live in chunk
records. A bag cut short loses its footer and summary, so index-based readers
refuse it whole; this scan reads schemas, channels and messages from the
start and stops at the first record that is incomplete or malformed. Every
declared length is checked against what is left of the file (or chunk)
before anything is read, so a corrupt length never allocates.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b'\x89MCAP0\r\n'
_SCHEMA, _CHANNEL, _MESSAGE, _CHUNK, _CHUNK_INDEX = 0x03, 0x04, 0x05, 0x06, 0x08


class Damaged(Exception):
    """Where and why the scan stopped."""


@dataclass
class RawRecord:
    """One readable message: topic, type, log time [ns], CDR bytes."""

    topic: str
    msgtype: str
    timestamp: int
    data: bytes


class _Buf:
    """Bounds-checked little-endian reader over bytes."""

    def __init__(self, data: bytes | memoryview, base: int = 0) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.base = base  # offset of data[0] in the file (for messages)

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> memoryview:
        if n < 0 or n > self.left():
            raise Damaged(f'record at offset {self.base + self.pos} declares {n} bytes, '
                          f'{self.left()} are left')
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        return struct.unpack('<H', self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack('<I', self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack('<Q', self.take(8))[0]

    def string(self) -> str:
        try:
            return bytes(self.take(self.u32())).decode()
        except UnicodeDecodeError:
            raise Damaged(f'a string at offset {self.base + self.pos} is not UTF-8') from None


def _decompress(data: memoryview, compression: str, size: int) -> bytes:
    if compression == '':
        return bytes(data)
    from rosbags.rosbag2.storage_mcap import decompress
    try:
        return decompress(bytes(data), compression, size, 0)
    except Exception as exc:  # noqa: BLE001 - any codec failure is damage
        raise Damaged(f'a {compression} chunk does not decompress ({exc})') from None


def scan_mcap(path: str | Path) -> Iterator[RawRecord]:
    """Messages of one MCAP file in file order, up to the first damage.

    Raises:
        Damaged: after the last readable message, saying where and why the
            file stops being readable (not raised for an intact file).
    """
    with open(path, 'rb') as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise Damaged(f'{path}: {size} bytes, not an MCAP file')
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # not read into memory
    if data[:8] != MAGIC:
        raise Damaged(f'{path}: not an MCAP file (no magic)')
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}

    def records(buf: _Buf, top: bool) -> Iterator[RawRecord]:
        while buf.left():
            if top and buf.left() == 8 and bytes(buf.data[buf.pos:]) == MAGIC:
                return  # the end magic of an intact file
            op = buf.take(1)[0]
            body = _Buf(buf.take(buf.u64()), buf.base + buf.pos)
            if op == _SCHEMA:
                sid = body.u16()
                schemas[sid] = body.string()
            elif op == _CHANNEL:
                cid, sid = body.u16(), body.u16()
                topic = body.string()
                channels[cid] = (topic, schemas.get(sid, ''))
            elif op == _MESSAGE:
                cid = body.u16()
                body.u32()  # sequence
                log_time = body.u64()
                body.u64()  # publish time
                if cid in channels:
                    topic, msgtype = channels[cid]
                    yield RawRecord(topic, msgtype, log_time, bytes(body.take(body.left())))
            elif op == _CHUNK and top:
                body.u64(), body.u64()  # start and end time
                size = body.u64()
                body.u32()  # crc
                compression = body.string()
                inner = _decompress(body.take(body.u64()), compression, size)
                yield from records(_Buf(inner, body.base), top=False)
    yield from records(_Buf(memoryview(data)[8:], 8), top=True)


def check_structure(path: str | Path) -> None:
    """Walk the top-level records of an MCAP file (without reading what is
    inside them) and check that each declared length fits in the file and
    that it ends with the end magic. Index-based readers trust these lengths
    and allocate what they declare: a corrupt one would ask for gigabytes.

    Raises:
        Damaged: the first record that does not fit, or no end magic.
    """
    with open(path, 'rb') as f:
        size = os.fstat(f.fileno()).st_size
        if size < 16:
            raise Damaged(f'{path}: {size} bytes, not an MCAP file')
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    with data:
        if data[:8] != MAGIC or data[-8:] != MAGIC:
            raise Damaged(f'{path}: no MCAP magic at the start or the end')
        pos, end = 8, size - 8
        while pos < end:
            if pos + 9 > end:
                raise Damaged(f'{path}: a record header at offset {pos} runs past the end')
            (length,) = struct.unpack_from('<Q', data, pos + 1)
            if length > end - pos - 9:
                raise Damaged(f'{path}: record at offset {pos} declares {length} bytes, '
                              f'{end - pos - 9} are left')
            if data[pos] == _CHUNK_INDEX:  # where a reader will seek and how much it reads
                _check_chunk_index(path, _Buf(data[pos + 9:pos + 9 + length], pos + 9), size)
            pos += 9 + length


def _check_chunk_index(path, rec: _Buf, size: int) -> None:
    try:
        rec.u64(), rec.u64()  # message start and end time
        start, length = rec.u64(), rec.u64()
        rec.take(rec.u32())  # message index offsets
        rec.u64()  # message index length
        rec.string()  # compression
        compressed = rec.u64()
    except Damaged as exc:
        raise Damaged(f'{path}: chunk index: {exc}') from None
    if start + length > size or compressed > length:
        raise Damaged(f'{path}: a chunk index points at {length} bytes from offset {start} '
                      f'({compressed} compressed) in a file of {size}')


def mcap_files(path: str | Path) -> list[Path]:
    """The .mcap files of a bag folder (or the file itself)."""
    path = Path(path)
    return [path] if path.is_file() else sorted(path.glob('*.mcap'))


def readable(path: str | Path) -> Iterator[RawRecord]:
    """Messages of a bag folder's .mcap files (or one file) in file order, up
    to the first damage.

    Raises:
        Damaged: after the last readable message, if the bag is damaged.
    """
    files = mcap_files(path)
    if not files:
        raise Damaged(f'{path}: no .mcap file')
    for f in files:
        try:
            yield from scan_mcap(f)
        except OSError as exc:
            raise Damaged(f'{f}: {exc.strerror}') from None


def count_readable(path: str | Path) -> tuple[int, str | None]:
    """(number of readable messages, why reading stopped or None)."""
    n = 0
    try:
        for _ in readable(path):
            n += 1
    except Damaged as exc:
        return n, str(exc)
    return n, None
