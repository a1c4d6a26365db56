"""Warnings about bad input and refusals, logged at most once a second per event.

A peer that floods the broker with junk must not flood its log too: the
first warning of an event is logged, the next ones within a second are only
counted, and the next warning logged says how many were suppressed.
"""

from __future__ import annotations

import time
from typing import Any, Callable


class RateLimitedWarnings:
    """``warn(event, **fields)``: a logger's warning, rate limited per event name."""

    def __init__(self, log: Any, clock: Callable[[], float] = time.monotonic, every: float = 1.0) -> None:
        self._log = log
        self._clock = clock
        self._every = every
        self._seen: dict[str, list[float]] = {}  # event -> [last logged at, suppressed count]

    def __call__(self, event: str, **fields: Any) -> None:
        now = self._clock()
        state = self._seen.get(event)
        if state is not None and now - state[0] < self._every:
            state[1] += 1
            return
        suppressed = int(state[1]) if state is not None else 0
        self._seen[event] = [now, 0]
        self._log.warning(event, suppressed=suppressed, **fields)
