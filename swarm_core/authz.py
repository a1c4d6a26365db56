"""Who may send what: the swarm's one authorization table, deny by default.

Every message type that may cross the bus has one :class:`Rule` in
:data:`TABLE`; a type without one is refused. A rule says how the type
travels (a request, an event, a reply, or only to the broker itself), which
kinds of sender may send it and to which kinds of peer, and, for agents, a
scope: the agent may act only on itself, its own subtree, or the memory
namespaces ``shared`` and ``agent:<its id>``. The sender's kind is its
credential's (``swarm_core.peers``), never a name it chose.

The same table is applied in two places, by the two functions here:

* :func:`check_header` on every routed message, by the broker's gate in the
  supervisor (``orchestrator/supervisor/gate.py``): what the header shows
  (type, how it travels, the authenticated sender, the destination) and the
  header scope ``subtree`` (an agent messages only agents below it);
* :func:`check_body` where the body is decoded, before the handler runs
  (the dispatch of the supervisor, the memory service and the gateway,
  ``bus.dispatch``): the body scopes ``self`` (a report about the sender
  itself), ``below`` (a target strictly in the sender's subtree),
  ``children`` (an agent lists its own children) and ``namespaces``.

Both return None (allowed) or the reason, a sentence that names the rule:
it is logged with the peer and, for a request, sent back (an agent's model
reads it as the command's error).

Replies (kinds ``reply`` and ``error``) may go from any peer to any peer:
they carry no command, and a client takes a reply only from the peer its
request went to (``bus/client.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from swarm_core import messages as m
from swarm_core.peers import BROADCAST, PeerKind, kind_of

OPERATOR, SUPERVISOR, GATEWAY, MEMORY, AGENT = (PeerKind.OPERATOR, PeerKind.SUPERVISOR, PeerKind.GATEWAY,
                                                 PeerKind.MEMORY, PeerKind.AGENT)
REQUEST, EVENT, REPLY, LOCAL = "request", "event", "reply", "broker"  # LOCAL: handled by the broker itself
ANY = frozenset({OPERATOR, SUPERVISOR, GATEWAY, MEMORY, AGENT})
SHARED_NAMESPACE, AGENT_NAMESPACE = "shared", "agent:"

# is_below(ancestor, agent): whether ``agent`` lies strictly below ``ancestor`` in the agent tree
Tree = Callable[[str, str], bool]


@dataclass(frozen=True)
class Rule:
    """How one message type may travel, who may send it to whom, and the agents' scope."""

    travels: frozenset[str]
    senders: Mapping[str, frozenset[str]] = field(default_factory=dict)  # sender kind -> destination kinds
    scope: str = ""  # a key of HEADER_SCOPES or BODY_SCOPES, applied to agents
    why: str = ""


def _rule(travels: str | tuple[str, ...], why: str, scope: str = "", **senders: frozenset[str] | str) -> Rule:
    """A rule; each keyword is a sender kind, its value the destination kinds (one, or a set)."""
    ways = frozenset((travels,) if isinstance(travels, str) else travels)
    to = {k: frozenset({v}) if isinstance(v, str) else v for k, v in senders.items()}
    return Rule(ways, to, scope, why)


def _reply(why: str) -> Rule:
    return Rule(frozenset({REPLY}), {}, "", why)  # any sender, any peer: see the module docstring


_SUP = SUPERVISOR.value
_TO_AGENTS = frozenset({AGENT})

