"""The gateway service: admits agents' model calls and runs them on a provider.

A plain object that takes its ports (bus client, provider, clocks, logger);
``orchestrator/gateway/__main__.py`` wires it to a process.

* Who may send what is the authorization table's (``swarm_core.authz``),
  checked again by this client's dispatch before a handler runs: only
  agents send ``Complete`` (each about itself), only the supervisor
  ``Freeze``, ``BudgetChanged`` and ``Stop``. Quotas, budgets, freezes and breakers are keyed
  by the authenticated sender (``header.src``: the broker checks it against
  the sender's credential on every message), never by a body field.
* ``Complete`` requests are queued in arrival order and admitted by
  :meth:`pump` on the loop thread. Admission, in order: the caller's deadline has not passed
  (else the call is dropped without a reply), the agent is not frozen (else
  held), the provider has a free slot (else held, status ``waiting``), every
  budget over the agent can cover the call's worst case (``spend.py``; else
  ``quotas.on_exhausted``: ``pause`` freezes the agent here, holds the call
  and tells the supervisor (``BudgetExhausted``); ``kill`` answers
  ``budget_exhausted`` and sends a Usage with ``stop_reason``), the rate
  buckets have room (else held, status ``throttled``, see ``quotas.py`` for
  the pause rule). An admitted call's worst case is reserved in the ledger.
* An admitted call runs on a worker thread; its result comes back to the
  loop thread (``call_soon_threadsafe``), which records the usage the
  provider reported (in the ledger), replies and sends ``Usage`` totals to
  the supervisor. A slow call never blocks another agent's.
* A call id asked again is counted once (``accounting.py``): a finished
  call is answered from the ledger; a call a crashed gateway was running is
  answered ``call_interrupted`` at start and runs on its old reservation when
  the agent asks again. ``BudgetChanged`` (from the supervisor) makes the
  gateway read that agent's budget again.
* ``Freeze`` (from the supervisor; ``agent_id`` "" = every agent) holds calls
  not yet started until thawed. ``Stop`` asks the service to stop.
* The circuit breaker sees every answer before it goes out. The answer that
  trips it is not delivered: it is held with the frozen agent until a thaw
  (then it is delivered, and its command may run) or until the caller's
  deadline passes (then it is dropped, like a held call); an agent killed
  while frozen never gets it.
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
from dataclasses import replace
from typing import Any, Callable

import zmq

from bus import messages as bm
from bus.client import DEFERRED
from bus.host import Hosted
from bus.protocol import Kind, Message
from orchestrator.config import LLM, Quotas, Safety
from orchestrator.gateway.accounting import Accounting
from orchestrator.gateway.breaker import Breaker
from orchestrator.gateway.calls import Call, interrupted_request, request_of
from orchestrator.gateway.freezes import Freezes
from orchestrator.gateway.ledger import Answer, NullLedger
from orchestrator.gateway.providers.base import Provider, Result
from orchestrator.gateway.quotas import Admit, Hold, QuotaBook, cost_usd, estimate_tokens
from orchestrator.gateway.spans import CallSpans
from orchestrator.gateway.spend import Exhausted, Tree
from swarm_core import authz
from swarm_core import messages as m
from swarm_core.errors import (
    CallInterrupted,
    PeerBusy,
    ProviderError,
    QuotaExhausted,
    Stopped,
    SwarmError,
)
from swarm_core.peers import SUPERVISOR


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
        tree: Tree | None = None,
        ledger: NullLedger | None = None,
    ) -> None:
        self.client = client
        self.provider = provider
        self.llm = llm
        self.book = QuotaBook(quotas)
        self.accounts = Accounting(quotas, llm, provider, tree=tree, ledger=ledger, wall=wall)
        self._pause_on_exhausted = quotas.on_exhausted == "pause"
        self.log = log
        self._clock = clock
        self._wall = wall
        self._slots = provider.concurrency or workers
        self._max_queued = max_queued_per_agent
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gateway-call")
        self._queue: list[Call] = []
        self._running: dict[int, Call] = {}
        self._freezes = Freezes()
        self._safety = safety
        self._breakers: dict[str, Breaker] = {}
        self._held_answers: list[tuple[Call, m.Completion]] = []  # tripped the breaker: out at a thaw
        self.spans = CallSpans(provider.name, llm.model or provider.name,
                               lambda batch: self._send(lambda: self.client.send(SUPERVISOR, batch)))
        self.stop_reason = ""  # set when asked to stop; the process loop acts on it
        self._abandoned = False  # stop() left provider calls running on worker threads

    def attach(self) -> None:
        """Register the handlers on the bus client, behind the authorization table."""
        self.client.authorize_with(authz.for_dispatch())
        self.client.handle(m.Complete, self.on_complete)
        self.client.handle(m.Freeze, self.on_freeze)
        self.client.handle(m.Stop, self.on_stop)
        self.client.handle(m.BudgetChanged, self.on_budget_changed)

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
        agent = msg.header.src
        req = request_of(msg)  # InvalidRequest for a malformed one
        if sum(1 for c in self._queue if c.agent == agent) >= self._max_queued:
            raise PeerBusy(f"agent {agent} already has {self._max_queued} calls waiting", agent=agent)
        call_id = msg.body.call_id or msg.header.msg_id
        repeated = self.accounts.repeat(call_id, agent)
        if repeated is not None:  # asked again after the answer was lost: the same answer, not charged again
            self.log.info("call_repeated", agent=agent, call_id=call_id)
            return repeated.completion()
        if self._rebind(call_id, agent, msg):
            return DEFERRED
        span = self.spans.start(agent, msg.header.traceparent)
        self._queue.append(Call(msg, agent, req, estimate_tokens(req.prompt or req.text()), call_id,
                                self.accounts.worst(req), adopted=self.accounts.adopt(call_id, agent), span=span))
        self.pump()
        return DEFERRED

    def _rebind(self, call_id: str, agent: str, msg: Message) -> bool:
        """A call still queued or running asked again: answer the new request when it is done."""
        for call in (*self._queue, *self._running.values()):
            if call.call_id == call_id and call.agent == agent:
                call.msg = msg
                call.request = replace(call.request, deadline=msg.header.deadline)
                return True
        return False

    def on_budget_changed(self, msg: Message) -> Any:
        """The supervisor changed an agent's budget in the registry: read it again (only it may say so)."""
        self.accounts.forget(msg.body.agent_id)
        self.pump()
        return None

    def on_freeze(self, msg: Message) -> Any:
        """Freeze or thaw an agent's calls (or every agent's), as the supervisor says."""
        body: m.Freeze = msg.body
        self._freezes.apply(body.agent_id, body.frozen)
        if not body.frozen:  # a thaw starts the breaker's count afresh
            for agent, br in self._breakers.items():
                if not body.agent_id or agent == body.agent_id:
                    br.reset()
        self.log.info("freeze" if body.frozen else "thaw", agent=body.agent_id or "*", reason=body.reason)
        self._release_answers()
        self.pump()
        return bm.Ok()

    def on_stop(self, msg: Message) -> Any:
        """Record that the supervisor asked us to stop (the loop stops)."""
        self.request_stop(msg.body.reason)
        return bm.Ok()

    # ------------------------------------------------------------ admission

    def pump(self) -> None:
        """Admit every queued call that may run now (loop thread; call on each tick)."""
        now, wall = self._clock(), self._wall()
        keep: list[Call] = []
        for call in self._queue:
            if self.stop_reason:
                keep.append(call)
                continue
            if call.request.deadline and wall > call.request.deadline:
                self.log.info("call_abandoned", agent=call.agent, status=call.status or "queued")
                self.spans.end(call, **{"error.type": "deadline_exceeded"})
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
            if call.adopted:  # its budget and rates were taken by the gateway that died
                self._start(call, Admit())
                continue
            exhausted = self.accounts.check(call.agent, call.worst)
            if exhausted is not None:
                if self._exhausted(call, exhausted):
                    keep.append(call)
                continue
            verdict = self.book.admit(call.agent, now, call.estimate,
                                      now if call.held_since is None else call.held_since)
            if isinstance(verdict, Hold):
                if call.held_since is None:
                    call.held_since = now
                    self.log.info("call_throttled", agent=call.agent, bucket=verdict.reason,
                                  wait_s=round(verdict.seconds, 3))
                self._status(call, "throttled")
                keep.append(call)
            else:
                self._start(call, verdict)
        self._queue = keep
        self.spans.flush()

    def _status(self, call: Call, status: str) -> None:
        if call.status == status:
            return
        call.status = status
        self._usage(call.agent, status=status)

    def _exhausted(self, call: Call, verdict: Exhausted) -> bool:
        """A budget cannot cover the call: pause (freeze the agent, hold the call: True) or refuse it."""
        self.log.warning("budget_exhausted", agent=call.agent, scope=verdict.scope, budget_of=verdict.budget_of,
                         reason=verdict.reason, paused=self._pause_on_exhausted)
        if self._pause_on_exhausted:
            self._freezes.apply(call.agent, True)
            call.frozen_seen = True
            note = m.BudgetExhausted(call.agent, verdict.budget_of, verdict.reason)
            self._send(lambda: self.client.send(SUPERVISOR, note))
            return True
        self.spans.end(call, **{"error.type": "budget_exhausted"})
        self._usage(call.agent, stop_reason="budget_exhausted")
        self._reply_error(call, QuotaExhausted(f"{call.agent}: {verdict.reason}", agent=call.agent,
                                               scope=verdict.scope, budget_of=verdict.budget_of))
        return False

    def _start(self, call: Call, verdict: Admit) -> None:
        if call.status:
            self._status(call, "running")
        if verdict.forced:
            self.log.info("call_released_after_pause", agent=call.agent)
        if not call.adopted:
            self.accounts.admitted(call.call_id, call.agent, call.msg.header.msg_id, call.worst,
                                   self.book.state(call.agent))
        self._running[id(call)] = call
        self._pool.submit(self._run, call)

    # ------------------------------------------------------ worker / results

    def _run(self, call: Call) -> None:
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

    def _finish(self, call: Call, outcome: Result | SwarmError) -> None:
        if self._running.pop(id(call), None) is None:
            return  # already answered (stopped)
        if isinstance(outcome, SwarmError):
            self.log.warning("call_failed", agent=call.agent, code=outcome.code, error=outcome.message)
            self.accounts.failed(call.call_id)
            self.spans.end(call, **{"error.type": outcome.code})
            self._reply_error(call, outcome)
        else:
            self._completed(call, outcome)
        self.pump()

    def _completed(self, call: Call, res: Result) -> None:
        model = res.model or self.llm.model
        prices = self.llm.prices
        cost = cost_usd(prices, model if model in prices else self.llm.model,
                        res.prompt_tokens, res.completion_tokens)
        tokens = res.prompt_tokens + res.completion_tokens
        self.spans.end(call, **{"gen_ai.response.model": model, "gen_ai.usage.input_tokens": res.prompt_tokens,
                                "gen_ai.usage.output_tokens": res.completion_tokens, "swarm.cost_usd": cost})
        held = self._check_breaker(call.agent, res.text)  # before the reply: the next call is already held
        self.book.record(call.agent, self._clock(), tokens, call.estimate)
        # in the ledger before the reply leaves: a crash after it never loses this spend
        self.accounts.settled(call.call_id, Answer(call.agent, res.text, res.prompt_tokens, res.completion_tokens,
                                                   model, cost), self.book.state(call.agent))
        answer = m.Completion(res.text, res.prompt_tokens, res.completion_tokens, model, cost)
        if held:  # the tripping answer waits for a thaw
            self._held_answers.append((call, answer))
            self.log.info("answer_held", agent=call.agent)
        else:
            self._deliver(call, answer)
        self._usage(call.agent)

    def _deliver(self, call: Call, answer: m.Completion) -> None:
        if not self._expired(call):
            self._send(lambda: self.client.reply(call.msg, answer))
        else:
            self.log.info("reply_dropped_after_deadline", agent=call.agent)

    def _release_answers(self) -> None:
        """Deliver the held answers of agents no longer frozen; drop those past their deadline."""
        keep = []
        for call, answer in self._held_answers:
            if call.agent not in self._freezes:
                self.log.info("answer_released", agent=call.agent)
                self._deliver(call, answer)
            elif self._expired(call):
                self.log.info("held_answer_dropped_after_deadline", agent=call.agent)
            else:
                keep.append((call, answer))
        self._held_answers = keep

    def _check_breaker(self, agent: str, text: str) -> bool:
        """The circuit breaker: risky words in ``threshold`` consecutive outputs freeze the agent (True)."""
        if self._safety is None or not self._safety.breaker_words:
            return False
        br = self._breakers.get(agent)
        if br is None:
            br = self._breakers[agent] = Breaker(self._safety.breaker_words, self._safety.breaker_threshold)
        if not br.observe(text):
            return False
        self._freezes.apply(agent, True)
        self.log.warning("breaker_tripped", agent=agent, words=br.last_matches, streak=br.streak)
        tripped = m.BreakerTripped(agent, list(br.last_matches), br.streak)
        self._send(lambda: self.client.send(SUPERVISOR, tripped))
        return True

    # --------------------------------------------------------------- output

    def _expired(self, call: Call) -> bool:
        return bool(call.request.deadline) and self._wall() > call.request.deadline

    def _reply_error(self, call: Call, err: SwarmError) -> None:
        if not self._expired(call):
            self._send(lambda: self.client.reply_error(call.msg, err))

    def _usage(self, agent: str, status: str = "", stop_reason: str = "") -> None:
        t = self.accounts.totals(agent)
        usage = m.Usage(agent, t.tokens, t.requests, round(t.usd, 8), status, stop_reason)
        self._send(lambda: self.client.send(SUPERVISOR, usage))

    def _send(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except (zmq.ZMQError, SwarmError) as exc:  # a full or closed socket: log, go on
            self.log.warning("send_failed", error=str(exc))

    # ------------------------------------------------------- the host's hooks

    def start(self) -> None:
        """Load the ledger; answer the calls a previous gateway left running; say which provider serves."""
        in_flight = self.accounts.recover(self.book, self._clock())
        for f in in_flight.values():
            # the agent asks again with the same call id and runs on the reservation kept for it
            self._send(lambda f=f: self.client.reply_error(interrupted_request(f), CallInterrupted(
                "the gateway restarted while this call was running; ask again")))
        self.log.info("gateway_started", provider=self.llm.provider, model=self.llm.model, pid=os.getpid(),
                      interrupted=len(in_flight))

    def tick(self) -> None:
        """Admit what may run now (held calls, expired deadlines); tidy the accounts: once per loop pass."""
        if self._held_answers:
            self._release_answers()
        self.pump()
        for call_id in self.accounts.tick():
            self.log.info("orphan_reservation_released", call_id=call_id)

    def stop_accepting(self) -> None:
        """Refuse new calls and answer the held ones with ``stopped``."""
        self.request_stop("stopped")
        self.log.info("gateway_stopping", reason=self.stop_reason, held=len(self._queue),
                      running=len(self._running))
        for call in self._queue + [c for c, _ in self._held_answers]:
            self._reply_error(call, Stopped(f"the gateway stopped ({self.stop_reason})"))
        self._queue, self._held_answers = [], []

    def drain(self, deadline: float, hurry: Callable[[], bool]) -> None:
        """Let running calls finish until ``deadline`` (monotonic) or until ``hurry()``."""
        # a real wait for real threads, not the quota clock
        while self._running and time.monotonic() < deadline and not hurry():
            self.client.poll(min(0.05, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        """Answer calls still running with ``stopped``; close the provider unless they still run."""
        for call in list(self._running.values()):
            self._reply_error(call, Stopped(f"the gateway stopped ({self.stop_reason})"))
        self.spans.flush(force=True)
        self.kill()
        if not self._abandoned:
            self.provider.close()
        self.accounts.ledger.close()
        self.log.info("gateway_stopped", reason=self.stop_reason)

    def kill(self) -> None:
        """Stop at once: no new worker runs; calls still running are abandoned (``busy``)."""
        self._abandoned = self._abandoned or bool(self._running)
        self._running.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
