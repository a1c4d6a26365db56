"""Quotas of the LLM gateway: token buckets (rates) and budgets, as pure policy.

Nothing here reads a clock or touches a socket: every function takes ``now``
(monotonic seconds) so tests drive it with a fake clock.

Rates (``requests_per_minute``, ``tokens_per_minute``) are token buckets of
capacity = the per-minute figure, refilled continuously at figure/60 per
second. :func:`check_call` says whether a call of ``tokens`` fits now
(:class:`Allow`) or how long until it would (:class:`Wait`).

The seeds' rule "over the limit → pause 60 s" is kept: a call that does not
fit is *held* until the buckets refill or ``pause_seconds`` have passed,
whichever comes first, and then goes ahead. A call released by the pause
before the bucket refilled leaves the bucket in debt (negative level), so
the next call waits again: a runaway agent is slowed to one call per pause,
and no call waits for ever (a call bigger than a whole bucket still runs
after one pause). ``pause_seconds: 0`` therefore disables rate holds.

Budgets (``max_tokens``, ``max_cost_usd``) are totals per agent and for the
whole swarm; a call is refused once a total has reached its budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from orchestrator.config import Bucket, Quotas

# ------------------------------------------------------------ token bucket


@dataclass(frozen=True, slots=True)
class TokenBucket:
    """A continuously refilled bucket: ``level`` units at time ``stamp``."""

    capacity: float
    rate: float  # units per second
    level: float
    stamp: float

    @classmethod
    def per_minute(cls, per_minute: float, now: float) -> "TokenBucket":
        """A full bucket holding ``per_minute`` units, refilled over a minute."""
        return cls(capacity=per_minute, rate=per_minute / 60.0, level=per_minute, stamp=now)


@dataclass(frozen=True, slots=True)
class Allow:
    """The call fits now."""


@dataclass(frozen=True, slots=True)
class Wait:
    """The call fits in ``seconds`` (when the bucket has refilled enough)."""

    seconds: float


def refill(bucket: TokenBucket, now: float) -> TokenBucket:
    """The bucket as it is at ``now`` (never above capacity, never back in time)."""
    if now <= bucket.stamp:
        return bucket
    level = min(bucket.capacity, bucket.level + (now - bucket.stamp) * bucket.rate)
    return replace(bucket, level=level, stamp=now)


def check_call(bucket: TokenBucket, now: float, tokens: float) -> Allow | Wait:
    """Whether ``tokens`` units can be taken at ``now``, or how long until they can.

    A request bigger than the whole bucket is judged against a full bucket
    (it waits until the bucket is full, not for ever).
    """
    b = refill(bucket, now)
    need = min(tokens, b.capacity)
    if b.level >= need:
        return Allow()
    if b.rate <= 0:
        return Wait(float("inf"))
    return Wait((need - b.level) / b.rate)


def take(bucket: TokenBucket, now: float, tokens: float) -> TokenBucket:
    """The bucket after ``tokens`` units were taken at ``now`` (may go into debt).

    A negative ``tokens`` gives units back (an estimate that was too high),
    never above capacity.
    """
    b = refill(bucket, now)
    return replace(b, level=min(b.capacity, b.level - tokens))


# ----------------------------------------------------------------- budgets


@dataclass(slots=True)
class Totals:
    """What one agent (or the swarm) has used so far."""

    tokens: int = 0
    requests: int = 0
    cost_usd: float = 0.0


def budget_reason(totals: Totals, limits: Bucket) -> str:
    """Why ``totals`` has exhausted a budget of ``limits``, or "" if it has not."""
    if limits.max_tokens is not None and totals.tokens >= limits.max_tokens:
        return f"max_tokens budget of {limits.max_tokens} used ({totals.tokens} tokens)"
    if limits.max_cost_usd is not None and totals.cost_usd >= limits.max_cost_usd:
        return f"max_cost_usd budget of {limits.max_cost_usd:g} used (${totals.cost_usd:.4f})"
    return ""


# --------------------------------------------------------------- the book


@dataclass(frozen=True, slots=True)
class Admit:
    """Go ahead; ``forced`` says the pause released the call before a refill."""

    forced: bool = False


@dataclass(frozen=True, slots=True)
class Hold:
    """Hold the call ``seconds`` more, then ask again; ``reason`` names the bucket."""

    seconds: float
    reason: str


@dataclass(frozen=True, slots=True)
class Exhausted:
    """Refuse the call: a budget is used up (``scope`` is ``agent`` or ``swarm``)."""

    scope: str
    reason: str


@dataclass(slots=True)
class _Rates:
    requests: TokenBucket | None
    tokens: TokenBucket | None


def _rates(limits: Bucket, now: float) -> _Rates:
    return _Rates(
        requests=TokenBucket.per_minute(limits.requests_per_minute, now)
        if limits.requests_per_minute else None,
        tokens=TokenBucket.per_minute(limits.tokens_per_minute, now)
        if limits.tokens_per_minute else None,
    )


@dataclass
class QuotaBook:
    """Rates and budgets of every agent and of the swarm (a plain object, no clock).

    ``admit`` decides a call; ``record`` adds the usage the provider reported.
    """

    quotas: Quotas
    totals: dict[str, Totals] = field(default_factory=dict)
    swarm: Totals = field(default_factory=Totals)
    _rates: dict[str, _Rates] = field(default_factory=dict)
    _swarm_rates: _Rates | None = None

    def _agent_rates(self, agent: str, now: float) -> _Rates:
        r = self._rates.get(agent)
        if r is None:
            r = self._rates[agent] = _rates(self.quotas.agent, now)
        return r

    def _all_rates(self, agent: str, now: float) -> list[tuple[str, _Rates]]:
        if self._swarm_rates is None:
            self._swarm_rates = _rates(self.quotas.swarm, now)
        return [("agent", self._agent_rates(agent, now)), ("swarm", self._swarm_rates)]

    def agent_totals(self, agent: str) -> Totals:
        """The running totals of ``agent`` (created empty on first use)."""
        t = self.totals.get(agent)
        if t is None:
            t = self.totals[agent] = Totals()
        return t

    def exhausted(self, agent: str) -> Exhausted | None:
        """The budget ``agent`` (or the swarm) has used up, if any."""
        reason = budget_reason(self.agent_totals(agent), self.quotas.agent)
        if reason:
            return Exhausted("agent", reason)
        reason = budget_reason(self.swarm, self.quotas.swarm)
        if reason:
            return Exhausted("swarm", "swarm " + reason)
        return None

    def admit(self, agent: str, now: float, tokens: int, held_since: float) -> Admit | Hold | Exhausted:
        """Decide a call of ``agent`` estimated at ``tokens``, held since ``held_since``.

        On Admit one request and ``tokens`` are taken from every bucket.
        """
        ex = self.exhausted(agent)
        if ex is not None:
            return ex
        wait, which = 0.0, ""
        for scope, r in self._all_rates(agent, now):
            for kind, bucket, amount in (("requests_per_minute", r.requests, 1),
                                         ("tokens_per_minute", r.tokens, tokens)):
                if bucket is None:
                    continue
                verdict = check_call(bucket, now, amount)
                if isinstance(verdict, Wait) and verdict.seconds > wait:
                    wait, which = verdict.seconds, f"{scope} {kind}"
        left_of_pause = self.quotas.pause_seconds - (now - held_since)
        if wait > 0 and left_of_pause > 0:
            return Hold(min(wait, left_of_pause), which)
        for _, r in self._all_rates(agent, now):
            if r.requests is not None:
                r.requests = take(r.requests, now, 1)
            if r.tokens is not None:
                r.tokens = take(r.tokens, now, tokens)
        return Admit(forced=wait > 0)

    def record(self, agent: str, now: float, tokens: int, cost_usd: float, estimated: int) -> Totals:
        """Add a finished call's usage; the token buckets are corrected to the real count."""
        for t in (self.agent_totals(agent), self.swarm):
            t.tokens += tokens
            t.requests += 1
            t.cost_usd += cost_usd
        delta = tokens - estimated
        if delta:
            for _, r in self._all_rates(agent, now):
                if r.tokens is not None:
                    r.tokens = take(r.tokens, now, delta)
        return self.agent_totals(agent)


def cost_usd(prices: dict, model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """USD of one call by the price table (USD per 1 000 tokens); 0 for an unknown model."""
    price = prices.get(model)
    if price is None:
        return 0.0
    return (prompt_tokens * price.prompt + completion_tokens * price.completion) / 1000.0


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (about four characters a token)."""
    return max(1, len(text) // 4)
