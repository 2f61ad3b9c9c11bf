"""Unit tests of av_perception.audio.chunk: (de)interleaving and stream checks."""

from __future__ import annotations

import numpy as np
import pytest

from av_perception.audio.chunk import AudioBlock, StreamChecker, deinterleave, interleave
from av_perception.errors import InputError

RATE = 16_000
FRAMES = 160                      # 10 ms at 16 kHz
BLOCK_NS = 10_000_000             # duration of one block [ns]
T0 = 1_700_000_000_000_000_000    # a realistic epoch stamp [ns]


def block(first_sample: int = 0, stamp_ns: int = T0, channels: int = 2,
          frames: int = FRAMES, rate: int = RATE) -> AudioBlock:
    return AudioBlock(np.zeros((channels, frames), np.float32), rate,
                      first_sample=first_sample, stamp_ns=stamp_ns, frame_id='mic_array')


def nth(n: int, **kw) -> AudioBlock:
    """The n-th block of a perfectly continuous stream."""
    return block(first_sample=n * FRAMES, stamp_ns=T0 + n * BLOCK_NS, **kw)


# ---------------------------------------------------------------- interleaving

def test_deinterleave_puts_each_channel_in_its_own_row():
    """Frame-major samples L0 R0 L1 R1 ... become rows [L...], [R...]."""
    out = deinterleave([1, -1, 2, -2, 3, -3], 2)
    assert out.shape == (2, 3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0], [1, 2, 3])
    np.testing.assert_array_equal(out[1], [-1, -2, -3])


def test_deinterleave_result_is_contiguous_and_independent_of_input():
    """Each channel row is contiguous and writing it does not alter the input buffer."""
    src = np.arange(12, dtype=np.float32)
    out = deinterleave(src, 3)
    assert out.flags['C_CONTIGUOUS']
    out[:] = 0
    np.testing.assert_array_equal(src, np.arange(12, dtype=np.float32))


def test_interleave_deinterleave_round_trip():
    """interleave and deinterleave are inverse to each other for any channel count."""
    rng = np.random.default_rng(0)
    for channels in (1, 2, 4, 7):
        samples = rng.uniform(-1, 1, (channels, 33)).astype(np.float32)
        flat = interleave(samples)
        assert flat.shape == (channels * 33,)
        np.testing.assert_array_equal(flat[:channels], samples[:, 0])
        np.testing.assert_array_equal(deinterleave(flat, channels), samples)
        np.testing.assert_array_equal(interleave(deinterleave(flat, channels)), flat)


def test_deinterleave_rejects_zero_channels():
    """A stream of zero channels is refused under kind 'channels'."""
    with pytest.raises(InputError) as exc:
        deinterleave([0.0, 0.0], 0)
    assert exc.value.kind == 'channels'
    assert 'at least 1 channel' in str(exc.value) and 'got 0' in str(exc.value)


def test_deinterleave_rejects_empty_block():
    """An empty block carries no frame and is refused under kind 'empty'."""
    with pytest.raises(InputError) as exc:
        deinterleave([], 2)
    assert exc.value.kind == 'empty'
    assert '0 samples' in str(exc.value)


def test_deinterleave_rejects_length_not_a_multiple_of_channels():
    """10 samples cannot be 3 channels: the message names the channel count and the length."""
    with pytest.raises(InputError) as exc:
        deinterleave(np.zeros(10), 3)
    err = exc.value
    assert err.kind == 'length'
    assert 'multiple of 3 channels' in err.expected
    assert '10 samples' in err.got and '1 left over' in err.got


def test_deinterleave_rejects_nan_and_inf_unless_allowed():
    """Non-finite samples are refused (counted) unless the caller allows them."""
    data = [0.0, np.nan, np.inf, 0.5]
    with pytest.raises(InputError) as exc:
        deinterleave(data, 2)
    assert exc.value.kind == 'non_finite'
    assert '2 NaN/Inf' in exc.value.got
    out = deinterleave(data, 2, allow_non_finite=True)
    assert np.isnan(out[1, 0]) and np.isinf(out[0, 1])


