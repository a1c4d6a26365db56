"""Subtree budgets as the supervisor sees them: pure functions over registry records.

An agent's budget (``budget_tokens``, ``budget_usd`` in the registry) covers
its own spend plus all its descendants'; the gateway enforces it before each
call. It comes from the role (``agents.ROLE.budget``), from the slice its
parent gave in ``start_agent``, or from the operator (``swarm budget``). A
budget the operator sets replaces the defaults of ``quotas`` for that agent
(``quotas.agent`` for its own spend; ``quotas.swarm`` too for the root, whose
subtree is the whole swarm).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from orchestrator.config import Budget, Quotas
from orchestrator.supervisor.registry import AgentRecord
from swarm_core.errors import OperatorError


def child_budget(role_budget: Budget | None, slice_tokens: int) -> tuple[int | None, float | None]:
    """A new agent's budget: its role's, the token part capped by the slice its parent gave (0: none)."""
    tokens = role_budget.max_tokens if role_budget else None
    usd = role_budget.max_cost_usd if role_budget else None
    if slice_tokens > 0:
        tokens = slice_tokens if tokens is None else min(tokens, slice_tokens)
    return tokens, usd


def token_limit(rec: AgentRecord, quotas: Quotas) -> int | None:
    """The token budget over ``rec``'s subtree (the root's includes ``quotas.swarm``), or None."""
    limits = [rec.budget_tokens]
    if rec.parent is None and not rec.budget_override:
        limits.append(quotas.swarm.max_tokens)
    present = [x for x in limits if x is not None]
    return min(present) if present else None


def tokens_left(lineage: Sequence[AgentRecord], spend: Mapping[str, tuple[int, float]],
                quotas: Quotas) -> int | None:
    """What the caller (last of ``lineage``) has left: the smallest ``limit - subtree spend`` over it
    and its ancestors that have a token budget; None when none has one."""
    left: int | None = None
    for rec in lineage:
        limit = token_limit(rec, quotas)
        if limit is not None:
            here = limit - spend.get(rec.id, (0, 0.0))[0]
            left = here if left is None else min(left, here)
    return left


def slice_problem(left: int | None, requested: int) -> str | None:
    """Why ``requested`` tokens are more than ``left``; None if they fit (or nothing bounds the caller)."""
    if left is not None and requested > left:
        return (f"a budget of {requested} tokens is more than what is left of your budget "
                f"({max(left, 0)} tokens); give a smaller budget or none")
    return None


def merged(rec: AgentRecord, quotas: Quotas, max_tokens: int, max_cost_usd: float) -> tuple[int | None, float | None]:
    """``rec``'s budget after ``swarm budget``: given parts (> 0) replace; the others keep what bounded it.

    A part not given keeps the agent's budget, or the quota it replaces (a
    limit is never lifted by setting the other part).
    """
    if max_tokens < 0 or max_cost_usd < 0:
        raise OperatorError("a budget must be a positive number")
    if not max_tokens and not max_cost_usd:
        raise OperatorError("give a token budget, a dollar budget or both")
    quota = quotas.swarm if rec.parent is None else quotas.agent
    tokens = max_tokens or _kept(rec.budget_tokens, quota.max_tokens, rec.budget_override)
    usd = max_cost_usd or _kept(rec.budget_usd, quota.max_cost_usd, rec.budget_override)
    return (int(tokens) if tokens is not None else None), (float(usd) if usd is not None else None)


def _kept(explicit: float | None, quota: float | None, overridden: bool) -> float | None:
    if overridden or quota is None:
        return explicit
    return quota if explicit is None else min(explicit, quota)
