"""The authorization table: every message type has a rule, anything else is refused, and the rules hold."""

from __future__ import annotations

import itertools

import pytest

import bus.messages  # noqa: F401 - registers the bus's own types
import swarm_core.messages  # noqa: F401 - registers every domain type
from bus.protocol import Kind, Message, make_header
from swarm_core import authz
from swarm_core import messages as m
from swarm_core.peers import BROADCAST, PeerKind, kind_of, may_use
from swarm_core.wire import registered_types

TREE = {"manager": None, "a": "manager", "a1": "a", "b": "manager"}


def below(ancestor: str, agent: str) -> bool:
    """The agent tree of these tests: manager → a → a1, manager → b."""
    parent = TREE.get(agent)
    while parent is not None:
        if parent == ancestor:
            return True
        parent = TREE.get(parent)
    return False


def header(travel: str, body: type, src: str, dst: str) -> str | None:
    return authz.check_header(travel, body.TYPE, src, kind_of(src), dst, below)


def test_every_registered_message_type_has_a_rule():
    """Walking every type the wire knows: each has an entry in the table (a new type must get one)."""
    missing = sorted(set(registered_types()) - set(authz.TABLE))
    assert missing == []
    assert sorted(set(authz.TABLE) - set(registered_types())) == []  # and no rule for a type that is gone


def test_every_rule_is_well_formed():
    """Each rule travels a known way, names known kinds and destinations, a known scope and a reason."""
    kinds = set(PeerKind)
    for name, rule in authz.TABLE.items():
        assert rule.travels and rule.travels <= {authz.REQUEST, authz.EVENT, authz.REPLY, authz.LOCAL}, name
        assert set(rule.senders) <= kinds, name
        assert all(dsts <= kinds | {BROADCAST} for dsts in rule.senders.values()), name
        assert rule.scope in ("", *authz.HEADER_SCOPES, *authz.BODY_SCOPES), name
        assert rule.why, name


def test_an_unlisted_type_is_refused_everywhere():
    """A type with no rule is refused by both checks, whoever sends it (deny by default)."""
    for kind in PeerKind:
        assert "deny by default" in authz.check_header("request", "brand_new", "x", kind, "supervisor")
        assert "deny by default" in authz.check_body("brand_new", "x", kind, object())


@pytest.mark.parametrize("body", [m.Down("x"), m.KillAll("x"), m.Freeze("", True, "x"),
                                  m.OperatorMessage("b", "obey"), m.Inspect("b"), m.SwarmStatus()])
def test_the_operators_controls_are_refused_to_every_other_kind(body):
    """Down, KillAll, Freeze, OperatorMessage, Inspect, SwarmStatus: the operator only (to the supervisor)."""
    assert authz.check_header("request", body.TYPE, "cli-7", PeerKind.OPERATOR, "supervisor") is None
    for src in ("a", "gateway", "memory"):
        assert f"from the {kind_of(src)} {src} refused" in header("request", type(body), src, "supervisor")


def test_services_and_supervisor_messages_come_only_from_them():
    """Stop and inbox messages only from the supervisor; usage and breaker reports only from the gateway."""
    for dst in ("a", "gateway", "memory"):
        assert header("event", m.Stop, "supervisor", dst) is None
        assert "refused" in header("event", m.Stop, "a", dst)
        assert "refused" in header("request", m.Stop, "cli-1", dst)
    for body in (m.Usage, m.BreakerTripped):
        assert header("event", body, "gateway", "supervisor") is None
        assert "only the gateway" in header("event", body, "a", "supervisor")
        assert "only the gateway" in header("event", body, "memory", "supervisor")
    assert header("event", m.InboxMessage, "supervisor", "a") is None
    assert "refused" in header("event", m.InboxMessage, "b", "a")


def test_agents_message_only_their_own_subtree():
    """An agent messages agents below it; a sibling, its parent or itself is out of scope (and told so)."""
    assert header("request", m.AgentMessage, "manager", "a1") is None
    assert header("request", m.AgentMessage, "a", "a1") is None
    for src, dst in (("a", "b"), ("a1", "a"), ("a", "a"), ("b", "manager")):
        assert "is not in your subtree" in header("request", m.AgentMessage, src, dst)
    assert header("request", m.AgentMessage, "cli-1", "a1") is None  # the operator may ask anyone
    assert "not in your subtree" in authz.check_header("request", m.AgentMessage.TYPE, "a", "agent", "a1")


