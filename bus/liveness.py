"""The broker's liveness duties: joins, goodbyes, pings, heartbeats and expiry.

The books are a :class:`~bus.peers.PeerTable`; this module acts on them:
it logs and publishes a ``PeerEvent`` when a peer joins, says Bye or is
declared dead, heartbeats every live peer each tick (with this broker's
incarnation, so peers can tell a restarted broker), and answers the
messages addressed to the broker itself (heartbeats, Bye, Ping). Everything
it sends goes through the broker's :class:`~bus.outbox.Outbox`, so nothing
here blocks or raises on a gone peer.
"""

from __future__ import annotations

import os
from typing import Any

from bus import messages as m
from bus.outbox import Outbox
from bus.peers import Binding, PeerTable
from bus.protocol import Kind, decode_body
from swarm_core.errors import InvalidRequest, ProtocolError, SwarmError

_REQUEST = int(Kind.REQUEST)
_HEARTBEAT = int(Kind.HEARTBEAT)


class Liveness:
    """Who is on the bus, kept current by the broker's loop thread."""

    def __init__(self, table: PeerTable, out: Outbox, log: Any, max_bytes: int) -> None:
        self.table = table
        self._out = out
        self._log = log
        self._max_bytes = max_bytes
        self._heartbeat = m.Heartbeat(os.urandom(6).hex())  # this broker's incarnation

    def join(self, ident: bytes, binding: Binding, now: float) -> None:
        """A connection was admitted (its first message, or its first after being declared dead)."""
        if self.table.join(ident, binding, now):
            self._log.info("peer_joined", peer=binding.name, kind=binding.kind)
            self._out.publish(m.PeerEvent("joined", binding.name))

    def tick(self, now: float) -> None:
        """Expire silent connections and heartbeat the others."""
        for _ident, peer, silent, left in self.table.expire(now):
            self._log.warning("peer_dead", peer=peer, silent_s=round(silent, 3))
            if left:
                self._out.publish(m.PeerEvent("left", peer, "dead"))
        for ident, peer in self.table.live():
            self._out.send(ident, Kind.HEARTBEAT, self._heartbeat, peer, quiet=True)

    def for_broker(self, ident: bytes, kind: int, type_name: str, msg_id: str,
                   body: bytes) -> SwarmError | None:
        """Handle a message addressed to the broker; return the error to answer a request with."""
        if kind == _HEARTBEAT:
            return None
        src = self.table.binds[ident].name
        if type_name == m.Bye.TYPE:
            _name, left = self.table.leave(ident)
            self._log.info("peer_left", peer=src, reason="bye")
            if left:
                self._out.publish(m.PeerEvent("left", src, "bye"))
            return None
        if kind != _REQUEST:
            return None  # other events for the broker carry nothing it acts on
        if type_name != m.Ping.TYPE:
            return InvalidRequest(f"the broker does not handle {type_name}", type=type_name)
        try:
            ping = decode_body(m.Ping.TYPE, body, self._max_bytes)
        except ProtocolError as exc:
            return exc
        self._out.send(ident, Kind.REPLY, m.Pong(ping.payload), src, corr_id=msg_id)
        return None
