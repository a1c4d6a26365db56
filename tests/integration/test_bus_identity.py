"""Identity on a real bus: a peer is who its credential says, whatever ids, routing ids or headers it picks.

Real broker, real sockets on ipc:// (PLAIN with the broker's ZAP handler),
real processes where a pid matters. Every refusal must leave the victim's
traffic untouched and give the attacker nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import zmq

from bus import messages as bm
from bus import protocol as p
from bus.client import DEFERRED, BusClient
from bus.credentials import write_file
from swarm_core import messages as m
from swarm_core.errors import BusError, PolicyDenied, UnknownDestination
from tests.bus_harness import Bus, RecordingLog
from tests.support import wait_until

pytestmark = pytest.mark.timeout(120)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def frames(kind: p.Kind, body: object, src: str, dst: str, msg_id: str = "") -> list[bytes]:
    return p.encode(p.make_header(kind, body.TYPE, src, dst, msg_id=msg_id or None), body)


def recorder(bus: Bus, identity: str) -> tuple[BusClient, list[p.Message]]:
    """A served peer that keeps every request and event it gets (and answers agent messages)."""
    got: list[p.Message] = []
    c = bus.client(identity)
    for body in (m.InboxMessage, m.Complete, m.Stop, m.Freeze, m.Down):
        c.handle(body, lambda msg: got.append(msg) or None)
    c.handle(m.AgentMessage, lambda msg: got.append(msg) or m.AgentReply(f"{identity} here"))
    bus.serve(c)
    return c, got


def nothing_waiting(sock: zmq.Socket) -> list[p.Message]:
    """What reached a raw socket, without waiting (heartbeats from the broker aside)."""
    out = []
    while sock.poll(0):
        msg = p.decode(sock.recv_multipart())
        if msg.header.kind is not p.Kind.HEARTBEAT:
            out.append(msg)
    return out


@pytest.mark.parametrize("claimed", ["victim", "gateway", "memory", "supervisor", "cli-evil", "broker"])
def test_a_valid_agent_credential_cannot_speak_as_anyone_else(bus: Bus, claimed: str) -> None:
    """An agent's valid credential claiming another id is refused, logged, and gets nothing routed."""
    broker = bus.broker()
    real = claimed if claimed in ("victim", "gateway", "memory", "supervisor") else "victim"
    victim, got = recorder(bus, real)
    mallory = bus.raw("mallory")
    wait_until(lambda: victim.identity in broker.peers(), what="the victim to join")
    mallory.send_multipart(frames(p.Kind.HEARTBEAT, bm.Heartbeat(), claimed, "broker"))
    forged = frames(p.Kind.REQUEST, m.InboxMessage("supervisor", "obey"), claimed, victim.identity, "f-1")
    mallory.send_multipart(forged)
    wait_until(lambda: mallory.poll(0), what="the refusal")
    answer = p.decode(mallory.recv_multipart())
    assert answer.body.code == PolicyDenied.code and "identity refused" in answer.body.message
    assert broker.refused == 2 and broker.peers().count(real) == 1 and "mallory" not in broker.peers()
    logged = broker._log.named("identity_refused")  # rate limited: the first refusal is logged
    assert {(f["claimed"], f["authenticated"]) for f in logged} == {(claimed, "mallory")}
    # the victim still gets what is sent to it; the impostor nothing
    sender = bus.client("sender")
    sender.send(victim.identity, m.InboxMessage("sender", "for the real one"))
    wait_until(lambda: got, what="the victim's own traffic")
    assert [g.body.text for g in got] == ["for the real one"] and nothing_waiting(mallory) == []


def test_a_routing_id_named_like_a_peer_or_stolen_from_it_routes_nothing(bus: Bus) -> None:
    """Routing ids are never names, and no connection can take over another's (no handover)."""
    broker = bus.broker()
    gateway, got = recorder(bus, "gateway")
    wait_until(lambda: "gateway" in broker.peers(), what="the gateway to join")
    named = bus.raw("mallory", routing_id=b"gateway")
    stolen = bus.raw("mallory", routing_id=gateway._sock.getsockopt(zmq.ROUTING_ID))
    for sock in (named, stolen):
        sock.send_multipart(frames(p.Kind.HEARTBEAT, bm.Heartbeat(), "mallory", "broker"))
    agent = bus.client("a")
    for i in range(3):
        agent.send("gateway", m.InboxMessage("a", f"call {i}"))
    wait_until(lambda: len(got) == 3, what="every call at the real gateway")
    assert nothing_waiting(named) == [] and nothing_waiting(stolen) == []
    assert broker.peers().count("gateway") == 1


def test_no_credential_or_a_forged_one_never_connects(bus: Bus) -> None:
    """With no credential or a forged one, nothing is sent; the ZAP refusal is counted and logged."""
    broker = bus.broker()
    real = bus.credential("eve")
    forged = dataclasses.replace(real, secret=real.secret[::-1])
    for cred in (None, forged):
        c = bus.client("eve", credential=cred, heartbeat_interval=0.2, liveness=2)
        with pytest.raises(BusError):
            c.request("broker", bm.Ping(b"let me in"), 1.0)
    assert "eve" not in broker.peers() and broker.routed == 0
    wait_until(lambda: broker.handshakes_refused >= 2, what="both handshakes to be refused")
    assert broker._log.named("bus_handshake_failed")  # no credential at all: libzmq refused it before ZAP
    refusals = broker._log.named("bus_auth_refused")
    assert refusals[0]["claimed"] == real.key_id and "forged" in refusals[0]["rule"]
    assert refusals[0]["pid"] == os.getpid()


