"""Identity and authorization on a live swarm: a valid agent credential gets nothing it may not have.

The swarm is real: its supervisor (its own code, run here in the test's
process so the test can enlist an intruder the way the supervisor enlists
an agent: a table record and a process-bound credential), its zygote and
agents, its gateway and memory service are real processes. The intruder
(``tests/identity_attacks.py``) is a real process too; it tries every
request and event an agent may not send, speaks as other peers, and
connects without a credential or with a forged one. Every attempt must
fail, leave a log line naming the intruder and the rule, and leave the
swarm working. A second test steals an agent's credential out of its
memory (as anyone able to read it would) and finds it useless elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from bus import messages as bm
from bus.client import BusClient
from orchestrator import runctl
from orchestrator.config import load_config
from orchestrator.supervisor.registry import AgentRecord, Registry
from orchestrator.supervisor.service import Supervisor
from swarm_core import messages as m
from swarm_core.errors import BusError
from swarm_core.peers import PeerKind
from tests.bus_harness import RecordingLog
from tests.support import wait_until

from .conftest import ROOT, alive, base_config, cmd

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT = {"responses": [cmd("do_nothing")], "repeat": True}
HELD_COMMAND = "write_to_file"
CASSETTE = {"manager": {"responses": [cmd("start_agent", name="w1", task="idle", role="worker"),
                                      cmd("start_agent", name="w2", task="idle", role="worker"),
                                      cmd("do_nothing")], "repeat": True},
            "w1": WAIT, "w2": WAIT}

# attack -> (where its refusal is logged, a fragment of that line's rule)
EXPECTED = {
    "Down": ("supervisor", "down from the agent intruder refused"),
    "KillAll": ("supervisor", "kill_all from the agent intruder refused"),
    "Freeze all": ("supervisor", "freeze from the agent intruder refused"),
    "OperatorMessage to the sibling": ("supervisor", "operator_message from the agent intruder refused"),
    "Inspect the sibling": ("supervisor", "inspect from the agent intruder refused"),
    "Stop the memory service": ("supervisor", "stop from the agent intruder refused"),
    "Stop the gateway": ("supervisor", "stop from the agent intruder refused"),
    "Stop the sibling": ("supervisor", "stop from the agent intruder refused"),
    "Freeze the sibling at the gateway": ("supervisor", "freeze from the agent intruder refused"),
    "DeleteAgent the sibling": ("supervisor", "w2 is not one of your sub-agents"),
    "message the sibling (outside its subtree)": ("supervisor", "w2 is not in your subtree"),
    "list every agent": ("supervisor", "lists only its own children"),
    "search the sibling's private memory": ("memory", "namespace 'agent:w2' is not yours"),
    "add to the sibling's private memory": ("memory", "namespace 'agent:w2' is not yours"),
    "clear shared memory": ("supervisor", "mem_clear from the agent intruder refused"),
    "memory statistics": ("supervisor", "mem_stats from the agent intruder refused"),
    "a model call billed to the sibling": ("gateway", "acts only for itself, not for 'w2'"),
    "a step report for the sibling": ("supervisor", "acts only for itself, not for 'w2'"),
    "report the sibling done": ("supervisor", "acts only for itself, not for 'w2'"),
    "ping the gateway": ("supervisor", "ping from the agent intruder refused"),
    "forged usage: the sibling's budget spent": ("supervisor", "usage from the agent intruder refused"),
    "forged breaker trip freezing the sibling": ("supervisor", "breaker_tripped from the agent intruder"),
    "inbox message to the sibling as the operator": ("supervisor", "inbox from the agent intruder refused"),
    "status report for the sibling": ("supervisor", "acts only for itself, not for 'w2'"),
    "lifecycle event published": ("supervisor", "lifecycle from the agent intruder refused"),
    "usage sent as the gateway": ("supervisor", "may not speak as 'gateway'"),
    "connect with a forged credential": ("supervisor", "unknown, forged or revoked credential"),
    "set its own budget": ("supervisor", "set_budget from the agent intruder refused"),
    "approve its own held request": ("supervisor", "decide from the agent intruder refused"),
    "forged budget exhaustion freezing the sibling": ("supervisor", "budget_exhausted from the agent intruder"),
    "a service restart announced to the sibling": ("supervisor", "service_restarted from the agent intruder"),
}
for _claimed in ("w2", "gateway", "memory", "supervisor", "cli-evil"):
    EXPECTED[f"speak as {_claimed}"] = ("supervisor", f"may not speak as '{_claimed}'")
NOT_LOGGED = {"connect with no credential": "libzmq refuses a handshake without security before ZAP is asked"}


class LiveSwarm:
    """A swarm whose supervisor runs in this process (its loop on a thread); ``close()`` ends it all."""

    def __init__(self, tmp: Path) -> None:
        (tmp / "cassette.yaml").write_text(yaml.safe_dump(CASSETTE))
        worker = {**base_config()["agents"]["worker"], "approve": [HELD_COMMAND]}  # a person approves these
        cfg = base_config(memory=True, limits={"idle_wait_seconds": 600, "max_wall_seconds": 600,
                                               "max_steps": 1000}, agents={"worker": worker})
        (tmp / "swarm.yaml").write_text(yaml.safe_dump(cfg))
        self.run_dir = tmp / "run"
        self.log = RecordingLog()
        self.sup = Supervisor(load_config(str(tmp / "swarm.yaml")), self.run_dir, self.log,
                              heartbeat_interval=0.5)
        self._thread: threading.Thread | None = None
        try:
            self.sup.start()
        except BaseException:
            self.sup.teardown()
            raise
        self._thread = threading.Thread(target=self.sup.run, name="supervisor-loop", daemon=True)
        self._thread.start()

    def agents(self) -> dict[str, dict[str, Any]]:
        reg = Registry(self.run_dir / "registry.db", readonly=True)
        try:
            return {r.id: r.public() for r in reg.all()}
        finally:
            reg.close()

    def on_loop(self, fn: Any) -> Any:
        """Run ``fn`` on the supervisor's loop thread (the one that owns its table) and return its result."""
        box: list[Any] = []
        self.sup.client.call_soon_threadsafe(lambda: box.append(fn()))  # type: ignore[union-attr]
        wait_until(lambda: box, 30, "the supervisor's loop")
        return box[0]

    def service_log(self, name: str) -> list[dict[str, Any]]:
        path = self.run_dir / "logs" / f"{name}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def close(self) -> None:
        self.sup.request_shutdown("test over")
        if self._thread is not None:
            self._thread.join(120)
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if any(str(self.run_dir) in part for part in proc.info["cmdline"] or ()):
                    proc.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue


