"""Agent statuses and the reasons an agent is stopped, as types (not bare strings).

Both are ``StrEnum``: a member equals its string, so the registry, the wire
and ``swarm ps --json`` carry plain strings. A ``reason`` may also be free
text (an exit description, ``deleted by manager``); :class:`Reason` lists the
fixed ones that code compares against.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """An agent's status (the ``status`` field of ``swarm ps --json``)."""

    STARTING = "starting"
    RUNNING = "running"
    WAITING = "waiting"
    THROTTLED = "throttled"
    FROZEN = "frozen"
    AWAITING_APPROVAL = "awaiting_approval"  # a command is held until a person approves or denies it
    DONE = "done"
    FAILED = "failed"
    KILLED = "killed"
    CRASHED = "crashed"

    @property
    def terminal(self) -> bool:
        """Whether the agent has ended (its process is gone or going)."""
        return self in TERMINAL


TERMINAL = frozenset({Status.DONE, Status.FAILED, Status.KILLED, Status.CRASHED})
# statuses the agent itself reports; the others are decided by the supervisor or the gateway
SELF_REPORTED = frozenset({Status.RUNNING, Status.WAITING})


def is_terminal(status: str) -> bool:
    """Whether ``status`` (a plain string from the registry too) is terminal."""
    return status in TERMINAL


class Reason(StrEnum):
    """The fixed reasons an agent is stopped or held."""

    OPERATOR = "operator"
    MAX_STEPS = "max_steps"
    MAX_WALL_SECONDS = "max_wall_seconds"
    LOOP = "loop"
    FLOOD = "flood"
    BUDGET_EXHAUSTED = "budget_exhausted"
    HUNG = "hung"
    STOP_FILE = "stop_file"
    START_TIMEOUT = "start_timeout"
    KILL_ALL = "kill_all"
    DELETED = "deleted"
    DOWN = "down"
    PARENT_DONE = "parent_done"
    PARENT_FAILED = "parent_failed"
    PARENT_CRASHED = "parent_crashed"
    NODE_UNREACHABLE = "node_unreachable"  # the agent's node (its Ray host) stopped answering
    TIMEOUT = "timeout"  # an approval request nobody decided in time


# statuses decided outside the agent that its own reports (running, waiting) must not overwrite
HELD = frozenset({Status.FROZEN, Status.THROTTLED, Status.AWAITING_APPROVAL})


def parent_ended(status: str) -> Reason:
    """The reason a sub-agent is stopped when its parent ended with ``status``."""
    return {Status.DONE: Reason.PARENT_DONE, Status.FAILED: Reason.PARENT_FAILED}.get(
        status, Reason.PARENT_CRASHED)  # type: ignore[call-overload]
