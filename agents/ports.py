"""The agent's ports to the world: the bus adapter the commands talk through.

Commands never touch sockets; they call these methods, which turn requests
to the supervisor, other agents and the memory service into plain results or
:class:`CommandError` observations.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from agents.commands.context import CommandError
from bus.client import BusClient
from swarm_core import messages as m
from swarm_core.errors import (
    DeadlineExceeded,
    NotFound,
    PolicyDenied,
    Stopped,
    SwarmError,
    UnknownDestination,
)
from swarm_core.peers import SUPERVISOR


class BusPorts:
    """AgentPorts over a BusClient (see agents/commands/context.py)."""

    def __init__(
        self,
        client: BusClient,
        agent_id: str,
        *,
        message_timeout: float = 60.0,
        spawn_timeout: float = 30.0,
        memory_timeout: float = 30.0,
        should_stop: Callable[[], bool] = lambda: False,
        has_news: Callable[[], bool] = lambda: False,
        set_status: Callable[[str], None] = lambda s: None,
    ) -> None:
        self.client = client
        self.agent_id = agent_id
        self.message_timeout = message_timeout
        self.spawn_timeout = spawn_timeout
        self.memory_timeout = memory_timeout
        self._should_stop = should_stop
        self._has_news = has_news
        self._set_status = set_status
        self._memory: Any = None

    def _ask(self, dst: str, body: Any, timeout: float) -> Any:
        try:
            return self.client.request(dst, body, timeout, abort=self._should_stop)
        except Stopped:
            raise
        except PolicyDenied as exc:
            raise CommandError(f"refused: {exc.message}") from None
        except NotFound as exc:
            raise CommandError(exc.message) from None
        except UnknownDestination:
            raise CommandError(f"{dst} is not reachable on the bus (not running, or finished)") from None
        except DeadlineExceeded:
            raise CommandError(f"no answer from {dst} within {timeout:g}s") from None
        except SwarmError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None

    # ------------------------------------------------------------ agents

    def start_agent(self, name: str, task: str, prompt: str = "", role: str = "", budget: int = 0) -> str:
        r = self._ask(SUPERVISOR, m.StartAgent(name, task, prompt, role, budget), self.spawn_timeout)
        return (f"started agent {r.agent_id!r} (depth {r.depth}); it works on its own and its result "
                f"will arrive in your INBOX. Use do_nothing to wait for it.")

    def message_agent(self, key: str, message: str) -> str:
        if key == self.agent_id:
            raise CommandError("you cannot message yourself")
        self._set_status("waiting")
        try:
            reply = self._ask(key, m.AgentMessage(message), self.message_timeout)
        finally:
            self._set_status("running")
        return f"{key} replied: {reply.text}"

    def list_agents(self) -> list[dict[str, Any]]:
        return list(self._ask(SUPERVISOR, m.ListAgents("children"), 10.0).agents)

    def delete_agent(self, key: str) -> str:
        self._ask(SUPERVISOR, m.DeleteAgent(key, reason=f"deleted by {self.agent_id}"), 15.0)
        return f"agent {key} and its sub-agents were stopped"

    # ------------------------------------------------------------ memory

    def _mem(self) -> Any:
        if self._memory is None:
            from memory.client import MemoryClient

            self._memory = MemoryClient(self.client, timeout=self.memory_timeout)
        return self._memory

    def memory_add(self, text: str) -> int:
        try:
            ids = self._mem().add([text], namespace="shared", metadata=[{"agent": self.agent_id}])
        except SwarmError as exc:
            raise CommandError(f"memory: {exc.message}") from None
        return int(ids[0])

    def memory_search(self, query: str, k: int) -> list[dict[str, Any]]:
        try:
            return list(self._mem().search(query, k=k, namespaces=["shared", f"agent:{self.agent_id}"]))
        except SwarmError as exc:
            raise CommandError(f"memory: {exc.message}") from None

    # -------------------------------------------------------------- time

    def keep_alive(self, seconds: float) -> None:
        """Run the bus loop for ``seconds`` (heartbeats and handlers go on)."""
        self.client.poll(max(0.0, seconds))

    def wait_for_news(self, seconds: float) -> bool:
        """Wait until the inbox has something, a stop arrives or ``seconds`` pass."""
        end = time.monotonic() + seconds
        self._set_status("waiting")
        try:
            self.client.poll(max(0.0, end - time.monotonic()),
                             until=lambda: self._has_news() or self._should_stop())
            return self._has_news()
        finally:
            self._set_status("running")
