"""Requests retried under one request id (bus/retry.py), on a fake clock: what is tried again, and when."""

from __future__ import annotations

import pytest

from bus.retry import RETRY_PAUSE, new_request_id, once
from swarm_core.errors import BusError, DeadlineExceeded, PolicyDenied, UnknownDestination
from tests.supervisor_harness import FakeClock

pytestmark = pytest.mark.timeout(10)


class Attempts:
    """Raises the scripted errors, then answers; records each try's timeout."""

    def __init__(self, clock: FakeClock, outcomes: list[object]) -> None:
        self.clock = clock
        self.outcomes = list(outcomes)
        self.timeouts: list[float] = []

    def __call__(self, timeout: float) -> object:
        self.timeouts.append(timeout)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            self.clock.advance(timeout if isinstance(outcome, DeadlineExceeded) else 0.0)
            raise outcome
        return outcome


def test_a_lost_answer_is_tried_again_until_one_comes():
    """Time-outs and an unreachable service are tried again (after a pause); the answer is returned."""
    clock = FakeClock()
    attempt = Attempts(clock, [DeadlineExceeded("late"), UnknownDestination("gone"), "answer"])
    pauses: list[float] = []
    assert once(attempt, 90.0, lambda s: (pauses.append(s), clock.advance(s)), clock=clock) == "answer"
    assert attempt.timeouts == [30.0, 30.0, 30.0] and pauses == [RETRY_PAUSE, RETRY_PAUSE]


def test_an_answer_that_is_an_error_is_not_tried_again():
    """A refusal is the service's answer: raised at once, no second try."""
    clock = FakeClock()
    attempt = Attempts(clock, [PolicyDenied("no"), "never"])
    with pytest.raises(PolicyDenied):
        once(attempt, 60.0, clock.advance, clock=clock)
    assert len(attempt.timeouts) == 1


def test_tries_end_with_the_budget_or_a_stop():
    """No try starts past the budget, nor once the caller is stopping; the last loss is raised."""
    clock = FakeClock()
    attempt = Attempts(clock, [DeadlineExceeded("late")] * 10)
    with pytest.raises(DeadlineExceeded):
        once(attempt, 9.0, clock.advance, clock=clock)
    assert len(attempt.timeouts) == 3
    attempt = Attempts(clock, [BusError("lost")] * 10)
    with pytest.raises(BusError):
        once(attempt, 60.0, clock.advance, stopping=lambda: True, clock=clock)
    assert len(attempt.timeouts) == 1


def test_request_ids_are_unique():
    """Each request gets an id of its own."""
    assert len({new_request_id() for _ in range(1000)}) == 1000
