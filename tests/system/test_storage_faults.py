"""A running swarm whose run directory fills up (a real 24 MiB tmpfs under the run dir): the supervisor
refuses changes with one clear line, keeps serving reads, loses nothing it accepted, and takes changes
again once there is room."""

from __future__ import annotations

import pytest

from orchestrator.supervisor.inbox import InboxBook
from orchestrator.supervisor.registry import Registry
from tests.storage_harness import SmallDisk
from tests.system.conftest import base_config, cmd, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def small_run_dir(tmp_path):
    disk = SmallDisk(tmp_path / "run", 24)
    yield disk
    disk.unmount()


def kept(run) -> list[str]:
    reg = Registry(run.run_dir / "registry.db", readonly=True)
    try:
        return [n.text for n in InboxBook(reg.connection, readonly=True).all()]
    finally:
        reg.close()


def test_a_full_run_dir_refuses_changes_serves_reads_and_recovers(swarm, small_run_dir):
    """Full: swarm send fails with one line naming the registry (exit 9), ps works, nothing accepted is
    lost; with room again the next send is accepted."""
    run = swarm(base_config(), {"manager": {"responses": [cmd("do_nothing")], "repeat": True}})
    assert run.run_dir == small_run_dir.path
    run.up()
    run.wait_for(lambda a: a.get("manager", {}).get("status") in ("running", "waiting"), what="manager up")
    run.cli("send", "manager", "before the disk filled", check=True)
    small_run_dir.fill()

    def refused():
        p = run.cli("send", "manager", "while the disk is full")
        return p if p.returncode != 0 else None

    p = wait_until(refused, 30, "a refused send")  # (SQLite may still have had a free page or two)
    assert p.returncode == 9 and len(p.stderr.strip().splitlines()) == 1
    assert "registry" in p.stderr and "cannot be written" in p.stderr and "Traceback" not in p.stderr
    accepted = kept(run)
    assert accepted[0] == "before the disk filled"
    assert refused() and kept(run) == accepted  # refused up front now: nothing is kept
    assert run.agents()["manager"]["status"] in ("running", "waiting")  # reads are served
    small_run_dir.free()
    wait_until(lambda: run.cli("send", "manager", "after the disk was freed").returncode == 0, 30,
               "a send accepted again")
    assert kept(run) == accepted + ["after the disk was freed"]
