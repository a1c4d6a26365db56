"""Restart intensity (Erlang style): at most ``max_restarts`` restarts within ``period`` seconds.

One class for both agents (a role's ``on-crash`` policy) and the service
processes; pure: the caller passes the time.
"""

from __future__ import annotations

import math
from collections import deque


class RestartIntensity:
    """A sliding window of recent restarts of one thing."""

    def __init__(self, max_restarts: int, period: float = math.inf) -> None:
        self.max_restarts = max_restarts
        self.period = period
        self._recent: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """Whether one more restart fits the window at ``now``; a restart allowed is recorded."""
        while self._recent and now - self._recent[0] >= self.period:
            self._recent.popleft()
        if len(self._recent) >= self.max_restarts:
            return False
        self._recent.append(now)
        return True

    @property
    def recent(self) -> int:
        """Restarts recorded in the current window (as of the last :meth:`allow`)."""
        return len(self._recent)
