"""Rate-limited warnings: a line per event and key per second, the rest counted; the key table is bounded."""

from __future__ import annotations

from bus.ratelimit import RateLimitedWarnings
from tests.supervisor_harness import FakeClock, NullLog


def test_a_repeat_within_a_second_is_counted_and_reported_with_the_next_line():
    """The same event and key again within the second is suppressed; the next line says how many were."""
    log, clock = NullLog(), FakeClock()
    warn = RateLimitedWarnings(log, clock)
    for _ in range(5):
        warn("identity_refused", key="mallory|gateway", claimed="gateway")
    clock.advance(1.0)
    warn("identity_refused", key="mallory|gateway", claimed="gateway")
    assert [kw["suppressed"] for _, kw in log.events] == [0, 4]


def test_each_distinct_key_gets_its_own_line():
    """Different refusals (peer, rule) each leave a line at once: no attempt hides behind another."""
    log = NullLog()
    warn = RateLimitedWarnings(log, FakeClock())
    for rule in ("down", "kill_all", "freeze"):
        warn("message_denied", key=f"w|{rule}", reason=rule)
    warn("message_denied", key="w|down", reason="down")
    assert [kw["reason"] for _, kw in log.events] == ["down", "kill_all", "freeze"]


def test_the_key_table_keeps_only_the_most_recent_keys():
    """A stream of ever-new keys cannot grow the table past its bound."""
    warn = RateLimitedWarnings(NullLog(), FakeClock(), keys=8)
    for i in range(100):
        warn("bad_frame_dropped", key=str(i))
    assert len(warn._seen) == 8 and ("bad_frame_dropped", "99") in warn._seen
