"""Integration tests of the bus: a real Broker, real BusClients and raw sockets on ipc:// (tcp:// for curve).

Every socket, client, broker and serving thread a test creates is recorded
by the ``bus`` fixture (``tests/bus_harness.py``) and torn down at the end,
even when the test fails. Every peer presents a credential the fixture's
keyring issued (the identity attacks are in ``test_bus_identity.py``).
Waits poll a condition until a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path
from typing import Any, Callable

import msgpack  # to craft raw frames a well-behaved client never sends
import pytest
import zmq

from bus import messages as bm
from bus import protocol as p
from bus.broker import Broker
from bus.client import DEFERRED, BusClient
from bus.credentials import Credential
from bus.events import EventSubscriber
from bus.keyring import Keyring
from bus.sockets import ipc_endpoint
from swarm_core import messages as m
from swarm_core.errors import (
    BusError,
    DeadlineExceeded,
    InvalidRequest,
    PeerBusy,
    PolicyDenied,
    ProtocolError,
    UnknownDestination,
)
from tests.bus_harness import Bus, RecordingLog
from tests.support import wait_until

pytestmark = pytest.mark.timeout(120)





def next_event(sub: EventSubscriber, pred: Callable[[p.Message], bool], timeout: float = 10.0,
               pump: Callable[[], None] | None = None) -> p.Message:
    """The first event satisfying ``pred`` (others are skipped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = sub.recv(0.02)
        if msg is not None and pred(msg):
            return msg
        if pump is not None:
            pump()
    raise AssertionError("expected event was not published")


def raw_request(sock: zmq.Socket, header: bytes, body: bytes, timeout: float = 5.0) -> p.Message:
    """Send raw frames and return the decoded answer."""
    sock.send_multipart([header, body])
    if not sock.poll(int(timeout * 1000)):
        raise AssertionError("no answer to a raw request")
    return p.decode(sock.recv_multipart())


def header_bytes(kind: p.Kind, type_name: str, src: str, dst: str, msg_id: str = "", **kw: Any) -> bytes:
    return p.encode_header(p.make_header(kind, type_name, src, dst, msg_id=msg_id or None, **kw))


# ------------------------------------------------------------------ routing

def test_events_are_routed_between_peers(bus: Bus) -> None:
    """An event sent to a peer id reaches that peer's handler, with the sender as src."""
    bus.broker()
    got: list[p.Message] = []
    b = bus.client("bob")
    b.handle(m.InboxMessage, got.append)
    a = bus.client("alice")
    wait_until(lambda: "bob" in bus.brokers[0].peers(), what="bob to join")
    a.send("bob", m.InboxMessage("alice", "hello bob"))
    wait_until(lambda: got, pump=lambda: b.poll(0.01), what="bob to receive the event")
    assert got[0].body == m.InboxMessage("alice", "hello bob")
    assert got[0].header.src == "alice" and got[0].header.kind is p.Kind.EVENT


def test_request_reply(bus: Bus) -> None:
    """A request to a serving peer returns its reply body; the broker itself answers Ping."""
    broker = bus.broker()
    bus.worker()
    c = bus.client("client")
    wait_until(lambda: "worker" in broker.peers(), what="the worker to join")
    assert c.request("worker", bm.Ping(b"x" * 4096), 5) == bm.Pong(b"x" * 4096)
    assert c.request("broker", bm.Ping(b"hi"), 5) == bm.Pong(b"hi")
    assert broker.routed >= 2


def test_many_pipelined_requests_all_answered(bus: Bus) -> None:
    """Hundreds of requests in flight are each answered once, matched by correlation id."""
    broker = bus.broker()
    bus.worker()
    c = bus.client("client")
    wait_until(lambda: "worker" in broker.peers(), what="the worker to join")
    replies: dict[str, bytes] = {}
    sent = {}
    for i in range(500):
        payload = str(i).encode()
        msg_id = c.send_request("worker", bm.Ping(payload), 10,
                                lambda msg: replies.__setitem__(msg.header.corr_id, msg.body.payload))
        sent[msg_id] = payload
    wait_until(lambda: len(replies) == len(sent), pump=lambda: c.poll(0.01), what="all replies")
    assert replies == sent


def test_broker_handles_unknown_request_types_with_an_error(bus: Bus) -> None:
    """A request to the broker of a type it does not serve gets invalid_request, not silence."""
    bus.broker()
    c = bus.client("client")
    with pytest.raises(InvalidRequest, match="does not handle list_agents"):
        c.request("broker", m.ListAgents(), 5)


def test_star_messages_are_published_by_topic(bus: Bus) -> None:
    """A message sent to "*" is published with its type as topic; subscribers filter on it."""
    bus.broker()
    c = bus.client("supervisor")
    sub = bus.synced_subscriber(c, topics=(m.Lifecycle.TYPE,))
    c.send("*", m.InboxMessage("x", "not subscribed"))
    c.send("*", m.Lifecycle("a1", "spawned", "running"))
    msg = next_event(sub, lambda e: e.type != bm.Ping.TYPE)
    assert msg.body == m.Lifecycle("a1", "spawned", "running")
    assert msg.header.src == "supervisor"


# --------------------------------------------------------- deadlines, errors

def test_deadline_expires_and_late_reply_is_discarded(bus: Bus) -> None:
    """A request raises DeadlineExceeded at its deadline even while stale replies keep arriving; late replies are dropped."""
    broker = bus.broker()
    held: list[p.Message] = []
    w = bus.client("slow")
    w.handle(bm.Ping, lambda msg: held.append(msg) or DEFERRED)
    w.handle(m.AgentMessage, lambda msg: m.AgentReply("prompt " + msg.body.text))

    def answer_stale() -> None:
        # answer the first (already expired) request again and again: a client that
        # restarted its wait on every message would never reach its deadline
        if len(held) >= 2:
            w.reply(held[0], bm.Pong(b"late"))

    bus.serve(w, answer_stale)
    c = bus.client("client")
    wait_until(lambda: "slow" in broker.peers(), what="the slow peer to join")
    with pytest.raises(DeadlineExceeded):
        c.request("slow", bm.Ping(b"first"), 0.2)
    with pytest.raises(DeadlineExceeded):
        c.request("slow", bm.Ping(b"second"), 0.5)
    assert len(held) == 2
    # the next request gets its own reply, never a stale Pong
    assert c.request("slow", m.AgentMessage("hi"), 5) == m.AgentReply("prompt hi")
    assert c._replies == {} and c._pending == {}


def test_send_request_callback_expires_at_its_deadline(bus: Bus) -> None:
    """An unanswered send_request gets one deadline_exceeded at its deadline; the late reply is dropped."""
    broker = bus.broker()
    held: list[p.Message] = []
    w = bus.client("slow")
    w.handle(bm.Ping, lambda msg: held.append(msg) or DEFERRED)

    def answer_late_then(msg: p.Message) -> m.AgentReply:
        w.reply(held[0], bm.Pong(b"late"))  # travels ahead of this handler's own reply
        return m.AgentReply("after the late pong")

    w.handle(m.AgentMessage, answer_late_then)
    bus.serve(w)
    c = bus.client("client")
    wait_until(lambda: "slow" in broker.peers(), what="the slow peer to join")
    got: list[tuple[float, p.Message]] = []
    sent_at = time.time()
    c.send_request("slow", bm.Ping(b"not answered in time"), 0.3, lambda msg: got.append((time.time(), msg)))
    wait_until(lambda: got, pump=lambda: c.poll(0.02), what="the deadline error")
    called_at, reply = got[0]
    assert reply.header.kind is p.Kind.ERROR and reply.body.code == DeadlineExceeded.code
    assert called_at - sent_at >= 0.3 and c._pending == {}
    assert len(held) == 1  # it did arrive; the peer just never answered in time
    assert c.request("slow", m.AgentMessage("now"), 5) == m.AgentReply("after the late pong")
    assert len(got) == 1 and c._replies == {} and c._pending == {}


def test_unknown_destination_gets_an_error_reply(bus: Bus) -> None:
    """A request to an id no peer has raises UnknownDestination; an event to it is logged, not delivered."""
    broker = bus.broker()
    c = bus.client("client")
    with pytest.raises(UnknownDestination, match="ghost"):
        c.request("ghost", bm.Ping(), 5)
    c.send("ghost", m.InboxMessage("client", "anyone?"))
    wait_until(lambda: broker.undeliverable >= 2, what="the event to be counted undeliverable")
    assert broker._log.named("message_undeliverable")[0]["dst"] == "ghost"


def test_full_peer_queue_gives_peer_busy_and_others_still_flow(bus: Bus) -> None:
    """A peer that never reads fills its bounded queue: senders get PeerBusy and other routes keep working."""
    broker = bus.broker(peer_queue=4)
    sink = bus.raw("sink", RCVHWM=1)
    sink.send_multipart(p.encode(p.make_header(p.Kind.HEARTBEAT, "heartbeat", "sink", "broker"),
                                 bm.Heartbeat()))
    wait_until(lambda: "sink" in broker.peers(), what="the sink to join")
    bus.worker()
    c = bus.client("client")
    errors: list[str] = []

    def on_reply(msg: p.Message) -> None:
        if msg.header.kind is p.Kind.ERROR:
            errors.append(msg.body.code)

    payload = b"x" * 65536  # fills the socket buffers between broker and sink quickly

    def push() -> None:
        for _ in range(8):
            c.send_request("sink", bm.Ping(payload), 30, on_reply)
        c.poll(0.01)

    wait_until(lambda: PeerBusy.code in errors, pump=push, timeout=30, what="a peer_busy reply")
    assert set(errors) == {PeerBusy.code}, errors

    def request_refused_busy() -> bool:
        try:
            c.request("sink", bm.Ping(), 0.5)
        except PeerBusy:
            return True
        except DeadlineExceeded:
            return False  # the queue had drained by one; this request fills it again
        raise AssertionError("a sink that never reads answered")

    wait_until(request_refused_busy, timeout=30, what="request() to raise PeerBusy")
    assert c.request("worker", bm.Ping(b"still flowing"), 5) == bm.Pong(b"still flowing")


def test_oversized_message_is_refused_with_an_error(bus: Bus) -> None:
    """A request above the broker's max_bytes gets a protocol_error reply and is not routed."""
    broker = bus.broker(max_bytes=10_000)
    bus.worker()
    c = bus.client("client", max_bytes=1 << 20)
    wait_until(lambda: "worker" in broker.peers(), what="the worker to join")
    with pytest.raises(ProtocolError, match="exceeds the limit of 10000"):
        c.request("worker", bm.Ping(b"x" * 20_000), 5)
    assert c.request("worker", bm.Ping(b"small"), 5) == bm.Pong(b"small")


# ----------------------------------------------------------------- liveness

def test_dead_peer_detected_within_liveness_window(bus: Bus) -> None:
    """A peer that goes silent is declared dead after interval*liveness, published, and then refused."""
    # a 1 s window: a served client that a loaded machine starves for a few hundred ms stays alive
    broker = bus.broker(heartbeat_interval=0.2, liveness=5)
    c = bus.client("client", heartbeat_interval=0.2)
    bus.serve(c)
    sub = bus.synced_subscriber(bus.client("prober", heartbeat_interval=0.2), (bm.PeerEvent.TYPE,))
    zombie = bus.raw("zombie")
    zombie.send_multipart(p.encode(p.make_header(p.Kind.HEARTBEAT, "heartbeat", "zombie", "broker"),
                                   bm.Heartbeat()))
    joined = next_event(sub, lambda e: e.body == bm.PeerEvent("joined", "zombie"))
    left = next_event(sub, lambda e: e.body == bm.PeerEvent("left", "zombie", "dead"))
    assert left.header.src == "broker"
    assert "zombie" not in broker.peers() and "client" in broker.peers()
    dead = [f for f in broker._log.named("peer_dead") if f["peer"] == "zombie"]
    assert len(dead) == 1 and dead[0]["silent_s"] > 1.0  # never before interval * liveness
    # the broker heartbeated the zombie while it was alive
    assert zombie.poll(5000) and p.decode(zombie.recv_multipart()).header.kind is p.Kind.HEARTBEAT
    assert joined.header.kind is p.Kind.EVENT


def test_liveness_window_with_a_fake_clock(tmp_path: Path) -> None:
    """With a fake clock: alive up to interval*liveness of silence, dead just after, alive again when it speaks."""
    now = [1000.0]
    log = RecordingLog()
    keys = Keyring()
    broker = Broker(ipc_endpoint(tmp_path, "bus"), ipc_endpoint(tmp_path, "pub"),
                    heartbeat_interval=1.0, liveness=3, clock=lambda: now[0], log=log, keyring=keys)
    ctx = zmq.Context()
    peer = ctx.socket(zmq.DEALER)
    try:
        broker.bind()
        peer.setsockopt(zmq.LINGER, 0)
        peer.setsockopt(zmq.IDENTITY, b"p1")
        keys.issue("p1", "agent").apply_client(peer)
        peer.connect(broker.bound_endpoint)
        hb = p.encode(p.make_header(p.Kind.HEARTBEAT, "heartbeat", "p1", "broker"), bm.Heartbeat())
        peer.send_multipart(hb)
        wait_until(lambda: broker.step(0.05) and broker.peers() == ["p1"], what="p1 to join")
        now[0] += 3.0
        broker.tick()
        assert broker.peers() == ["p1"]  # exactly the window: still alive
        assert peer.poll(1000) and p.decode(peer.recv_multipart()).header.kind is p.Kind.HEARTBEAT
        now[0] += 0.01
        broker.tick()
        assert broker.peers() == []
        assert log.named("peer_dead")[0]["peer"] == "p1"
        assert broker.table.is_dead(b"p1")
        peer.send_multipart(hb)
        wait_until(lambda: broker.step(0.05) and broker.peers() == ["p1"], what="p1 to rejoin")
        assert not broker.table.is_dead(b"p1")
        assert [f["peer"] for f in log.named("peer_joined")] == ["p1", "p1"]
    finally:
        peer.close(linger=0)
        broker.stop()
        ctx.term()


def test_bye_publishes_left_bye(bus: Bus) -> None:
    """A client closing with Bye is forgotten at once and a PeerEvent("left", id, "bye") is published."""
    broker = bus.broker()
    sub = bus.synced_subscriber(bus.client("prober"), (bm.PeerEvent.TYPE,))
    leaver = BusClient(bus.endpoint, "leaver", context=bus.ctx, credential=bus.credential("leaver"))
    leaver.connect()
    try:
        next_event(sub, lambda e: e.body == bm.PeerEvent("joined", "leaver"))
    finally:
        leaver.close()
    next_event(sub, lambda e: e.body == bm.PeerEvent("left", "leaver", "bye"))
    assert "leaver" not in broker.peers()


# --------------------------------------------------------------- robustness

def _garbage(rng: random.Random, i: int) -> list[bytes]:
    """Junk frames of many shapes: random bytes, bad frame counts, near-valid headers."""
    body = p.encode_body(bm.Ping(b"junk"))
    shapes = [
        lambda: [rng.randbytes(rng.randint(0, 64))],
        lambda: [rng.randbytes(rng.randint(0, 64)) for _ in range(rng.randint(2, 5))],
        lambda: [msgpack.packb([p.VERSION + 1, 0, "ping", f"v{i}", "", "junk", "worker", 0.0]), body],
        lambda: [msgpack.packb([p.VERSION, 42, "ping", f"k{i}", "", "junk", "worker", 0.0]), body],
        lambda: [msgpack.packb([p.VERSION, 0, "ping", f"s{i}", "", "worker", "client", 0.0]), body],
        lambda: [msgpack.packb([p.VERSION, 0, "ping", f"t{i}", "", "junk", "worker"]), body],
        lambda: [msgpack.packb({"not": "an array"}), body],
        lambda: [b"\xdd\xff\xff\xff\xff", body],  # an array claiming 4 billion items
        # over max_bytes but under the socket's hard MAXMSGSIZE: answered, not disconnected
        lambda: [header_bytes(p.Kind.REQUEST, "ping", "junk", "worker", msg_id=f"o{i}"),
                 b"x" * ((1 << 20) + 100)],
        lambda: [],
    ]
    frames = rng.choice(shapes)()
    return frames or [b""]


def test_broker_survives_garbage_and_still_routes(bus: Bus) -> None:
    """Ten thousand junk messages are counted and dropped; the broker keeps routing correctly."""
    broker = bus.broker(max_bytes=1 << 20)
    bus.worker()
    c = bus.client("client")
    wait_until(lambda: "worker" in broker.peers(), what="the worker to join")
    junk = bus.raw("junk", SNDHWM=100_000)
    rng = random.Random(1234)
    n = 10_000
    for i in range(n):
        junk.send_multipart(_garbage(rng, i))
    # malformed: bad_frames; well-formed but claiming another sender: refused
    wait_until(lambda: broker.bad_frames + broker.refused >= n, timeout=60,
               what="every junk message to be handled")
    assert broker.bad_frames + broker.refused == n and broker.refused > 0
    assert broker.routed == 0 and "junk" not in broker.peers()
    # answers went back for what looked like requests; nothing junk sent reached the worker
    answers = 0
    while junk.poll(0):
        msg = p.decode(junk.recv_multipart())
        assert msg.header.kind is p.Kind.ERROR and msg.body.code in (ProtocolError.code, PolicyDenied.code)
        answers += 1
    assert answers > 0
    for i in range(20):
        assert c.request("worker", bm.Ping(str(i).encode()), 5) == bm.Pong(str(i).encode())
    assert broker._thread is not None and broker._thread.is_alive()


def test_spoofed_src_is_rejected(bus: Bus) -> None:
    """A header src other than the credential's peer is refused (policy_denied), counted and logged."""
    broker = bus.broker()
    got: list[p.Message] = []
    victim = bus.client("victim")
    victim.handle(m.InboxMessage, got.append)
    mallory = bus.raw("mallory")
    wait_until(lambda: "victim" in broker.peers(), what="the victim to join")
    forged = header_bytes(p.Kind.REQUEST, "inbox", "supervisor", "victim", msg_id="forged-1")
    answer = raw_request(mallory, forged, p.encode_body(m.InboxMessage("supervisor", "obey")))
    assert answer.header.kind is p.Kind.ERROR and answer.header.corr_id == "forged-1"
    assert answer.body.code == PolicyDenied.code and "identity refused" in answer.body.message
    # an honest event sent after the forged one arrives; the forged one never did
    mallory.send_multipart(p.encode(p.make_header(p.Kind.EVENT, "inbox", "mallory", "victim"),
                                    m.InboxMessage("mallory", "honest")))
    wait_until(lambda: got, pump=lambda: victim.poll(0.01), what="the honest event")
    assert [g.body.text for g in got] == ["honest"]
    assert broker.refused == 1 and "supervisor" not in broker.peers()
    logged = broker._log.named("identity_refused")[0]
    assert (logged["claimed"], logged["authenticated"]) == ("supervisor", "mallory")


def test_wrong_version_request_gets_an_error_reply(bus: Bus) -> None:
    """A request-shaped header of another version is answered with protocol_error naming the version."""
    bus.broker()
    raw = bus.raw("old-client")
    hdr = msgpack.packb([p.VERSION + 1, int(p.Kind.REQUEST), "ping", "v-1", "", "old-client", "broker", 0.0])
    answer = raw_request(raw, hdr, p.encode_body(bm.Ping()))
    assert answer.header.corr_id == "v-1" and answer.body.code == ProtocolError.code
    assert "version" in answer.body.message


@pytest.mark.parametrize("body, reason", [
    (msgpack.packb({"not": "an array"}), "not an array"),
    (msgpack.packb([1, 2, 3, 4]), "fields"),
    (b"\xc1", "body"),  # a byte msgpack never uses
])
def test_malformed_body_to_a_client_gets_an_error_reply(bus: Bus, body: bytes, reason: str) -> None:
    """A request whose body does not decode gets a protocol_error reply naming the reason (no silence);
    the next valid request is served."""
    broker = bus.broker()
    worker = bus.worker()
    raw = bus.raw("mallory")
    wait_until(lambda: "worker" in broker.peers(), what="the worker to join")
    answer = raw_request(raw, header_bytes(p.Kind.REQUEST, "ping", "mallory", "worker", msg_id="bad-1"), body)
    assert answer.header.kind is p.Kind.ERROR and answer.header.corr_id == "bad-1"
    assert answer.header.src == "worker" and answer.body.code == ProtocolError.code
    assert reason in answer.body.message
    assert worker.bad_frames == 1
    good = raw_request(raw, header_bytes(p.Kind.REQUEST, "ping", "mallory", "worker", msg_id="good-1"),
                       p.encode_body(bm.Ping(b"ok")))
    assert good.header.kind is p.Kind.REPLY and good.body == bm.Pong(b"ok")


def test_malformed_reply_fails_the_request_at_once(bus: Bus) -> None:
    """A reply whose body does not decode fails the waiting request with protocol_error, not a timeout."""
    broker = bus.broker()
    raw = bus.raw("liar")
    c = bus.client("asker")
    raw.send_multipart(p.encode(p.make_header(p.Kind.EVENT, "ping", "liar", "broker"), bm.Ping()))
    wait_until(lambda: "liar" in broker.peers() and "asker" in broker.peers(), what="both to join")
    result: list[p.Message] = []
    c.send_request("liar", bm.Ping(b"?"), 30.0, result.append)
    assert raw.poll(5000), "the request reaches the raw peer"
    request = p.decode(raw.recv_multipart())
    raw.send_multipart([header_bytes(p.Kind.REPLY, "pong", "liar", "asker", corr_id=request.header.msg_id),
                        msgpack.packb("garbage")])
    started = time.monotonic()
    wait_until(lambda: result, pump=lambda: c.poll(0.01), what="the request to fail")
    assert time.monotonic() - started < 10  # not the 30 s deadline
    assert result[0].header.kind is p.Kind.ERROR and result[0].body.code == ProtocolError.code
    assert "malformed reply from liar" in result[0].body.message


# ------------------------------------------------------------------ restart

def test_client_reconnects_after_broker_restart(bus: Bus) -> None:
    """After the broker stops and a new one binds the same endpoint, requests work again."""
    first = bus.broker()
    bus.worker()
    c = bus.client("client")
    wait_until(lambda: "worker" in first.peers(), what="the worker to join")
    assert c.request("worker", bm.Ping(b"before"), 5) == bm.Pong(b"before")
    first.stop()
    # silence: the client notices within its liveness window and reconnects itself
    wait_until(lambda: c.reconnects >= 1, pump=lambda: c.poll(0.02), what="the client to reconnect")
    second = bus.broker()

    def works() -> bool:
        try:
            return c.request("worker", bm.Ping(b"after"), 1) == bm.Pong(b"after")
        except (UnknownDestination, DeadlineExceeded):
            return False

    wait_until(works, timeout=20, what="a request through the new broker")
    assert {"client", "worker"} <= set(second.peers())



def test_pending_request_fails_fast_when_a_new_broker_answers(bus: Bus) -> None:
    """A request pending when its broker is replaced fails with BusError at the new broker's first heartbeat, not at its deadline."""
    first = bus.broker()
    held: list[p.Message] = []
    w = bus.client("slow")
    w.handle(bm.Ping, lambda msg: held.append(msg) or DEFERRED)
    bus.serve(w)
    c = bus.client("client")
    wait_until(lambda: "slow" in first.peers(), what="the slow peer to join")
    wait_until(lambda: c._broker, pump=lambda: c.poll(0.02), what="a heartbeat naming the first broker")
    got: list[p.Message] = []
    c.send_request("slow", bm.Ping(b"never answered"), 600, got.append)
    wait_until(lambda: held, pump=lambda: c.poll(0.02), what="the request to reach the slow peer")
    first.stop()
    bus.broker()  # same endpoint: the client's socket reconnects by itself
    wait_until(lambda: got, pump=lambda: c.poll(0.02), timeout=60, what="the pending request to fail")
    assert got[0].header.kind is p.Kind.ERROR and got[0].body.code == "bus_error"
    assert "broker restarted" in got[0].body.message and c._pending == {}


# ----------------------------------------------------------------- policy

def test_interceptor_denies_requests_and_drops_events(bus: Bus) -> None:
    """A denied request raises PolicyDenied with the reason; a denied event is dropped and logged."""
    def gate(h: p.Header, sender_kind: str) -> str | None:
        return "agent frozen" if h.src == "frozen" and h.type != m.AgentMessage.TYPE else None

    broker = bus.broker(interceptor=gate)
    got: list[p.Message] = []
    target = bus.client("target")
    target.handle(m.InboxMessage, got.append)
    target.handle(m.AgentMessage, lambda msg: m.AgentReply("ok"))
    f = bus.client("frozen")
    wait_until(lambda: "target" in broker.peers(), what="the target to join")
    with pytest.raises(PolicyDenied, match="agent frozen"):
        f.request("target", m.InboxMessage("frozen", "let me through"), 5)
    f.send("target", m.InboxMessage("frozen", "dropped"))
    bus.serve(target)
    # an allowed message sent after the denied event arrives; the denied one never does
    assert f.request("target", m.AgentMessage("allowed"), 5) == m.AgentReply("ok")
    assert got == []
    assert broker.denied == 2
    assert broker._log.named("message_denied")[0]["reason"] == "agent frozen"


def test_failing_interceptor_fails_closed(bus: Bus) -> None:
    """An interceptor that raises denies the message (fail closed) and the broker keeps running."""
    def gate(h: p.Header, sender_kind: str) -> str | None:
        raise RuntimeError("policy bug")

    broker = bus.broker(interceptor=gate)
    bus.worker()
    c = bus.client("client")
    with pytest.raises(PolicyDenied, match="policy check failed"):
        c.request("worker", bm.Ping(), 5)
    assert c.request("broker", bm.Ping(b"alive"), 5) == bm.Pong(b"alive")
    assert broker._log.named("interceptor_failed")


# ------------------------------------------------------------------ curve

def test_curve_accepts_issued_keys_and_rejects_others(bus: Bus) -> None:
    """On tcp with CurveZMQ, an issued client key is served; an unknown key or no curve gets nothing."""
    keys = Keyring("curve")
    broker = bus.broker(endpoint="tcp://127.0.0.1:*", pub_endpoint="tcp://127.0.0.1:*", keyring=keys)
    ep = broker.bound_endpoint
    assert ep.startswith("tcp://127.0.0.1:") and not ep.endswith("*")

    known = bus.client("known", endpoint=ep, credential=keys.issue("known", "agent"))
    assert known.request("broker", bm.Ping(b"hi"), 10) == bm.Pong(b"hi")
    assert "known" in broker.peers()

    public, secret = zmq.curve_keypair()
    stranger_cred = Credential("stranger", "agent", "stranger.1", "curve", secret.decode(), public.decode(),
                               keys.server_public.decode())
    # refused in the handshake: the request is not even accepted for sending, or never answered
    stranger = bus.client("stranger", endpoint=ep, credential=stranger_cred)
    with pytest.raises(BusError):
        stranger.request("broker", bm.Ping(b"let me in"), 1.0)
    plain = bus.client("plain", endpoint=ep, credential=None)
    with pytest.raises(BusError):
        plain.request("broker", bm.Ping(b"no curve"), 1.0)
    assert "stranger" not in broker.peers() and "plain" not in broker.peers()
    assert broker.routed == 0 and broker.bad_frames == 0  # nothing of theirs got in

    # the event socket is protected too: a subscriber with the operator's key gets events
    sub = EventSubscriber(broker.bound_pub_endpoint, credential=keys.issue("operator", "operator"),
                          context=bus.ctx)
    bus.subs.append(sub)

    def probe() -> bool:
        known.send("*", bm.Ping(b"probe"))
        msg = sub.recv(0.05)
        return msg is not None and msg.body == bm.Ping(b"probe")

    wait_until(probe, what="an event over curve")


def test_a_key_made_on_another_node_is_served_once_enrolled_and_refused_once_revoked(bus: Bus,
                                                                                      tmp_path: Path) -> None:
    """A key pair made elsewhere (a Ray node's host) is refused until the keyring enrolls its public key,
    served as that peer's credential then, refused after a revoke; a reopened store keeps it."""
    keys = Keyring("curve", store=tmp_path / "credentials.json")
    broker = bus.broker(endpoint="tcp://127.0.0.1:*", pub_endpoint="tcp://127.0.0.1:*", keyring=keys)
    ep = broker.bound_endpoint
    public, secret = zmq.curve_keypair()  # made "on the node": only the public key reaches the keyring
    unknown = Credential("w1", "agent", "w1.x", "curve", secret.decode(), public.decode(),
                         keys.server_public.decode())
    early = bus.client("w1", endpoint=ep, credential=unknown)
    with pytest.raises(BusError):
        early.request("broker", bm.Ping(b"not yet"), 1.0)
    enrolled = keys.enroll("w1", "agent", public.decode())
    assert enrolled.secret == "" and enrolled.public == public.decode()
    keys.bind_pid("w1", 4242)  # stored with its pid, as the lifecycle does
    completed = dataclasses.replace(enrolled, secret=secret.decode())  # what the node's host does
    w1 = bus.client("w1", endpoint=ep, credential=completed)
    assert w1.request("broker", bm.Ping(b"hi"), 10) == bm.Pong(b"hi")
    assert Keyring.load(tmp_path / "credentials.json", keep={"w1"}).current("w1") is not None
    keys.revoke("w1")
    late = bus.client("w1", endpoint=ep, credential=completed)
    with pytest.raises(BusError):
        late.request("broker", bm.Ping(b"again"), 1.0)
    assert Keyring.load(tmp_path / "credentials.json", keep={"w1"}).current("w1") is None


def test_subscriber_topics_match_exactly(bus: Bus) -> None:
    """A subscriber to "mem_stats" does not get "mem_stats_reply" although ZeroMQ matches prefixes."""
    bus.broker()
    c = bus.client("publisher")
    sub = bus.synced_subscriber(c, topics=(m.MemStats.TYPE,))
    c.send("*", m.MemStatsReply({"n": 1}))
    c.send("*", m.MemStats())
    msg = next_event(sub, lambda e: e.type != bm.Ping.TYPE)
    assert msg.body == m.MemStats()


def test_trace_context_travels_through_the_broker(bus: Bus) -> None:
    """A request sent inside a span carries its traceparent; the handler sees it and runs inside it."""
    from swarm_core.tracing import CURRENT

    tp = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    seen: list[tuple[str, str]] = []
    gated: list[str] = []
    broker = bus.broker(interceptor=lambda h, kind: gated.append(h.traceparent))
    w = bus.client("worker")

    def on_ping(msg: p.Message) -> bm.Pong:
        seen.append((msg.header.traceparent, CURRENT.get()))
        return bm.Pong(msg.body.payload)

    w.handle(bm.Ping, on_ping)
    bus.serve(w)
    c = bus.client("client")
    wait_until(lambda: "worker" in broker.peers(), what="the worker to join")
    token = CURRENT.set(tp)
    try:
        assert c.request("worker", bm.Ping(b"x"), 5) == bm.Pong(b"x")
    finally:
        CURRENT.reset(token)
    assert c.request("worker", bm.Ping(b"y"), 5) == bm.Pong(b"y")  # outside any span: no context
    assert seen == [(tp, tp), ("", "")]
    assert tp in gated
