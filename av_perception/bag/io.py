"""Reading and writing bags with ``rosbags``.

Topic names: this package's topics are relative (``audio/raw``); bags recorded
by ``ros2 bag record`` hold them absolute (``/audio/raw``), possibly under a
robot's namespace (``/robot1/audio/raw``). :func:`relative_topic` maps both to
the relative name.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import StoragePlugin, Writer

from av_perception.bag.salvage import (Damaged, check_structure, count_readable, mcap_files,
                                       readable)
from av_perception.bag.types import package_msgtypes, typestore
from av_perception.errors import InputError

log = logging.getLogger(__name__)


def stamp_ns(msg) -> int:
    """Header stamp of a message read from a bag (or an rclpy one) [ns]."""
    return int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)


def nearest(stamps, t: int, tolerance_ns: int) -> int | None:
    """Index of the stamp nearest to ``t`` in the sorted ``stamps`` [ns],
    within ``tolerance_ns``; None if there is none."""
    import numpy as np
    if len(stamps) == 0:
        return None
    i = int(np.searchsorted(stamps, t))
    best = min((j for j in (i - 1, i) if 0 <= j < len(stamps)), key=lambda j: abs(stamps[j] - t))
    return best if abs(int(stamps[best]) - t) <= tolerance_ns else None


def relative_topic(topic: str, namespace: str = '') -> str:
    """``/robot1/audio/raw`` with namespace ``robot1`` -> ``audio/raw``.

    Topics outside the namespace keep their name without the leading slash.
    """
    t = topic.strip('/')
    ns = namespace.strip('/')
    if ns and t.startswith(ns + '/'):
        return t[len(ns) + 1:]
    return t


@dataclass
class BagMessage:
    """One message from a bag.

    Attributes:
        topic: topic relative to the namespace (``audio/raw``).
        msgtype: ``pkg/msg/Name``.
        timestamp: receive time recorded in the bag [ns].
        msg: the deserialized message (rosbags dataclass).
    """

    topic: str
    msgtype: str
    timestamp: int
    msg: Any


class BagWriter:
    """Thread-safe MCAP bag writer taking CDR bytes (as rclpy delivers them
    with ``raw=True``) or rosbags message objects.

    The bag is complete and readable once :meth:`close` has run; messages are
    written through as they come, so nothing received is held back.
    """

    def __init__(self, path: str | Path, msgtypes: Iterable[str] = ()) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise InputError('output', 'a path that does not exist yet', f'{self.path} exists')
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.store = typestore(list(msgtypes) + package_msgtypes())
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.closed = False

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare a topic (idempotent); registers its type if needed."""
        with self._lock:
            if topic in self._connections:
                return
            if msgtype not in self.store.fielddefs:
                self.store.register({k: v for k, v in typestore([msgtype]).fielddefs.items()
                                     if k not in self.store.fielddefs})
            self._connections[topic] = self._writer.add_connection(topic, msgtype,
                                                                   typestore=self.store)
            self.counts[topic] = 0

    def write_cdr(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        """Write serialized CDR bytes of a declared topic."""
        with self._lock:
            if self.closed:
                return
            self._writer.write(self._connections[topic], int(timestamp_ns), bytes(data))
            self.counts[topic] += 1

    def write(self, topic: str, msgtype: str, timestamp_ns: int, msg: Any) -> None:
        """Write a rosbags message object (declares the topic if needed)."""
        self.add_topic(topic, msgtype)
        self.write_cdr(topic, timestamp_ns, self.store.serialize_cdr(msg, msgtype))

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self._writer.close()
                self.closed = True

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_bag(path: str | Path, topics: Iterable[str] | None = None,
             namespace: str = '', salvage: bool = False) -> Iterator[BagMessage]:
    """Messages of a bag in time order, topics relative to ``namespace``.

    Args:
        path: a bag folder (MCAP or sqlite3) or a single .mcap file.
        topics: relative topic names to read (None: all).
        salvage: for a damaged MCAP bag (cut short by a crash, corrupt bytes,
            no metadata.yaml), yield the messages that are readable, in file
            order, and log a warning saying where reading stopped, instead of
            raising.

    Raises:
        InputError: not a readable bag, or damaged (without ``salvage``): one
            line naming the bag, the damage and how many messages are readable.
    """
    from rosbags.highlevel import AnyReader

    path = Path(path)
    wanted = set(topics) if topics is not None else None
    try:
        for f in mcap_files(path):  # lengths the reader would trust and allocate
            check_structure(f)
        reader = AnyReader([path], default_typestore=typestore(package_msgtypes()))
        reader.open()
    except (Damaged, *_bag_errors()) as exc:
        if salvage and mcap_files(path):
            yield from _salvaged(path, wanted, namespace, 0)
            return
        raise _damaged(path, 'a readable ROS 2 bag (MCAP or sqlite3)', exc) from None
    count = 0
    try:
        conns = [c for c in reader.connections
                 if wanted is None or relative_topic(c.topic, namespace) in wanted]
        try:
            for conn, timestamp, raw in reader.messages(connections=conns):
                yield BagMessage(relative_topic(conn.topic, namespace), conn.msgtype, timestamp,
                                 reader.deserialize(raw, conn.msgtype))
                count += 1
        except _bag_errors() as exc:
            if salvage and mcap_files(path):
                yield from _salvaged(path, wanted, namespace, count)
                return
            raise _damaged(path, 'a complete ROS 2 bag', exc, count) from None
    finally:
        reader.close()


def bag_topics(path: str | Path, namespace: str = '') -> dict[str, int] | None:
    """Relative topic -> message count, from the bag's index (no message is
    read); None if the bag cannot be opened (a damaged bag: reading it says
    why)."""
    from rosbags.highlevel import AnyReader

    try:
        for f in mcap_files(path):  # as read_bag: no length the reader would trust
            check_structure(f)
        reader = AnyReader([Path(path)], default_typestore=typestore(package_msgtypes()))
        reader.open()
    except (Damaged, *_bag_errors()):
        return None
    try:
        out: dict[str, int] = {}
        for c in reader.connections:
            t = relative_topic(c.topic, namespace)
            out[t] = out.get(t, 0) + int(c.msgcount)
        return out
    finally:
        reader.close()


def _bag_errors() -> tuple[type[BaseException], ...]:
    """What rosbags raises for a damaged file: its own errors, and what its
    parsers meet in corrupt bytes (a length field of 2^60 asks for that much
    memory, a bad string is not UTF-8, an internal assertion fails...)."""
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag2.errors import ReaderError
    return (AnyReaderError, ReaderError, OSError, ValueError, KeyError, TypeError, IndexError,
            EOFError, MemoryError, OverflowError, AssertionError, struct.error)


def _damaged(path: Path, expected: str, exc: Exception, read: int = 0) -> InputError:
    """The one-line error for a bag that cannot be read whole."""
    got = f'{path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}'
    if mcap_files(path):
        n, _ = count_readable(path)
        got += (f'; {n} messages before the damage are readable (read_bag(salvage=True), '
                '--salvage on the command line)') if n else '; no message is readable'
    elif read:
        got += f' (after {read} messages)'
    return InputError('bag', expected, got)


def _salvaged(path: Path, wanted: set | None, namespace: str, skip: int
              ) -> Iterator[BagMessage]:
    """The readable messages of a damaged MCAP bag, after the first ``skip``
    (already delivered in time order by the indexed reader)."""
    store = typestore(package_msgtypes())
    n = 0  # messages read (delivered or not wanted)
    try:
        for rec in readable(path):
            topic = relative_topic(rec.topic, namespace)
            if n < skip or (wanted is not None and topic not in wanted):
                n += 1
                continue
            try:
                if rec.msgtype not in store.fielddefs:
                    store.register({k: v for k, v in typestore([rec.msgtype]).fielddefs.items()
                                    if k not in store.fielddefs})
                msg = store.deserialize_cdr(rec.data, rec.msgtype)
            except Exception as exc:  # noqa: BLE001 - a message of a broken bag
                raise Damaged(f'message {n + 1} ({rec.topic}, {rec.msgtype}) does not '
                              f'decode: {type(exc).__name__}') from None
            n += 1
            yield BagMessage(topic, rec.msgtype, rec.timestamp, msg)
    except Damaged as exc:
        log.warning('bag %s is damaged: read %d messages, then %s', path, n, exc)
