"""Unit tests of the supervisor's pure spawn policy."""

from __future__ import annotations

from orchestrator.config import Limits
from orchestrator.supervisor.policy import Allow, Deny, SpawnState, allocate_id, check_spawn, lineage_of


def state(**over):
    base = dict(lineage=["manager"], requester_role="manager", can_start=["writer"],
                roles=["manager", "writer"], live_agents=1, live_children=0,
                used_ids=frozenset({"manager"}), limits=Limits())
    base.update(over)
    return SpawnState(**base)


def test_allow_gives_depth_from_lineage():
    """A start from the root gets depth 1; from a depth-2 agent, depth 3."""
    assert check_spawn(state(), "writer") == Allow("writer", 1, "writer")
    deep = check_spawn(state(lineage=["manager", "a", "b"], requester_role="writer",
                             can_start=["writer"]), "writer")
    assert isinstance(deep, Allow) and deep.depth == 3


def test_max_depth_refused_before_spawn():
    """A start that would exceed max_depth is refused with a reason naming the limit."""
    lim = Limits(max_depth=2)
    d = check_spawn(state(lineage=["manager", "a", "b"], limits=lim), "writer")
    assert isinstance(d, Deny) and "max_depth 2" in d.reason
    ok = check_spawn(state(lineage=["manager", "a"], limits=lim), "writer")
    assert isinstance(ok, Allow) and ok.depth == 2


def test_counts_refused():
    """max_agents and max_children refuse further starts."""
    lim = Limits(max_agents=3, max_children=2)
    assert "max_agents" in check_spawn(state(live_agents=3, limits=lim), "writer").reason
    assert "max_children" in check_spawn(state(live_children=2, limits=lim), "writer").reason


def test_role_permissions():
    """A role may start only what can_start lists; an unknown role lists the allowed ones."""
    d = check_spawn(state(can_start=[]), "writer")
    assert isinstance(d, Deny) and "may not start role 'writer'" in d.reason
    d = check_spawn(state(), "helper")
    assert isinstance(d, Deny) and "roles you may start: writer" in d.reason
    a = check_spawn(state(), "poet", role="writer")
    assert a == Allow("poet", 1, "writer")


def test_bad_names_refused():
    """Names that are not plain identifiers are refused (they become peer ids and file names)."""
    for bad in ("", "../x", "a b", "x" * 60, "-lead", "é"):
        assert isinstance(check_spawn(state(), bad, role="writer"), Deny), bad


def test_ids_never_reused():
    """A used name gets -2, -3, ... and never an id that was used before."""
    assert allocate_id("w", frozenset()) == "w"
    assert allocate_id("w", frozenset({"w"})) == "w-2"
    assert allocate_id("w", frozenset({"w", "w-2", "w-3"})) == "w-4"


def test_lineage_of_walks_parents():
    """Lineage is root first, the agent last, and survives a cycle in bad data."""
    parents = {"m": None, "a": "m", "b": "a"}
    assert lineage_of("b", parents) == ["m", "a", "b"]
    assert lineage_of("x", {"x": "y", "y": "x"}) == ["y", "x"]


def test_reserved_and_operator_names_refused():
    """An agent may not take a service's peer id or the CLI's operator prefix."""
    for name in ("supervisor", "gateway", "memory", "broker", "cli-evil", "CLI-x"):
        d = check_spawn(state(), name, role="writer")
        assert isinstance(d, Deny) and "reserved" in d.reason, name