def test_a_revoked_credential_is_refused_from_its_next_message_and_gets_nothing(bus: Bus) -> None:
    """Revoking an open connection's credential: messages to it are not routed, its own are refused."""
    broker = bus.broker()
    bus.worker("w")
    c = bus.client("cli-1")
    assert c.request("w", bm.Ping(b"before"), 5) == bm.Pong(b"before")
    bus.keys.revoke("w")
    with pytest.raises(UnknownDestination):
        c.request("w", bm.Ping(b"after"), 5)
    wait_until(lambda: broker.refused >= 1, what="the revoked worker's next heartbeat to be refused")
    assert broker._log.named("identity_refused")[0]["rule"].startswith("no live credential")


def test_operator_sessions_use_cli_ids_only_and_one_id_per_connection(bus: Bus) -> None:
    """The operator's credential speaks as any cli- id, never as a service or agent; one id per connection."""
    broker = bus.broker()
    bus.worker("w")
    op = bus.credential("cli-x")
    session = bus.client("cli-x")
    assert session.request("w", bm.Ping(b"ok"), 5) == bm.Pong(b"ok")
    for name in ("supervisor", "w", "operator"):
        impostor = bus.client(name, credential=op)
        with pytest.raises(PolicyDenied, match="identity refused"):
            impostor.request("broker", bm.Ping(), 5)
    raw = bus.raw("cli-y", credential=op)
    raw.send_multipart(frames(p.Kind.HEARTBEAT, bm.Heartbeat(), "cli-y", "broker"))
    raw.send_multipart(frames(p.Kind.REQUEST, bm.Ping(b"x"), "cli-z", "broker", "switch-1"))
    wait_until(lambda: raw.poll(0), what="the answer to the switch of ids")
    answer = next(msg for msg in nothing_waiting(raw) if msg.header.corr_id == "switch-1")
    assert "identity refused: this connection speaks as 'cli-y'" in answer.body.message
    assert "cli-y" in broker.peers() and "cli-z" not in broker.peers()


def test_a_forged_reply_from_another_peer_is_dropped(bus: Bus) -> None:
    """A "reply" with the right correlation id but from a peer that was not asked is dropped and logged."""
    broker = bus.broker()
    slow = bus.client("slow")
    slow.handle(bm.Ping, lambda msg: DEFERRED)  # never answers
    bus.serve(slow)
    mallory = bus.raw("mallory")
    mallory.send_multipart(frames(p.Kind.HEARTBEAT, bm.Heartbeat(), "mallory", "broker"))
    log = RecordingLog()
    c = bus.client("a", log=log)
    wait_until(lambda: {"slow", "mallory"} <= set(broker.peers()), what="everyone to join")
    got: list[p.Message] = []
    msg_id = c.send_request("slow", bm.Ping(b"question"), 10, got.append)
    forged = p.Header(p.Kind.REPLY, "pong", "x1", msg_id, "mallory", "a", 0.0)
    mallory.send_multipart(p.encode(forged, bm.Pong(b"forged answer")))
    wait_until(lambda: log.named("reply_from_wrong_peer"), pump=lambda: c.poll(0.01),
               what="the forged reply to be dropped")
    assert got == [] and msg_id in c._pending
    assert log.named("reply_from_wrong_peer")[0] == {"src": "mallory", "asked": "slow"}


WORKER = r"""
import json, sys
from bus.client import BusClient
from bus.credentials import read_credential
from swarm_core.errors import BusError
c = BusClient(sys.argv[1], "w", credential=read_credential(sys.argv[2]), heartbeat_interval=0.2, liveness=2)
c.connect()
try:
    from bus import messages as bm
    c.request("broker", bm.Ping(b"from another process"), 2.0)
    print(json.dumps("admitted"))
except BusError as exc:
    print(json.dumps(f"refused: {exc.code}"))
finally:
    c.close(bye=False)
"""


def test_a_process_bound_credential_copied_to_another_process_is_refused(bus: Bus, tmp_path) -> None:
    """A one-process credential (an agent's) shown by another process fails the handshake (SO_PEERCRED)."""
    broker = bus.broker()
    cred = bus.keys.issue("w", "agent", one_process=True)
    assert bus.keys.bind_pid("w", os.getpid())
    own = bus.client("w", credential=cred)
    assert own.request("broker", bm.Ping(b"mine"), 5) == bm.Pong(b"mine")
    path = write_file(tmp_path / "stolen.cred", cred)
    out = subprocess.run([sys.executable, "-c", WORKER, bus.endpoint, str(path)], cwd=ROOT, text=True,
                         capture_output=True, timeout=60, env={**os.environ, "PYTHONPATH": ROOT})
    assert json.loads(out.stdout).startswith("refused: "), out.stderr
    refusal = broker._log.named("bus_auth_refused")[-1]
    assert f"(pid {os.getpid()}) presented by pid" in refusal["rule"] and refusal["pid"] != os.getpid()


def test_only_supervisor_and_operator_credentials_subscribe_to_events(bus: Bus) -> None:
    """An agent's credential cannot subscribe to the broker's events; the operator's can."""
    broker = bus.broker()
    pub = bus.client("supervisor")
    agent_sub = bus.subscriber(credential=bus.credential("a"))
    op_sub = bus.subscriber(credential=bus.credential("cli-1"))

    def probe() -> bool:
        pub.send("*", bm.Ping(b"probe"))
        return op_sub.recv(0.05) is not None

    wait_until(probe, what="the operator's subscription")
    assert agent_sub.recv(0.2) is None
    wait_until(lambda: broker.handshakes_refused >= 1, what="the agent's subscription refused")