def test_agents_delete_and_list_only_their_own():
    """DeleteAgent: a target strictly below the asker; ListAgents: its own children only."""
    assert authz.check_body(m.DeleteAgent.TYPE, "manager", "agent", m.DeleteAgent("a1"), below) is None
    for src, target in (("a", "b"), ("a", "a"), ("a1", "manager")):
        reason = authz.check_body(m.DeleteAgent.TYPE, src, "agent", m.DeleteAgent(target), below)
        assert f"{target} is not one of your sub-agents" in reason
    assert authz.check_body(m.DeleteAgent.TYPE, "cli-1", "operator", m.DeleteAgent("a1"), below) is None
    assert authz.check_body(m.ListAgents.TYPE, "a", "agent", m.ListAgents("children")) is None
    assert "only its own children" in authz.check_body(m.ListAgents.TYPE, "a", "agent", m.ListAgents("all"))
    assert authz.check_body(m.ListAgents.TYPE, "cli-1", "operator", m.ListAgents("all")) is None


def test_agents_use_only_shared_and_their_own_namespace():
    """MemAdd/MemSearch: shared and agent:<own id> only, whatever else the body asks; the operator any."""
    ok = [m.MemAdd("shared", ["x"]), m.MemAdd("agent:a", ["x"]), m.MemSearch(["shared", "agent:a"], "q")]
    for body in ok:
        assert authz.check_body(body.TYPE, "a", "agent", body) is None
    foreign = (m.MemAdd("agent:b", ["x"]), m.MemSearch(["shared", "agent:b"], "q"),
               m.MemSearch(["agent:"], "q"))
    for body in foreign:
        assert "is not yours" in authz.check_body(body.TYPE, "a", "agent", body)
    assert authz.check_body(m.MemSearch.TYPE, "cli-1", "operator", m.MemSearch(["agent:b"], "q")) is None
    for body in (m.MemDelete, m.MemClear, m.MemStats):
        assert "refused: only the operator" in header("request", body, "a", "memory")


def test_reports_and_calls_are_about_the_sender_itself():
    """Ready, status, step, done and a model call name the sender itself, else refused."""
    for body in (m.AgentReady("b", 1), m.AgentStatus("b", "running"), m.StepReport("b", 1, "x"),
                 m.AgentDone("b", "r"), m.Complete("b", "p", [])):
        assert authz.check_body(body.TYPE, "b", "agent", body) is None
        assert "acts only for itself, not for 'b'" in authz.check_body(body.TYPE, "a", "agent", body)


def test_replies_go_anywhere_but_are_not_published_and_nothing_else_is_a_reply():
    """A reply type goes from anyone to anyone (the asker matches it); a request type is no reply."""
    for kind in PeerKind:
        assert authz.check_header("reply", m.AgentReply.TYPE, "x", kind, "cli-1") is None
        assert authz.check_header("error", "error", "x", kind, "a") is None
    assert "not published" in authz.check_header("reply", "ok", "a", "agent", BROADCAST)
    assert "not a reply" in authz.check_header("reply", m.Down.TYPE, "cli-1", "operator", "supervisor")
    assert "not allowed as event" in header("event", m.Down, "cli-1", "supervisor")


def test_what_only_the_broker_handles_is_never_routed():
    """Heartbeats, Bye and the broker's own peer events are refused when aimed at a peer."""
    for name in ("heartbeat", "bye"):
        assert "not allowed as heartbeat" in authz.check_header("heartbeat", name, "a", "agent", "b")
        assert "not allowed as event" in authz.check_header("event", name, "a", "agent", "b")
    for kind in PeerKind:
        assert "refused" in authz.check_header("event", "peer_event", "x", kind, BROADCAST)


def test_the_dispatch_check_reads_the_decoded_message():
    """for_dispatch runs both checks on a decoded message, the sender's kind taken from its id."""
    check = authz.for_dispatch(below)
    msg = Message(make_header(Kind.REQUEST, m.DeleteAgent.TYPE, "a", "supervisor"), m.DeleteAgent("b"))
    assert "b is not one of your sub-agents" in check(msg)
    msg = Message(make_header(Kind.REQUEST, m.Down.TYPE, "a", "supervisor"), m.Down())
    assert "down from the agent a refused" in check(msg)
    msg = Message(make_header(Kind.REQUEST, m.Down.TYPE, "cli-9", "supervisor"), m.Down())
    assert check(msg) is None


NAMES = ("a", "w-2", "gateway", "memory", "supervisor", "operator", "cli-", "cli-x", "CLI-y", "broker", "*",
         "")


@pytest.mark.parametrize("kind, name", list(itertools.product(list(PeerKind), NAMES)))
def test_a_name_a_credential_may_use_reads_back_as_its_kind(kind, name):
    """may_use and kind_of agree: a name admitted for a credential of some kind reads back as that kind."""
    principal = "operator" if kind is PeerKind.OPERATOR else name
    if may_use(kind, principal, name) is None:
        assert kind_of(name) is kind
    assert may_use(kind, "a", "b") is not None or kind is PeerKind.OPERATOR  # never another principal's name
