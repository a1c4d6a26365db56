"""kill -9 of the memory service process in the middle of 1 000 adds loses nothing acknowledged."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from bus.protocol import Kind
from memory.client import MemoryClient
from swarm_core import messages as m
from tests.memory_harness import start_broker, start_service, stop_process, wait_ready, wait_until

DIM = 384
TOTAL = 1000
IN_FLIGHT = 8


@pytest.fixture
def crash_env(tmp_path):
    """A broker thread and a list of service processes, every one reaped at teardown."""
    broker = start_broker(tmp_path)
    procs = []
    bus = broker.client("cli-test-crasher")
    try:
        yield tmp_path, bus, procs
    finally:
        bus.close()
        for p in procs:
            stop_process(p)
        broker.stop()


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [137, 611])
def test_kill_9_during_adds_loses_nothing_acknowledged(crash_env, kill_after):
    """Every add acknowledged before a SIGKILL is found, text and all, after a restart."""
    run_dir, bus, procs = crash_env
    # small snapshot threshold: snapshots are being written while the process dies
    extra = ("--snapshot-bytes", "150000")
    procs.append(start_service(run_dir, *extra))
    mc = MemoryClient(bus, timeout=60)
    wait_ready(mc, procs[-1])
    vecs = np.random.default_rng(kill_after).standard_normal((TOTAL, DIM)).astype(np.float32)
    acked: dict[int, int] = {}  # item index -> id
    state = {"sent": 0, "inflight": 0}

    def on_reply(i: int):
        def cb(msg) -> None:
            state["inflight"] -= 1
            if msg.header.kind is Kind.REPLY:
                acked[i] = msg.body.ids[0]
        return cb

    def send(i: int) -> None:
        bus.send_request("memory", m.MemAdd("agent:crash", [f"item {i}"], [{"i": i}],
                                            [vecs[i].tolist()]), 60, on_reply(i))
        state["sent"] += 1
        state["inflight"] += 1

    def pump() -> bool:
        while state["inflight"] < IN_FLIGHT and state["sent"] < TOTAL:
            send(state["sent"])
        bus.poll(0.01)
        return len(acked) >= kill_after

    wait_until(pump, 120, f"{kill_after} acknowledged adds", step=0)
    # the kill comes from the test's progress, not from a timer: stop the service wherever it is
    # (adds are being processed), queue more adds it can never answer, then kill it
    os.kill(procs[-1].pid, signal.SIGSTOP)
    late = list(range(state["sent"], state["sent"] + IN_FLIGHT))
    for i in late:
        send(i)
    os.kill(procs[-1].pid, signal.SIGKILL)
    assert procs[-1].wait(10) == -signal.SIGKILL
    bus.poll(0.2)  # replies the service sent before it stopped may still arrive
    assert not set(late) & set(acked), "adds sent to a stopped service cannot have been acknowledged"
    snapshot_dirs = list((run_dir / "memory" / "snapshots").glob("0*"))

    procs.append(start_service(run_dir, *extra))
    stats = wait_ready(mc, procs[-1])
    assert len(acked) <= stats["namespaces"]["agent:crash"] <= state["sent"]
    for i, item_id in acked.items():
        top = mc.search("", k=1, namespaces=["agent:crash"], vector=vecs[i].tolist())[0]
        assert (top["id"], top["text"], top["metadata"]) == (item_id, f"item {i}", {"i": i})
    if kill_after > 500:
        assert snapshot_dirs, "with 600+ adds of 1.5 KiB a snapshot should have been taken"
    # the restarted service keeps going where the ids left off
    new = mc.add(["after the crash"], namespace="agent:crash", vectors=[vecs[0].tolist()])
    assert new[0] > max(acked.values())
