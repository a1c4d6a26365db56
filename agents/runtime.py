"""The think–act loop of one agent (the seeds' Auto-GPT loop).

Each step: build the prompt (role, goals, constraints, commands, history,
inbox, memories), ask the gateway for a completion, parse the JSON answer
(an invalid answer goes back to the model as an observation, a bounded
number of times), dispatch the command through the registry, record the
observation, and repeat until ``task_complete``, a stop request, or a limit.

The runtime takes its ports (bus client, ports adapter, clock, logger) as
arguments; the limits that matter (steps, wall time, loops, budgets) are
enforced from outside by the supervisor and the gateway. Before a command
runs, the step is reported to the supervisor, which answers run, warn, stop
or hold: a stopped step's command never runs; a held one runs only once a
person approves it (a denial's reason is the command's result for the model).

Every model call carries a call id (this process's nonce and the step
number): a call lost with the bus or the gateway is asked again under the
same step number and id, so the gateway counts it once.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

from agents.approval import await_decision
from agents.commands import registry
from agents.commands.context import CommandContext, CommandError
from agents.commands.registry import Observation
from agents.inbox import AgentInbox, Arrival, Note
from agents.parse import ParseError, parse_decision
from agents.prompt import PromptInput, build_prompt
from bus.client import BusClient
from bus.protocol import Message
from swarm_core import messages as m
from swarm_core.errors import (
    BusError,
    CassetteExhausted,
    DeadlineExceeded,
    PolicyDenied,
    ProviderError,
    QuotaExhausted,
    Stopped,
    StorageError,
    SwarmError,
)
from swarm_core.messages.inbox import Kind
from swarm_core.peers import GATEWAY, SUPERVISOR
from swarm_core.spec import AgentSpec
from swarm_core.tracing import Recorder

HISTORY_KEEP = 50  # the prompt shows fewer; this bounds memory
STEP_VERDICT_TIMEOUT = 30.0  # seconds a step waits for the supervisor's verdict before it is skipped
REFUSED_PAUSE = 1.0  # seconds before a throttled step report is sent again
# finished spans go to the supervisor at most this often (and when the agent ends): a fast agent's
# steps must not spend its bus message budget (the flood gate) on telemetry


class AgentRuntime:
    """Runs one agent's loop over a connected BusClient."""

    def __init__(self, spec: AgentSpec, client: BusClient, ports: Any, workspace: Any, log: Any,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.client = client
        self.ports = ports
        self.log = log
        self.clock = clock
        self.steps = 0
        self.history: list[dict[str, Any]] = []
        self.inbox = AgentInbox()
        self._unacked: list[str] = []  # shown, not yet acknowledged by an answered step report
        self.stop_reason: str | None = None
        self._status = "starting"
        self._invalid = 0
        self.ctx = CommandContext(agent_id=spec.agent_id, role=spec.role_name, ports=ports,
                                  workspace=workspace, settings=dict(spec.settings), log=log)
        self.allowed = frozenset(spec.commands)
        self._verdicts = {m.StepVerdict.RUN: self._verdict_run, m.StepVerdict.WARN: self._verdict_warn,
                          m.StepVerdict.STOP: self._verdict_stop, m.StepVerdict.HOLD: self._verdict_hold}
        self._nonce = os.urandom(4).hex()  # call ids of a restarted agent never meet its old ones
        self._gateway_starts = 0  # restarts of the gateway the supervisor told us of
        # spans are plain data here; the supervisor exports them (agents never load the SDK)
        self.tracer = Recorder(spec.agent_id)
        client.handle(m.InboxMessage, self._on_inbox)
        client.handle(m.Stop, self._on_stop)
        client.handle(m.ServiceRestarted, self._on_service_restarted)

    # ------------------------------------------------------------ handlers

    def _on_inbox(self, msg: Message) -> None:
        body: m.InboxMessage = msg.body
        note = Note(body.sender, body.kind, body.text, body.message_id, body.reply_to)
        arrival = self.inbox.receive(note)
        if arrival is Arrival.SHOWN:
            self._ack([note.id])  # our acknowledgement was lost: say it again
        elif arrival is Arrival.NEW:
            self.log.info("inbox_received", sender=body.sender, kind=body.kind, text=body.text[:500],
                          message_id=body.message_id)

    def _take_note(self, sender: str, kind: str, text: str) -> None:
        """A local note for the next prompt (not kept by the supervisor: no id)."""
        self.inbox.receive(Note(sender, kind, text))
        self.log.info("inbox_received", sender=sender, kind=kind, text=text[:500], message_id="")

    def _on_stop(self, msg: Message) -> None:
        self.request_stop(msg.body.reason)

    def _on_service_restarted(self, msg: Message) -> None:
        """The gateway was restarted: a call waiting on the old one is asked again (same call id)."""
        if msg.header.src == SUPERVISOR and msg.body.service == GATEWAY:
            self._gateway_starts += 1

    def request_stop(self, reason: str) -> None:
        """Record the intent to stop; the loop acts on it (signal-safe)."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def has_news(self) -> bool:
        return self.inbox.has_news()

    def take_reply(self, question_id: str) -> str | None:
        """The reply to this agent's question ``question_id`` if it has come (it counts as shown)."""
        note = self.inbox.take_reply(question_id)
        if note is None:
            return None
        self._shown([note], via="message_agent")
        return note.text

    def _shown(self, notes: list[Note], via: str = "prompt") -> None:
        """These messages reached the model: log their ids (the prompts log); the next answered step
        report acknowledges them."""
        ids = [n.id for n in notes if n.id]
        if ids:
            self.log.info("inbox_shown", ids=ids, pid=os.getpid(), step=self.steps, via=via)
            self._ack(ids)

    def _ack(self, ids: list[str]) -> None:
        self._unacked.extend(i for i in ids if i not in self._unacked)

    def set_status(self, status: str) -> None:
        if status != self._status:
            self._status = status
            try:
                self.client.send(SUPERVISOR, m.AgentStatus(self.spec.agent_id, status, self.steps))
            except SwarmError:
                pass

    # ------------------------------------------------------------ the loop

    def run(self) -> int:
        """Run until the task completes (0), fails (1) or a stop arrives (0)."""
        self.client.send(SUPERVISOR, m.AgentReady(self.spec.agent_id, os.getpid()))
        self.log.info("agent_started", task=self.spec.task, role_name=self.spec.role_name)
        try:
            while self.stop_reason is None:
                outcome = self.step()
                if outcome is not None:
                    ok, result = outcome
                    self._send_spans(force=True)
                    self._finish(ok, result)
                    return 0 if ok else 1
        except Stopped:
            pass
        self._send_spans(force=True)
        self.log.info("agent_stopped", reason=self.stop_reason)
        self._answer_questions(f"{self.spec.agent_id} was stopped ({self.stop_reason})", everyone=True)
        return 0

    def step(self) -> tuple[bool, str] | None:
        """One think–act step; returns ``(ok, result)`` when the agent is finished.

        The step is a span, child of the span that started this agent; the
        model call (recorded by the gateway) and the command are its children.
        """
        self.steps += 1
        try:
            with self.tracer.span(f"step {self.steps}", self.spec.traceparent,
                                  **{"swarm.agent.id": self.spec.agent_id, "swarm.step": self.steps}):
                return self._step()
        finally:
            self._send_spans()

    def _step(self) -> tuple[bool, str] | None:
        self.set_status("running")
        notes, questions = self.inbox.take()
        prompt, context = self._prompt(notes, questions)
        self._shown(notes + questions)
        completion, outcome = self._ask_model(prompt, context)
        if completion is None:
            return outcome
        return self._act(completion.text)

    def _prompt(self, notes: list[Note], questions: list[Note]) -> tuple[str, dict[str, Any]]:
        """This step's prompt (and its structured parts); the inbox notes enter the history."""
        memories = self._memories()
        inbox = [n.line() for n in notes]
        self.log.debug("step_started", step=self.steps, inbox=len(inbox), questions=len(questions),
                       memories=len(memories))
        built = build_prompt(PromptInput(
            name=self.spec.agent_id, role=self.spec.role, task=self.spec.task,
            goals=list(self.spec.goals), commands=list(self.spec.commands),
            can_start=list(self.spec.can_start), extra=self.spec.prompt, history=self.history,
            inbox=inbox, questions=[q.line() for q in questions],
            memories=memories, examples=list(self.spec.examples),
        ))
        for line in inbox + [q.line() for q in questions]:
            self._remember({"command": "(inbox)", "args": {}, "result": line})
        return built

    def _ask_model(self, prompt: str, context: dict[str, Any]) -> tuple[Any, tuple[bool, str] | None]:
        """``(completion, None)``, or ``(None, outcome)`` when the call failed (outcome None: go on)."""
        starts = self._gateway_starts
        try:
            return self.client.request(
                GATEWAY,
                m.Complete(self.spec.agent_id, prompt, list(self.spec.commands), self.spec.max_tokens,
                           [], self.spec.name, context, f"{self._nonce}-{self.steps}"),
                self.spec.llm_timeout,
                abort=lambda: self.stop_reason is not None or self._gateway_starts != starts,
            ), None
        except QuotaExhausted as exc:
            # the gateway told the supervisor too; it stops us with that reason
            self.log.warning("budget_exhausted", error=exc.message)
            self.client.poll(10.0, until=lambda: self.stop_reason is not None)
            return None, (False, f"budget_exhausted: {exc.message}") if self.stop_reason is None else None
        except (CassetteExhausted, ProviderError) as exc:
            self.log.error("model_failed", code=exc.code, error=exc.message)
            return None, (False, f"{exc.code}: {exc.message}")
        except DeadlineExceeded:
            self.log.warning("model_timeout", timeout=self.spec.llm_timeout)
            return None, (False, f"the model gave no answer within {self.spec.llm_timeout:g}s")
        except Stopped:
            if self.stop_reason is None:  # the gateway restarted under this call: ask again, same id
                self.log.warning("model_call_lost", code="gateway_restarted", error="the gateway restarted")
                self.steps -= 1
            return None, None
        except PolicyDenied as exc:
            # the bus refused the call (e.g. this agent floods it): the step is lost, go on;
            # an agent that keeps pushing is stopped by the supervisor
            self._remember({"command": "(refused)", "args": {}, "result": exc.message})
            return None, None
        except BusError as exc:
            # the gateway is restarting or the broker came back: try the step again shortly,
            # under the same step number (hence the same call id: counted once)
            self.log.warning("model_call_lost", code=exc.code, error=exc.message)
            self.steps -= 1
            self.client.poll(1.0, until=lambda: self.stop_reason is not None)
            return None, None
        except SwarmError as exc:
            self.log.error("model_call_failed", code=exc.code, error=exc.message)
            return None, (False, f"{exc.code}: {exc.message}")

    def _act(self, text: str) -> tuple[bool, str] | None:
        """Parse the answer, ask the supervisor, run the command, answer the questions."""
        try:
            decision = parse_decision(text)
        except ParseError as exc:
            self._invalid += 1
            self._remember({"command": "(invalid answer)", "args": {}, "result": exc.message})
            self.log.warning("invalid_answer", error=exc.message, count=self._invalid, step=self.steps)
            self._report_step("(invalid answer)", {})
            if self.stop_reason is not None:
                return None
            if self._invalid >= self.spec.max_invalid:
                return False, f"the model gave {self._invalid} invalid answers in a row: {exc.message}"
            return None
        self._invalid = 0
        # the step history operators read (swarm logs, the dashboard): thoughts before the act
        self.log.info("step_decided", step=self.steps, command=decision.command, args=decision.args,
                      thoughts=decision.thoughts)
        if not self._report_step(decision.command, decision.args, decision.thoughts):
            return None  # the supervisor did not let this command run
        with self.tracer.span(f"execute_tool {decision.command}", **{
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": decision.command,
                "swarm.agent.id": self.spec.agent_id}) as span:
            obs = registry.dispatch(self.ctx, decision.command, decision.args, self.allowed)
            if span is not None:
                span.set(**{"swarm.tool.ok": obs.ok})
        self._record(obs, decision.args)
        self._answer_questions(_speak(decision.thoughts) or obs.text)
        if obs.finished:
            return True, obs.text
        return None

    # ------------------------------------------------------------ helpers

    def _remember(self, entry: dict[str, Any]) -> None:
        self.history.append(entry)
        del self.history[:-HISTORY_KEEP]

    def _record(self, obs: Observation, args: dict[str, Any]) -> None:
        self._remember({"command": obs.command, "args": args, "result": obs.text})
        self.log.info("command_done", command=obs.command, ok=obs.ok, result=obs.text[:500],
                      step=self.steps)

    def _report_step(self, command: str, args: Any, thoughts: dict[str, Any] | None = None) -> bool:
        """Ask the supervisor whether this step's command may run (its guards decide: steps, loops);
        the report acknowledges the inbox messages shown since the last answered one.

        True: run it. False: do not (a stop was decided, or no verdict came
        in time: no command runs without one; the loop goes on unless a stop
        is recorded). A report refused because this agent sends too fast, or
        because the registry cannot be written, is asked again after a
        pause, within the same deadline.
        """
        args_text = json.dumps(args, ensure_ascii=False, sort_keys=True, default=str)[:2000]
        acked = list(self._unacked)
        report = m.StepReport(self.spec.agent_id, self.steps, str(command), args_text,
                              _speak(thoughts or {})[:500], acked)
        deadline = self.clock() + STEP_VERDICT_TIMEOUT
        while self.stop_reason is None:
            try:
                verdict = self.client.request(SUPERVISOR, report, max(0.1, deadline - self.clock()),
                                              abort=self._stopping)
                self._unacked = [i for i in self._unacked if i not in acked]
                return self._verdicts.get(verdict.verdict, self._verdict_unknown)(verdict, str(command), args)
            except Stopped:
                break
            except (PolicyDenied, StorageError) as exc:  # throttled by the flood gate, or a registry
                # that cannot be written (a full disk) decides nothing: ask again after a pause
                if self.clock() + REFUSED_PAUSE >= deadline:
                    return self._not_run(command, exc)
                self.client.poll(REFUSED_PAUSE, until=self._stopping)
            except SwarmError as exc:
                return self._not_run(command, exc)
        # the supervisor's Stop came first (it sends it before the verdict)
        return self._verdict_stop(m.StepVerdict(m.StepVerdict.STOP, self.stop_reason or ""), str(command), args)

    def _stopping(self) -> bool:
        return self.stop_reason is not None

    def _not_run(self, command: str, exc: SwarmError) -> bool:
        self.log.warning("step_not_allowed", step=self.steps, code=exc.code, error=exc.message)
        self._remember({"command": "(not run)", "args": {},
                        "result": f"{command} was not run: {exc.message}"})
        return False

    def _verdict_run(self, verdict: m.StepVerdict, command: str, args: Any) -> bool:
        return True

    def _verdict_warn(self, verdict: m.StepVerdict, command: str, args: Any) -> bool:
        self._take_note(SUPERVISOR, "notice", verdict.message)
        return True

    def _verdict_stop(self, verdict: m.StepVerdict, command: str, args: Any) -> bool:
        self.log.warning("step_stopped", step=self.steps, reason=verdict.message)
        self.request_stop(verdict.message or "stopped")
        return False

    def _verdict_hold(self, verdict: m.StepVerdict, command: str, args: Any) -> bool:
        """Wait for a person's decision: approved runs the command; denied makes the reason its result."""
        if verdict.message:
            self._take_note(SUPERVISOR, "notice", verdict.message)
        self.log.info("approval_awaited", step=self.steps, command=command, request=verdict.request_id)
        answer = await_decision(self.client, verdict.request_id, self._stopping, self.log)
        if answer is None:
            return False  # stopped while waiting
        if answer.state == m.ApprovalAnswer.APPROVED:
            self.log.info("approval_granted", step=self.steps, command=command, note=answer.text)
            if answer.text:
                self._take_note("operator", "message", answer.text)
            return True
        result = f"{command} was not run: approval denied ({answer.text or 'no reason given'})"
        self._remember({"command": command, "args": args, "result": result})
        # the result as the model reads it in its next prompt (operators see it in the step history)
        self.log.info("approval_denied", step=self.steps, command=command, reason=answer.text, result=result)
        return False

    def _verdict_unknown(self, verdict: m.StepVerdict, command: str, args: Any) -> bool:
        self.log.warning("step_verdict_unknown", verdict=verdict.verdict)
        return False

    def _send_spans(self, force: bool = False) -> None:
        """Hand finished spans to the supervisor, at most every SPAN_FLUSH_S (best effort)."""
        spans = self.tracer.batch(self.clock(), force)
        if spans:
            try:
                self.client.send(SUPERVISOR, m.TraceSpans(spans))
            except SwarmError:
                pass

    def _answer_questions(self, text: str, everyone: bool = False) -> None:
        """Reply ``text`` to the questions shown so far (``everyone``: also to those not shown yet)."""
        questions = list(self.inbox.unanswered)
        if everyone:
            questions += [n for n in self.inbox.notes if n.kind == Kind.QUESTION]
        for q in questions:
            try:
                self.ports.reply(q.sender, q.id, text)
            except (CommandError, SwarmError) as exc:  # the asker has gone: nobody waits for it
                self.log.info("reply_not_sent", to=q.sender, question=q.id, error=str(exc))
        self.inbox.answered(questions)

    def _memories(self) -> list[str]:
        if not self.spec.memory:
            return []
        try:
            hits = self.ports.memory_search(self.spec.task, 3)
        except Exception:  # noqa: BLE001 - memory is a help, never a reason to fail a step
            return []
        return [h.get("text", "") for h in hits if h.get("text")]

    def _finish(self, ok: bool, result: str) -> None:
        self.log.info("agent_finished", ok=ok, result=result[:500], steps=self.steps)
        self._answer_questions(f"{self.spec.agent_id} has finished: {result}", everyone=True)
        try:
            self.client.request(SUPERVISOR, m.AgentDone(self.spec.agent_id, result[:20000], ok), 10.0)
        except SwarmError as exc:
            self.log.warning("done_not_acknowledged", error=str(exc))


def _speak(thoughts: dict[str, Any]) -> str:
    for key in ("speak", "text"):
        v = thoughts.get(key) if isinstance(thoughts, dict) else None
        if isinstance(v, str) and v.strip():
            return v.strip()
    return ""
