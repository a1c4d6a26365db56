"""The bus client's book of waiting requests: deadlines expire callbacks, a lost connection fails all."""

from __future__ import annotations

from bus import messages as bm
from bus.pending import PendingRequests, unwrap
from bus.protocol import Kind
from swarm_core.errors import BusError, DeadlineExceeded


def _book_with(deadline: float) -> tuple[PendingRequests, list]:
    book = PendingRequests("client")
    got: list = []
    book.callbacks["r1"] = ("peer", got.append, deadline)
    return book, got


def test_a_callback_is_kept_until_its_deadline_passes() -> None:
    """Before its deadline a waiting callback is neither called nor forgotten."""
    book, got = _book_with(deadline=100.0)
    assert book.expire(now=99.9) == 0
    assert got == [] and "r1" in book.callbacks


def test_an_expired_callback_gets_one_deadline_error_and_is_forgotten() -> None:
    """Past its deadline the callback gets a deadline_exceeded error reply to its request, once."""
    book, got = _book_with(deadline=100.0)
    assert book.expire(now=100.5) == 1
    assert book.expire(now=200.0) == 0
    assert len(got) == 1 and book.callbacks == {}
    reply = got[0]
    assert reply.header.kind is Kind.ERROR and reply.header.corr_id == "r1"
    assert reply.header.dst == "client" and reply.body.code == DeadlineExceeded.code


def test_blocking_requests_are_not_expired_by_the_sweep() -> None:
    """A blocking request's entry (no callback) is left to its own waiting loop."""
    book = PendingRequests("client")
    book.callbacks["r2"] = ("peer", None, 0.0)
    assert book.expire(now=1e12) == 0
    assert book.callbacks == {"r2": ("peer", None, 0.0)}


def test_a_request_sent_by_an_expiring_callback_is_kept() -> None:
    """A callback that sends a new request while expiring leaves that request waiting."""
    book = PendingRequests("client")
    renew = ("peer", print, 300.0)
    book.callbacks["old"] = ("peer", lambda msg: book.callbacks.__setitem__("new", renew), 100.0)
    book.expire(now=150.0)
    assert list(book.callbacks) == ["new"]


def test_fail_all_answers_callbacks_and_parks_errors_for_blocking_requests() -> None:
    """A lost connection calls every callback with bus_error and parks one for each blocking request."""
    book, got = _book_with(deadline=100.0)
    book.callbacks["r2"] = ("peer", None, 0.0)
    book.fail_all("connection lost", "broker")
    assert [r.body.code for r in got] == ["bus_error"] and "r1" not in book.callbacks
    assert book.replies["r2"].body == bm.ErrorReply("bus_error", "connection lost", {})
    try:
        unwrap(book.replies["r2"])
    except BusError as err:
        assert err.message == "connection lost"
    else:
        raise AssertionError("unwrap of an error reply did not raise")
