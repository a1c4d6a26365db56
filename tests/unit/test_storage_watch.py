"""The supervisor when its registry refuses writes: one clear line, changes refused, reads served.

The refusing disk is simulated with SQLite's ``query_only`` pragma (every
write fails as on a read-only file); tests/system/test_storage_faults.py
fills and remounts a real tmpfs under a running swarm.
"""

from __future__ import annotations

import pytest

from bus.protocol import Kind, Message, make_header
from orchestrator.supervisor.storage import PROBE_EVERY, StorageWatch
from swarm_core import messages as m
from swarm_core.errors import StorageError
from tests.supervisor_harness import SupervisorRig

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def rig(tmp_path):
    r = SupervisorRig(tmp_path)
    r.watch = StorageWatch(r.table, r.log, r.clock)
    r.guarded = {t: r.watch.guard(t, h) for t, h in r.handlers.items()}
    yield r
    r.close()


def ask(rig: SupervisorRig, src: str, body) -> object:
    return rig.guarded[type(body)](Message(make_header(Kind.REQUEST, body.TYPE, src, "supervisor"), body))


def refuse_writes(rig: SupervisorRig, refuse: bool) -> None:
    rig.table.registry.connection.execute(f"PRAGMA query_only = {'ON' if refuse else 'OFF'}")


def failures(rig: SupervisorRig) -> list[dict]:
    return [kw for event, kw in rig.log.events if event == "registry_storage_failed"]


def test_a_refused_write_is_one_clear_error_and_one_log_line(rig):
    """The first refused change and every one after it get StorageError naming the registry; logged once."""
    rig.root()
    refuse_writes(rig, True)
    for _ in range(3):
        with pytest.raises(StorageError, match="registry .* cannot be written.*nothing was changed"):
            ask(rig, "cli-1", m.OperatorMessage("manager", "hello"))
    assert len(failures(rig)) == 1 and "readonly" in failures(rig)[0]["error"]
    refuse_writes(rig, False)
    assert rig.table.inbox.all() == []


def test_reads_are_served_while_changes_are_refused(rig):
    """While degraded, list and inspect answer; a start_agent is refused before anything is spawned."""
    rig.root()
    refuse_writes(rig, True)
    with pytest.raises(StorageError):
        ask(rig, "cli-1", m.OperatorMessage("manager", "hello"))
    assert [a["id"] for a in ask(rig, "cli-1", m.ListAgents("all")).agents] == ["manager"]
    assert ask(rig, "cli-1", m.Inspect("manager")).info["id"] == "manager"
    spawned = len(rig.spawner.specs)
    with pytest.raises(StorageError):
        ask(rig, "manager", m.StartAgent("w", "task", role="worker"))
    assert len(rig.spawner.specs) == spawned


def test_writes_are_taken_again_once_a_probe_succeeds(rig):
    """The probe (every PROBE_EVERY s) finds the registry writable again: changes are accepted."""
    rig.root()
    refuse_writes(rig, True)
    with pytest.raises(StorageError):
        ask(rig, "cli-1", m.OperatorMessage("manager", "first"))
    rig.watch.probe()
    assert rig.watch.problem  # still refused
    refuse_writes(rig, False)
    rig.clock.advance(PROBE_EVERY / 2)
    rig.watch.probe()
    assert rig.watch.problem  # not probed again yet
    rig.clock.advance(PROBE_EVERY)
    rig.watch.probe()
    assert not rig.watch.problem
    assert ask(rig, "cli-1", m.OperatorMessage("manager", "second")).info["message_id"]
    assert [e for e, _ in rig.log.events].count("registry_storage_recovered") == 1


def test_the_loop_goes_on_when_its_own_writes_are_refused(rig):
    """A crash reaped while the registry refuses writes degrades the supervisor; it does not end it."""
    rig.root()
    w = rig.start("manager", "w")
    refuse_writes(rig, True)
    rig.watch.run(lambda: rig.reconciler.on_exit(w.pid, -9))
    assert len(failures(rig)) == 1 and rig.watch.problem
