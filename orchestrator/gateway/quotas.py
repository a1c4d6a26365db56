"""Quotas of the LLM gateway: token buckets (rates), as pure policy.

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

Budgets (``max_tokens``, ``max_cost_usd``) are kept by ``spend.py`` (they
need the agent tree and reservations); this module holds the rates.
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
    """The rate buckets of every agent and of the swarm (a plain object, no clock).

    ``admit`` decides a call; ``record`` corrects the token buckets to the
    usage the provider reported. ``state``/``restore`` carry the buckets
    through the ledger (stamps are ``time.monotonic``, which is the same
    clock for every process of one boot).
    """

    quotas: Quotas
    _rates: dict[str, _Rates] = field(default_factory=dict)
    _swarm_rates: _Rates | None = None

    def _agent_rates(self, agent: str, now: float) -> _Rates:
        r = self._rates.get(agent)
        if r is None:
            r = self._rates[agent] = _rates(self.quotas.agent, now)
        return r

    def _all_rates(self, agent: str, now: float) -> list[tuple[str, _Rates]]:
        return [("agent", self._agent_rates(agent, now)), ("swarm", self._swarm_rates_at(now))]

    def admit(self, agent: str, now: float, tokens: int, held_since: float) -> Admit | Hold:
        """Decide a call of ``agent`` estimated at ``tokens``, held since ``held_since``.

        On Admit one request and ``tokens`` are taken from every bucket.
        """
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

    def record(self, agent: str, now: float, tokens: int, estimated: int) -> None:
        """A finished call used ``tokens`` where ``estimated`` were taken: correct the token buckets."""
        delta = tokens - estimated
        if delta:
            for _, r in self._all_rates(agent, now):
                if r.tokens is not None:
                    r.tokens = take(r.tokens, now, delta)

    def state(self, agent: str) -> dict[str, tuple[float, float]]:
        """The buckets a call of ``agent`` uses, as ``{key: (level, stamp)}`` (empty without rates)."""
        out = {}
        for key, r in (("agent:" + agent, self._rates.get(agent)), ("swarm", self._swarm_rates)):
            if r is None:
                continue
            for kind, bucket in (("requests", r.requests), ("tokens", r.tokens)):
                if bucket is not None:
                    out[f"{key}:{kind}"] = (bucket.level, bucket.stamp)
        return out

    def restore(self, rows: dict[str, tuple[float, float]], now: float) -> None:
        """Put back bucket levels saved by :meth:`state` (keys of rates no longer configured are ignored)."""
        for key, (level, stamp) in rows.items():
            scope, _, kind = key.rpartition(":")
            r = self._swarm_rates_at(now) if scope == "swarm" else self._agent_rates(scope[len("agent:"):], now)
            bucket = getattr(r, kind, None)
            if isinstance(bucket, TokenBucket):
                setattr(r, kind, replace(bucket, level=min(bucket.capacity, level), stamp=min(stamp, now)))

    def _swarm_rates_at(self, now: float) -> _Rates:
        if self._swarm_rates is None:
            self._swarm_rates = _rates(self.quotas.swarm, now)
        return self._swarm_rates


def cost_usd(prices: dict, model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """USD of one call by the price table (USD per 1 000 tokens); 0 for an unknown model."""
    price = prices.get(model)
    if price is None:
        return 0.0
    return (prompt_tokens * price.prompt + completion_tokens * price.completion) / 1000.0


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (about four characters a token)."""
    return max(1, len(text) // 4)
