"""Every message body that crosses the bus, registered by its ``TYPE``.

Bodies are small frozen dataclasses; fields travel positionally, so add new
fields at the end with a default to stay compatible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bus.protocol import message

# ---------------------------------------------------------------- bus level


@message
@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Liveness signal between a peer and the broker (kind HEARTBEAT)."""

    TYPE = "heartbeat"


@message
@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error crossing the wire as data: rebuilt with errors.from_wire."""

    TYPE = "error"
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@message
@dataclass(frozen=True, slots=True)
class Ok:
    """A generic positive acknowledgement with optional facts."""

    TYPE = "ok"
    info: dict[str, Any] = field(default_factory=dict)


@message
@dataclass(frozen=True, slots=True)
class Bye:
    """A peer leaving cleanly (sent to the broker before closing)."""

    TYPE = "bye"


@message
@dataclass(frozen=True, slots=True)
class PeerEvent:
    """Published by the broker: a peer joined or left (``reason``: bye, dead)."""

    TYPE = "peer_event"
    event: str
    peer: str
    reason: str = ""


@message
@dataclass(frozen=True, slots=True)
class Ping:
    """Ask a peer to answer with Pong (benchmarks, health checks)."""

    TYPE = "ping"
    payload: bytes = b""


@message
@dataclass(frozen=True, slots=True)
class Pong:
    """Answer to Ping carrying the same payload."""

    TYPE = "pong"
    payload: bytes = b""


# --------------------------------------------------------------- supervisor


@message
@dataclass(frozen=True, slots=True)
class StartAgent:
    """An agent asks the supervisor to start a sub-agent (lineage from registry)."""

    TYPE = "start_agent"
    name: str
    task: str
    prompt: str = ""
    role: str = ""


@message
@dataclass(frozen=True, slots=True)
class AgentStarted:
    """Reply to StartAgent: the new agent's id, depth and pid."""

    TYPE = "agent_started"
    agent_id: str
    depth: int
    pid: int


@message
@dataclass(frozen=True, slots=True)
class ListAgents:
    """List agents: ``scope`` is ``children`` (of the sender) or ``all``."""

    TYPE = "list_agents"
    scope: str = "children"


@message
@dataclass(frozen=True, slots=True)
class AgentList:
    """Reply to ListAgents: one dict per agent (the ``ps --json`` fields)."""

    TYPE = "agent_list"
    agents: list[dict[str, Any]]


@message
@dataclass(frozen=True, slots=True)
class DeleteAgent:
    """Stop an agent and its whole subtree."""

    TYPE = "delete_agent"
    agent_id: str
    reason: str = "deleted"
    hard: bool = False


@message
@dataclass(frozen=True, slots=True)
class KillAll:
    """Stop every agent (services keep running)."""

    TYPE = "kill_all"
    reason: str = "kill_all"


@message
@dataclass(frozen=True, slots=True)
class AgentReady:
    """An agent process announces itself after start-up."""

    TYPE = "agent_ready"
    agent_id: str
    pid: int


@message
@dataclass(frozen=True, slots=True)
class AgentStatus:
    """An agent reports a state change (``waiting``, ``running``) and its step."""

    TYPE = "agent_status"
    agent_id: str
    status: str
    steps: int = 0
    detail: str = ""


@message
@dataclass(frozen=True, slots=True)
class AgentDone:
    """An agent finished its task (``ok``) or gave up with an error."""

    TYPE = "agent_done"
    agent_id: str
    result: str
    ok: bool = True


@message
@dataclass(frozen=True, slots=True)
class InboxMessage:
    """Delivered to an agent's inbox: a child's result, a notice, an operator note."""

    TYPE = "inbox"
    sender: str
    text: str
    kind: str = "message"  # result | notice | message


@message
@dataclass(frozen=True, slots=True)
class AgentMessage:
    """``message_agent``: a request to an agent, answered with AgentReply."""

    TYPE = "agent_message"
    text: str


@message
@dataclass(frozen=True, slots=True)
class AgentReply:
    """The target agent's answer to an AgentMessage."""

    TYPE = "agent_reply"
    text: str


@message
@dataclass(frozen=True, slots=True)
class Stop:
    """Ask a process to stop cleanly, with the reason it is recorded under."""

    TYPE = "stop"
    reason: str = "stopped"


@message
@dataclass(frozen=True, slots=True)
class Freeze:
    """Freeze (``frozen=True``) or thaw an agent, or every agent when empty."""

    TYPE = "freeze"
    agent_id: str = ""
    frozen: bool = True
    reason: str = "operator"


@message
@dataclass(frozen=True, slots=True)
class OperatorMessage:
    """``swarm send``: a person's message for an agent's inbox."""

    TYPE = "operator_message"
    agent_id: str
    text: str


