"""The agent's ports to the world: the bus adapter the commands talk through.

Commands never touch sockets; they call these methods, which turn requests
to the supervisor, other agents and the memory service into plain results or
:class:`CommandError` observations.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from agents.commands.context import CommandError
from bus.retry import new_request_id, once
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
from swarm_core.messages.inbox import Kind
from swarm_core.peers import SUPERVISOR

POST_BUDGET = 30.0  # seconds to get a message kept by the supervisor (it may be restarting)


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
        reply_ready: Callable[[str], bool] = lambda q: False,
        take_reply: Callable[[str], str | None] = lambda q: None,
    ) -> None:
        self.client = client
        self.agent_id = agent_id
        self.message_timeout = message_timeout
        self.spawn_timeout = spawn_timeout
        self.memory_timeout = memory_timeout
        self._should_stop = should_stop
        self._has_news = has_news
        self._set_status = set_status
        self._reply_ready = reply_ready
        self._take_reply = take_reply
        self._memory: Any = None

    def _ask(self, dst: str, body: Any, timeout: float) -> Any:
        return self._answer(dst, timeout,
                            lambda: self.client.request(dst, body, timeout, abort=self._should_stop))

    def _ask_once(self, dst: str, make: Callable[[str], Any], budget: float) -> Any:
        """A state-changing request: one request id, tried again after a lost answer (``bus/retry.py``)."""
        request_id = new_request_id()

        def attempt(timeout: float) -> Any:
            return self.client.request(dst, make(request_id), timeout, abort=self._should_stop)

        return self._answer(dst, budget, lambda: once(attempt, budget, self._pause, self._should_stop))

    def _pause(self, seconds: float) -> None:
        self.client.poll(seconds, until=self._should_stop)

    def _answer(self, dst: str, timeout: float, call: Callable[[], Any]) -> Any:
        """The reply of ``call()``; its errors as CommandError observations (Stopped passes)."""
        try:
            return call()
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
        r = self._ask_once(SUPERVISOR, lambda rid: m.StartAgent(name, task, prompt, role, budget, request_id=rid),
                           2 * self.spawn_timeout)
        return (f"started agent {r.agent_id!r} (depth {r.depth}); it works on its own and its result "
                f"will arrive in your INBOX. Use do_nothing to wait for it.")

    def message_agent(self, key: str, message: str) -> str:
        """Post a question to agent ``key`` (kept by the supervisor) and wait (bounded) for its reply."""
        if key == self.agent_id:
            raise CommandError("you cannot message yourself")
        posted = self.post(key, message, Kind.QUESTION)
        self._set_status("waiting")
        try:
            self.client.poll(self.message_timeout,
                             until=lambda: self._reply_ready(posted) or self._should_stop())
        finally:
            self._set_status("running")
        text = self._take_reply(posted)
        if text is not None:
            return f"{key} replied: {text}"
        if self._should_stop():
            raise Stopped(f"stopped while waiting for {key}'s reply")
        raise CommandError(f"no reply from {key} within {self.message_timeout:g}s; "
                           "if it answers later, the reply arrives in your INBOX")

    def post(self, key: str, text: str, kind: str, reply_to: str = "") -> str:
        """Have the supervisor keep and deliver a message for agent ``key``; return its id."""
        posted = self._ask_once(SUPERVISOR, lambda rid: m.PostMessage(key, text, kind, reply_to, rid),
                                POST_BUDGET)
        return str(posted.message_id)

    def reply(self, key: str, question_id: str, text: str) -> str:
        """Answer question ``question_id`` that agent ``key`` asked (delivered like any message)."""
        return self.post(key, text, Kind.REPLY, question_id)

    def list_agents(self) -> list[dict[str, Any]]:
        return list(self._ask(SUPERVISOR, m.ListAgents("children"), 10.0).agents)

    def delete_agent(self, key: str) -> str:
        self._ask_once(SUPERVISOR, lambda rid: m.DeleteAgent(key, reason=f"deleted by {self.agent_id}",
                                                             request_id=rid), 30.0)
        return f"agent {key} and its sub-agents were stopped"

    # ------------------------------------------------------------ memory

    def _mem(self) -> Any:
        if self._memory is None:
            from memory.client import MemoryClient

            self._memory = MemoryClient(self.client, timeout=self.memory_timeout)
        return self._memory

    def memory_add(self, text: str) -> int:
        """Store ``text`` in shared memory once, however often the request must be tried."""
        request_id = new_request_id()
        meta = [{"agent": self.agent_id, "request": request_id}]

        def attempt(timeout: float) -> list[int]:
            return self._mem().add([text], namespace="shared", metadata=meta, request_id=request_id,
                                   timeout=timeout)

        try:
            ids = once(attempt, 2 * self.memory_timeout, self._pause, self._should_stop)
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
