"""Faults: a recorder stopped mid-write, damaged bags, broken model files,
stamps that jump. Each must end in a readable bag, one clear error line or a
counted event, never a traceback or a silent loss."""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from av_perception import cli
from av_perception.arrays import load_array
from av_perception.audio.chunk import AudioBlock
from av_perception.bag.io import BagWriter, read_bag
from av_perception.bag.messages import Messages
from av_perception.errors import ConfigError, InputError
from av_perception.nodes.audio_monitor import AudioMonitorNode
from av_perception.paths import shipped_model
from av_perception.ros import qos
from av_perception.ros.load_targets import audio_chunks
from av_perception.ros.messages import block_to_chunk
from av_perception.msg import AudioChunk
from conftest import diag_values, recorder_received

FRAMES = 1600  # 100 ms at 16 kHz (load_targets.audio_chunks)


# ------------------------------------------------------------------ recorder
@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_recorder_stopped_mid_write_keeps_every_message_it_received(ros, tmp_path, sig):
    out = tmp_path / 'bag'
    rec = subprocess.Popen([sys.executable, '-m', 'av_perception.cli', 'record', 'audio/raw',
                            '-o', str(out), '--ros-args', '-p', 'diagnostics_period:=0.2'],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        diags = ros.collect(DiagnosticArray, '/diagnostics', qos.RELIABLE)
        pub = ros.publisher(AudioChunk, 'audio/raw', qos.AUDIO)
        make = audio_chunks()
        k, signalled = 0, None
        deadline = time.monotonic() + 30
        # publish without pause; signal once it has 30, go on until it exits
        while rec.poll() is None and time.monotonic() < deadline:
            pub.publish(make(k, 10**9 + k * 100_000_000))
            k += 1
            ros.executor.spin_once(timeout_sec=0.005)
            if signalled is None and recorder_received(diags) >= 30:
                rec.send_signal(sig)
                signalled = k
        log, _ = rec.communicate(timeout=20)
    finally:
        if rec.poll() is None:
            rec.kill()
    assert signalled is not None and k > signalled, 'the signal came after the last message'
    assert rec.returncode == 0, log
    assert 'Traceback' not in log
    written, received = map(int, re.search(r'bag closed: .* \((\d+) messages written of '
                                           r'(\d+) received\)', log).groups())
    assert written == received >= 30
    firsts = [m.msg.first_sample for m in read_bag(out)]
    assert len(firsts) == received
    # a gap-free run of what was published: nothing it received is missing
    assert firsts == list(range(firsts[0], firsts[0] + FRAMES * len(firsts), FRAMES))


# -------------------------------------------------------------- damaged bags
def _direction_bag(path: Path, seconds: float = 8.0, azimuth_deg: float = 60.0) -> int:
    """A bag a scorer can use: a far-field noise source at a known azimuth on
    the 4-mic array (several 1 MiB MCAP chunks), and its ground truth."""
    geom = load_array('respeaker4')
    fs, n = geom.sample_rate, int(seconds * geom.sample_rate)
    u = np.array([math.cos(math.radians(azimuth_deg)), math.sin(math.radians(azimuth_deg)), 0])
    delays = -(geom.positions @ u) / 343.0
    spec = np.fft.rfft(np.random.default_rng(1).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / fs)
    x = np.stack([np.fft.irfft(spec * np.exp(-2j * np.pi * f * d), n) for d in delays])
    x = (0.1 * x / np.abs(x).max()).astype(np.float32)
    m = Messages()
    count = 0
    with BagWriter(path) as w:
        for i in range(0, n, FRAMES):
            ns = 10**9 + int(i / fs * 1e9)
            w.write('/audio/raw', 'av_perception/msg/AudioChunk', ns,
                    m.audio_chunk(x[:, i:i + FRAMES], fs, i, ns, geom.frame_id))
            w.write('/gt/sound_direction', 'av_perception/msg/SoundSourceArray', ns,
                    m.sound_sources([(1, math.radians(azimuth_deg), 0.0, True, 1.0, False)],
                                    ns, geom.frame_id))
            count += 2
    return count


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    """An intact bag and a copy cut short at 70 % of its file."""
    root = tmp_path_factory.mktemp('bags')
    n = _direction_bag(root / 'intact' / 'b')
    cut = root / 'cut' / 'b'
    shutil.copytree(root / 'intact' / 'b', cut)
    mcap = next(cut.glob('*.mcap'))
    os.truncate(mcap, int(mcap.stat().st_size * 0.7))
    return root, n


def test_truncated_bag_one_error_line_and_salvage(bags):
    root, n = bags
    with pytest.raises(InputError) as err:
        list(read_bag(root / 'cut' / 'b'))
    msg = str(err.value)
    assert '\n' not in msg and str(root / 'cut' / 'b') in msg
    readable = int(re.search(r'(\d+) messages before the damage are readable', msg).group(1))
    assert 0 < readable < n
    got = list(read_bag(root / 'cut' / 'b', salvage=True))
    assert len(got) == readable
    firsts = [m.msg.first_sample for m in got if m.topic == 'audio/raw']
    assert firsts == list(range(0, FRAMES * len(firsts), FRAMES))  # the start, in order
    assert len(list(read_bag(root / 'intact' / 'b', salvage=True))) == n


@pytest.mark.parametrize('damage', ['truncated', 'no_metadata', 'garbage', 'empty'])
def test_eval_direction_on_a_damaged_bag_one_line_or_salvaged(bags, tmp_path, capsys, damage):
    root, _ = bags
    bag = tmp_path / 'bags' / 'b'
    if damage == 'truncated':
        shutil.copytree(root / 'cut' / 'b', bag)
    else:
        shutil.copytree(root / 'intact' / 'b', bag)
        mcap = next(bag.glob('*.mcap'))
        if damage == 'garbage':
            mcap.write_bytes(os.urandom(5000))
        elif damage == 'empty':
            mcap.write_bytes(b'')
        else:  # metadata.yaml lost: a folder of an MCAP file the scan still reads
            (bag / 'metadata.yaml').write_text('rosbag2_bagfile_information: [')
    args = ['eval', 'direction', '--bags', str(tmp_path / 'bags'), '--method', 'srp']
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and 'Traceback' not in err
    assert err.startswith('av-perception eval: error: bag: ') and str(bag) in err
    code = cli.main(args + ['--salvage'])
    out, err = capsys.readouterr()
    if damage in ('truncated', 'no_metadata'):  # readable messages are scored
        assert code == 0 and 'Traceback' not in err
        n = int(re.search(r'\bn (\d+)', out).group(1))
        median = float(re.search(r'median_deg ([\d.]+)', out).group(1))
        assert n > 10 and median < 10.0  # the known source, found
    else:  # nothing readable: still one line
        assert code == 2 and len(err.strip().splitlines()) == 1 and 'Traceback' not in err


def test_train_direction_on_a_truncated_bag_one_line(bags, tmp_path, capsys):
    root, _ = bags
    code = cli.main(['train', 'direction', '--bags', str(root / 'cut'), '--target', 'labels',
                     '--out', str(tmp_path / 'm.onnx'), '--epochs', '1', '--jobs', '1'])
    err = capsys.readouterr().err.strip().splitlines()
    # the error is raised in the feature worker process and reaches the CLI whole
    assert code == 2
    assert err[-1].startswith('av-perception train: error: bag: ') and 'readable' in err[-1]
    assert not any('Traceback' in line for line in err)


# -------------------------------------------------------------- model files
def test_sound_direction_process_with_a_bad_model_exits_with_one_line(tmp_path):
    bad = tmp_path / 'model.onnx'
    bad.write_bytes(b'not onnx')
    proc = subprocess.run(
        [sys.executable, '-c', 'from av_perception.nodes.sound_direction import main; '
         'raise SystemExit(main())', '--ros-args', '-p', 'method:=learned', '-p',
         f'model:={bad}'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and 'model.onnx' in lines[0]
    assert 'Traceback' not in proc.stdout + proc.stderr


# -------------------------------------------------------------- stamp jumps
def test_stamps_jumping_forwards_and_backwards_are_reported(ros):
    ros.node(AudioMonitorNode, {'diagnostics_period': 0.1})
    diags = ros.collect(DiagnosticArray, '/diagnostics', qos.RELIABLE)
    pub = ros.publisher(AudioChunk, 'audio/raw', qos.AUDIO)
    x = np.zeros((4, FRAMES), np.float32)
    period = 100_000_000
    stamps = [10**9 + k * period for k in range(5)]
    stamps.append(stamps[-1] + period + 2 * 10**9)   # chunk 5: 2 s ahead of its samples
    stamps.append(stamps[-1] - 10**9)                # chunk 6: 1 s before chunk 5
    for k, ns in enumerate(stamps):
        pub.publish(block_to_chunk(AudioBlock(x, 16000, k * FRAMES, ns, 'mic_array')))
    name = 'audio_monitor: audio/raw'

    def values():
        try:
            return diag_values(diags, name)
        except AssertionError:
            return {}
    ros.spin_until(lambda: values().get('received') == '7', what='7 chunks reported')
    v = values()
    assert v['events.stamp_jump'] == '1' and '+2000.0 ms' in v['events.stamp_jump.last']
    assert v['dropped.stamp_backwards'] == '1' and v['processed'] == '6'


def test_an_audio_stream_that_stops_is_reported_and_its_gap_counted_when_it_returns(ros):
    """A microphone that disappears: the consumer reports the input STALE
    (after its 2 s), and when the stream comes back the chunks it missed are
    counted as lost and processing goes on."""
    ros.node(AudioMonitorNode, {'diagnostics_period': 0.2})
    arrays = ros.collect(DiagnosticArray, '/diagnostics', qos.RELIABLE)
    pub = ros.publisher(AudioChunk, 'audio/raw', qos.AUDIO)
    make = audio_chunks()
    name = 'audio_monitor: audio/raw'

    def level() -> bytes | None:
        for arr in reversed(arrays):
            for st in arr.status:
                if st.name == name:
                    return st.level
        return None
    for k in range(3):
        pub.publish(make(k, 10**9 + k * 100_000_000))
    ros.spin_until(lambda: level() == DiagnosticStatus.STALE, timeout=15, what='STALE')
    assert diag_values(arrays, name)['processed'] == '3'
    for k in range(33, 36):  # 30 chunks (3 s) never came
        pub.publish(make(k, 10**9 + k * 100_000_000))
    ros.spin_until(lambda: diag_values(arrays, name).get('processed') == '6'
                   and level() != DiagnosticStatus.STALE, what='the stream back')
    v = diag_values(arrays, name)
    assert v['lost'] == '30' and v['events.gap'] == '1'


# every node that loads a model: (node, its model parameter, its shipped model, a shipped
# model made for something else)
#: node -> (its model parameter, its shipped model, a shipped model of
#: another contract, the other parameters it needs to load a model)
MODEL_NODES = {
    'sound_direction': ('model', 'direction_respeaker4', 'direction_binaural',
                        {'method': 'learned', 'array': 'respeaker4'}),
    'echo_depth': ('model', 'echo_depth', 'direction_binaural', {}),
    'rotation': ('model', 'rotation_visual', 'echo_depth', {}),
    'av_heatmap': ('model', 'av_heatmap', 'direction_respeaker4', {}),
}


@pytest.mark.parametrize('node', sorted(MODEL_NODES))
@pytest.mark.parametrize('fault', ['missing', 'corrupt', 'truncated', 'mismatched'])
def test_model_nodes_refuse_a_bad_model_with_one_line(ros, tmp_path, node, fault):
    """A missing, corrupt, truncated or mismatched (another array's or
    another task's) model file stops the node at start-up with a one-line
    ConfigError naming the file and what is wrong with it."""
    from av_perception.nodes import node_class
    param, shipped, other, extra = MODEL_NODES[node]
    good = shipped_model(shipped)
    model = tmp_path / 'model.onnx'
    if fault == 'corrupt':
        model.write_bytes(os.urandom(4096))
    elif fault == 'truncated':
        model.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    elif fault == 'mismatched':
        model = shipped_model(other)
    with pytest.raises(ConfigError) as err:
        ros.node(node_class(node), {**extra, param: str(model)})
    msg = str(err.value)
    assert '\n' not in msg and model.name in msg, msg
    expect = {'missing': 'does not exist', 'corrupt': 'not a loadable ONNX model',
              'truncated': 'not a loadable ONNX model'}
    if node == 'sound_direction':
        expect['mismatched'] = 'expected array='
    assert expect.get(fault, '') in msg, msg


def test_dataset_on_a_truncated_bag_one_line_or_salvaged(tmp_path, capsys):
    """`dataset` on a bag cut short: one error line naming what is readable;
    with --salvage, the data set from the readable messages."""
    import io

    from av_perception.sim.bags import simulate
    simulate(tmp_path / 'bags', scenes=1, seed=4, poses=16, echo_only=True, jobs=1,
             progress=io.StringIO())
    mcap = next((tmp_path / 'bags').glob('*/*.mcap'))
    os.truncate(mcap, int(mcap.stat().st_size * 0.8))
    args = ['dataset', '--bags', str(tmp_path / 'bags'), '--out', str(tmp_path / 'd')]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'messages before the damage are readable' in err[0], err
    assert cli.main(args + ['--salvage']) == 0
    summary = (tmp_path / 'd' / 'dataset.json').read_text()
    assert '"pairs": ' in summary
