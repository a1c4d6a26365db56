"""Bus flood control (pure, used by the broker's policy gate).

Each peer has a token bucket of ``rate`` messages per second (burst
``burst_seconds × rate``). A message beyond it is refused ("throttled").
Refusals are counted in a leaky counter that drains ``stop_after`` refusals
every ``forget_seconds``: a peer that keeps pushing past its rate piles up
more than ``stop_after`` (= ``rate × stop_after_seconds``) and becomes an
offender, which the supervisor stops (reason ``flood``); a burst now and
then drains away. :meth:`FloodGate.forget` drops a peer that left, so the
tables hold live peers only.

``check`` runs on the broker thread; ``offenders`` and ``forget`` on the
supervisor's loop: one lock guards the tables (uncontended, it costs little).
"""

from __future__ import annotations

import threading


class FloodGate:
    """Per-peer message-rate limit with escalation from throttling to stopping."""

    def __init__(self, rate: float, burst_seconds: float = 2.0, stop_after_seconds: float = 2.0,
                 forget_seconds: float = 10.0) -> None:
        self.rate = float(rate)
        self.capacity = self.rate * burst_seconds
        self.stop_after = max(1.0, self.rate * stop_after_seconds)
        self.drain_rate = self.stop_after / forget_seconds  # refusals forgiven per second
        self._tokens: dict[str, tuple[float, float]] = {}  # peer -> (tokens, last refill time)
        self._refused: dict[str, tuple[float, float]] = {}  # peer -> (count, last refusal time)
        self._offenders: set[str] = set()
        self._lock = threading.Lock()

    def check(self, peer: str, now: float) -> str | None:
        """None to let the message through, or the reason it is refused."""
        with self._lock:
            tokens, last = self._tokens.get(peer, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._tokens[peer] = (tokens - 1.0, now)
                return None
            self._tokens[peer] = (tokens, now)
            count, since = self._refused.get(peer, (0.0, now))
            count = max(0.0, count - (now - since) * self.drain_rate) + 1.0
            self._refused[peer] = (count, now)
            if count >= self.stop_after:
                self._offenders.add(peer)
        return f"flooding: more than {self.rate:g} messages/s from {peer}; throttled"

    def refused(self, peer: str, now: float) -> float:
        """The peer's refusal count as of ``now`` (after the drain)."""
        with self._lock:
            count, since = self._refused.get(peer, (0.0, now))
        return max(0.0, count - (now - since) * self.drain_rate)

    def offenders(self) -> list[str]:
        """Peers that kept flooding after being throttled (each returned once)."""
        with self._lock:
            out, self._offenders = sorted(self._offenders), set()
        return out

    def forget(self, peer: str) -> None:
        """Drop everything known about ``peer`` (it left the bus or exited)."""
        with self._lock:
            self._tokens.pop(peer, None)
            self._refused.pop(peer, None)
            self._offenders.discard(peer)

    def peers(self) -> int:
        """How many peers the gate holds state for."""
        with self._lock:
            return len(self._tokens)