@pytest.fixture
def live(tmp_path):
    swarm = LiveSwarm(tmp_path)
    try:
        yield swarm
    finally:
        swarm.close()


def enlist_intruder(live: LiveSwarm) -> tuple[subprocess.Popen, str]:
    """A child of the manager, with an agent credential bound to its process: a real agent's standing.

    Returns the process and the line to hand it on stdin (its task and credential).
    """
    def enlist() -> Any:
        live.sup.table.add(AgentRecord(id="intruder", name="intruder", role="worker", parent="manager",
                                       depth=1, task="attack"))
        return live.sup.keys.issue("intruder", PeerKind.AGENT, one_process=True)  # type: ignore[union-attr]

    cred = live.on_loop(enlist)
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "identity_attacks.py")], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert live.sup.keys.bind_pid("intruder", proc.pid)  # type: ignore[union-attr]
    task = {"endpoint": live.sup.endpoint, "credential": cred.to_dict(), "me": "intruder", "sibling": "w2",
            "held_command": HELD_COMMAND}
    return proc, json.dumps(task) + "\n"


def refusals(live: LiveSwarm) -> dict[str, list[str]]:
    """Every logged refusal that names the intruder, as text, by where it was logged."""
    def names_intruder(fields: dict[str, Any]) -> bool:
        return "intruder" in (fields.get("src"), fields.get("peer"), fields.get("authenticated")) or \
            str(fields.get("claimed", "")).startswith("intruder.")

    events = ("message_denied", "identity_refused", "authorization_denied", "bus_auth_refused")
    out = {"supervisor": [json.dumps(f) for event in events for f in live.log.named(event)
                          if names_intruder(f)]}
    for service in ("memory", "gateway"):
        out[service] = [json.dumps(e) for e in live.service_log(service)
                        if e.get("event") == "authorization_denied" and names_intruder(e)]
    return out


