"""Who is on the bus, and when each peer was last heard from (the broker's liveness books).

Pure bookkeeping with the clock reading passed in, so the liveness rules are
testable without sockets or real time. Keys are ROUTER identities (bytes),
values peer ids (str).

* A peer is *live* from its first valid message until it says Bye
  (``leave``) or stays silent for longer than ``interval * liveness``
  (``expire``), when it is declared *dead*.
* Dead identities are remembered (bounded, oldest forgotten first) so that
  messages for them are refused instead of queued for a peer that hangs; a
  dead peer that speaks again simply joins again.

The broker reads ``names``, ``last_seen`` and ``dead`` directly on its hot
path; everything else goes through the methods.
"""

from __future__ import annotations

import collections


class PeerTable:
    """Live peers, their last-seen times, and the recently dead."""

    def __init__(self, interval: float, liveness: int, *, dead_memory: int = 4096) -> None:
        if interval <= 0 or liveness < 1:
            raise ValueError("heartbeat interval must be > 0 and liveness >= 1")
        self.limit = interval * liveness
        self.names: dict[bytes, str] = {}
        self.last_seen: dict[bytes, float] = {}
        self.dead: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self._dead_memory = dead_memory

    def join(self, ident: bytes, name: str, now: float) -> None:
        """Record a new live peer (or one coming back from the dead)."""
        self.names[ident] = name
        self.last_seen[ident] = now
        self.dead.pop(ident, None)

    def leave(self, ident: bytes) -> str | None:
        """Forget a peer that said goodbye; returns its id (None if unknown)."""
        self.last_seen.pop(ident, None)
        return self.names.pop(ident, None)

    def expire(self, now: float) -> list[tuple[bytes, str, float]]:
        """Declare dead every peer silent for longer than the limit.

        Returns ``(identity, peer id, seconds silent)`` for each, forgotten
        from the live set and remembered as dead.
        """
        gone = []
        for ident, seen in list(self.last_seen.items()):
            if now - seen > self.limit:
                name = self.leave(ident) or ident.decode("utf-8", "backslashreplace")
                self.dead[ident] = None
                gone.append((ident, name, now - seen))
        while len(self.dead) > self._dead_memory:
            self.dead.popitem(last=False)
        return gone

    def live(self) -> list[tuple[bytes, str]]:
        """``(identity, peer id)`` of every live peer (a snapshot)."""
        return list(dict(self.names).items())

    def ids(self) -> list[str]:
        """The live peer ids (a snapshot; safe to call from another thread)."""
        return list(dict(self.names).values())

    def is_dead(self, ident: bytes) -> bool:
        """Whether ``ident`` was declared dead and has not spoken since."""
        return ident in self.dead
