"""Span records without the SDK: ids, W3C traceparent, nesting through the current context, the wire form."""

from __future__ import annotations

import pytest

from swarm_core import tracing as t

TP = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"


class Clock:
    def __init__(self) -> None:
        self.ns = 1_000

    def __call__(self) -> int:
        self.ns += 10
        return self.ns


def test_traceparent_round_trip_and_refusals():
    """format/parse agree; wrong versions, upper case, all-zero ids and junk parse to None."""
    assert t.parse_traceparent(t.format_traceparent("ab" * 16, "cd" * 8)) == ("ab" * 16, "cd" * 8)
    for bad in ("", "junk", TP.upper(), "01" + TP[2:], "00-" + "0" * 32 + "-" + "cd" * 8 + "-01",
                "00-" + "ab" * 16 + "-" + "0" * 16 + "-01", TP + "-x"):
        assert t.parse_traceparent(bad) is None, bad


def test_nested_spans_are_parent_and_child_in_one_trace():
    """A span opened inside another is its child, in the same trace; the outer one is current again after."""
    rec = t.Recorder("a", on=True, clock=Clock())
    with rec.span("outer", "") as outer:
        assert t.CURRENT.get() == outer.traceparent
        with rec.span("inner") as inner:
            assert (inner.trace_id, inner.parent_span_id) == (outer.trace_id, outer.span_id)
        assert t.CURRENT.get() == outer.traceparent
    assert t.CURRENT.get() == ""
    done = rec.drain()
    assert [s[3] for s in done] == ["inner", "outer"] and rec.drain() == []
    assert all(s[6] >= s[5] for s in done)


def test_span_under_a_remote_parent_keeps_its_trace():
    """A span started from a received traceparent joins that trace as the remote span's child."""
    rec = t.Recorder("a", on=True)
    span = rec.start("step 1", TP, **{"swarm.step": 1})
    assert (span.trace_id, span.parent_span_id) == ("ab" * 16, "cd" * 8)
    assert span.attributes == {"swarm.step": 1}


def test_recorder_off_records_nothing_and_leaves_the_context_alone():
    """With tracing off (OTEL_SDK_DISABLED=true) spans are None and nothing is drained."""
    assert t.enabled({"OTEL_SDK_DISABLED": "true"}) is False and t.enabled({}) is True
    rec = t.Recorder("a", on=False)
    with rec.span("x", "") as span:
        assert span is None and t.CURRENT.get() == ""
    rec.end(rec.start("y"))
    assert rec.drain() == []


def test_wire_form_round_trips_and_drops_non_scalar_attributes():
    """to_wire/from_wire give the same span; attributes keep only str, int, float and bool values."""
    span = t.Span("ab" * 16, "cd" * 8, "", "n", "a", 5, 9)
    span.set(ok=True, n=3, x=1.5, s="v", bad=[1, 2], worse={"a": 1})
    again = t.Span.from_wire(span.to_wire())
    assert again == span and set(again.attributes) == {"ok", "n", "x", "s"}


@pytest.mark.parametrize("raw", [
    None, [], ["ab" * 16, "cd" * 8, "", "n", "a", 5], ["zz" * 16, "cd" * 8, "", "n", "a", 5, 9, {}],
    ["ab" * 16, "cd" * 8, "nothex", "n", "a", 5, 9, {}], ["ab" * 16, "cd" * 8, "", "n", "a", 9, 5, {}],
    ["ab" * 16, "cd" * 8, "", "n", "a", 5, 9, []], ["ab" * 16, "cd" * 8, "", 7, "a", 5, 9, {}],
])
def test_malformed_wire_spans_raise_value_error(raw):
    """Anything that is not a well-formed span (ids, times, types) raises ValueError."""
    with pytest.raises(ValueError):
        t.Span.from_wire(raw)


def test_batch_hands_spans_over_at_most_once_per_interval_unless_forced():
    """``batch`` drains at once, then not again within the interval; an empty look delays nothing."""
    rec = t.Recorder("a", on=True)
    rec.end(rec.start("one"))
    assert [s[3] for s in rec.batch(10.0)] == ["one"]
    rec.end(rec.start("two"))
    assert rec.batch(10.0 + t.SPAN_FLUSH_S / 2) == []
    assert [s[3] for s in rec.batch(10.0 + t.SPAN_FLUSH_S / 2, force=True)] == ["two"]
    assert rec.batch(20.0) == []  # nothing finished: nothing sent, and the clock is not reset
    rec.end(rec.start("three"))
    assert [s[3] for s in rec.batch(20.0 + t.SPAN_FLUSH_S / 4)] == ["three"]
