"""``backend: ray`` on a private two-node Ray cluster: real supervisor, hosts, zygotes and agents.

Each test starts its own swarm with ``backend: {kind: ray, address: local,
local_nodes: 2}`` (a private cluster of two simulated nodes on this machine,
started by the supervisor in its own session, its temp dir under the test's
short temp dir, usage stats off) and checks what the issue asks: placement
across nodes, kills of subtrees and of a stopped agent, the STOP file, the
adoption of agents by a restarted host, and that ``swarm down`` leaves no
process behind, the cluster's included. Timings are generous bounds only:
the figures are in ``bench/backend.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any, Callable

import psutil
import pytest

from orchestrator import runctl
from swarm_core import messages as m
from tests.system.conftest import SwarmRun, alive, base_config, cmd, wait_until

pytest.importorskip("ray")

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.timeout(300)]

WAIT = {"responses": [cmd("do_nothing")], "repeat": True}
UP = 120.0  # a private cluster starts in 8-14 s here; much more on a loaded machine


def ray_config(placement: dict[str, str], **over: Any) -> dict[str, Any]:
    """A test swarm on a private two-node cluster, its bus on tcp."""
    return base_config(bus={"transport": "tcp", "host": "127.0.0.1", "port": 0},
                       backend={"kind": "ray", "address": "local", "local_nodes": 2, "placement": placement},
                       **over)


def starts(*children: tuple[str, str], then: dict[str, Any] | None = None) -> dict[str, Any]:
    """Answers that start (name, role) children, then wait for ever (or ``then``)."""
    return {"responses": [cmd("start_agent", name=n, task=f"task of {n}", role=r) for n, r in children]
            + [then or cmd("do_nothing")], "repeat": True}


class RaySwarm:
    """A SwarmRun in a short temp dir (Ray's socket paths must fit), and what it left behind."""

    def __init__(self, config: dict[str, Any], cassette: dict[str, Any]) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="swr-", dir="/tmp"))
        self.run = SwarmRun(self.tmp, config, cassette)
        self.session: int | None = None  # the supervisor's session: the private cluster lives in it

    def up(self, *extra: str) -> None:
        self.run.up(*extra)
        self.session = self.run.supervisor_pid()
        assert self.session and os.getsid(self.session) == self.session

    def left_behind(self) -> list[str]:
        """Processes of this swarm still alive: its session (cluster, hosts), zygotes, agents."""
        out = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            try:
                if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.info["pid"] == os.getpid():
                    continue
                ours = (self.session and os.getsid(proc.info["pid"]) == self.session) \
                    or any(str(self.run.run_dir) in part for part in proc.info["cmdline"] or ()) \
                    or proc.info["pid"] in self.run.seen_pids
                if ours:
                    out.append(f"{proc.info['pid']} {' '.join(proc.info['cmdline'] or [])[:120]}")
            except (psutil.NoSuchProcess, ProcessLookupError, PermissionError):
                continue
        return out

    def teardown(self) -> None:
        try:
            self.run.teardown()
        finally:
            for line in self.left_behind():  # only what this swarm started
                try:
                    os.kill(int(line.split()[0]), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def ray_swarm():
    """Factory: ``ray_swarm(config, cassette) -> RaySwarm``; every one torn down, even on failure."""
    made: list[RaySwarm] = []

    def make(config: dict[str, Any], cassette: dict[str, Any]) -> RaySwarm:
        made.append(RaySwarm(config, cassette))
        return made[-1]

    yield make
    for sw in made:
        sw.teardown()


def _confined(pid: int) -> bool:
    """no_new_privs (Landlock's condition) in a user namespace other than ours."""
    with open(f"/proc/{pid}/status") as f:
        nnp = "NoNewPrivs:\t1" in f.read()
    return nnp and os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")


def _in_session(pid: int, sid: int) -> bool:
    try:
        return os.getsid(pid) == sid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
        return False


def _gone(pids: list[int]) -> Callable[[], bool]:
    return lambda: not any(alive(p) for p in pids)


def _running(*ids: str) -> Callable[[dict[str, dict[str, Any]]], bool]:
    return lambda a: all(a.get(i, {}).get("status") in ("running", "waiting") for i in ids)


def test_the_replay_demo_runs_across_two_nodes_and_down_leaves_nothing(ray_swarm):
    """Manager on node 0, its writers forced onto node 1: the right files, both nodes in ps, nothing left."""
    cassette = {
        "manager": [cmd("start_agent", name="writer", task="the haiku", role="writer"),
                    cmd("start_agent", name="editor", task="the title", role="writer"),
                    cmd("do_nothing"), cmd("do_nothing"), cmd("task_complete", reason="both written")],
        "writer": [cmd("write_to_file", file="haiku.txt", text="grey waves fold and break\n"),
                   cmd("task_complete", reason="haiku.txt")],
        "editor": [cmd("write_to_file", file="title.txt", text="The Sea\n"),
                   cmd("task_complete", reason="ok")],
    }
    cfg = ray_config({"manager": "swarm_node_0", "writer": "swarm_node_1"},
                     agents={"manager": base_config()["agents"]["manager"] | {"can_start": ["writer"]},
                             "writer": {"role": "a writer", "commands": ["write_to_file", "task_complete"]}})
    sw = ray_swarm(cfg, cassette)
    assert "OK" in sw.run.cli("validate", str(sw.run.config_path), check=True).stdout
    sw.up()
    agents = sw.run.wait_for(lambda a: a.get("manager", {}).get("status") == "done", UP, "the manager done")
    assert (sw.run.workspace / "haiku.txt").read_text() == "grey waves fold and break\n"
    assert (sw.run.workspace / "title.txt").read_text() == "The Sea\n"
    listed = json.loads(sw.run.cli("ps", "--json", check=True).stdout)
    nodes = {a["id"]: a["node"] for a in listed}
    assert set(nodes) == {"manager", "writer", "editor"} and all(len(n) == 12 for n in nodes.values())
    assert nodes["writer"] == nodes["editor"] != nodes["manager"]
    assert all(a["status"] == "done" for a in agents.values())
    # the agents' key pairs were made on their nodes and never written: no key file, no secret stored
    assert not (sw.run.run_dir / "keys").exists()
    assert "secret" not in json.dumps(json.loads((sw.run.run_dir / "credentials.json").read_text())["entries"])
    down = sw.run.cli("down", check=True)
    assert "is down" in down.stdout
    assert sw.left_behind() == []
    assert (sw.run.run_dir / "ray").is_dir()  # Ray's temp dir was the run's


def test_kills_on_two_nodes_subtree_stopped_agent_lost_host_and_stop_file(ray_swarm):
    """Confined agents on 2 nodes; exact crash signal; kills of subtree, stopped agent, silent host; STOP."""
    leaves = [(f"leaf{i}", "worker") for i in range(6)]
    cassette = {"manager": starts(("hub", "worker"), ("sleeper", "worker"), ("spare", "worker"),
                                  ("spare2", "worker"), ("victim", "worker")),
                "hub": starts(*leaves), **{name: WAIT for name in ("sleeper", "spare", "spare2", "victim")},
                **{name: WAIT for name, _ in leaves}}
    sw = ray_swarm(ray_config({"manager": "swarm_node_0", "worker": "swarm_node_1"}), cassette)
    sw.up()
    ids = ["manager", "hub", "sleeper", "spare", "spare2", "victim", *(n for n, _ in leaves)]
    agents = sw.run.wait_for(_running(*ids), UP, "twelve agents running")
    pids = {i: agents[i]["pid"] for i in ids}
    assert all(_confined(p) for p in pids.values())
    userns = {os.readlink(f"/proc/{p}/ns/user") for p in pids.values()}
    assert len(userns) == 2  # one zygote (user + mount namespace) per node
    workers = {agents[i]["node"] for i in ids if i != "manager"}
    assert workers == {agents["hub"]["node"]} and agents["manager"]["node"] not in workers

    os.kill(pids["victim"], signal.SIGSEGV)  # its node's zygote reaps it: the exact signal comes back
    crashed = sw.run.wait_for(lambda a: a["victim"]["status"] == "crashed", 30, "the victim's crash seen")
    assert crashed["victim"]["reason"] == "SIGSEGV (segfault)"

    os.kill(pids["sleeper"], signal.SIGSTOP)
    sw.run.cli("kill", "sleeper", check=True)
    wait_until(_gone([pids["sleeper"]]), 30, "the stopped agent killed")
    assert sw.run.agents()["sleeper"]["status"] == "killed"

    subtree = [pids["hub"]] + [pids[n] for n, _ in leaves]
    sw.run.cli("kill", "hub", check=True)  # waits until every pid of the subtree is gone
    assert not any(alive(p) for p in subtree)
    after = sw.run.agents()
    assert {(after[i]["status"], after[i]["reason"]) for i in ["hub", *(n for n, _ in leaves)]} == \
        {("killed", "operator")}

    host = psutil.Process(pids["spare"]).parent().parent()  # agent → its node's zygote → the host actor
    host.suspend()  # the host stops answering: a kill sent to it gets no answer
    try:
        runctl.ask(sw.run.run_dir, m.DeleteAgent("spare", reason="operator", hard=True))
        lost = sw.run.wait_for(lambda a: a["spare2"]["status"] == "killed", 30, "spare2 ended")
        assert lost["spare2"]["reason"] == "node_unreachable"
        why = [e.get("why") for e in sw.run.log_events("supervisor") if e.get("event") == "host_unreachable"]
        assert why == ["a kill was not answered within 0.5s"]
    finally:
        host.resume()
    wait_until(_gone([pids["spare"], pids["spare2"]]), 30, "the host back, sweeping both")

    (sw.run.run_dir / "STOP").touch()
    final = sw.run.wait_for(lambda a: a["manager"]["status"] == "killed", 30, "the STOP file")
    assert final["manager"]["reason"] == "stop_file"
    wait_until(_gone(list(pids.values())), 30, "no agent process left")
    sw.run.cli("down", check=True)
    assert sw.left_behind() == []


def test_killed_host_and_killed_supervisor_both_leave_agents_adopted(ray_swarm):
    """A SIGKILLed host restarts and adopts its agents; so does a resumed supervisor; none is left unowned."""
    cassette = {"manager": starts(("w1", "worker"), ("w2", "worker")), "w1": WAIT, "w2": WAIT}
    sw = ray_swarm(ray_config({"manager": "swarm_node_0", "worker": "swarm_node_1"}), cassette)
    sw.up()
    agents = sw.run.wait_for(_running("manager", "w1", "w2"), UP, "three agents running")
    w1, w2 = agents["w1"]["pid"], agents["w2"]["pid"]
    zygote = psutil.Process(w1).parent()
    host = zygote.parent()
    assert "zygote" in " ".join(zygote.cmdline()) and os.getsid(host.pid) == sw.session
    host.kill()  # the host actor's worker process: Ray restarts the actor on the same node

    def adopted() -> bool:
        events = sw.run.log_events("supervisor")
        return any(e.get("event") == "host_adopted" and sorted(e.get("adopted", [])) == sorted([w1, w2])
                   for e in events)

    wait_until(adopted, 90, "the restarted host adopting w1 and w2")
    assert alive(w1) and alive(w2)
    now = sw.run.agents()
    assert now["w1"]["status"] in ("running", "waiting") and now["w2"]["status"] in ("running", "waiting")
    new_zygotes = [p for p in psutil.Process(host.pid).children() if "zygote" in " ".join(p.cmdline())] \
        if psutil.pid_exists(host.pid) else []
    assert zygote.pid not in [z.pid for z in new_zygotes]

    sw.run.cli("kill", "w1", check=True)  # the new incarnation owns w1: its kill goes through
    assert not alive(w1) and sw.run.agents()["w1"]["status"] == "killed"

    os.kill(sw.session, signal.SIGKILL)  # the supervisor dies; its private cluster is ended on resume
    wait_until(lambda: not alive(sw.session), 30, "the supervisor gone")
    sw.run.up("--resume")
    old_session, sw.session = sw.session, sw.run.supervisor_pid()
    assert not [p for p in psutil.pids() if _in_session(p, old_session)]
    resumed = sw.run.wait_for(_running("manager", "w2"), UP, "manager and w2 adopted")
    assert resumed["w2"]["pid"] == w2 and alive(w2) and resumed["w2"]["node"]
    os.kill(w2, signal.SIGKILL)  # an adopted agent dying is still seen (pidfd), code unknown
    ended = sw.run.wait_for(lambda a: a["w2"]["status"] == "crashed", 30, "w2's end seen")
    assert "exit code unknown" in ended["w2"]["reason"]
    sw.run.cli("down", check=True)
    assert sw.left_behind() == []
