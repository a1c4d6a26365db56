"""Waiting for a person: an agent whose step is held asks the supervisor until the request is decided.

Each ask is a bounded long poll (``AwaitApproval``): the supervisor answers
when the request is decided, or ``pending`` after a few seconds. A failed
ask (the supervisor restarting, the bus reconnecting) is repeated after a
pause, so a held step survives ``kill -9`` of the supervisor and ``swarm up
--resume``: the new supervisor answers from the registry. A stop (kill, the
STOP file, a budget denial) ends the wait at once.
"""

from __future__ import annotations

from typing import Any, Callable

from swarm_core import messages as m
from swarm_core.errors import Stopped, SwarmError
from swarm_core.peers import SUPERVISOR

POLL_TIMEOUT = 20.0  # seconds one ask may take: the supervisor answers within ~5 s, more when busy
RETRY_PAUSE = 1.0  # seconds before asking again after a failed ask


def await_decision(client: Any, request_id: str, stopping: Callable[[], bool], log: Any) -> m.ApprovalAnswer | None:
    """The decision on ``request_id`` (approved or denied), or None when a stop came first."""
    while not stopping():
        try:
            answer = client.request(SUPERVISOR, m.AwaitApproval(request_id), POLL_TIMEOUT, abort=stopping)
        except Stopped:
            return None
        except SwarmError as exc:
            log.warning("approval_poll_failed", request=request_id, code=exc.code, error=exc.message)
            client.poll(RETRY_PAUSE, until=stopping)
            continue
        if answer.state != m.ApprovalAnswer.PENDING:
            return answer
    return None
