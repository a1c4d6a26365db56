"""The requests a bus client is waiting on: who gets each reply, and until when.

Bookkeeping only, no sockets, the clock reading passed in, so the expiry rule
is testable without real time. The client's receive path reads ``callbacks``
and ``replies`` directly (they are on its hot path); the rest goes through
the methods.

* ``callbacks[msg_id]`` is ``(peer, callback, deadline)``: ``peer`` is the
  request's destination, the only sender (besides the broker, which
  answers for peers it cannot reach) whose reply is taken: the broker
  authenticates every sender, so another peer's forged "reply" is dropped.
  ``callback`` is ``None`` for a blocking ``request`` (the reply is parked
  in ``replies`` for the waiting loop, which removes both entries) or the
  function ``send_request`` was given (``deadline``: the absolute
  wall-clock deadline the request carries).
* :meth:`expire` answers a callback whose deadline has passed, once, with a
  ``deadline_exceeded`` error reply and forgets it: a reply that comes later
  finds no entry and is dropped as stale, so the table never grows with
  requests nobody answers.
* :meth:`fail_all` answers every waiting request with a ``bus_error`` (the
  connection was lost: no reply can come).
"""

from __future__ import annotations

from typing import Any, Callable

from bus import messages as m
from bus.protocol import Header, Kind, Message, new_id
from swarm_core.errors import DeadlineExceeded, SwarmError, from_wire

Callback = Callable[[Message], None]
Waiting = tuple[str, "Callback | None", float]  # (peer asked, callback or None when blocking, deadline)


class PendingRequests:
    """Requests sent and not yet answered, by message id."""

    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.callbacks: dict[str, Waiting] = {}
        self.replies: dict[str, Message] = {}

    def expire(self, now: float) -> int:
        """Answer every callback whose deadline is before ``now`` (wall clock) with deadline_exceeded.

        Returns how many expired. A callback may send new requests: they are
        kept (and judged at the next call).
        """
        expired = [(msg_id, entry) for msg_id, entry in self.callbacks.items()
                   if entry[1] is not None and entry[2] < now]
        for msg_id, (_peer, callback, _deadline) in expired:
            del self.callbacks[msg_id]
            fail = self.error(msg_id, DeadlineExceeded.code, "no reply before the request's deadline",
                              self.identity)
            callback(fail)  # type: ignore[misc]  # selected above: not None
        return len(expired)

    def fail_all(self, why: str, src: str) -> None:
        """Answer every waiting request with a bus_error saying ``why`` (from ``src``)."""
        for msg_id, (_peer, callback, _deadline) in list(self.callbacks.items()):
            fail = self.error(msg_id, "bus_error", why, src)
            if callback is None:
                self.replies[msg_id] = fail
            else:
                del self.callbacks[msg_id]
                callback(fail)

    def error(self, msg_id: str, code: str, why: str, src: str) -> Message:
        """An error reply to request ``msg_id``, as if ``src`` had sent it to us."""
        return Message(Header(Kind.ERROR, m.ErrorReply.TYPE, new_id(), msg_id, src, self.identity, 0.0),
                       m.ErrorReply(code, why, {}))


def unwrap(msg: Message) -> Any:
    """The body of a reply, or raise the SwarmError an error reply carries."""
    if msg.header.kind is Kind.ERROR:
        body = msg.body
        if isinstance(body, m.ErrorReply):
            raise from_wire(body.code, body.message, body.details)
        raise SwarmError(f"error reply of unexpected type {msg.header.type}")
    return msg.body
