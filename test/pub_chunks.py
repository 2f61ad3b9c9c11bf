"""Helper process for test_multiprocess: publishes N deterministic AudioChunks
once a subscriber has matched, then stays alive (so reliable delivery can
complete) until stdin closes."""

from __future__ import annotations

import sys
import time

import numpy as np
import rclpy

from av_perception.audio.chunk import AudioBlock
from av_perception.ros import qos
from av_perception.ros.messages import block_to_chunk
from av_perception.msg import AudioChunk


def make_chunks(n: int) -> list[AudioChunk]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        samples = rng.uniform(-1, 1, size=(4, 800)).astype(np.float32)
        out.append(block_to_chunk(AudioBlock(samples, 16000, i * 800,
                                             10**9 + i * 50_000_000, 'mic_array')))
    return out


def main() -> int:
    n = int(sys.argv[1])
    rclpy.init()
    node = rclpy.create_node('chunk_publisher')
    pub = node.create_publisher(AudioChunk, 'audio/raw', qos.AUDIO)
    deadline = time.monotonic() + 20.0
    while pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            print('no subscriber', flush=True)
            return 1
        rclpy.spin_once(node, timeout_sec=0.05)
    for msg in make_chunks(n):
        pub.publish(msg)
    print('published', flush=True)
    sys.stdin.read()  # until the test closes our stdin
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
