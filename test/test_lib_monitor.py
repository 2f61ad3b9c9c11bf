"""Unit tests of av_perception.monitor: per-input and per-node health figures."""

from __future__ import annotations

import pytest

from av_perception.monitor import ERROR, OK, STALE, WARN, InputStats, NodeMonitor


class FakeClock:
    """A clock the test moves by hand (no sleeps)."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# ---------------------------------------------------------------- rate

def test_rate_of_a_steady_10_hz_input():
    """Messages every 0.1 s for 10 s measure 10 Hz over a 5 s window."""
    s = InputStats('audio/raw', window=5.0)
    for i in range(101):
        s.on_receive(i / 10)
    assert s.rate(10.0) == pytest.approx(10.0, rel=1e-6)
    assert s.received == 101


def test_rate_only_counts_the_window():
    """A 100 Hz burst that ended more than a window ago does not count; 2 Hz since does."""
    s = InputStats('x', window=5.0)
    for i in range(100):
        s.on_receive(i / 100)          # 100 Hz during [0, 1) s
    for i in range(21):
        s.on_receive(10.0 + i / 2)     # 2 Hz during [10, 20] s
    assert s.rate(20.0) == pytest.approx(2.0, rel=1e-6)


def test_rate_is_zero_with_fewer_than_two_messages():
    """One message, or none in the window, gives no rate."""
    s = InputStats('x', window=5.0)
    assert s.rate(0.0) == 0.0
    s.on_receive(1.0)
    assert s.rate(1.5) == 0.0
    s.on_receive(1.1)
    assert s.rate(1.1) > 0
    assert s.rate(100.0) == 0.0


# ---------------------------------------------------------------- drops and events

def test_drops_are_counted_per_kind_and_logged_once():
    """on_drop is True only the first time a kind is seen; counts and details are kept."""
    s = InputStats('x')
    assert s.on_drop('channels', 'expected 4, got 2') is True
    assert s.on_drop('channels', 'expected 4, got 3') is False
    assert s.on_drop('encoding', "got 'yuv422'") is True
    assert s.drops == {'channels': 2, 'encoding': 1}
    assert s.dropped == 3
    assert s.last_detail['channels'] == 'expected 4, got 3'


def test_events_are_counted_per_kind_and_do_not_count_as_drops():
    """A gap is noted (True the first time) but the message was used: no drop."""
    s = InputStats('x')
    assert s.on_event('gap', '80 samples') is True
    assert s.on_event('gap', '20 samples') is False
    assert s.events == {'gap': 2}
    assert s.dropped == 0
    assert s.last_detail['gap'] == '20 samples'


# ---------------------------------------------------------------- report levels

def test_clean_input_reports_ok_with_counts():
    """No drops and no events: OK, with received/processed/rate figures."""
    s = InputStats('x')
    for i in range(11):
        s.on_receive(i * 0.5)
        s.on_processed(0.002)
    level, message, values = s.report(5.0)
    assert level == OK and message == 'ok'
    assert values['received'] == '11' and values['processed'] == '11'
    assert values['dropped'] == '0'
    assert values['rate_hz'] == '2.00'
    assert values['latency_ms_p50'] == '2.00'


def test_drop_warns_once_then_ok_again():
    """A drop makes the next report WARN (naming the kind); the report after, with no new
    drop, is OK again while the total stays visible."""
    s = InputStats('x')
    s.on_receive(0.0)
    s.on_drop('channels', 'expected 4 channels, got 2')
    level, message, values = s.report(1.0)
    assert level == WARN
    assert 'dropped 1' in message and 'channels x1' in message
    assert values['dropped.channels'] == '1'
    assert values['dropped.channels.last'] == 'expected 4 channels, got 2'
    level, message, values = s.report(2.0)
    assert level == OK and message == 'ok'
    assert values['dropped'] == '1'


def test_event_warns_once_then_ok_again():
    """A stream event makes the next report WARN; the one after is OK."""
    s = InputStats('x')
    s.on_event('gap', '80 samples of gap')
    level, message, values = s.report(1.0)
    assert level == WARN and 'gap x1' in message
    assert values['events.gap'] == '1'
    assert values['events.gap.last'] == '80 samples of gap'
    assert s.report(2.0)[0] == OK


def test_only_new_drops_are_counted_in_the_warning():
    """The WARN message counts drops since the last report, not since start."""
    s = InputStats('x')
    s.on_drop('step', 'a')
    s.report(1.0)
    s.on_drop('step', 'b')
    s.on_drop('step', 'c')
    level, message, _ = s.report(2.0)
    assert level == WARN
    assert message.startswith('dropped 2 since last report')


def test_stale_after_silence():
    """With stale_after=1 s: OK 0.5 s after a message, STALE 1.5 s after."""
    s = InputStats('x', stale_after=1.0)
    s.on_receive(10.0)
    assert s.report(10.5)[0] == OK
    level, message, _ = s.report(11.5)
    assert level == STALE
    assert '1.0 s' in message


def test_stale_before_any_message():
    """An input that never received anything is STALE when it has a stale_after."""
    assert InputStats('x', stale_after=2.0).report(0.0)[0] == STALE


def test_optional_input_is_never_stale():
    """stale_after=0: an optional input is OK however long it is silent."""
    s = InputStats('x', stale_after=0.0)
    s.on_receive(0.0)
    assert s.report(1e6)[0] == OK


def test_input_age_from_stamps():
    """A message stamped 30 ms before it arrived reports an input age of 30 ms."""
    s = InputStats('x')
    for i in range(10):
        s.on_receive(1.0 + i, stamp=1.0 + i - 0.030)
    assert s.report(11.0)[2]['input_age_ms_p50'] == '30.00'


def test_buffers_stay_bounded():
    """100000 messages keep the arrival, latency and age buffers at their maxlen."""
    s = InputStats('x')
    limits = (s._arrivals.maxlen, s._latency.maxlen, s._age.maxlen)
    assert all(limits), limits
    for i in range(100_000):
        t = i * 0.001
        s.on_receive(t, stamp=t - 0.01)
        s.on_processed(0.001)
    assert (len(s._arrivals), len(s._latency), len(s._age)) == limits
    assert s.received == s.processed == 100_000
    assert s.rate(99.999) == pytest.approx(1000.0, rel=1e-3)
    assert s.report(100.0)[0] == OK


def test_arrivals_keep_only_the_window():
    """A 20 Hz input for 10 minutes keeps the last ``window`` seconds of
    arrivals (what rate() reads), not thousands: a graph of dozens of inputs
    would otherwise grow by megabytes over its first hour."""
    s = InputStats('x', window=5.0)
    for i in range(12_000):
        s.on_receive(i / 20)
    assert len(s._arrivals) <= 5.0 * 20 + 2
    assert s.rate(11_999 / 20) == pytest.approx(20.0, rel=1e-6)
    s.on_receive(10_000.0)                      # after a long silence: the newest stays
    assert list(s._arrivals) == [10_000.0] and s.rate(10_000.0) == 0.0


# ---------------------------------------------------------------- node monitor

def test_node_monitor_reports_inputs_and_node_facts():
    """One status per input plus one for the node, whose values are the facts as strings."""
    clock = FakeClock(100.0)
    m = NodeMonitor(clock=clock)
    a = m.input('audio/raw', stale_after=1.0)
    assert m.input('audio/raw') is a
    a.on_receive(100.0)
    m.set_fact('model', 'doa-v3')
    m.set_fact('channels', 4)
    out = m.report()
    assert [r[0] for r in out] == ['audio/raw', '']
    name, level, message, values = out[-1]
    assert level == OK and message == 'ok'
    assert values == {'model': 'doa-v3', 'channels': '4'}


def test_node_monitor_uses_its_clock_for_staleness():
    """The injected clock decides staleness: 0.5 s later OK, 5 s later STALE."""
    clock = FakeClock(100.0)
    m = NodeMonitor(clock=clock)
    m.input('audio/raw', stale_after=1.0).on_receive(100.0)
    clock.t = 100.5
    assert m.report()[0][1] == OK
    clock.t = 105.0
    assert m.report()[0][1] == STALE


def test_node_monitor_errors_make_the_node_error_until_cleared():
    """A persistent fault is ERROR with its message; clearing it returns to OK."""
    m = NodeMonitor(clock=FakeClock())
    m.set_error('device', 'microphone unplugged')
    name, level, message, values = m.report()[-1]
    assert name == '' and level == ERROR
    assert message == 'microphone unplugged'
    assert values['error.device'] == 'microphone unplugged'
    m.set_error('device', None)
    name, level, message, values = m.report()[-1]
    assert level == OK and 'error.device' not in values
    m.set_error('never_set', None)          # clearing an absent error is harmless
    assert m.report()[-1][1] == OK
