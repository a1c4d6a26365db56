"""The gateway service: admits agents' model calls and runs them on a provider.

A plain object that takes its ports (bus client, provider, clocks, logger);
``orchestrator/gateway/__main__.py`` wires it to a process.

* ``Complete`` requests (the agent is ``header.src``, which the broker
  enforces) are queued in arrival order and admitted by :meth:`pump` on the
  loop thread. Admission, in order: the caller's deadline has not passed
  (else the call is dropped without a reply), the agent is not frozen (else
  held), the provider has a free slot (else held, status ``waiting``), no
  budget is used up (else a ``budget_exhausted`` error reply and a Usage
  with ``stop_reason``), the rate buckets have room (else held, status
  ``throttled``, see ``quotas.py`` for the pause rule).
* An admitted call runs on a worker thread; its result comes back to the
  loop thread (``call_soon_threadsafe``), which replies, records the usage
  the provider reported and sends ``Usage`` totals to the supervisor. A slow
  call never blocks another agent's.
* ``Freeze`` (from the supervisor; ``agent_id`` "" = every agent) holds calls
  not yet started until thawed. ``Stop`` asks the service to stop.
* The stop is ordered and bounded (the host calls the steps in this order,
  see ``bus/host``): :meth:`stop_accepting` refuses new calls and answers
  held ones with ``stopped``; :meth:`drain` lets running calls finish until
  a deadline (or a second signal); :meth:`close` answers the rest with
  ``stopped`` and closes the provider, unless calls are still running on
  worker threads (then ``busy`` stays true and the process exits at once).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import zmq

from bus import messages as bm
from bus.client import DEFERRED
from bus.host import Hosted
from bus.protocol import Kind, Message
from orchestrator.config import LLM, Quotas, Safety
from orchestrator.gateway.breaker import Breaker
from orchestrator.gateway.providers.base import Provider, Request, Result
from orchestrator.gateway.quotas import Admit, Exhausted, Hold, QuotaBook, cost_usd, estimate_tokens
from swarm_core import messages as m
from swarm_core.errors import (
    InvalidRequest,
    PeerBusy,
    PolicyDenied,
    ProviderError,
    QuotaExhausted,
    Stopped,
    SwarmError,
)
from swarm_core.peers import SUPERVISOR
from swarm_core.tracing import Recorder, Span

MAX_TOKENS_LIMIT = 32_768
SPAN_FLUSH_S = 0.5  # finished model-call spans go to the supervisor at most this often (in batches)


@dataclass
class _Call:
    msg: Message
    agent: str
    request: Request
    estimate: int
    held_since: float | None = None  # when the rate buckets first held it
    status: str = ""  # the gateway-side status last reported for this call
    frozen_seen: bool = False
    span: Span | None = None  # the model call's span, from arrival here to the answer


@dataclass
class _Freezes:
    all: bool = False
    agents: set[str] = field(default_factory=set)
    thawed: set[str] = field(default_factory=set)  # exceptions to ``all``

    def apply(self, agent: str, frozen: bool) -> None:
        if not agent:
            self.all, self.agents, self.thawed = frozen, set(), set()
        elif frozen:
            self.agents.add(agent)
            self.thawed.discard(agent)
        else:
            self.agents.discard(agent)
            if self.all:
                self.thawed.add(agent)

    def __contains__(self, agent: str) -> bool:
        return agent in self.agents or (self.all and agent not in self.thawed)


class GatewayService(Hosted):
    """Quotas, freezes and concurrency in front of one provider."""

    def __init__(
        self,
        client: Any,
        provider: Provider,
        quotas: Quotas,
        llm: LLM,
        *,
        log: Any,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        workers: int = 32,
        max_queued_per_agent: int = 16,
        safety: Safety | None = None,
    ) -> None:
        self.client = client
        self.provider = provider
        self.llm = llm
        self.book = QuotaBook(quotas)
        self.log = log
        self._clock = clock
        self._wall = wall
        self._slots = provider.concurrency or workers
        self._max_queued = max_queued_per_agent
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gateway-call")
        self._queue: list[_Call] = []
        self._running: dict[int, _Call] = {}
        self._freezes = _Freezes()
        self._safety = safety
        self._breakers: dict[str, Breaker] = {}
        self.tracer = Recorder("gateway")
        self._spans_sent_at = 0.0
        self.stop_reason = ""  # set when asked to stop; the process loop acts on it
        self._abandoned = False  # stop() left provider calls running on worker threads

    def attach(self) -> None:
        """Register the handlers on the bus client."""
        self.client.handle(m.Complete, self.on_complete)
        self.client.handle(m.Freeze, self.on_freeze)
        self.client.handle(m.Stop, self.on_stop)

    @property
    def busy(self) -> bool:
        """Whether provider calls are still running on worker threads."""
        return bool(self._running) or self._abandoned

    # ------------------------------------------------------------ handlers

    def on_complete(self, msg: Message) -> Any:
        """Queue an agent's call; the reply is sent when it has run (DEFERRED)."""
        if msg.header.kind is not Kind.REQUEST:
            self.log.warning("complete_not_a_request", src=msg.header.src)
            return None
        if self.stop_reason:
            raise Stopped("the gateway is stopping")
        body: m.Complete = msg.body
        agent = msg.header.src
        if body.agent_id and body.agent_id != agent:
            self.log.warning("complete_agent_id_mismatch", src=agent, claimed=body.agent_id)
        if not body.prompt and not body.messages:
            raise InvalidRequest("a completion request needs a prompt or messages", agent=agent)
        if not 1 <= body.max_tokens <= MAX_TOKENS_LIMIT:
            raise InvalidRequest(f"max_tokens must be 1..{MAX_TOKENS_LIMIT}, got {body.max_tokens}",
                                 agent=agent)
        if sum(1 for c in self._queue if c.agent == agent) >= self._max_queued:
            raise PeerBusy(f"agent {agent} already has {self._max_queued} calls waiting", agent=agent)
        req = Request(
            agent_id=agent, prompt=body.prompt, commands=tuple(body.commands),
            max_tokens=body.max_tokens, messages=tuple(body.messages), name=body.name,
            context=dict(body.context), deadline=msg.header.deadline,
        )
        text = body.prompt or " ".join(str(x.get("content", "")) for x in body.messages)
        model = self.llm.model or self.provider.name
        span = self.tracer.start(f"chat {model}", msg.header.traceparent, agent=agent, **{
            "gen_ai.operation.name": "chat", "gen_ai.request.model": model,
            "gen_ai.provider.name": self.provider.name, "swarm.agent.id": agent})
        self._queue.append(_Call(msg, agent, req, estimate_tokens(text), span=span))
        self.pump()
        return DEFERRED

    def on_freeze(self, msg: Message) -> Any:
        """Freeze or thaw an agent's calls (or every agent's); only the supervisor may."""
        if msg.header.src != SUPERVISOR:
            raise PolicyDenied(f"only the supervisor may freeze or thaw, not {msg.header.src}")
        body: m.Freeze = msg.body
        self._freezes.apply(body.agent_id, body.frozen)
        if not body.frozen:  # a thaw starts the breaker's count afresh
            for agent, br in self._breakers.items():
                if not body.agent_id or agent == body.agent_id:
                    br.reset()
        self.log.info("freeze" if body.frozen else "thaw", agent=body.agent_id or "*", reason=body.reason)
        self.pump()
        return bm.Ok()

    def on_stop(self, msg: Message) -> Any:
        """Record that the supervisor asked us to stop (the loop stops)."""
        if msg.header.src != SUPERVISOR:
            raise PolicyDenied(f"only the supervisor may stop the gateway, not {msg.header.src}")
        self.request_stop(msg.body.reason)
        return bm.Ok()

    # ------------------------------------------------------------ admission

    def pump(self) -> None:
        """Admit every queued call that may run now (loop thread; call on each tick)."""
        now, wall = self._clock(), self._wall()
        keep: list[_Call] = []
        for call in self._queue:
            if self.stop_reason:
                keep.append(call)
                continue
            if call.request.deadline and wall > call.request.deadline:
                self.log.info("call_abandoned", agent=call.agent, status=call.status or "queued")
                self._end_span(call, **{"error.type": "deadline_exceeded"})
                if call.status:
                    self._status(call, "running")  # no longer held here: clear throttled/waiting
                continue
            if call.agent in self._freezes:
                if not call.frozen_seen:
                    call.frozen_seen = True
                    self.log.info("call_frozen", agent=call.agent)
                keep.append(call)
                continue
            if len(self._running) >= self._slots:
                self._status(call, "waiting")
                keep.append(call)
                continue
            verdict = self.book.admit(call.agent, now, call.estimate,
                                      now if call.held_since is None else call.held_since)
            if isinstance(verdict, Exhausted):
                self._refuse(call, verdict)
            elif isinstance(verdict, Hold):
                if call.held_since is None:
                    call.held_since = now
                    self.log.info("call_throttled", agent=call.agent, bucket=verdict.reason,
                                  wait_s=round(verdict.seconds, 3))
                self._status(call, "throttled")
                keep.append(call)
            else:
                self._start(call, verdict)
        self._queue = keep
        self.flush_spans()

    def _status(self, call: _Call, status: str) -> None:
        if call.status == status:
            return
        call.status = status
        self._usage(call.agent, status=status)

    def _refuse(self, call: _Call, verdict: Exhausted) -> None:
        self.log.warning("budget_exhausted", agent=call.agent, scope=verdict.scope, reason=verdict.reason)
        self._end_span(call, **{"error.type": "budget_exhausted"})
        self._usage(call.agent, stop_reason="budget_exhausted")
        self._reply_error(call, QuotaExhausted(f"{call.agent}: {verdict.reason}", agent=call.agent,
                                               scope=verdict.scope))

    def _start(self, call: _Call, verdict: Admit) -> None:
        if call.status:
            self._status(call, "running")
        if verdict.forced:
            self.log.info("call_released_after_pause", agent=call.agent)
        self._running[id(call)] = call
        self._pool.submit(self._run, call)

    # ------------------------------------------------------ worker / results

    def _run(self, call: _Call) -> None:
        """Worker thread: call the provider, hand the outcome to the loop thread."""
        try:
            outcome: Result | SwarmError = self.provider.complete(call.request)
        except SwarmError as err:
            outcome = err
        except Exception as exc:  # a provider bug must not take the gateway down
            self.log.exception("provider_crashed", agent=call.agent)
            outcome = ProviderError(f"{self.provider.name} provider failed: {type(exc).__name__}: {exc}")
        try:
            self.client.call_soon_threadsafe(lambda: self._finish(call, outcome))
        except Exception:  # the client is closed: the process is going away
            pass

    def _finish(self, call: _Call, outcome: Result | SwarmError) -> None:
        if self._running.pop(id(call), None) is None:
            return  # already answered (stopped)
        if isinstance(outcome, SwarmError):
            self.log.warning("call_failed", agent=call.agent, code=outcome.code, error=outcome.message)
            self._end_span(call, **{"error.type": outcome.code})
            self._reply_error(call, outcome)
        else:
            self._completed(call, outcome)
        self.pump()

    def _completed(self, call: _Call, res: Result) -> None:
        model = res.model or self.llm.model
        prices = self.llm.prices
        cost = cost_usd(prices, model if model in prices else self.llm.model,
                        res.prompt_tokens, res.completion_tokens)
        tokens = res.prompt_tokens + res.completion_tokens
        self._end_span(call, **{"gen_ai.response.model": model, "gen_ai.usage.input_tokens": res.prompt_tokens,
                                "gen_ai.usage.output_tokens": res.completion_tokens, "swarm.cost_usd": cost})
        self._check_breaker(call.agent, res.text)  # before the reply: the next call is already held
        if not self._expired(call):
            self._send(lambda: self.client.reply(call.msg, m.Completion(
                res.text, res.prompt_tokens, res.completion_tokens, model, cost)))
        else:
            self.log.info("reply_dropped_after_deadline", agent=call.agent)
        self.book.record(call.agent, self._clock(), tokens, cost, call.estimate)
        ex = self.book.exhausted(call.agent)
        if ex is not None:
            self.log.warning("budget_exhausted", agent=call.agent, scope=ex.scope, reason=ex.reason)
        self._usage(call.agent, stop_reason="budget_exhausted" if ex is not None else "")

    def _check_breaker(self, agent: str, text: str) -> None:
        """The circuit breaker: risky words in ``threshold`` consecutive outputs freeze the agent."""
        if self._safety is None or not self._safety.breaker_words:
            return
        br = self._breakers.get(agent)
        if br is None:
            br = self._breakers[agent] = Breaker(self._safety.breaker_words, self._safety.breaker_threshold)
        if not br.observe(text):
            return
        self._freezes.apply(agent, True)
        self.log.warning("breaker_tripped", agent=agent, words=br.last_matches, streak=br.streak)
        tripped = m.BreakerTripped(agent, list(br.last_matches), br.streak)
        self._send(lambda: self.client.send(SUPERVISOR, tripped))

    # --------------------------------------------------------------- output

    def _expired(self, call: _Call) -> bool:
        return bool(call.request.deadline) and self._wall() > call.request.deadline

    def _reply_error(self, call: _Call, err: SwarmError) -> None:
        if not self._expired(call):
            self._send(lambda: self.client.reply_error(call.msg, err))

    def _end_span(self, call: _Call, **attributes: object) -> None:
        """End the call's span; :meth:`flush_spans` sends it on."""
        if call.span is not None:
            self.tracer.end(call.span, **attributes)
            call.span = None

    def flush_spans(self, force: bool = False) -> None:
        """Send finished spans to the supervisor (the swarm's exporter), at most every SPAN_FLUSH_S."""
        now = time.monotonic()  # telemetry pacing runs on real time, not the quota clock
        if not force and now - self._spans_sent_at < SPAN_FLUSH_S:
            return
        spans = self.tracer.drain()
        if spans:
            self._spans_sent_at = now
            self._send(lambda: self.client.send(SUPERVISOR, m.TraceSpans(spans)))

    def _usage(self, agent: str, status: str = "", stop_reason: str = "") -> None:
        t = self.book.agent_totals(agent)
        usage = m.Usage(agent, t.tokens, t.requests, round(t.cost_usd, 8), status, stop_reason)
        self._send(lambda: self.client.send(SUPERVISOR, usage))

    def _send(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except (zmq.ZMQError, SwarmError) as exc:  # a full or closed socket: log, go on
            self.log.warning("send_failed", error=str(exc))

    # ------------------------------------------------------- the host's hooks

    def start(self) -> None:
        """Say which provider serves (the bus client is connected)."""
        self.log.info("gateway_started", provider=self.llm.provider, model=self.llm.model, pid=os.getpid())

    def tick(self) -> None:
        """Admit what may run now (held calls, expired deadlines): once per loop pass."""
        self.pump()

    def stop_accepting(self) -> None:
        """Refuse new calls and answer the held ones with ``stopped``."""
        self.request_stop("stopped")
        self.log.info("gateway_stopping", reason=self.stop_reason, held=len(self._queue),
                      running=len(self._running))
        for call in self._queue:
            self._reply_error(call, Stopped(f"the gateway stopped ({self.stop_reason})"))
        self._queue = []

    def drain(self, deadline: float, hurry: Callable[[], bool]) -> None:
        """Let running calls finish until ``deadline`` (monotonic) or until ``hurry()``."""
        # a real wait for real threads, not the quota clock
        while self._running and time.monotonic() < deadline and not hurry():
            self.client.poll(min(0.05, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        """Answer calls still running with ``stopped``; close the provider unless they still run."""
        for call in list(self._running.values()):
            self._reply_error(call, Stopped(f"the gateway stopped ({self.stop_reason})"))
        self.flush_spans(force=True)
        self.kill()
        if not self._abandoned:
            self.provider.close()
        self.log.info("gateway_stopped", reason=self.stop_reason)

    def kill(self) -> None:
        """Stop at once: no new worker runs; calls still running are abandoned (``busy``)."""
        self._abandoned = self._abandoned or bool(self._running)
        self._running.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
