"""The bottom layer's types: the agent spec, statuses and reasons, peer names."""

from __future__ import annotations

import json

import pytest

from swarm_core.errors import InvalidRequest
from swarm_core.peers import is_reserved_name
from swarm_core.spec import AgentSpec, RLimits
from swarm_core.status import TERMINAL, Reason, Status, is_terminal, parent_ended


def _spec(**extra) -> AgentSpec:
    return AgentSpec(agent_id="w", name="w", role_name="writer", role="writes", task="t",
                     commands=("write_to_file", "task_complete"), endpoint="ipc:///x", run_dir="/r", **extra)


def test_spec_survives_a_json_round_trip():
    """A spec sent to the zygote as JSON comes back equal, tuples and rlimits typed."""
    spec = _spec(examples=({"task": "x"},), rlimits=RLimits(memory_mb=64), settings={"a": 1})
    back = AgentSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec
    assert isinstance(back.commands, tuple) and isinstance(back.rlimits, RLimits)


def test_spec_refuses_unknown_keys_instead_of_dropping_them():
    """An unknown key is an error naming it (the old dict reader silently dropped it)."""
    d = _spec().to_dict() | {"comands": ["x"]}
    with pytest.raises(InvalidRequest, match="unknown keys: comands"):
        AgentSpec.from_dict(d)


def test_spec_refuses_missing_and_mistyped_keys():
    """A missing required key or a wrongly typed value is an error naming the key."""
    d = _spec().to_dict()
    del d["task"]
    with pytest.raises(InvalidRequest, match="misses keys: task"):
        AgentSpec.from_dict(d)
    with pytest.raises(InvalidRequest, match="liveness must be an integer"):
        AgentSpec.from_dict(_spec().to_dict() | {"liveness": "3"})
    with pytest.raises(InvalidRequest, match="rlimits"):
        AgentSpec.from_dict(_spec().to_dict() | {"rlimits": {"memory_mb": -1}})


def test_statuses_equal_their_strings_and_know_terminal():
    """A Status member equals the registry's plain string; terminal ones are exactly the four ends."""
    assert Status.RUNNING == "running" and json.dumps(Status.KILLED) == '"killed"'
    assert {str(s) for s in TERMINAL} == {"done", "failed", "killed", "crashed"}
    assert is_terminal("crashed") and not is_terminal("frozen") and Status.DONE.terminal


def test_parent_ended_reason_follows_the_parent_status():
    """A sub-agent of a finished, failed or crashed parent is stopped with the matching reason."""
    assert parent_ended("done") is Reason.PARENT_DONE
    assert parent_ended("failed") is Reason.PARENT_FAILED
    assert parent_ended("crashed") is Reason.PARENT_CRASHED


def test_reserved_names():
    """Service ids and the operator prefix (any case) are reserved; ordinary names are not."""
    assert is_reserved_name("gateway") and is_reserved_name("CLI-x") and not is_reserved_name("writer")
