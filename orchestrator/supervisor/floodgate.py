"""Bus flood control (pure, used by the broker's policy gate).

Each agent has a token bucket of ``rate`` messages per second (burst
``2 × rate``). A message beyond it is refused ("throttled"); an agent that
keeps pushing — more refused messages than ``rate × stop_after_seconds`` —
becomes an offender, which the supervisor stops with reason ``flood``.
"""

from __future__ import annotations

import threading


class FloodGate:
    """Per-peer message-rate limit with escalation from throttling to stopping."""

    def __init__(self, rate: float, burst_seconds: float = 2.0, stop_after_seconds: float = 2.0) -> None:
        self.rate = float(rate)
        self.capacity = self.rate * burst_seconds
        self.stop_after = max(1.0, self.rate * stop_after_seconds)
        self._tokens: dict[str, tuple[float, float]] = {}  # peer -> (tokens, last refill time)
        self._refused: dict[str, float] = {}
        self._offenders: set[str] = set()
        self._lock = threading.Lock()

    def check(self, peer: str, now: float) -> str | None:
        """None to let the message through, or the reason it is refused."""
        tokens, last = self._tokens.get(peer, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._tokens[peer] = (tokens - 1.0, now)
            return None
        self._tokens[peer] = (tokens, now)
        refused = self._refused.get(peer, 0.0) + 1.0
        self._refused[peer] = refused
        if refused >= self.stop_after:
            with self._lock:
                self._offenders.add(peer)
        return f"flooding: more than {self.rate:g} messages/s from {peer}; throttled"

    def offenders(self) -> list[str]:
        """Peers that kept flooding after being throttled (each returned once)."""
        with self._lock:
            out, self._offenders = sorted(self._offenders), set()
        return out

    def forget(self, peer: str) -> None:
        self._tokens.pop(peer, None)
        self._refused.pop(peer, None)
