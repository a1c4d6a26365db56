"""Requests that change state, retried under one request id until an answer comes.

An answer can be lost with the service that was to give it (the supervisor
or the memory service killed, restarted or resumed, a reconnecting bus).
The request is then sent again with the *same* request id: the service
keeps the first outcome under it and answers the retry with that outcome,
so a start_agent, a message or a memory add is carried out once however
often it is tried.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from swarm_core.errors import BusError

RETRY_PAUSE = 1.0  # seconds between a lost answer and the next try
TRIES = 3  # each try may use this share of the budget, so a lost answer leaves room for more


def new_request_id() -> str:
    """A request id no other request of this swarm has."""
    return os.urandom(8).hex()


def once(attempt: Callable[[float], Any], budget: float, pause: Callable[[float], None],
         stopping: Callable[[], bool] = lambda: False, clock: Callable[[], float] = time.monotonic) -> Any:
    """``attempt(timeout)`` until it answers; again after a lost answer, within ``budget`` seconds.

    A lost answer is a ``BusError`` (no reply before the try's deadline, the
    service unreachable or restarting, the connection lost); any other error
    is the answer and is raised. ``pause(seconds)`` waits between tries (a
    bus poll: heartbeats go on); no new try starts once ``stopping()``.
    """
    end = clock() + budget
    per_try = max(budget / TRIES, 1.0)
    while True:
        left = end - clock()
        try:
            return attempt(max(0.1, min(per_try, left)))
        except BusError:
            if clock() + RETRY_PAUSE >= end or stopping():
                raise
        pause(RETRY_PAUSE)
