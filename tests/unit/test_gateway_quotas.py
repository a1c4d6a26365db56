"""Rate quotas of the gateway with a fake clock: token buckets, holds, pauses, saved bucket state."""

from __future__ import annotations

import pytest

from orchestrator.config import Bucket, Price, Quotas
from orchestrator.gateway.quotas import (
    Admit,
    Allow,
    Hold,
    QuotaBook,
    TokenBucket,
    Wait,
    check_call,
    cost_usd,
    estimate_tokens,
    refill,
    take,
)


def test_full_bucket_allows_up_to_capacity():
    """A fresh per-minute bucket allows its whole capacity at once, then asks to wait."""
    b = TokenBucket.per_minute(2, now=0.0)
    assert check_call(b, 0.0, 1) == Allow()
    b = take(b, 0.0, 1)
    b = take(b, 0.0, 1)
    verdict = check_call(b, 0.0, 1)
    assert isinstance(verdict, Wait)
    assert verdict.seconds == pytest.approx(30.0)


def test_bucket_refills_continuously_and_caps_at_capacity():
    """The level grows at capacity/60 per second and never exceeds capacity."""
    b = take(TokenBucket.per_minute(60, now=0.0), 0.0, 60)
    assert refill(b, 10.0).level == pytest.approx(10.0)
    assert refill(b, 1000.0).level == pytest.approx(60.0)
    assert check_call(b, 0.5, 1) == Wait(pytest.approx(0.5))
    assert check_call(b, 1.0, 1) == Allow()


def test_clock_going_back_does_not_refill():
    """A timestamp before the bucket's own never changes it."""
    b = take(TokenBucket.per_minute(60, now=10.0), 10.0, 60)
    assert refill(b, 5.0) is b


def test_request_bigger_than_bucket_waits_for_a_full_bucket():
    """A call estimated above capacity is judged against a full bucket, not refused for ever."""
    b = take(TokenBucket.per_minute(100, now=0.0), 0.0, 50)
    assert check_call(b, 0.0, 500) == Wait(pytest.approx(30.0))
    assert check_call(refill(b, 30.0), 30.0, 500) == Allow()


def test_negative_take_gives_back_without_exceeding_capacity():
    """Correcting an over-estimate returns units, capped at capacity."""
    b = take(TokenBucket.per_minute(100, now=0.0), 0.0, 10)
    assert take(b, 0.0, -5).level == pytest.approx(95.0)
    assert take(b, 0.0, -50).level == pytest.approx(100.0)


def _book(agent=None, swarm=None, pause=60.0):
    return QuotaBook(Quotas(agent=agent or Bucket(), swarm=swarm or Bucket(), pause_seconds=pause))


def test_third_call_of_a_two_per_minute_agent_is_held():
    """With requests_per_minute 2 the third call at the same instant is held, naming the bucket."""
    book = _book(agent=Bucket(requests_per_minute=2))
    assert book.admit("a", 0.0, 10, held_since=0.0) == Admit()
    assert book.admit("a", 0.0, 10, held_since=0.0) == Admit()
    verdict = book.admit("a", 0.0, 10, held_since=0.0)
    assert isinstance(verdict, Hold)
    assert verdict.seconds == pytest.approx(30.0)
    assert verdict.reason == "agent requests_per_minute"
    # another agent has its own bucket
    assert book.admit("b", 0.0, 10, held_since=0.0) == Admit()


def test_held_call_goes_ahead_when_the_bucket_refills():
    """A held call is admitted once enough has refilled, before the pause ends."""
    book = _book(agent=Bucket(requests_per_minute=2))
    book.admit("a", 0.0, 1, 0.0)
    book.admit("a", 0.0, 1, 0.0)
    assert isinstance(book.admit("a", 29.0, 1, held_since=0.0), Hold)
    assert book.admit("a", 30.0, 1, held_since=0.0) == Admit()


