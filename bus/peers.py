"""Who is on the bus, under which authenticated name, and when each was last heard from.

Pure bookkeeping with the clock reading passed in, so the liveness rules are
testable without sockets or real time. A *connection* is keyed by its
ROUTER routing id (bytes: random, chosen by the client per socket, never a
name), and is bound at its first admitted message to a :class:`Binding`:
the ZAP key id it authenticated with, the peer id it speaks as, the kind
of its credential. A *name* routes to the latest connection bound to it
(``route``): a client that reconnects takes its name along, and a peer
can never be reached through a routing id somebody else picked.

* A connection is *live* from its first admitted message until it says Bye
  (``leave``) or stays silent for longer than ``interval * liveness``
  (``expire``), when it is declared *dead*.
* Dead connections are remembered (bounded, oldest forgotten first) for
  the record; a dead connection that speaks again simply joins again.

The broker reads ``binds``, ``route``, ``last_seen`` directly on its hot
path; everything else goes through the methods.
"""

from __future__ import annotations

import collections
from typing import NamedTuple


class Binding(NamedTuple):
    """What one connection was admitted as."""

    key_id: str  # its credential (the ZAP User-Id)
    name: str  # the peer id it speaks as
    kind: str  # its credential's kind (a PeerKind value)


class PeerTable:
    """Live connections, the name each speaks as, last-seen times, and the recently dead."""

    def __init__(self, interval: float, liveness: int, *, dead_memory: int = 4096) -> None:
        if interval <= 0 or liveness < 1:
            raise ValueError("heartbeat interval must be > 0 and liveness >= 1")
        self.limit = interval * liveness
        self.binds: dict[bytes, Binding] = {}
        self.route: dict[str, bytes] = {}
        self.last_seen: dict[bytes, float] = {}
        self.dead: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self._dead_memory = dead_memory

    def join(self, ident: bytes, binding: Binding, now: float) -> bool:
        """Bind a connection (new, or back from the dead); True when its name was not on the bus."""
        new = binding.name not in self.route
        self.binds[ident] = binding
        self.route[binding.name] = ident
        self.last_seen[ident] = now
        self.dead.pop(ident, None)
        return new

    def leave(self, ident: bytes) -> tuple[str | None, bool]:
        """Forget a connection; returns its name and whether that name has left the bus."""
        self.last_seen.pop(ident, None)
        binding = self.binds.pop(ident, None)
        if binding is None:
            return None, False
        name = binding.name
        if self.route.get(name) == ident:
            others = [i for i, b in self.binds.items() if b.name == name]
            if others:
                self.route[name] = max(others, key=lambda i: self.last_seen.get(i, 0.0))
            else:
                del self.route[name]
        return name, name not in self.route

    def expire(self, now: float) -> list[tuple[bytes, str, float, bool]]:
        """Declare dead every connection silent for longer than the limit.

        Returns ``(routing id, name, seconds silent, name gone)`` for each,
        forgotten from the live set and remembered as dead.
        """
        gone = []
        for ident, seen in list(self.last_seen.items()):
            if now - seen > self.limit:
                name, left = self.leave(ident)
                self.dead[ident] = None
                gone.append((ident, name or ident.decode("utf-8", "backslashreplace"), now - seen, left))
        while len(self.dead) > self._dead_memory:
            self.dead.popitem(last=False)
        return gone

    def live(self) -> list[tuple[bytes, str]]:
        """``(routing id, name)`` of every live connection (a snapshot)."""
        return [(ident, b.name) for ident, b in dict(self.binds).items()]

    def ids(self) -> list[str]:
        """The names on the bus (a snapshot; safe to call from another thread)."""
        return list(dict(self.route))

    def is_dead(self, ident: bytes) -> bool:
        """Whether connection ``ident`` was declared dead and has not spoken since."""
        return ident in self.dead