def test_an_intruder_with_a_valid_agent_credential_gets_nothing_and_the_swarm_goes_on(live):
    """Every forbidden request, event and borrowed id is refused with a log line; the swarm keeps working."""
    def both_up() -> bool:
        agents = live.agents()
        return all(agents.get(k, {}).get("status") in ("running", "waiting") for k in ("w1", "w2"))

    wait_until(both_up, 120, "w1 and w2 up")
    operator = runctl.bus_client(live.run_dir)
    try:
        from memory.client import MemoryClient

        memory = MemoryClient(operator, timeout=60)
        memory.add(["w2's private note: the vault code is 0451"], namespace="agent:w2")
        before = live.agents()["w2"]
        proc, task = enlist_intruder(live)
        out, err = proc.communicate(task, timeout=180)
        assert proc.returncode == 0, err
        outcomes = json.loads(out)
        print("\n" + "\n".join(f"{'BROKE' if o['succeeded'] else 'held '}  {k}: {o['detail'][:120]}"
                               for k, o in outcomes.items()))

        control = outcomes.pop("control: its own ping to the broker")
        assert control["succeeded"], control  # the intruder was connected all along: refusals were decisions
        assert {k: o["detail"] for k, o in outcomes.items() if o["succeeded"]} == {}
        assert set(outcomes) == set(EXPECTED) | set(NOT_LOGGED)

        # every refusal left a line naming the intruder and the rule
        logged = refusals(live)
        for attack, (where, rule) in EXPECTED.items():
            wait_until(lambda where=where, rule=rule: any(rule in line for line in refusals(live)[where]), 30,
                       f"the log line of {attack!r}")
        assert logged["supervisor"]

        # its own held request was never approved (it waited for a person until the intruder was stopped)
        rid = outcomes["approve its own held request"]["request"]
        assert live.on_loop(lambda: live.sup.table.approvals.get(rid).state.value) in ("pending", "cancelled")

        # nothing the forged events asked for happened to the sibling
        after = live.agents()["w2"]
        assert after["status"] in ("running", "waiting") and before["tokens"] <= after["tokens"] < 10**9
        assert after["reason"] is None and after["steps"] < 99
        assert not [e for e in live.service_log("w2") if e.get("event") == "inbox_received"]
        hits = memory.search("vault code", k=5, namespaces=["agent:w2"])
        assert [h["text"] for h in hits] == ["w2's private note: the vault code is 0451"]

        # and the swarm works: the operator's controls, the agents, the gateway, the memory
        listing = operator.request("supervisor", m.ListAgents("all"), 10).agents
        assert {"manager", "w1", "w2", "intruder"} <= {a["id"] for a in listing}
        assert operator.request("supervisor", m.Freeze("w1", True, "test"), 10).info == {"agents": 1}
        assert operator.request("supervisor", m.Freeze("w1", False, "test"), 10).info == {"agents": 1}
        steps = live.agents()["w2"]["steps"]
        operator.request("supervisor", m.OperatorMessage("w2", "still there?"), 10)
        wait_until(lambda: [e for e in live.service_log("w2") if e.get("event") == "inbox_received"
                            and e.get("text") == "still there?"], 60, "w2 to hear the operator")
        # woken by the news, w2 takes a step: a model call through the gateway, a verdict from the supervisor
        wait_until(lambda: live.agents()["w2"]["steps"] > steps, 60, "w2 to take another step")
        assert all(alive(a["pid"]) for k, a in live.agents().items() if k != "intruder")
    finally:
        operator.close()


SECRET = re.compile(rb"[A-Za-z0-9_-]{43}")


def steal_credential_secret(pid: int, verifier: str) -> str | None:
    """Read a live process's memory (as its owner or root may) for the secret of SHA-256 ``verifier``."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            span, perms = fields[:2]
            if not perms.startswith("rw") or (len(fields) > 5 and fields[5] != "[heap]"):
                continue  # the heap and anonymous memory: where a process keeps what it was given
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            for found in SECRET.findall(chunk):
                if hashlib.sha256(found).hexdigest() == verifier:
                    return found.decode()
    return None


def test_an_agent_credential_stolen_from_its_memory_is_useless_elsewhere(swarm):
    """Taken out of a live agent's memory, its credential is refused to any other process (and logged)."""
    run = swarm(base_config(), {"manager": WAIT})
    run.up()
    agents = run.wait_for(lambda a: a.get("manager", {}).get("status") in ("running", "waiting"),
                          what="manager up")
    store = json.loads((run.run_dir / "credentials.json").read_text())
    entry = next(e for e in store["entries"] if e["peer"] == "manager")
    secret = steal_credential_secret(agents["manager"]["pid"], entry["verifier"])
    assert secret is not None  # it is in there: the agent holds it in memory, and nowhere else
    cred = runctl.operator_credential(run.run_dir)
    stolen = type(cred)("manager", "agent", entry["key_id"], "plain", secret)
    thief = BusClient(runctl.endpoint_of(run.run_dir), "manager", credential=stolen, heartbeat_interval=0.2,
                      liveness=2)
    thief.connect()
    try:
        with pytest.raises(BusError):
            thief.request("broker", bm.Ping(b"it's me, the manager"), 2.0)
    finally:
        thief.close(bye=False)
    refusals = [e for e in run.log_events("supervisor") if e.get("event") == "bus_auth_refused"]
    assert any(f"credential of manager (pid {agents['manager']['pid']}) presented by pid" in e["rule"]
               for e in refusals), refusals
    assert run.agents()["manager"]["status"] in ("running", "waiting")  # the real one is untouched
    assert run.cli("ps", "--json", check=True).returncode == 0
