"""The bus flood gate: token bucket per peer, refusals that drain over time, peers forgotten."""

from __future__ import annotations

import pytest

from orchestrator.supervisor.floodgate import FloodGate

pytestmark = pytest.mark.timeout(10)


def test_within_the_rate_nothing_is_refused():
    """A peer sending at its rate (after the burst) is never refused."""
    gate = FloodGate(rate=10)
    assert all(gate.check("a", t / 10) is None for t in range(200))


def test_a_sustained_flood_becomes_an_offender_once():
    """A peer pushing far past its rate is refused, then reported as an offender exactly once."""
    gate = FloodGate(rate=5)
    refused = [gate.check("a", 1.0) for _ in range(30)]
    assert refused[:10] == [None] * 10 and all(r and "flooding" in r for r in refused[10:])
    assert gate.offenders() == ["a"] and gate.offenders() == []


def test_refusals_drain_so_rare_bursts_never_make_an_offender():
    """Bursts now and then (refused a few times each) are forgiven over time: no offender in an hour."""
    gate = FloodGate(rate=5)  # stop_after 10 refusals, drained in 10 s
    now = 0.0
    for _ in range(360):
        for _ in range(15):  # 10 pass (the burst), 5 refused
            gate.check("a", now)
        now += 10.0
    assert gate.offenders() == []
    assert gate.refused("a", now) < 10


def test_without_draining_the_same_bursts_would_stop_the_peer():
    """The same bursts packed into a short time pile up past stop_after: the drain is what forgives them."""
    gate = FloodGate(rate=5)
    now = 0.0
    for _ in range(6):
        for _ in range(15):
            gate.check("a", now)
        now += 2.0  # refills the bucket, drains only 2 refusals
    assert gate.offenders() == ["a"]


def test_forget_drops_every_table_of_a_peer():
    """A peer that left is forgotten entirely; the tables hold only peers still there."""
    gate = FloodGate(rate=5)
    for peer in ("a", "b"):
        for _ in range(30):
            gate.check(peer, 0.0)
    gate.forget("a")
    assert gate.peers() == 1 and gate.refused("a", 0.0) == 0.0
    assert gate.offenders() == ["b"]
    assert gate.check("a", 0.0) is None  # a fresh bucket
