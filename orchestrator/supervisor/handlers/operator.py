"""Bus handlers for the control surface: listings, kill, freeze, messages, inspect, down.

Who may send each of these, and an agent's scope (it lists its own
children, deletes only agents of its own subtree), is the authorization
table's (``swarm_core.authz``), applied before a handler runs: the
handlers here only do the work.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from bus import messages as bm
from bus.protocol import Message
from orchestrator.supervisor.handlers.inbox import accept, request_key
from orchestrator.supervisor.parts import Parts
from orchestrator.supervisor.registry import inspect_view, ps_view, subtree_spend
from swarm_core import messages as m
from swarm_core.errors import NotFound
from swarm_core.messages.inbox import Kind
from swarm_core.status import Reason


class OperatorHandlers:
    """Handlers of the control messages (mostly from ``swarm`` CLI peers)."""

    def __init__(self, parts: Parts) -> None:
        self.p = parts

    def routes(self) -> dict[type, Callable[[Message], Any]]:
        return {m.ListAgents: self.list_agents, m.DeleteAgent: self.delete, m.KillAll: self.kill_all,
                m.Freeze: self.freeze, m.OperatorMessage: self.operator_message, m.Inspect: self.inspect,
                m.Down: self.down, m.SwarmStatus: self.swarm_status}

    def list_agents(self, msg: Message) -> m.AgentList:
        """Every agent (scope ``all``) or the sender's own children."""
        recs = self.p.table.all()
        spend = subtree_spend(recs)
        if msg.body.scope != "all":
            recs = [r for r in recs if r.parent == msg.header.src]
        return m.AgentList([ps_view(r, spend[r.id]) for r in recs])

    def delete(self, msg: Message) -> bm.Ok:
        """Stop an agent and its subtree (an agent's target is in its own subtree: the table saw to it).

        A retried request id is answered with the first outcome (stopping is
        idempotent anyway; the count is the first try's).
        """
        body: m.DeleteAgent = msg.body
        table = self.p.table
        request_key(msg.header.src, body.request_id)  # checks the id
        first = table.outcomes.get(msg.header.src, body.request_id, m.DeleteAgent.TYPE)
        if first is not None:
            return bm.Ok(first)
        target = table.get(body.agent_id)
        if target is None:
            raise NotFound(f"no agent {body.agent_id!r}")
        stopped = self.p.life.stop_subtree(target.id, body.reason or Reason.DELETED, hard=body.hard)
        table.outcomes.put(msg.header.src, body.request_id, m.DeleteAgent.TYPE, {"stopped": stopped},
                           self.p.wall())
        return bm.Ok({"stopped": stopped})

    def kill_all(self, msg: Message) -> bm.Ok:
        return bm.Ok({"stopped": self.p.life.stop_everything(msg.body.reason or Reason.KILL_ALL, hard=True)})

    def freeze(self, msg: Message) -> bm.Ok:
        body: m.Freeze = msg.body
        return bm.Ok({"agents": self.p.life.freeze(body.agent_id, body.frozen, body.reason)})

    def operator_message(self, msg: Message) -> bm.Ok:
        """A person's message: kept in the agent's inbox before the answer (its id in ``message_id``)."""
        body: m.OperatorMessage = msg.body  # only an operator sends it (swarm_core/authz.py)
        note = accept(self.p, body.agent_id, "operator", Kind.MESSAGE, body.text, requester=msg.header.src,
                      request_id=body.request_id)
        return bm.Ok({"message_id": note.id})

    def inspect(self, msg: Message) -> m.InspectReply:
        info = inspect_view(self.p.table, msg.body.agent_id)
        if info is None:
            raise NotFound(f"no agent {msg.body.agent_id!r}")
        return m.InspectReply(info)

    def down(self, msg: Message) -> bm.Ok:
        self.p.shutdown(msg.body.reason or Reason.DOWN)
        return bm.Ok()

    def swarm_status(self, msg: Message) -> m.SwarmState:
        cfg, root = self.p.cfg, self.p.table.get(self.p.cfg.root)
        return m.SwarmState({
            "name": cfg.name, "root": cfg.root, "root_status": root.status if root else None,
            "result": root.result if root else None, "pid": os.getpid(),
            "agents": len(self.p.table.all()), "uptime": round(self.p.wall() - self.p.started, 3),
        })
