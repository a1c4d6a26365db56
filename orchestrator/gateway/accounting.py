"""The gateway's accounts: budgets with reservations (``spend.py``) kept in the ledger (``ledger.py``).

The service calls, in a call's life: :meth:`Accounting.worst` (its worst
case, from the provider's bound and the dearest price), :meth:`check`
before admission, :meth:`admitted` (reserve; in the ledger before the
provider runs when a budget or a rate bounds the call), then :meth:`settled`
(usage replaces the reservation; in the ledger before the reply) or
:meth:`failed` (the reservation is given back).

An ordinary call (no budget over it, no rate) is written once, when it
ends: its reservation binds nobody, and if the gateway dies while it runs
the agent asks again anyway (the supervisor tells it the gateway restarted),
so nothing was counted twice. That keeps one commit, not two, on the path of
every call.

Call ids make a call count once: a call finished before is answered again
from the ledger (:meth:`repeat`), and a call that was running when a
previous gateway died keeps its reservation for the agent's retry
(:meth:`adopt`); :meth:`recover` loads all this at start and returns the
calls to answer ``call_interrupted``. Reservations nobody came back for are
given back after :data:`ORPHAN_SECONDS`; answers are kept :data:`KEEP_ANSWERS`.
"""

from __future__ import annotations

from typing import Any, Callable

from orchestrator.config import LLM, Quotas
from orchestrator.gateway.ledger import Answer, InFlight, NullLedger
from orchestrator.gateway.providers.base import Request, usage_bound
from orchestrator.gateway.quotas import QuotaBook
from orchestrator.gateway.spend import Account, Cost, Exhausted, FlatTree, SpendBook, Tree, dearest, worst_case

ORPHAN_SECONDS = 120.0  # a crashed gateway's running call not retried by then is given back
KEEP_ANSWERS = 600.0  # seconds a finished call's answer is kept for a retry of the same call id
PRUNE_EVERY = 60.0


class Accounting:
    """Spend, reservations and the ledger behind them, for one gateway."""

    def __init__(self, quotas: Quotas, llm: LLM, provider: Any, *, tree: Tree | None = None,
                 ledger: NullLedger | None = None, wall: Callable[[], float]) -> None:
        self.spend = SpendBook(quotas, tree or FlatTree())
        self.ledger = ledger or NullLedger()
        self._provider = provider
        self._price = dearest(llm.prices)
        self._wall = wall
        self._done: dict[str, float] = {}  # call id -> when it finished (its answer is in the ledger)
        self._orphans: dict[str, float] = {}  # call id of a previous gateway's running call -> when found
        self._next_prune = 0.0

    def worst(self, req: Request) -> Cost:
        """The most ``req`` may cost (the provider's bound; SwarmError if the request is malformed)."""
        prompt, completion = usage_bound(self._provider, req)
        return worst_case(prompt, completion, self._price)

    def check(self, agent: str, worst: Cost) -> Exhausted | None:
        return self.spend.check(agent, worst)

    def forget(self, agent: str) -> None:
        """Read ``agent``'s budget again at its next check (the supervisor changed it)."""
        self.spend.tree.forget([agent])

    def totals(self, agent: str) -> Account:
        return self.spend.own_account(agent)

    # ------------------------------------------------------------ a call's life

    def admitted(self, call_id: str, agent: str, msg_id: str, worst: Cost, rates: dict[str, Any]) -> None:
        """Reserve ``worst`` for a call about to run (in the ledger before the provider is called, when a
        budget or a rate bounds the call)."""
        self.spend.reserve(call_id, agent, worst)
        if rates or self.spend.bounded(agent):
            self.ledger.reserve(call_id, agent, msg_id, worst, rates)

    def settled(self, call_id: str, answer: Answer, rates: dict[str, Any]) -> Account:
        """The call ended with ``answer``'s usage; the agent's own account (in the ledger when this returns)."""
        own = self.spend.settle(call_id, answer.agent,
                                Cost(answer.prompt_tokens + answer.completion_tokens, answer.cost_usd))
        self.ledger.settle(call_id, answer, (own.tokens, own.requests, own.usd), rates)
        self._orphans.pop(call_id, None)
        self._done[call_id] = self._wall()
        return own

    def failed(self, call_id: str) -> None:
        """The call failed: give its reservation back."""
        self.spend.release(call_id)
        self.ledger.release(call_id)
        self._orphans.pop(call_id, None)

    # ------------------------------------------------------------ retries and restarts

    def repeat(self, call_id: str, agent: str) -> Answer | None:
        """The recorded answer when ``agent`` asks again for a call that already finished."""
        if call_id not in self._done:
            return None
        answer = self.ledger.answer(call_id)
        return answer if answer is not None and answer.agent == agent else None

    def adopt(self, call_id: str, agent: str) -> bool:
        """Whether this call's reservation was left by a previous gateway (it runs on it, unchecked)."""
        res = self.spend.reservations.get(call_id)
        if call_id in self._orphans and res is not None and res.agent == agent:
            del self._orphans[call_id]
            return True
        return False

    def recover(self, rates: QuotaBook, now: float) -> dict[str, InFlight]:
        """Load the ledger into the accounts and ``rates``; the calls that were running (to answer)."""
        state = self.ledger.load()
        self.spend.restore(state.spent, {cid: (f.agent, f.cost) for cid, f in state.in_flight.items()})
        rates.restore(state.rates, now)
        self._done = dict(state.done)
        found = self._wall()
        self._orphans = {cid: found for cid in state.in_flight}
        return state.in_flight

    def tick(self) -> list[str]:
        """Forget old answers, give back reservations nobody retried; the calls given back."""
        wall = self._wall()
        if wall < self._next_prune and not self._orphans:
            return []
        stale = [cid for cid, at in self._orphans.items() if wall - at > ORPHAN_SECONDS]
        for cid in stale:
            self.failed(cid)
        if wall >= self._next_prune:
            self._next_prune = wall + PRUNE_EVERY
            cutoff = wall - KEEP_ANSWERS
            self._done = {cid: at for cid, at in self._done.items() if at >= cutoff}
            self.ledger.prune(cutoff)
        return stale
