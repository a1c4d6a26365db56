"""The one stop ladder (stop → SIGTERM → SIGKILL), driven by a fake clock and a fake signaller."""

from __future__ import annotations

import signal

import pytest

from orchestrator.supervisor.reaper import Reaper, Rung, Timings, signal_group
from tests.supervisor_harness import FakeClock, FakeSignaller

pytestmark = pytest.mark.timeout(10)

TERM, KILL = int(signal.SIGTERM), int(signal.SIGKILL)


def make(**kw) -> tuple[Reaper, FakeClock, FakeSignaller]:
    clock, sig = FakeClock(), FakeSignaller(**kw)
    sig.living.add(42)
    return Reaper(clock, sig, Timings(stop=2.0, term=3.0, recheck=5.0)), clock, sig


def test_soft_stop_climbs_message_term_kill_and_kill_again():
    """A stop asks first; SIGTERM after the stop grace; SIGKILL after the term grace; again while alive."""
    reaper, clock, sig = make()
    asked = []
    reaper.stop(42, ask=lambda: asked.append(42))
    assert asked == [42] and sig.signals(42) == [] and reaper.rung(42) is Rung.STOP
    clock.advance(1.9)
    reaper.step()
    assert sig.signals(42) == []
    clock.advance(0.1)
    reaper.step()
    assert sig.signals(42) == [TERM]
    clock.advance(2.9)
    reaper.step()
    assert sig.signals(42) == [TERM]
    clock.advance(0.1)
    reaper.step()
    assert sig.signals(42) == [TERM, KILL] and reaper.rung(42) is Rung.KILL
    clock.advance(5.0)
    reaper.step()
    assert sig.signals(42) == [TERM, KILL, KILL]


def test_target_that_exits_leaves_the_ladder_at_its_next_rung():
    """A target gone by the time its next rung is due gets no signal and is forgotten."""
    reaper, clock, sig = make()
    reaper.stop(42, ask=lambda: None)
    sig.living.discard(42)
    clock.advance(2.0)
    reaper.step()
    assert sig.sent == [] and reaper.pending() == []


def test_hard_stop_kills_at_once():
    """A hard stop sends SIGKILL without asking."""
    reaper, _, sig = make()
    asked = []
    reaper.stop(42, ask=lambda: asked.append(1), hard=True)
    assert asked == [] and sig.signals(42) == [KILL]


def test_a_target_never_climbs_down():
    """A soft stop of a target already killed changes nothing (no message, rung stays KILL)."""
    reaper, _, sig = make()
    reaper.stop(42, hard=True)
    asked = []
    reaper.stop(42, ask=lambda: asked.append(1))
    assert asked == [] and reaper.rung(42) is Rung.KILL and sig.signals(42) == [KILL]


def test_a_hard_stop_hurries_a_soft_one():
    """A hard stop of a target that was asked to stop kills it at once."""
    reaper, _, sig = make()
    reaper.stop(42, ask=lambda: None)
    reaper.stop(42, hard=True)
    assert sig.signals(42) == [KILL]


def test_escalated_reaper_turns_every_stop_into_a_kill():
    """With ``hard`` set (a second Ctrl-C), a soft stop is a SIGKILL."""
    reaper, _, sig = make()
    reaper.hard = True
    reaper.stop(42, ask=lambda: None)
    assert sig.signals(42) == [KILL]


def test_without_a_message_the_first_rung_is_sigterm():
    """A stop with no way to ask sends SIGTERM at once, SIGKILL after the term grace."""
    reaper, clock, sig = make()
    reaper.stop(42)
    assert sig.signals(42) == [TERM]
    clock.advance(3.0)
    reaper.step()
    assert sig.signals(42) == [TERM, KILL]


def test_forget_ends_the_ladder():
    """A reaped target is forgotten: no more signals."""
    reaper, clock, sig = make()
    reaper.stop(42, ask=lambda: None)
    reaper.forget(42)
    clock.advance(100)
    reaper.step()
    assert sig.sent == [] and reaper.pending() == []


def test_drain_waits_for_the_ladder_then_kills_what_is_left():
    """drain steps the ladder while idling; at its deadline it SIGKILLs the survivors and names them."""
    reaper, clock, sig = make()
    sig.living.add(43)
    reaper.stop(42, ask=lambda: None)
    idles = []

    def idle(seconds: float) -> None:
        idles.append(seconds)
        clock.advance(1.0)

    left = reaper.drain([42, 43], clock() + 10.0, idle)
    assert sorted(left) == [42, 43]
    # TERM at +2, KILL at +5, KILL again at +10 (recheck), then the drain's final KILL
    assert sig.signals(42) == [TERM, KILL, KILL, KILL]
    assert sig.signals(43) == [KILL]  # not on the ladder: only the final kill
    assert len(idles) == 10


def test_drain_returns_as_soon_as_every_target_is_gone():
    """Targets that die on SIGTERM end the drain early; nothing is left to kill."""
    reaper, clock, sig = make()
    reaper.stop(42, ask=lambda: None)

    def idle(seconds: float) -> None:
        clock.advance(1.0)
        if TERM in sig.signals(42):
            sig.living.discard(42)

    assert reaper.drain([42], clock() + 60.0, idle) == []
    assert sig.signals(42) == [TERM]


def test_a_custom_liveness_probe_decides_when_a_target_is_gone():
    """A target with its own probe (a service: process or helpers) is judged by that probe."""
    reaper, clock, sig = make()
    alive = [True]
    reaper.stop(42, ask=lambda: None, alive=lambda: alive[0])
    alive[0] = False
    clock.advance(2.0)
    reaper.step()
    assert sig.sent == [] and reaper.pending() == []


def test_signal_group_refuses_pid_0_and_1():
    """Group 0 (our own) and 1 (init) are never signalled."""
    assert signal_group(0, 0) is False and signal_group(1, 0) is False