def test_deinterleave_refuses_samples_far_beyond_full_scale():
    """Float32 samples 60 dB over full scale are corrupt data, not audio
    (bytes of another format read as float32 squared in a spectrum
    overflow): refused with the peak named; loud but plausible audio (a
    clipped +-2) passes."""
    from av_perception.audio.chunk import MAX_ABS
    ok = deinterleave(np.array([2.0, -2.0, 0.5, 0.0], np.float32), 2)
    assert ok.shape == (2, 2)
    with pytest.raises(InputError) as exc:
        deinterleave(np.array([0.0, 3e20, 0.0, 0.0], np.float32), 2)
    assert exc.value.kind == 'range' and '3e+20' in str(exc.value)
    assert deinterleave(np.full(2, MAX_ABS, np.float32), 2).shape == (2, 1)


def test_interleave_rejects_a_one_dimensional_array():
    """interleave needs (channels, frames); a flat vector is refused under 'shape'."""
    with pytest.raises(InputError) as exc:
        interleave(np.zeros(8))
    assert exc.value.kind == 'shape'
    assert '(8,)' in exc.value.got


def test_audio_block_properties():
    """channels, frames and duration [s] come from the array shape and the rate."""
    b = AudioBlock(np.zeros((4, 480), np.float32), 48_000)
    assert b.channels == 4
    assert b.frames == 480
    assert b.duration == pytest.approx(0.010)


# ---------------------------------------------------------------- stream checker

def test_continuous_stream_raises_no_event():
    """Blocks with contiguous first_sample and stamps matching the sample count are clean."""
    checker = StreamChecker(channels=2, sample_rate=RATE)
    for n in range(20):
        assert checker.check(nth(n)) == []


def test_channel_count_mismatch_with_config_is_fatal():
    """A 2-channel block on a 4-mic array is dropped; the detail names both counts."""
    checker = StreamChecker(channels=4, sample_rate=RATE)
    events = checker.check(nth(0, channels=2))
    assert [e.kind for e in events] == ['channels']
    assert events[0].fatal
    assert 'expected 4 channels' in events[0].detail and 'got 2' in events[0].detail


def test_sample_rate_mismatch_with_config_is_fatal():
    """A 48 kHz block where the config says 16 kHz is dropped; the detail names both rates."""
    checker = StreamChecker(channels=2, sample_rate=RATE)
    events = checker.check(nth(0, rate=48_000))
    assert [e.kind for e in events] == ['sample_rate']
    assert events[0].fatal
    assert 'expected 16000 Hz' in events[0].detail and 'got 48000 Hz' in events[0].detail


def test_sample_rate_change_mid_stream_is_fatal():
    """With no configured rate, the first block fixes it; a later change is dropped."""
    checker = StreamChecker()
    assert checker.check(nth(0)) == []
    events = checker.check(nth(1, rate=44_100))
    assert [e.kind for e in events] == ['sample_rate_change']
    assert events[0].fatal
    assert 'expected 16000 Hz' in events[0].detail and 'got 44100 Hz' in events[0].detail


def test_fatal_block_does_not_advance_the_stream():
    """A dropped block leaves the state as it was: the true next block is still clean."""
    checker = StreamChecker(channels=2)
    assert checker.check(nth(0)) == []
    assert checker.check(nth(1, channels=3))[0].fatal
    assert checker.check(nth(1)) == []


def test_channel_count_is_fixed_by_the_first_block_when_not_configured():
    """channels=0 means 'any, fixed by the first chunk' (ros.inputs.AudioInput docs):
    a 4-channel block after 2-channel ones cannot be the same array and is dropped."""
    checker = StreamChecker()
    assert checker.check(nth(0, channels=2)) == []
    events = checker.check(nth(1, channels=4))
    assert any(e.fatal for e in events), events
    fatal = [e for e in events if e.fatal][0]
    assert fatal.kind.startswith('channels')
    assert '2' in fatal.detail and '4' in fatal.detail


