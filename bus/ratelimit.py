"""Warnings about bad input and refusals, logged at most once a second per event and key.

A peer that floods the broker with junk must not flood its log too: the
first warning of an event is logged, the next ones within a second are only
counted, and the next warning logged says how many were suppressed. A
``key`` (say, the peer and the rule of a refusal) gives each distinct case
its own allowance, so every different refused attempt still leaves a line
while a repeated one is counted; the most recent ``keys`` cases are
remembered (a stream of ever-new keys cannot grow the table).
"""

from __future__ import annotations

import collections
import time
from typing import Any, Callable


class RateLimitedWarnings:
    """``warn(event, key="", **fields)``: a logger's warning, rate limited per (event, key)."""

    def __init__(self, log: Any, clock: Callable[[], float] = time.monotonic, every: float = 1.0,
                 keys: int = 1024) -> None:
        self._log = log
        self._clock = clock
        self._every = every
        self._keys = keys
        # (event, key) -> [last logged at, suppressed count], oldest first
        self._seen: collections.OrderedDict[tuple[str, str], list[float]] = collections.OrderedDict()

    def __call__(self, event: str, key: str = "", **fields: Any) -> None:
        now = self._clock()
        state = self._seen.get((event, key))
        if state is not None and now - state[0] < self._every:
            state[1] += 1
            return
        suppressed = int(state[1]) if state is not None else 0
        self._seen[(event, key)] = [now, 0]
        self._seen.move_to_end((event, key))
        while len(self._seen) > self._keys:
            self._seen.popitem(last=False)
        self._log.warning(event, suppressed=suppressed, **fields)
