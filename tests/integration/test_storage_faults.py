"""The memory service on a data directory that becomes full or read-only (a real tmpfs, a real process).

It answers each change with one clear ``storage_unavailable`` error (logged
once), keeps answering searches, and loses nothing it acknowledged: after a
kill -9 and a restart every acknowledged add is found.
"""

from __future__ import annotations

import json
import signal

import pytest

from memory.client import MemoryClient
from swarm_core.errors import StorageError
from tests.memory_harness import start_broker, start_service, stop_process, wait_ready
from tests.storage_harness import SmallDisk

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def memory_on_small_disk(tmp_path):
    """Factory: start (again) a memory service whose data dir is a 4 MiB tmpfs; all torn down."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    disk = SmallDisk(tmp_path / "small", 4)
    broker = start_broker(run_dir)
    bus = broker.client("cli-test-storage")  # the operator: it may read the statistics
    procs = []

    def start() -> tuple[MemoryClient, object]:
        proc = start_service(run_dir, "--data-dir", str(disk.path / "memory"))
        procs.append(proc)
        mc = MemoryClient(bus, timeout=60)
        wait_ready(mc, proc)
        return mc, proc

    try:
        yield disk, start, run_dir
    finally:
        bus.close()
        for proc in procs:
            stop_process(proc, grace=5)
        broker.stop()
        disk.unmount()


def events(run_dir, name: str) -> list[dict]:
    path = run_dir / "logs" / "memory.jsonl"
    return [e for e in map(json.loads, path.read_text().splitlines()) if e.get("event") == name]


def found(mc: MemoryClient, texts: dict[int, str]) -> bool:
    """Every (id, text) is the top hit of a search for its text."""
    return all(mc.search(t, k=3)[0]["id"] == i for i, t in texts.items())


def test_a_full_disk_refuses_adds_serves_searches_and_loses_nothing(memory_on_small_disk):
    """Full: adds get storage_unavailable (logged once), searches work; freed: adds work; all kept."""
    disk, start, run_dir = memory_on_small_disk
    mc, proc = start()
    acked = {mc.add(t)[0]: t for t in ("the kettle is in the kitchen", "the keys hang by the door")}
    disk.fill()
    for n in range(3):
        with pytest.raises(StorageError, match="cannot write.*nothing was changed"):
            mc.add(f"lost thought number {n}")
    assert found(mc, acked) and mc.stats()["storage_error"]
    assert len(events(run_dir, "memory_storage_failed")) == 1
    disk.free()
    acked.update({mc.add("the umbrella is in the hall")[0]: "the umbrella is in the hall"})
    assert len(events(run_dir, "memory_storage_recovered")) == 1
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    mc, _ = start()
    assert found(mc, acked) and mc.stats()["items"] == len(acked)


def test_on_a_read_only_disk_it_serves_searches_and_refuses_adds(memory_on_small_disk):
    """Restarted on a disk that became read-only: searches find every acknowledged add, adds are refused
    (one log line); back on a writable disk it takes adds again and has lost nothing.

    (A mounted filesystem cannot be made read-only under a process that holds a file open for writing:
    the kernel refuses with EBUSY, so the service meets the read-only disk when it is restarted.)
    """
    disk, start, run_dir = memory_on_small_disk
    mc, proc = start()
    acked = {mc.add(t)[0]: t for t in ("the boat is blue", "the bike is red")}
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    disk.remount(readonly=True)
    try:
        mc, proc = start()
        assert found(mc, acked)
        with pytest.raises(StorageError, match="cannot write"):
            mc.add("written to a read-only disk")
        assert len(events(run_dir, "memory_storage_failed")) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        disk.remount(readonly=False)
    mc, _ = start()
    assert found(mc, acked) and mc.stats()["items"] == len(acked)
    assert mc.add("the disk takes writes again")