def test_stamp_going_backwards_is_fatal():
    """A block stamped before the previous one is dropped; the detail names both times."""
    checker = StreamChecker()
    assert checker.check(nth(0)) == []
    events = checker.check(block(first_sample=FRAMES, stamp_ns=T0 - 1_000_000))
    assert [e.kind for e in events] == ['stamp_backwards']
    assert events[0].fatal
    assert f'{T0 * 1e-9:.6f}' in events[0].detail
    assert f'{(T0 - 1_000_000) * 1e-9:.6f}' in events[0].detail


def test_first_sample_gap_is_reported_but_not_fatal():
    """80 samples missing between blocks: a non-fatal 'gap' event saying how many."""
    checker = StreamChecker()
    assert checker.check(nth(0)) == []
    events = checker.check(block(first_sample=FRAMES + 80, stamp_ns=T0 + BLOCK_NS + 5_000_000))
    assert [e.kind for e in events] == ['gap']
    assert not events[0].fatal
    assert f'expected first_sample {FRAMES}' in events[0].detail
    assert f'got {FRAMES + 80}' in events[0].detail and '80 samples of gap' in events[0].detail


def test_first_sample_overlap_is_reported_but_not_fatal():
    """A block repeating 40 samples: a non-fatal 'overlap' event saying how many."""
    checker = StreamChecker()
    assert checker.check(nth(0)) == []
    events = checker.check(block(first_sample=FRAMES - 40, stamp_ns=T0 + BLOCK_NS))
    assert [e.kind for e in events] == ['overlap']
    assert not events[0].fatal
    assert '40 samples of overlap' in events[0].detail


def test_stream_continues_from_the_block_after_a_gap():
    """After a gap the next expected sample follows the late block, so no repeated event."""
    checker = StreamChecker()
    checker.check(nth(0))
    checker.check(block(first_sample=1000, stamp_ns=T0 + 62_500_000))
    assert checker.check(block(first_sample=1000 + FRAMES,
                               stamp_ns=T0 + 62_500_000 + BLOCK_NS)) == []


def test_stamp_jump_against_sample_count_is_reported():
    """Contiguous samples but a stamp 100 ms later than 10 ms of audio predicts: 'stamp_jump'."""
    checker = StreamChecker(stamp_tolerance=0.05)
    assert checker.check(nth(0)) == []
    events = checker.check(block(first_sample=FRAMES, stamp_ns=T0 + BLOCK_NS + 100_000_000))
    assert [e.kind for e in events] == ['stamp_jump']
    assert not events[0].fatal
    assert '+100.0 ms' in events[0].detail
    assert f'{(T0 + BLOCK_NS) * 1e-9:.6f}' in events[0].detail


def test_stamp_jitter_within_tolerance_is_not_reported():
    """A stamp 20 ms off the prediction is within a 50 ms tolerance: no event."""
    checker = StreamChecker(stamp_tolerance=0.05)
    assert checker.check(nth(0)) == []
    assert checker.check(block(first_sample=FRAMES, stamp_ns=T0 + BLOCK_NS + 20_000_000)) == []


def test_reset_forgets_the_stream():
    """After reset (device restart) a stream restarting at sample 0, earlier and at
    another rate, is accepted as new."""
    checker = StreamChecker()
    for n in range(3):
        checker.check(nth(n))
    checker.reset()
    assert checker.check(block(first_sample=0, stamp_ns=T0 - 10**9, rate=48_000)) == []
    assert checker.check(block(first_sample=FRAMES, stamp_ns=T0 - 10**9 + FRAMES * 10**9 // 48_000,
                               rate=48_000)) == []


def test_fatal_event_converts_to_input_error():
    """ros.inputs.AudioInput raises ``event.error()`` for a fatal event so that the node
    counts the drop under its kind; the error must be an InputError with that kind and
    a message naming what was expected and what came."""
    checker = StreamChecker(channels=4)
    event = checker.check(nth(0, channels=2))[0]
    err = event.error()
    assert isinstance(err, InputError)
    assert err.kind == 'channels'
    assert '4' in err.expected and '2' in err.got
