"""Budgets of the gateway: spend, reservations and whether a call's worst case fits, as pure policy.

Who holds a budget over a call of agent A (each checked, the first that
cannot cover the call is named):

* ``agent``: A's own spend, under ``quotas.agent`` (unless the operator set
  A's budget: then that budget replaces it);
* ``subtree``: every agent on A's line to the root (A included) that has a
  budget (its role's, a slice from ``start_agent``, or the operator's): its
  own spend plus all its descendants';
* ``swarm``: every agent's spend, under ``quotas.swarm`` (unless the operator
  set the root's budget; the root's subtree is the whole swarm).

A call is admitted only if ``spent + reserved + worst case`` stays within
every budget above it, and its worst case is reserved until it ends; then the
reservation gives way to what the provider reported (never more than the
worst case). So no budget is ever exceeded, not even by one call, however
many calls run at once. The tree (parents, budgets) comes from a
:class:`Tree` port; a budget that does not fit is read again before a call
is refused (it may have been raised).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Protocol

from orchestrator.config import Bucket, Price, Quotas


@dataclass(frozen=True, slots=True)
class Cost:
    """Tokens and dollars (what a call may cost, or did)."""

    tokens: int = 0
    usd: float = 0.0


def dearest(prices: Mapping[str, Price]) -> Price | None:
    """The highest prompt and completion prices of the table (a provider may answer with any model)."""
    if not prices:
        return None
    return Price(prompt=max(p.prompt for p in prices.values()),
                 completion=max(p.completion for p in prices.values()))


def worst_case(prompt_tokens: int, max_tokens: int, price: Price | None) -> Cost:
    """The most a call may cost: its prompt's bound plus every completion token it may get."""
    usd = 0.0 if price is None else (prompt_tokens * price.prompt + max_tokens * price.completion) / 1000.0
    return Cost(prompt_tokens + max_tokens, usd)


@dataclass(frozen=True, slots=True)
class Limit:
    """A budget: at most ``max_tokens`` and at most ``max_cost_usd`` (None: no bound)."""

    max_tokens: int | None = None
    max_cost_usd: float | None = None

    @classmethod
    def of(cls, bucket: Bucket) -> "Limit | None":
        """The budget part of a quota bucket, or None when it has none."""
        if bucket.max_tokens is None and bucket.max_cost_usd is None:
            return None
        return cls(bucket.max_tokens, bucket.max_cost_usd)


@dataclass(frozen=True, slots=True)
class Node:
    """What the tree says about one agent: its parent, its budget, whether the operator set it."""

    agent: str
    parent: str | None = None
    budget: Limit | None = None
    override: bool = False


class Tree(Protocol):
    """The agent tree and its budgets (the registry, read by ``tree.py``)."""

    def node(self, agent: str) -> Node: ...

    def forget(self, agents: Iterable[str]) -> None:
        """Read these agents again at their next ``node`` (their budgets may have changed)."""


class FlatTree:
    """No tree known (a gateway without a registry): every agent stands alone, without a budget."""

    def node(self, agent: str) -> Node:
        return Node(agent)

    def forget(self, agents: Iterable[str]) -> None:
        return None


@dataclass(slots=True)
class Account:
    """What one budget holder has spent (and how many calls) and has reserved for running calls."""

    tokens: int = 0
    usd: float = 0.0
    requests: int = 0
    reserved_tokens: int = 0
    reserved_usd: float = 0.0

    def add(self, cost: Cost, sign: int = 1, reserved: bool = False) -> None:
        if reserved:
            self.reserved_tokens += sign * cost.tokens
            self.reserved_usd += sign * cost.usd
        else:
            self.tokens += sign * cost.tokens
            self.usd += sign * cost.usd


@dataclass(frozen=True, slots=True)
class Exhausted:
    """A call refused: ``budget_of``'s budget (``scope``: agent, subtree or swarm) cannot cover it."""

    scope: str
    budget_of: str
    reason: str


def shortfall(limit: Limit, acc: Account, worst: Cost) -> str:
    """Why ``worst`` more does not fit in ``limit`` beside ``acc``'s spend and reservations; "" if it does."""
    if limit.max_tokens is not None and acc.tokens + acc.reserved_tokens + worst.tokens > limit.max_tokens:
        return (f"max_tokens budget of {limit.max_tokens} cannot cover this call ({acc.tokens} used, "
                f"{acc.reserved_tokens} reserved, up to {worst.tokens} more)")
    if limit.max_cost_usd is not None and acc.usd + acc.reserved_usd + worst.usd > limit.max_cost_usd + 1e-12:
        return (f"max_cost_usd budget of {limit.max_cost_usd:g} cannot cover this call (${acc.usd:.4f} used, "
                f"${acc.reserved_usd:.4f} reserved, up to ${worst.usd:.4f} more)")
    return ""


