"""Placement of agents on Ray nodes: spread, pack, per-role resources, slots (a pure function)."""

from __future__ import annotations

import pytest

from orchestrator.supervisor.backends.placement import NodeView, NoRoom, capacity, choose


def _nodes(*used: int, cap: int = 4, extra: tuple[frozenset[str], ...] = ()) -> list[NodeView]:
    res = extra or tuple(frozenset({"swarm_node", f"swarm_node_{i}"}) for i in range(len(used)))
    return [NodeView(f"n{i}", cap, u, res[i]) for i, u in enumerate(used)]


def test_spread_picks_the_node_with_most_free_slots():
    """spread sends a new agent to the least loaded node (the first of equals)."""
    assert choose(_nodes(2, 1, 1), "writer", "spread") == "n1"
    assert choose(_nodes(0, 0), "writer", "spread") == "n0"


def test_pack_fills_the_first_node_before_the_next():
    """pack keeps choosing the first node with a free slot."""
    assert choose(_nodes(3, 0), "writer", "pack") == "n0"
    assert choose(_nodes(4, 0), "writer", "pack") == "n1"


def test_a_role_mapping_sends_the_role_to_nodes_offering_its_resource():
    """{writer: swarm_node_1} places writers on node 1 only; other roles are spread."""
    placement = {"writer": "swarm_node_1"}
    assert choose(_nodes(0, 3), "writer", placement) == "n1"
    assert choose(_nodes(2, 1), "manager", placement) == "n1"
    assert choose(_nodes(0, 3), "manager", placement) == "n0"


def test_no_node_with_the_resource_is_a_clear_refusal():
    """A role mapped to a resource nobody offers is refused naming the resource and the role."""
    with pytest.raises(NoRoom, match="no node offering resource 'gpu' for role 'writer'"):
        choose(_nodes(0, 0), "writer", {"writer": "gpu"})


def test_full_nodes_refuse_with_the_number_of_slots():
    """When every fitting node is full the refusal says how many slots there are."""
    with pytest.raises(NoRoom, match="full \\(8 agent slots\\)"):
        choose(_nodes(4, 4), "writer", "spread")


def test_a_node_whose_host_is_lost_takes_no_agent():
    """A node whose host does not answer is skipped; with none left the spawn is refused."""
    nodes = [NodeView("n0", 4, 0, frozenset({"swarm_node"}), ready=False),
             NodeView("n1", 4, 3, frozenset({"swarm_node"}))]
    assert choose(nodes, "writer", "spread") == "n1"
    with pytest.raises(NoRoom, match="with a ready host"):
        choose(nodes[:1], "writer", "spread")


def test_capacity_is_the_nodes_swarm_slot_resource_else_agents_per_node():
    """A node declaring swarm_slot takes that many agents; others take backend.agents_per_node."""
    assert capacity({"swarm_node": 1, "swarm_slot": 200}, 64) == 200
    assert capacity({"swarm_node": 1}, 64) == 64