@message
@dataclass(frozen=True, slots=True)
class Inspect:
    """Ask the supervisor for everything it knows about one agent."""

    TYPE = "inspect"
    agent_id: str


@message
@dataclass(frozen=True, slots=True)
class InspectReply:
    """Reply to Inspect."""

    TYPE = "inspect_reply"
    info: dict[str, Any]


@message
@dataclass(frozen=True, slots=True)
class Down:
    """Stop everything: agents, services, the supervisor itself."""

    TYPE = "down"
    reason: str = "down"


@message
@dataclass(frozen=True, slots=True)
class SwarmStatus:
    """Ask the supervisor for the swarm's state (root status, result)."""

    TYPE = "swarm_status"


@message
@dataclass(frozen=True, slots=True)
class SwarmState:
    """Reply to SwarmStatus."""

    TYPE = "swarm_state"
    info: dict[str, Any]


@message
@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Published event: an agent changed state (spawned, done, killed, crashed...)."""

    TYPE = "lifecycle"
    agent_id: str
    event: str
    status: str
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ gateway


@message
@dataclass(frozen=True, slots=True)
class Complete:
    """An agent asks the gateway for one model completion."""

    TYPE = "complete"
    agent_id: str
    prompt: str
    commands: list[str]
    max_tokens: int = 256
    messages: list[dict[str, Any]] = field(default_factory=list)
    name: str = ""  # the name given to start_agent (replay cassettes are keyed by it)
    context: dict[str, Any] = field(default_factory=dict)  # structured prompt parts (local model)


@message
@dataclass(frozen=True, slots=True)
class Completion:
    """The gateway's answer: text plus the usage counted from the provider."""

    TYPE = "completion"
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    cost_usd: float = 0.0


@message
@dataclass(frozen=True, slots=True)
class Usage:
    """Gateway → supervisor: an agent's usage and gateway-side status."""

    TYPE = "usage"
    agent_id: str
    tokens: int
    requests: int
    cost_usd: float
    status: str = ""  # throttled | waiting | running | ""
    stop_reason: str = ""  # set when the gateway wants the agent stopped


@message
@dataclass(frozen=True, slots=True)
class BreakerTripped:
    """Gateway → supervisor: risky words in consecutive outputs; the agent's calls are now held."""

    TYPE = "breaker_tripped"
    agent_id: str
    words: list[str]
    streak: int


@message
@dataclass(frozen=True, slots=True)
class Embed:
    """Ask the gateway's provider for embeddings of texts."""

    TYPE = "embed"
    texts: list[str]


@message
@dataclass(frozen=True, slots=True)
class Embeddings:
    """Reply to Embed: one vector per text."""

    TYPE = "embeddings"
    vectors: list[list[float]]


# ------------------------------------------------------------------- memory


@message
@dataclass(frozen=True, slots=True)
class MemAdd:
    """Add texts (embedded by the service unless vectors are given).

    Vectors travel either as lists of floats or, faster, as ``vectors_f32``:
    the rows packed as little-endian float32 bytes (``len(texts) * dim * 4``).
    """

    TYPE = "mem_add"
    namespace: str
    texts: list[str]
    metadata: list[dict[str, Any]] = field(default_factory=list)
    vectors: list[list[float]] = field(default_factory=list)
    vectors_f32: bytes = b""


@message
@dataclass(frozen=True, slots=True)
class MemAdded:
    """Reply to MemAdd: the stable ids given, in order."""

    TYPE = "mem_added"
    ids: list[int]


@message
@dataclass(frozen=True, slots=True)
class MemSearch:
    """Search one or more namespaces; best ``k`` hits across all of them.

    A query vector replaces the query text, as a list or as little-endian
    float32 bytes (``vector_f32``, ``dim * 4`` bytes).
    """

    TYPE = "mem_search"
    namespaces: list[str]
    query: str
    k: int = 5
    vector: list[float] = field(default_factory=list)
    vector_f32: bytes = b""


@message
@dataclass(frozen=True, slots=True)
class MemHits:
    """Reply to MemSearch: dicts with id, score, text, namespace, metadata."""

    TYPE = "mem_hits"
    hits: list[dict[str, Any]]


@message
@dataclass(frozen=True, slots=True)
class MemDelete:
    """Delete items by id from a namespace."""

    TYPE = "mem_delete"
    namespace: str
    ids: list[int]


@message
@dataclass(frozen=True, slots=True)
class MemStats:
    """Ask for per-namespace counts and the embedder in use."""

    TYPE = "mem_stats"


@message
@dataclass(frozen=True, slots=True)
class MemStatsReply:
    """Reply to MemStats."""

    TYPE = "mem_stats_reply"
    stats: dict[str, Any]


@message
@dataclass(frozen=True, slots=True)
class MemClear:
    """Remove every item of a namespace."""

    TYPE = "mem_clear"
    namespace: str
