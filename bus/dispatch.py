"""A client's handlers by message type, and how their outcome is answered.

For a REQUEST the handler's return value is the reply body (None → ``Ok``);
a raised SwarmError becomes an error reply carrying its code; any other
exception is logged with its traceback (a handler boundary) and answered
with ``internal_error``; returning ``DEFERRED`` means the handler answers
later itself. A request whose deadline has passed is not handled at all
(its caller gave up). A message of a type nobody handles is answered with
an error when it is a request, else dropped. The handler runs inside the
sender's span (the header's ``traceparent`` is the thread's current trace
context meanwhile), so what it records or sends descends from it.

``authorize(msg) -> None | reason`` (set by the process's owner: the bus
does not know who may send what) runs before the handler: a reason means
the handler never runs, a ``policy_denied`` reply carries the reason to a
request, and ``authorization_denied`` is logged with the peer and the rule.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from bus import messages as m
from bus.protocol import Kind, Message
from swarm_core.errors import InternalError, PolicyDenied, SwarmError
from swarm_core.tracing import CURRENT

DEFERRED = object()

Handler = Callable[[Message], Any]


class Dispatcher:
    """Runs the handler registered for each incoming message's type."""

    def __init__(self, identity: str, reply: Callable[[Message, Any], None],
                 reply_error: Callable[[Message, SwarmError], None], log: Any = None) -> None:
        self.identity = identity
        self.handlers: dict[str, Handler] = {}
        self.authorize: Callable[[Message], "str | None"] | None = None
        self._reply = reply
        self._reply_error = reply_error
        self._log = log

    def dispatch(self, msg: Message) -> None:
        """Handle one request or event (the loop thread)."""
        is_request = msg.header.kind is Kind.REQUEST
        if is_request and msg.header.deadline and msg.header.deadline < time.time():
            return  # the caller gave up already; do not work for nobody
        handler = self.handlers.get(msg.header.type)
        if handler is None:
            if is_request:
                self._reply_error(msg, SwarmError(
                    f"{self.identity} does not handle {msg.header.type}", type=msg.header.type))
            return
        if self.authorize is not None and self._refused(msg, is_request):
            return
        trace = CURRENT.set(msg.header.traceparent)
        try:
            result = handler(msg)
        except SwarmError as err:
            if is_request:
                self._reply_error(msg, err)
            return
        except Exception as exc:  # handler boundary: log with traceback, answer, go on
            if self._log is not None:
                self._log.exception("handler_failed", type=msg.header.type)
            if is_request:
                self._reply_error(msg, InternalError(f"{type(exc).__name__}: {exc}"))
            return
        finally:
            CURRENT.reset(trace)
        if is_request and result is not DEFERRED:
            self._reply(msg, result if result is not None else m.Ok())

    def _refused(self, msg: Message, is_request: bool) -> bool:
        reason = self.authorize(msg)  # type: ignore[misc]  # checked by the caller
        if reason is None:
            return False
        if self._log is not None:
            self._log.warning("authorization_denied", peer=msg.header.src, type=msg.header.type, rule=reason)
        if is_request:
            self._reply_error(msg, PolicyDenied(reason, type=msg.header.type))
        return True
