"""Two processes exchange AudioChunks over DDS; the recorder's bag holds
exactly the messages that were published, after SIGINT or SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.serialization import deserialize_message

from av_perception.bag.io import read_bag
from av_perception.ros import qos
from av_perception.msg import AudioChunk
from conftest import recorder_received
from pub_chunks import make_chunks

BIN = Path(sys.executable).parent
N = 40


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_recorder_bag_holds_every_published_chunk(ros, tmp_path, sig):
    out = tmp_path / 'bag'
    env = dict(os.environ)
    recorder = subprocess.Popen([str(BIN / 'av-perception'), 'record', 'audio/raw', '-o', str(out),
                                 '--ros-args', '-p', 'diagnostics_period:=0.2'],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    publisher = subprocess.Popen([sys.executable, str(Path(__file__).parent / 'pub_chunks.py'),
                                  str(N)], env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
    try:
        diags = ros.collect(DiagnosticArray, '/diagnostics', qos.RELIABLE)
        ros.spin_until(lambda: recorder_received(diags) >= N, timeout=30.0,
                       what=f'the recorder to report {N} chunks')
        recorder.send_signal(sig)
        log, _ = recorder.communicate(timeout=20)
        assert recorder.returncode == 0, log
        assert 'Traceback' not in log
    finally:
        publisher.stdin.close()
        publisher.wait(timeout=20)
        if recorder.poll() is None:
            recorder.kill()

    msgs = list(read_bag(out))
    chunks = [m for m in msgs if m.topic == 'audio/raw']
    assert len(chunks) == N
    expected = make_chunks(N)
    for got, want in zip(chunks, expected):
        assert got.msgtype == 'av_perception/msg/AudioChunk'
        assert got.msg.first_sample == want.first_sample
        assert got.msg.header.stamp.nanosec == want.header.stamp.nanosec
    # the raw CDR in the bag decodes (with rclpy, as a ROS subscriber would)
    # to messages equal to the published ones, field for field
    from rosbags.highlevel import AnyReader
    with AnyReader([out]) as reader:
        raws = [raw for _, _, raw in reader.messages()]
    assert [deserialize_message(bytes(r), AudioChunk) for r in raws] == expected
