"""The broker's identity check, beyond its fast path: admit a connection under a name, or refuse it.

The broker's loop compares every message's ``User-Id`` (the credential the
connection authenticated with), the live credentials and the header's
``src`` with what the connection was admitted as; only a first message, or
one that differs, comes here. :meth:`Admission.admit`:

* refuses a connection whose credential is no longer live (revoked), a
  routing id bound to another credential, a second name on one
  connection, or a name the credential may not use
  (:func:`swarm_core.peers.may_use`): counted in ``refused``, logged (rate
  limited) as ``identity_refused`` with the claimed and the authenticated
  identity and the rule, a request answered ``policy_denied`` on the
  sender's own connection;
* else binds the connection (``Liveness.join``: the name now routes to it).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from bus.keyring import Principal
from bus.peers import Binding
from bus.protocol import Kind
from swarm_core.errors import PolicyDenied, SwarmError
from swarm_core.peers import may_use

_REQUEST = int(Kind.REQUEST)


class Admission:
    """Binds connections to the names their credentials allow (the broker's loop thread only)."""

    def __init__(self, principals: Mapping[str, Principal], warn: Callable[..., None]) -> None:
        self._principals = principals
        self._warn = warn
        self._live: Any = None
        self._reply_error: Callable[[bytes, str, str, SwarmError], None] | None = None
        self.refused = 0

    def bind(self, live: Any, reply_error: Callable[[bytes, str, str, SwarmError], None]) -> None:
        """The broker's liveness books and error replies (made when its sockets are)."""
        self._live = live
        self._reply_error = reply_error

    def admit(self, ident: bytes, uid: str | None, bound: Binding | None, info: tuple,
              now: float) -> Binding | None:
        """The binding of connection ``ident`` for this message, or None (refused and answered)."""
        kind, type_name, msg_id, _corr, src, _dst, _deadline, _trace = info
        principal = self._principals.get(uid) if uid else None
        reason = self._problem(principal, uid, bound, src)
        if reason is not None:
            self.refused += 1
            who = principal.peer if principal else None
            self._warn("identity_refused", key=f"{uid}|{src}|{type_name}|{reason}", claimed=src,
                       authenticated=who, key_id=uid, type=type_name, rule=reason)
            if kind == _REQUEST and self._reply_error is not None:
                err = PolicyDenied(f"identity refused: {reason}", claimed=src)
                self._reply_error(ident, src, msg_id, err)
            return None
        binding = Binding(uid, src, principal.kind)  # type: ignore[arg-type, union-attr]  # both set: no reason
        self._live.join(ident, binding, now)
        return binding

    @staticmethod
    def _problem(principal: Principal | None, uid: str | None, bound: Binding | None, src: str) -> str | None:
        if principal is None:
            return "no live credential (never issued, or revoked)"
        if bound is not None and bound.key_id != uid:
            return "the routing id is bound to another credential"
        if bound is not None and bound.name != src:
            return f"this connection speaks as {bound.name!r}"
        return may_use(principal.kind, principal.peer, src)
