"""The Ray backend's own logic over fake host links (no cluster): placement, keys, exits, restarts, losses.

The keys are enrolled in a real keyring (``bus.keyring``): the one credential scheme of every backend.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

pytest.importorskip("ray")

import zmq  # noqa: E402

from bus.keyring import Keyring  # noqa: E402
from orchestrator.config import parse_config  # noqa: E402
from orchestrator.supervisor.backends.base import Exited, Lost  # noqa: E402
from orchestrator.supervisor.backends.onray.driver import RayBackend  # noqa: E402
from orchestrator.supervisor.backends.onray.links import LOST, READY  # noqa: E402
from swarm_core.spec import AgentSpec  # noqa: E402
from swarm_core.status import Reason  # noqa: E402
from tests.supervisor_harness import NullLog  # noqa: E402


class FakeLink:
    """A host link whose host answers from a script; records calls and signals."""

    def __init__(self, node: str, first_pid: int) -> None:
        self.node, self.state = node, READY
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.signals: list[tuple[list[int], int]] = []
        self.deferred: list[tuple[list[int], int]] = []
        self.answers: dict[str, Any] = {}
        self.next_pid = first_pid
        self.publics: dict[str, str] = {}

    def call(self, method: str, *args: Any, timeout: float) -> Any:
        self.calls.append((method, args))
        if method == "spawn":
            self.next_pid += 1
            return self.next_pid
        if method == "issue_key":  # the host makes the pair on its node; only the public key comes back
            public, _ = zmq.curve_keypair()
            self.publics[args[0]] = public.decode()
            return {"public": public.decode()}
        return self.answers[method]

    def signal(self, pgids: list[int], sig: int) -> bool:
        self.signals.append((pgids, sig))
        return self.state != LOST

    def take_deferred(self) -> list[tuple[list[int], int]]:
        out, self.deferred = self.deferred, []
        return out


@pytest.fixture
def rig(tmp_path):
    cfg = parse_config(yaml.safe_dump({
        "name": "t", "goal": "g", "root": "manager", "llm": {"provider": "local"},
        "bus": {"transport": "tcp"},
        "agents": {"manager": {"role": "m"}, "writer": {"role": "w"}},
        "backend": {"kind": "ray", "address": "local", "placement": {"writer": "swarm_node_1"}}}),
        str(tmp_path / "s.yaml"))
    reports: list[Any] = []
    keys = Keyring("curve")
    backend = RayBackend(cfg, tmp_path / "run", reports.append, NullLog(), keys)
    links = {"n0": FakeLink("n0", 7000), "n1": FakeLink("n1", 8000)}
    backend.links = links  # type: ignore[assignment]
    backend._resources = {"n0": {"swarm_node": 1, "swarm_node_0": 1},
                          "n1": {"swarm_node": 1, "swarm_node_1": 1}}
    return backend, links, reports, keys


def _spec(agent_id: str, role: str) -> AgentSpec:
    return AgentSpec(agent_id=agent_id, name=agent_id, role_name=role, role=role, task="t", commands=(),
                     endpoint="tcp://127.0.0.1:5555", run_dir="/run")


def test_a_spawn_is_placed_keyed_and_forked_on_its_node(rig):
    """A writer goes to the node offering swarm_node_1; its node's public key is enrolled as its credential
    before it is forked, and the spec carries that credential without any secret."""
    backend, links, _, keys = rig
    placed = backend.spawn(_spec("w1", "writer"))
    assert placed.node == "n1" and backend.owns(placed.pid)
    assert [c[0] for c in links["n1"].calls] == ["issue_key", "spawn"] and links["n0"].calls == []
    raw = links["n1"].calls[1][1][0]
    cred = raw["credential"]
    assert cred["public"] == links["n1"].publics["w1"] and cred["secret"] == ""
    assert cred["server"] == keys.server_public.decode() and cred["peer"] == "w1" and cred["kind"] == "agent"
    assert keys.current("w1") is not None and keys.principals[cred["key_id"]].peer == "w1"


def test_signals_go_to_the_owning_host_only(rig):
    """A signal for an agent goes to its node's host; a pgid nobody owns is refused."""
    backend, links, _, _ = rig
    pid = backend.spawn(_spec("w1", "writer")).pid
    assert backend.signaller.send(pid, 9) is True
    assert links["n1"].signals == [([pid], 9)] and links["n0"].signals == []
    assert backend.signaller.send(424242, 9) is False


def test_exits_are_reported_once_with_their_code(rig):
    """An exit of an owned agent is reported exactly (then forgotten; the lifecycle revokes its key)."""
    backend, links, reports, _ = rig
    pid = backend.spawn(_spec("w1", "writer")).pid
    backend.exits(links["n1"], [[1, pid, -9], [2, pid, -9], [3, 31337, 0]])
    assert reports == [Exited(pid, -9)] and not backend.owns(pid)


def test_a_restarted_host_adopts_the_survivors_and_gets_the_kept_signals(rig):
    """After a restart the host adopts the node's agents, the gone ones end unseen, kept signals go again."""
    backend, links, reports, _ = rig
    alive, dead = backend.spawn(_spec("w1", "writer")).pid, backend.spawn(_spec("w2", "writer")).pid
    link = links["n1"]
    link.answers["adopt"] = {"adopted": [alive], "gone": [dead]}
    link.deferred = [([alive], 15)]
    backend.restarted(link)
    assert sorted(p for p, _ in link.calls[-1][1][0]) == sorted([alive, dead])
    assert reports == [Exited(dead, None)] and backend.owns(alive)
    assert link.signals == [([alive], 15)]


def test_a_lost_host_ends_its_agents_and_sweeps_them_when_it_answers_again(rig):
    """A lost host's agents are reported lost (node_unreachable) at once; when it answers, it kills them."""
    backend, links, reports, _ = rig
    mine = backend.spawn(_spec("w1", "writer")).pid
    other = backend.spawn(_spec("m", "manager")).pid
    link = links["n1"]
    backend.lost(link)
    assert reports == [Lost(mine, Reason.NODE_UNREACHABLE)]
    assert not backend.owns(mine) and backend.owns(other)
    link.answers["sweep"] = [mine]
    backend.back(link)
    assert link.calls[-1][0] == "sweep" and [p for p, _ in link.calls[-1][1][0]] == [mine]


def test_the_term_grace_is_the_kill_timeout(rig):
    """On Ray, SIGTERM → SIGKILL takes backend.kill_timeout_ms, whatever the ladder's grace."""
    backend, _, _, _ = rig
    assert backend.term_grace(2.0) == 0.3