TABLE: dict[str, Rule] = {
    # the bus's own bodies (bus.messages, by type name: this layer does not import the bus)
    "heartbeat": _rule(LOCAL, "liveness, to the broker only"),
    "bye": _rule(LOCAL, "a peer leaving, to the broker only"),
    "ping": _rule(REQUEST, "health checks of the services and agents",
                  supervisor=frozenset({GATEWAY, MEMORY, AGENT}), operator=ANY),
    "peer_event": _rule(EVENT, "published by the broker itself, never by a peer"),
    "pong": _reply("answer to ping"), "ok": _reply("a plain acknowledgement"),
    "error": _reply("an error reply"),
    # agents and the supervisor
    m.StartAgent.TYPE: _rule(REQUEST, "an agent starts a sub-agent", agent=_SUP),
    m.AgentReady.TYPE: _rule(EVENT, "an agent announces itself", "self", agent=_SUP),
    m.AgentStatus.TYPE: _rule(EVENT, "an agent reports its own status", "self", agent=_SUP),
    m.StepReport.TYPE: _rule(REQUEST, "an agent asks to run its own step", "self", agent=_SUP),
    m.AgentDone.TYPE: _rule(REQUEST, "an agent reports its own end", "self", agent=_SUP),
    m.ListAgents.TYPE: _rule(REQUEST, "agents list their own children; the operator lists all", "children",
                             agent=_SUP, operator=_SUP),
    m.DeleteAgent.TYPE: _rule(REQUEST, "agents delete agents of their own subtree; the operator any", "below",
                              agent=_SUP, operator=_SUP),
    m.AgentMessage.TYPE: _rule(REQUEST, "agents message agents of their own subtree", "subtree",
                               agent=_TO_AGENTS, operator=_TO_AGENTS),
    m.InboxMessage.TYPE: _rule(EVENT, "only the supervisor fills an inbox", supervisor=_TO_AGENTS),
    m.PostMessage.TYPE: _rule(REQUEST, "agents ask agents of their own subtree (and answer who asked them) "
                              "through the durable inbox", "post", agent=_SUP),
    # the operator's control surface
    m.KillAll.TYPE: _rule(REQUEST, "only the operator kills every agent", operator=_SUP),
    m.Freeze.TYPE: _rule((REQUEST, EVENT), "the operator asks the supervisor, which tells the gateway",
                         operator=_SUP, supervisor=GATEWAY.value),
    m.OperatorMessage.TYPE: _rule(REQUEST, "only the operator speaks as the operator", operator=_SUP),
    m.Inspect.TYPE: _rule(REQUEST, "the operator inspects an agent", operator=_SUP),
    m.Down.TYPE: _rule(REQUEST, "only the operator brings the swarm down", operator=_SUP),
    m.SwarmStatus.TYPE: _rule(REQUEST, "the operator asks for the swarm's state", operator=_SUP),
    m.Stop.TYPE: _rule((REQUEST, EVENT), "only the supervisor stops a process",
                       supervisor=frozenset({AGENT, GATEWAY, MEMORY})),
    m.Lifecycle.TYPE: _rule(EVENT, "the supervisor publishes lifecycle events", supervisor=BROADCAST),
    # the gateway
    m.Complete.TYPE: _rule(REQUEST, "an agent asks for its own model call", "self", agent=GATEWAY.value),
    m.Usage.TYPE: _rule(EVENT, "only the gateway reports usage", gateway=_SUP),
    m.BreakerTripped.TYPE: _rule(EVENT, "only the gateway reports a breaker trip", gateway=_SUP),
    m.Embed.TYPE: _rule(REQUEST, "no process serves it"),
    # the memory service
    m.MemAdd.TYPE: _rule(REQUEST, "agents add to shared and their own namespace; the operator anywhere",
                         "namespaces", agent=MEMORY.value, operator=MEMORY.value),
    m.MemSearch.TYPE: _rule(REQUEST, "agents search shared and their own namespace; the operator anywhere",
                            "namespaces", agent=MEMORY.value, operator=MEMORY.value),
    m.MemDelete.TYPE: _rule(REQUEST, "only the operator deletes memories", operator=MEMORY.value),
    m.MemClear.TYPE: _rule(REQUEST, "only the operator clears a namespace", operator=MEMORY.value),
    m.MemStats.TYPE: _rule(REQUEST, "only the operator reads the memory's statistics", operator=MEMORY.value),
    # the operator in the loop: approvals and budgets
    m.AwaitApproval.TYPE: _rule(REQUEST, "an agent polls for its own approval requests (the desk answers "
                                "only their owner)", agent=_SUP),
    m.Decide.TYPE: _rule(REQUEST, "only the operator approves or denies", operator=_SUP),
    m.SetBudget.TYPE: _rule(REQUEST, "only the operator sets budgets", operator=_SUP),
    m.BudgetExhausted.TYPE: _rule(EVENT, "only the gateway reports a call held for budget", gateway=_SUP),
    m.BudgetChanged.TYPE: _rule(EVENT, "only the supervisor tells the gateway a budget changed",
                                supervisor=GATEWAY.value),
    m.ServiceRestarted.TYPE: _rule(EVENT, "only the supervisor announces a restarted service",
                                   supervisor=_TO_AGENTS),
    # telemetry: spans go to the swarm's one exporter (the supervisor keeps an agent's own spans only)
    m.TraceSpans.TYPE: _rule(EVENT, "agents and the gateway send their own spans to the supervisor",
                             agent=_SUP, gateway=_SUP),
}
for _type in (m.AgentStarted, m.ApprovalAnswer, m.AgentList, m.StepVerdict, m.AgentReply, m.InspectReply, m.SwarmState,
              m.Completion, m.Embeddings, m.MemAdded, m.MemHits, m.MemStatsReply, m.Posted):
    TABLE[_type.TYPE] = _reply(f"answer to a request ({_type.__name__})")


