"""The backend seam as the supervisor's parts use it: nodes recorded, lost processes, adoption on resume."""

from __future__ import annotations

import signal

import pytest

from orchestrator.supervisor.backends.base import Known
from orchestrator.supervisor.recovery import LOST, recover
from swarm_core import messages as m
from swarm_core.status import Reason, Status
from tests.supervisor_harness import SupervisorRig

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def rig(tmp_path):
    r = SupervisorRig(tmp_path)
    r.spawner.node = "node-a"
    yield r
    r.close()


def test_the_node_an_agent_runs_on_is_recorded_and_listed(rig):
    """The backend's node goes into the registry and into ``ps --json``'s ``node``."""
    rig.root()
    rig.start("manager", "w")
    assert rig.table.get("w").node == "node-a"
    listed = rig.send("cli-test", m.ListAgents("all"))
    assert {a["id"]: a["node"] for a in listed.agents} == {"manager": "node-a", "w": "node-a"}


def test_a_lost_process_ends_its_agent_killed_node_unreachable(rig):
    """A Lost report ends the agent and its subtree killed (node_unreachable), blocked, its parent told."""
    rig.root()
    w = rig.start("manager", "w")
    leaf = rig.start("w", "leaf")
    rig.reconciler.on_lost(w.pid, Reason.NODE_UNREACHABLE)
    for agent in ("w", "leaf"):
        rec = rig.table.get(agent)
        assert (rec.status, rec.reason) == (Status.KILLED, Reason.NODE_UNREACHABLE)
        assert agent in rig.table.blocked
    assert rig.status("manager") == Status.RUNNING
    assert any("w was stopped: node_unreachable" in text for text in rig.inbox("manager"))
    assert rig.signaller.signals(leaf.pid) == [int(signal.SIGKILL)]  # the reachable one is killed


def test_a_lost_report_after_the_agent_ended_changes_nothing(rig):
    """A process lost after its agent ended (done) leaves the record as it was."""
    rig.root()
    w = rig.start("manager", "w")
    rig.send("w", m.AgentDone("w", True, "finished"))
    before = rig.table.get("w")
    rig.reconciler.on_lost(w.pid, Reason.NODE_UNREACHABLE)
    assert (rig.table.get("w").status, rig.table.get("w").reason) == (before.status, before.reason)


def test_recover_keeps_what_the_backend_adopts_and_ends_the_rest(rig):
    """On resume the backend decides which live agents are adopted (and where); the others end crashed."""
    rig.root()
    a, b = rig.start("manager", "a"), rig.start("manager", "b")
    asked: list[Known] = []

    def adopt(known: list[Known]) -> dict[int, str | None]:
        asked.extend(known)
        where = {"manager": "node-a", "a": "node-b"}
        return {k.pid: where[k.agent_id] for k in known if k.agent_id in where}

    adopted = recover(rig.table, rig.reaper, rig.log, adopt)
    assert sorted(adopted) == ["a", "manager"]
    assert (rig.table.get("a").node, rig.table.get("manager").node) == ("node-b", "node-a")
    manager = rig.table.get("manager").pid
    assert {(k.agent_id, k.pid, k.node) for k in asked} == {("manager", manager, "node-a"),
                                                          ("a", a.pid, "node-a"), ("b", b.pid, "node-a")}
    assert (rig.table.get("b").status, rig.table.get("b").reason) == (Status.CRASHED, LOST)
    assert "b" in rig.table.blocked and "a" not in rig.table.blocked


def test_each_incarnation_has_its_own_credential_bound_to_its_pid_and_revoked_when_it_ends(rig):
    """The backend issues the credential into the spec, the lifecycle binds it to the pid, and an exit or a
    loss revokes it (the keyring is the one the backend issued through)."""
    rig.root()
    w = rig.start("manager", "w")
    leaf = rig.start("w", "leaf")
    spec_cred = next(s.credential for s in rig.spawner.specs if s.agent_id == "w")
    assert rig.keys.current("w") is not None and spec_cred["key_id"] in rig.keys.principals
    assert rig.keys.bind_pid("w", w.pid)  # the same pid again: still good
    assert not rig.keys.bind_pid("leaf", leaf.pid + 1000)  # another process: leaked, revoked
    assert rig.keys.current("leaf") is None
    rig.reconciler.on_lost(w.pid, Reason.NODE_UNREACHABLE)
    assert rig.keys.current("w") is None and spec_cred["key_id"] not in rig.keys.principals
    assert rig.keys.current("manager") is not None
    manager = rig.table.get("manager")
    rig.reconciler.on_exit(manager.pid, 0)
    assert rig.keys.current("manager") is None