def test_pause_bounds_the_hold_and_leaves_debt():
    """After pause_seconds the call goes ahead anyway (forced) and the next call is held again."""
    book = _book(agent=Bucket(requests_per_minute=2), pause=0.5)
    book.admit("a", 0.0, 1, 0.0)
    book.admit("a", 0.0, 1, 0.0)
    first = book.admit("a", 0.0, 1, held_since=0.0)
    assert first == Hold(pytest.approx(0.5), "agent requests_per_minute")
    assert isinstance(book.admit("a", 0.3, 1, held_since=0.0), Hold)
    assert book.admit("a", 0.5, 1, held_since=0.0) == Admit(forced=True)
    assert isinstance(book.admit("a", 0.5, 1, held_since=0.5), Hold)


def test_zero_pause_never_holds():
    """pause_seconds 0 turns rate holds off: calls are admitted (forced) at once."""
    book = _book(agent=Bucket(requests_per_minute=1), pause=0.0)
    assert book.admit("a", 0.0, 1, 0.0) == Admit()
    assert book.admit("a", 0.0, 1, 0.0) == Admit(forced=True)


def test_swarm_bucket_is_shared_by_all_agents():
    """The swarm-wide rate counts every agent's calls together."""
    book = _book(swarm=Bucket(requests_per_minute=3))
    for agent in ("a", "b", "c"):
        assert book.admit(agent, 0.0, 1, 0.0) == Admit()
    verdict = book.admit("d", 0.0, 1, 0.0)
    assert isinstance(verdict, Hold) and verdict.reason == "swarm requests_per_minute"


def test_tokens_per_minute_holds_on_the_estimate():
    """tokens_per_minute holds a call whose estimate does not fit what is left."""
    book = _book(agent=Bucket(tokens_per_minute=600))
    assert book.admit("a", 0.0, 500, 0.0) == Admit()
    verdict = book.admit("a", 0.0, 200, 0.0)
    assert isinstance(verdict, Hold)
    assert verdict.reason == "agent tokens_per_minute"
    assert verdict.seconds == pytest.approx(10.0)  # 100 more tokens at 10 per second


def test_record_corrects_the_token_bucket_to_the_real_count():
    """Usage reported by the provider replaces the estimate in the token bucket."""
    book = _book(agent=Bucket(tokens_per_minute=600))
    book.admit("a", 0.0, 100, 0.0)
    book.record("a", 0.0, tokens=400, estimated=100)
    verdict = book.admit("a", 0.0, 300, 0.0)
    assert isinstance(verdict, Hold)  # 600 - 400 = 200 left, not 500


def test_bucket_state_restores_levels_in_a_new_book():
    """Levels saved by state() are put back by restore(): a restarted gateway keeps its rate windows."""
    book = _book(agent=Bucket(requests_per_minute=2, tokens_per_minute=600), swarm=Bucket(requests_per_minute=10))
    book.admit("a", 0.0, 500, 0.0)
    book.admit("a", 0.0, 50, 0.0)
    saved = book.state("a")
    assert set(saved) == {"agent:a:requests", "agent:a:tokens", "swarm:requests"}
    fresh = _book(agent=Bucket(requests_per_minute=2, tokens_per_minute=600), swarm=Bucket(requests_per_minute=10))
    fresh.restore(saved, now=0.0)
    verdict = fresh.admit("a", 0.0, 10, held_since=0.0)
    assert isinstance(verdict, Hold) and verdict.reason == "agent requests_per_minute"
    assert fresh.state("a")["agent:a:tokens"] == pytest.approx((50.0, 0.0))


def test_restore_ignores_buckets_no_longer_configured():
    """A saved bucket of a rate the config no longer has is dropped, not resurrected."""
    book = _book(agent=Bucket(requests_per_minute=2))
    book.restore({"agent:a:tokens": (5.0, 0.0), "swarm:requests": (0.0, 0.0)}, now=0.0)
    assert book.state("a") == {"agent:a:requests": (2.0, 0.0)}


def test_cost_uses_the_price_table_per_thousand_tokens():
    """Cost is prompt and completion tokens times the model's price per 1 000 tokens."""
    prices = {"m": Price(prompt=0.5, completion=1.5)}
    assert cost_usd(prices, "m", 1000, 2000) == pytest.approx(3.5)
    assert cost_usd(prices, "unknown", 1000, 2000) == 0.0


def test_estimate_tokens_is_a_quarter_of_the_characters_at_least_one():
    """The estimate is len//4, never zero."""
    assert estimate_tokens("x" * 400) == 100
    assert estimate_tokens("") == 1