# ------------------------------------------------------------------ scopes

def _subtree(src: str, dst: str, tree: Tree | None) -> str | None:
    if tree is not None and tree(src, dst):
        return None
    return f"{dst} is not in your subtree: an agent may message only agents it started (or they started)"


def _self(src: str, body: Any, tree: Tree | None) -> str | None:
    agent_id = getattr(body, "agent_id", None)
    return None if agent_id == src else f"an agent acts only for itself, not for {agent_id!r}"


def _below(src: str, body: Any, tree: Tree | None) -> str | None:
    target = getattr(body, "agent_id", "")
    if tree is not None and target != src and tree(src, target):
        return None
    return (f"{target} is not one of your sub-agents: an agent may delete only agents of its own subtree")


def _post(src: str, body: Any, tree: Tree | None) -> str | None:
    if getattr(body, "kind", "") == "reply":
        return None  # to whoever asked: the supervisor checks the question it answers
    target = getattr(body, "agent_id", "")
    if tree is not None and target != src and tree(src, target):
        return None
    return f"{target} is not in your subtree: an agent may message only agents it started (or they started)"


def _children(src: str, body: Any, tree: Tree | None) -> str | None:
    scope = getattr(body, "scope", "")
    return None if scope == "children" else f"an agent lists only its own children, not {scope!r}"


def _namespaces(src: str, body: Any, tree: Tree | None) -> str | None:
    wanted = [body.namespace] if hasattr(body, "namespace") else list(getattr(body, "namespaces", []))
    own = (SHARED_NAMESPACE, AGENT_NAMESPACE + src)
    foreign = [ns for ns in wanted if ns not in own]
    if not foreign:
        return None
    return f"memory namespace {foreign[0]!r} is not yours: an agent may use only {own[0]!r} and {own[1]!r}"


HEADER_SCOPES: dict[str, Callable[[str, str, Tree | None], str | None]] = {"subtree": _subtree}
BODY_SCOPES: dict[str, Callable[[str, Any, Tree | None], str | None]] = {
    "self": _self, "below": _below, "children": _children, "namespaces": _namespaces, "post": _post}


# ------------------------------------------------------------------ the checks

def check_header(travel: str, type_name: str, src: str, sender: str, dst: str,
                 tree: Tree | None = None) -> str | None:
    """None when a message that travels as ``travel`` (request, event, reply, error) may be routed.

    ``sender`` is the kind of the sender's credential; ``tree`` answers
    the ``subtree`` scope (without it, that scope refuses).
    """
    rule = TABLE.get(type_name)
    if rule is None:
        return f"{type_name}: no rule allows this message type (deny by default)"
    if travel in (REPLY, "error"):
        if REPLY not in rule.travels:
            return f"{type_name}: not a reply ({rule.why})"
        return None if dst != BROADCAST else f"{type_name}: a reply is not published"
    if travel not in rule.travels:
        return f"{type_name}: not allowed as {travel} ({rule.why})"
    allowed = rule.senders.get(sender)
    if allowed is None:
        return f"{type_name} from the {sender} {src} refused: {rule.why}"
    dst_kind = BROADCAST if dst == BROADCAST else kind_of(dst)
    if dst_kind not in allowed:
        return f"{type_name} from the {sender} {src} to {dst} refused: {rule.why}"
    scope = HEADER_SCOPES.get(rule.scope) if sender == AGENT else None
    return scope(src, dst, tree) if scope is not None else None


def check_body(type_name: str, src: str, sender: str, body: Any, tree: Tree | None = None) -> str | None:
    """None when the decoded ``body`` from ``src`` (of kind ``sender``) is within its scope."""
    rule = TABLE.get(type_name)
    if rule is None:
        return f"{type_name}: no rule allows this message type (deny by default)"
    scope = BODY_SCOPES.get(rule.scope) if sender == AGENT else None
    return scope(src, body, tree) if scope is not None else None


def for_dispatch(tree: Tree | None = None) -> Callable[[Any], str | None]:
    """The check a process runs on each decoded request or event before its handler (``bus.dispatch``).

    Both checks again (the broker's gate already ran the header's): a
    service that is ever reached without the broker still holds its policy.
    The sender's kind is read from its id, which the bus authenticated.
    """

    def check(msg: Any) -> str | None:
        h = msg.header
        sender = kind_of(h.src)
        return (check_header(h.kind.name.lower(), h.type, h.src, sender, h.dst, tree)
                or check_body(h.type, h.src, sender, msg.body, tree))

    return check
