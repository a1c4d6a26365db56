"""Unit tests of the broker's liveness books (PeerTable), with the clock passed in."""

from __future__ import annotations

import pytest

from bus.peers import Binding, PeerTable


def _as(name: str, key: str = "") -> Binding:
    return Binding(key or f"{name}.key", name, "agent")


def test_alive_through_the_window_dead_just_after() -> None:
    """A peer silent for exactly interval*liveness is alive; a moment longer, it is dead."""
    t = PeerTable(1.0, 3)
    t.join(b"a", _as("a"), 100.0)
    assert t.expire(103.0) == []
    assert t.ids() == ["a"]
    gone = t.expire(103.001)
    assert [(i, n, left) for i, n, _, left in gone] == [(b"a", "a", True)]
    assert gone[0][2] == pytest.approx(3.001)
    assert t.ids() == [] and t.is_dead(b"a") and t.route == {}


def test_any_message_keeps_a_peer_alive() -> None:
    """Updating last_seen (what the broker does for every message) restarts the silence."""
    t = PeerTable(0.5, 2)
    t.join(b"a", _as("a"), 0.0)
    t.last_seen[b"a"] = 0.9
    assert t.expire(1.8) == []
    assert [n for _, n, _, _ in t.expire(1.95)] == ["a"]


def test_a_dead_peer_that_speaks_joins_again() -> None:
    """Joining clears the dead mark; the join says whether the name is new on the bus."""
    t = PeerTable(1.0, 1)
    assert t.join(b"a", _as("a"), 0.0)
    t.expire(5.0)
    assert t.join(b"a", _as("a"), 6.0)
    assert not t.is_dead(b"a") and t.ids() == ["a"]


def test_leave_forgets_without_a_dead_mark() -> None:
    """Bye forgets the connection at once and does not mark it dead."""
    t = PeerTable(1.0, 3)
    t.join(b"a", _as("a"), 0.0)
    assert t.leave(b"a") == ("a", True)
    assert t.leave(b"a") == (None, False)
    assert t.ids() == [] and not t.is_dead(b"a") and t.expire(100.0) == []


def test_a_name_routes_to_its_latest_connection_and_falls_back() -> None:
    """A reconnect takes the name over; when it leaves, the name routes to the older live connection."""
    t = PeerTable(1.0, 3)
    t.join(b"old", _as("a"), 0.0)
    assert not t.join(b"new", _as("a"), 1.0)  # the name was already on the bus
    assert t.route == {"a": b"new"}
    assert t.leave(b"new") == ("a", False) and t.route == {"a": b"old"}
    assert t.leave(b"old") == ("a", True) and t.route == {}


def test_dead_memory_is_bounded() -> None:
    """Only the most recent dead identities are remembered."""
    t = PeerTable(1.0, 1, dead_memory=3)
    for i in range(5):
        t.join(str(i).encode(), _as(str(i)), float(i))
        t.expire(i + 10.0)
    assert list(t.dead) == [b"2", b"3", b"4"]


def test_live_lists_every_peer_for_heartbeats() -> None:
    """live() gives (routing id, name) of every live connection."""
    t = PeerTable(1.0, 3)
    t.join(b"a", _as("a"), 0.0)
    t.join(b"b", _as("b"), 0.0)
    assert sorted(t.live()) == [(b"a", "a"), (b"b", "b")]


def test_invalid_settings_are_refused() -> None:
    """A non-positive interval or a liveness below 1 is a ValueError naming both."""
    with pytest.raises(ValueError, match="liveness"):
        PeerTable(0.0, 3)
    with pytest.raises(ValueError, match="liveness"):
        PeerTable(1.0, 0)
