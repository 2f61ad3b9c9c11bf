"""Bad input, fuzzed (hypothesis): every message conversion and every node
callback of the load table gets malformed messages (wrong sizes, encodings,
NaN/Inf, empty arrays, huge declared dimensions). Nothing crashes, nothing
allocates more than the message really carries, and every message is
counted in the node's /diagnostics as processed or dropped under a reason."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image

from av_perception import image as imgcodec
from av_perception.audio.chunk import StreamChecker, deinterleave
from av_perception.audio.pcm import FORMATS, decode_pcm
from av_perception.errors import InputError
from av_perception.nodes import node_class
from av_perception.ros import qos
from av_perception.ros.inputs import ImageInput
from av_perception.ros.load_targets import TARGETS
from av_perception.ros.messages import chunk_to_block, image_to_array
from av_perception.ros.node import AvNode
from conftest import diag_values
from fuzz import STRATEGIES, U32, audio_chunks, callback_of, deliver, images

FAST = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NODE = settings(FAST, max_examples=50,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def bounded(fn, payload: int, fixed: int = 4_000_000):
    """Run ``fn``; fail if it allocated more than a few times what the
    message really carries (``payload`` bytes) plus ``fixed`` bytes."""
    tracemalloc.start()
    try:
        return fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak <= 8 * payload + fixed, f'allocated {peak} B for {payload} B of data'


# ------------------------------------------------------------ conversions
@FAST
@given(msg=images(), want=st.sampled_from([None, 'rgb8', 'bgr8']))
def test_image_conversion_rejects_or_decodes_within_the_data(msg, want):
    try:
        out = bounded(lambda: image_to_array(msg, want=want), len(msg.data))
    except InputError as exc:
        assert exc.kind in ('encoding', 'size', 'step', 'data_length')
        return
    assert out.shape[:2] == (msg.height, msg.width)
    assert out.ndim == (3 if want or msg.encoding in ('rgb8', 'bgr8') else 2)


@pytest.mark.parametrize('h,w,enc', [(2**31, 2**31, 'rgb8'), (U32, 1, 'mono8'),
                                     (8192, 8192, '32FC1'), (1, U32, '16UC1')])
def test_huge_declared_image_is_rejected_before_allocating(h, w, enc):
    base, nch = imgcodec.ENCODINGS[enc]
    row = w * nch * np.dtype(base).itemsize  # a step that fits the declared width
    raw = imgcodec.RawImage(height=h, width=w, encoding=enc, step=min(row, U32),
                            data=b'\0' * 16)
    with pytest.raises(InputError) as err:
        bounded(lambda: imgcodec.decode(raw), 0)
    assert err.value.kind in ('size', 'data_length')


@FAST
@given(msg=audio_chunks())
def test_audio_chunk_conversion_and_stream_check(msg):
    try:
        block = bounded(lambda: chunk_to_block(msg), 4 * len(msg.data))
    except InputError as exc:
        assert exc.kind in ('channels', 'empty', 'size', 'length', 'non_finite', 'range')
        return
    assert block.samples.shape == (msg.channels, len(msg.data) // msg.channels)
    assert np.isfinite(block.samples).all()
    for event in StreamChecker(channels=4, sample_rate=16000).check(block):
        assert isinstance(event.error(), InputError)


@FAST
@given(data=st.binary(max_size=4000), fmt=st.sampled_from([*FORMATS, 's16le', 'S24LE', '']),
       channels=st.sampled_from([-1, 0, 1, 2, 3, 4, 255, U32]))
def test_pcm_decoding_rejects_or_decodes(data, fmt, channels):
    try:
        flat = bounded(lambda: decode_pcm(data, fmt, channels), len(data))
        samples = deinterleave(flat, channels)
    except InputError as exc:
        assert exc.kind in ('sample_format', 'channels', 'length', 'empty', 'non_finite', 'range')
        return
    assert samples.dtype == np.float32 and samples.shape[0] == channels
    if fmt.upper() != 'F32LE':  # integers map into full scale; floats pass as they are
        assert np.abs(samples).max() <= 1.0


# ------------------------------------------------------------------- nodes
CASES = [(name, inp.topic) for name, t in sorted(TARGETS.items()) for inp in t.inputs
         if inp.msg_type in STRATEGIES]


def _input_name(node, topic: str) -> str:
    return topic if topic in node.monitor.inputs else node.resolve_topic_name(topic)


def fuzz_callback(ros, node, topic: str, strategy, once=()) -> None:
    """Feed ``strategy``'s messages to ``node``'s callback for ``topic``
    (after one valid message of each ``once`` input, e.g. a stream's
    AudioInfo); check that each is counted, none crashes the callback, and
    /diagnostics reports the counts."""
    for other, msg in once:
        ros.spin_until(lambda o=other: callback_of(node, o) is not None, what=f'{other} sub')
        deliver(*callback_of(node, other), msg)
    ros.spin_until(lambda: callback_of(node, topic) is not None, what=f'a subscription to {topic}')
    callback, raw = callback_of(node, topic)
    stats = node.monitor.inputs[_input_name(node, topic)]

    @NODE
    @given(msg=strategy)
    def feed(msg):
        before = stats.received
        bounded(lambda: deliver(callback, raw, msg), len(serialize_message(msg)))
        assert stats.received == before + 1
        assert stats.processed + stats.dropped == stats.received
        assert 'internal_error' not in stats.drops, stats.last_detail

    feed()
    diags = ros.collect(DiagnosticArray, '/diagnostics', qos.RELIABLE)
    status = f'{node.get_name()}: {stats.name}'

    def reported() -> bool:
        node.publish_diagnostics()
        try:
            return diag_values(diags, status)['received'] == str(stats.received)
        except AssertionError:
            return False
    ros.spin_until(reported, what='/diagnostics with the fuzzed counts')
    values = diag_values(diags, status)
    for kind, count in stats.drops.items():
        assert values[f'dropped.{kind}'] == str(count)
        assert values[f'dropped.{kind}.last'].startswith('expected ')


@pytest.mark.parametrize('name,topic', CASES)
def test_node_counts_every_malformed_message(ros, tmp_path, name, topic):
    target = TARGETS[name]
    params = {k: v.replace('{out}', str(tmp_path)) if isinstance(v, str) else v
              for k, v in target.params.items()}
    node = ros.node(node_class(name), params)
    for inp in target.inputs:  # nodes that subscribe on discovery need a publisher
        ros.probe.create_publisher(inp.msg_type, inp.topic, inp.qos)
    once = [(i.topic, i.make(0, 10**9)) for i in target.inputs if i.once and i.topic != topic]
    fuzz_callback(ros, node, topic, STRATEGIES[next(i.msg_type for i in target.inputs
                                                    if i.topic == topic)], once)


class _ImageNode(AvNode):
    """The camera input every image node uses, alone."""

    def __init__(self, **kwargs) -> None:
        super().__init__('image_input', **kwargs)
        self.got = []
        self.image = ImageInput(self, 'camera/image_raw', lambda a, h: self.got.append(a.shape))


def test_image_input_counts_every_malformed_image(ros):
    node = ros.node(_ImageNode)
    fuzz_callback(ros, node, 'camera/image_raw', STRATEGIES[Image])
    assert len(node.got) == node.monitor.inputs['camera/image_raw'].processed


# -------------------------------------------------------------------- bags
@pytest.fixture(scope='module')
def small_bag(tmp_path_factory):
    from av_perception.bag.io import BagWriter
    from av_perception.bag.messages import Messages
    path = tmp_path_factory.mktemp('bag') / 'b'
    m = Messages()
    x = np.zeros((4, 160), np.float32)
    with BagWriter(path) as w:
        for k in range(20):
            w.write('/audio/raw', 'av_perception/msg/AudioChunk', 10**9 + k,
                    m.audio_chunk(x, 16000, 160 * k, 10**9 + k, 'mic_array'))
    return path


#: a message definition the bag names that is new to rosbags builds its parser
#: (lark) once: a few MB, whatever the bag
LARK = 32_000_000


def test_corrupt_or_truncated_bag_gives_input_error_or_messages(small_bag, tmp_path):
    """100 seeded mutations of a bag (cut anywhere, or 1-8 bytes overwritten,
    more often in its structure than in its samples): reading gives messages
    or one InputError line, never another exception or an unbounded
    allocation; reading with salvage never fails. (A seeded loop rather than
    hypothesis: a few mutations in a hundred break the parser, more than
    hypothesis's example budget finds.)"""
    import random

    from av_perception.bag.io import read_bag
    mcap = next(small_bag.glob('*.mcap'))
    raw0 = mcap.read_bytes()
    rng = random.Random(9)
    outcomes = {'read': 0, 'input_error': 0}
    for i in range(100):
        raw = bytearray(raw0)
        if i % 2:
            raw = raw[:rng.randrange(len(raw))]
        else:
            for _ in range(rng.randint(1, 8)):
                at = rng.choice([rng.randrange(700), len(raw) - 1 - rng.randrange(1500),
                                 rng.randrange(len(raw))])
                raw[at] = rng.randrange(256)
        bag = tmp_path / f'b{i}'
        bag.mkdir()
        (bag / 'metadata.yaml').write_bytes((small_bag / 'metadata.yaml').read_bytes())
        (bag / mcap.name).write_bytes(bytes(raw))
        try:
            assert len(bounded(lambda: list(read_bag(bag)), len(raw), LARK)) <= 20, i
            outcomes['read'] += 1
        except InputError as exc:
            assert exc.kind == 'bag' and str(bag) in str(exc) and '\n' not in str(exc), i
            outcomes['input_error'] += 1
        assert len(bounded(lambda: list(read_bag(bag, salvage=True)), len(raw), LARK)) <= 20, i
    assert min(outcomes.values()) > 15, outcomes
