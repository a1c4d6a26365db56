"""Message bodies: Agent ↔ supervisor and agent ↔ agent: spawning, status, results, messages.

Bodies are small frozen dataclasses; fields travel positionally, so add new
fields at the end with a default to stay compatible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swarm_core.wire import message


@message
@dataclass(frozen=True, slots=True)
class StartAgent:
    """An agent asks the supervisor to start a sub-agent (lineage from registry)."""

    TYPE = "start_agent"
    name: str
    task: str
    prompt: str = ""
    role: str = ""
    budget: int = 0  # max tokens for the new agent's subtree (a slice of the caller's); 0: none given
    request_id: str = ""  # the same for a retry: the supervisor starts one agent and answers each try


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
    request_id: str = ""  # the same for a retry: answered with the first outcome


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
    """An agent reports a state change (``waiting``, ``running``) and its step count."""

    TYPE = "agent_status"
    agent_id: str
    status: str
    steps: int = 0


@message
@dataclass(frozen=True, slots=True)
class StepReport:
    """An agent reports what one step decided, before it runs the command.

    ``args_json`` is the command's arguments as canonical JSON (sorted keys,
    at most 2 000 characters); ``speak`` is what the model said it would say.
    It is a request: the supervisor's guards (steps, loops) answer with a
    :class:`StepVerdict`, and the agent runs the command only if allowed.
    ``inbox_ids`` acknowledges the inbox messages shown to the model since
    the last answered report (a step whose report was answered has used its
    prompt: its messages are read and are not delivered again).
    """

    TYPE = "step_report"
    agent_id: str
    step: int
    command: str
    args_json: str = "{}"
    speak: str = ""
    inbox_ids: list[str] = field(default_factory=list)  # inbox messages shown since the last report: read


@message
@dataclass(frozen=True, slots=True)
class StepVerdict:
    """Reply to StepReport: ``run`` the command; ``warn`` (run it, and tell the model ``message``);
    ``stop`` (do not run it, stop the agent; ``message`` is the reason); ``hold`` (the command
    needs a person's approval: wait for request ``request_id`` with AwaitApproval, then run it
    or not; ``message``, if any, is a warning for the model)."""

    TYPE = "step_verdict"
    RUN = "run"
    WARN = "warn"
    STOP = "stop"
    HOLD = "hold"
    verdict: str = RUN
    message: str = ""
    request_id: str = ""


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
    """Delivered to an agent's inbox: a child's result, a notice, an operator note, a question, a reply.

    ``message_id`` is the id the registry keeps it under (empty: a local note
    that is not kept): the agent acknowledges it with ``InboxAck`` once it
    has entered a prompt, and shows a redelivery of an id it has seen once
    only. ``reply_to`` is the question a ``reply`` answers.
    """

    TYPE = "inbox"
    sender: str
    text: str
    kind: str = "message"  # result | notice | message | question | reply (swarm_core.messages.inbox.Kind)
    message_id: str = ""
    reply_to: str = ""


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
