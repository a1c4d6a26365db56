"""The gateway's ledger across a real kill -9: spend, rate windows and running calls survive a restart."""

from __future__ import annotations

import json
import os
import signal

import pytest

from bus import messages as bm
from swarm_core.errors import CallInterrupted, DeadlineExceeded, SwarmError, UnknownDestination
from tests.gateway_harness import complete, wait_until
from tests.integration.test_gateway import DONE, Pending

pytestmark = pytest.mark.timeout(120)


def _kill9_and_restart(rig, agent) -> None:
    """SIGKILL the gateway's process group, start a new gateway on the same run dir, wait until it answers."""
    os.killpg(rig.proc.pid, signal.SIGKILL)
    rig.proc.wait(10)
    rig.proc = rig.launch(rig.tmp / "swarm.yaml")

    def answers() -> bool:
        assert rig.proc.poll() is None, rig.output()
        try:
            agent.request("gateway", bm.Ping(b""), 1.0)
        except (UnknownDestination, DeadlineExceeded):
            return False
        except SwarmError:
            pass  # "does not handle ping": the new gateway is on the bus
        return True

    wait_until(answers, 60, "the second gateway to answer")


def test_spend_and_rate_windows_survive_a_kill_9(rig):
    """After kill -9 and a restart, totals go on from 3 requests and the spent rate window holds the 4th call."""
    rig.start(cassette={"a": {"responses": [DONE], "repeat": True}},
              quotas={"agent": {"requests_per_minute": 3}, "pause_seconds": 60})
    sup = rig.supervisor()
    agent = rig.client("a")
    for i in range(3):
        agent.request("gateway", complete("a", call_id=f"c{i}"), 10)
    tokens = wait_until(lambda: [u for u in sup.of("a") if u.requests == 3], 10, "usage of 3 calls")[-1].tokens
    _kill9_and_restart(rig, agent)
    held = Pending(agent, complete("a", call_id="c3"))
    throttled = wait_until(lambda: [u for u in sup.of("a") if u.status == "throttled"], 20,
                           "the 4th call throttled by the restored window", pump=lambda: agent.poll(0.01))
    assert (throttled[-1].requests, throttled[-1].tokens) == (3, tokens)
    agent.poll(0.1)
    assert held.reply is None


def test_a_call_running_at_the_crash_is_interrupted_and_its_retry_counted_once(rig):
    """The restarted gateway answers the running (budgeted, so reserved) call call_interrupted; the retry
    (same call id) is served on the old reservation and the agent's spend counts one request."""
    slow = {**DONE, "delay_s": 60}
    # the replay cursor is the agent's (persisted across the restart): the slow call took answer 0, so
    # the retry under the name "fast" reads that track's answer 1
    rig.start(cassette={"slow": [slow], "fast": [DONE, DONE]}, quotas={"agent": {"max_tokens": 100_000}})
    sup = rig.supervisor()
    agent = rig.client("a")
    pending = Pending(agent, complete("a", name="slow", call_id="x-1"), timeout=90)
    wait_until(lambda: _reserved(rig), 10, "the call's reservation in the ledger", pump=lambda: agent.poll(0.01))
    _kill9_and_restart(rig, agent)
    pending.wait(30, "the interrupted call's answer")
    assert pending.body.code == CallInterrupted.code
    again = agent.request("gateway", complete("a", name="fast", call_id="x-1"), 20)
    assert json.loads(again.text) == DONE
    usage = wait_until(lambda: sup.of("a"), 10, "usage after the retry")[-1]
    assert usage.requests == 1 and usage.tokens == again.prompt_tokens + again.completion_tokens
    assert not _reserved(rig)


def _reserved(rig) -> list:
    """Reservations of running calls in the ledger file."""
    import sqlite3

    path = rig.run_dir / "ledger.db"
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        try:
            return conn.execute("SELECT call_id FROM calls WHERE state = 'reserved'").fetchall()
        except sqlite3.OperationalError:
            return []