@dataclass(frozen=True, slots=True)
class Reservation:
    """A running call's worst case, held against the accounts of ``holders`` (its lineage)."""

    agent: str
    holders: tuple[str, ...]
    cost: Cost


@dataclass
class SpendBook:
    """Spend and reservations of every agent, subtree and the swarm (a plain object, no clock)."""

    quotas: Quotas
    tree: Tree = field(default_factory=FlatTree)
    own: dict[str, Account] = field(default_factory=dict)
    subtree: dict[str, Account] = field(default_factory=dict)
    swarm: Account = field(default_factory=Account)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    _lineages: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._agent_limit = Limit.of(self.quotas.agent)
        self._swarm_limit = Limit.of(self.quotas.swarm)

    def lineage(self, agent: str) -> tuple[str, ...]:
        """``agent``, its parent, …, the root (parents never change: kept once read)."""
        line = self._lineages.get(agent)
        if line is None:
            chain = [agent]
            parent = self.tree.node(agent).parent
            while parent is not None and parent not in chain:
                chain.append(parent)
                parent = self.tree.node(parent).parent
            line = self._lineages[agent] = tuple(chain)
        return line

    def own_account(self, agent: str) -> Account:
        acc = self.own.get(agent)
        if acc is None:
            acc = self.own[agent] = Account()
        return acc

    def _subtree_account(self, agent: str) -> Account:
        acc = self.subtree.get(agent)
        if acc is None:
            acc = self.subtree[agent] = Account()
        return acc

    def _accounts(self, agent: str, holders: tuple[str, ...]) -> list[Account]:
        return [self.own_account(agent), self.swarm] + [self._subtree_account(a) for a in holders]

    # ------------------------------------------------------------ checks

    def _first_short(self, agent: str, worst: Cost) -> Exhausted | None:
        line = self.lineage(agent)
        tree = self.tree
        if self._agent_limit is not None and not tree.node(agent).override:
            why = shortfall(self._agent_limit, self.own_account(agent), worst)
            if why:
                return Exhausted("agent", agent, why)
        for holder in line:
            budget = tree.node(holder).budget
            if budget is not None:
                why = shortfall(budget, self._subtree_account(holder), worst)
                if why:
                    return Exhausted("subtree", holder, why)
        root = line[-1]
        if self._swarm_limit is not None and not tree.node(root).override:
            why = shortfall(self._swarm_limit, self.swarm, worst)
            if why:
                return Exhausted("swarm", root, "swarm " + why)
        return None

    def bounded(self, agent: str) -> bool:
        """Whether any budget lies over ``agent``'s calls (else a reservation binds nobody)."""
        tree = self.tree
        line = self.lineage(agent)
        return ((self._agent_limit is not None and not tree.node(agent).override)
                or (self._swarm_limit is not None and not tree.node(line[-1]).override)
                or any(tree.node(a).budget is not None for a in line))

    def check(self, agent: str, worst: Cost) -> Exhausted | None:
        """The first budget over ``agent`` that cannot cover ``worst``; budgets are re-read before a refusal."""
        if self._first_short(agent, worst) is None:
            return None
        self.tree.forget(self.lineage(agent))
        return self._first_short(agent, worst)

    # ------------------------------------------------------------ bookkeeping

    def reserve(self, call_id: str, agent: str, worst: Cost) -> None:
        """Hold ``worst`` against every account over ``agent`` until the call is settled or released."""
        holders = self.lineage(agent)
        for acc in self._accounts(agent, holders):
            acc.add(worst, reserved=True)
        self.reservations[call_id] = Reservation(agent, holders, worst)

    def release(self, call_id: str) -> None:
        """Give a call's reservation back (it failed, or nobody will retry it)."""
        res = self.reservations.pop(call_id, None)
        if res is not None:
            for acc in self._accounts(res.agent, res.holders):
                acc.add(res.cost, -1, reserved=True)

    def settle(self, call_id: str, agent: str, actual: Cost) -> Account:
        """A call ended with ``actual`` usage: release its reservation, count the usage; the agent's own account."""
        self.release(call_id)
        for acc in self._accounts(agent, self.lineage(agent)):
            acc.add(actual)
            acc.requests += 1
        return self.own_account(agent)

    def restore(self, spent: Mapping[str, tuple[int, int, float]], reserved: Mapping[str, tuple[str, Cost]]) -> None:
        """Rebuild every account from the ledger: each agent's (tokens, requests, usd) and the running calls."""
        for agent, (tokens, requests, usd) in spent.items():
            for acc in self._accounts(agent, self.lineage(agent)):
                acc.add(Cost(tokens, usd))
                acc.requests += requests
        for call_id, (agent, cost) in reserved.items():
            self.reserve(call_id, agent, cost)
