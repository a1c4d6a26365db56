"""The agent table: pending starts, pids, and the blocked set the broker's gate reads."""

from __future__ import annotations

import pytest

from orchestrator.supervisor.intensity import RestartIntensity
from orchestrator.supervisor.registry import AgentRecord, Registry
from orchestrator.supervisor.table import AgentTable
from swarm_core.status import Status

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def table(tmp_path):
    t = AgentTable(tmp_path / "registry.db", wall=lambda: 500.0)
    yield t
    t.close()


def add(table: AgentTable, agent_id: str, parent: str | None = None) -> AgentRecord:
    return table.add(AgentRecord(id=agent_id, name=agent_id, role="worker", parent=parent, depth=0))


def test_pending_starts_expire_once_and_settle_when_taken(table):
    """A start past its deadline is returned once by expired(); one taken on ready never expires."""
    table.expect_ready("a", None, deadline=10.0)
    table.expect_ready("b", None, deadline=20.0)
    assert table.expired(5.0) == []
    assert [a for a, _ in table.expired(15.0)] == ["a"]
    assert table.expired(15.0) == []
    assert table.take_pending("b") is not None and table.take_pending("b") is None
    assert table.expired(100.0) == []


def test_ending_an_agent_blocks_it_and_a_restart_unblocks_it(table):
    """A terminal status blocks the agent's traffic; a restart unblocks it and counts the restart."""
    rec = add(table, "a")
    table.end("a", Status.CRASHED, "exit code 1")
    assert "a" in table.blocked
    got = table.get("a")
    assert got.status is Status.CRASHED and got.reason == "exit code 1" and got.ended_at == 500.0
    table.restarting(table.get("a"))
    got = table.get("a")
    assert "a" not in table.blocked and got.status is Status.STARTING and got.restarts == rec.restarts + 1


def test_blocked_is_a_snapshot_a_reader_keeps(table):
    """The broker thread's copy of the blocked set never changes under it: a change makes a new set."""
    add(table, "a")
    before = table.blocked
    table.block("a")
    assert before == frozenset() and table.blocked == frozenset({"a"})


def test_pids_map_to_agents_until_released(table):
    """A bound pid names its agent (and is recorded); released once; adopted pids are listed apart."""
    add(table, "a")
    add(table, "b")
    table.bind_pid("a", 101)
    table.bind_pid("b", 102, adopted=True)
    assert table.get("a").pid == 101
    assert sorted(table.known_pids()) == [101, 102] and table.adopted_pids() == [102]
    assert table.release_pid(102) == "b" and table.adopted_pids() == []
    assert table.release_pid(102) is None


def test_block_terminal_blocks_what_a_previous_run_ended(tmp_path):
    """After a resume, agents the registry shows ended are blocked at once."""
    reg = Registry(tmp_path / "registry.db")
    reg.add(AgentRecord(id="gone", name="gone", role="worker", parent=None, depth=0, status=Status.KILLED))
    reg.add(AgentRecord(id="live", name="live", role="worker", parent=None, depth=0, status=Status.RUNNING))
    reg.close()
    table = AgentTable(tmp_path / "registry.db")
    table.block_terminal()
    assert table.blocked == frozenset({"gone"})
    assert [r.id for r in table.live()] == ["live"]
    table.close()


def test_restart_intensity_slides_its_window():
    """At most max_restarts within the period; older restarts leave the window."""
    window = RestartIntensity(2, period=10.0)
    assert window.allow(0.0) and window.allow(1.0) and not window.allow(2.0)
    assert window.recent == 2
    assert window.allow(10.5) and not window.allow(10.9)
    assert RestartIntensity(0).allow(0.0) is False
