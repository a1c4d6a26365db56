"""The gateway service's budgets with fake ports: pause or kill, reservations, the ledger, call ids."""

from __future__ import annotations

import sqlite3

import pytest

from bus.client import DEFERRED
from orchestrator.config import Quotas
from orchestrator.gateway.accounting import ORPHAN_SECONDS
from orchestrator.gateway.calls import request_of
from orchestrator.gateway.ledger import Ledger
from orchestrator.gateway.spend import Limit, Node
from swarm_core import messages as m
from swarm_core.errors import CallInterrupted, QuotaExhausted
from tests.unit.test_gateway_service import Clock, GatedProvider, _msg, _service, _settle, wait_for
from tests.unit.test_gateway_spend import FakeTree

pytestmark = pytest.mark.timeout(30)

# GatedProvider answers 10 + 5 tokens; _msg's 40-character prompt and max_tokens 64 have a worst case of
# 72 + 64 = 136 tokens under the default bound (every byte a token, plus template overhead)
WORST = 136


def _tree(budget: int) -> FakeTree:
    return FakeTree(Node("boss", None, Limit(budget)), Node("a", "boss"), Node("b", "boss"))


def _call(agent: str, call_id: str = "") -> m.Complete:
    return m.Complete(agent, "p" * 40, ["task_complete"], 64, [], agent, {}, call_id)


def _sup(body):
    return _msg("", body, src="supervisor")


def test_pause_holds_the_call_freezes_the_agent_and_asks_the_supervisor():
    """A subtree budget that cannot cover the call: held (no reply), BudgetExhausted names whose budget."""
    provider = GatedProvider()
    svc, client = _service(provider, tree=_tree(WORST + 10))
    svc.on_complete(_msg("a", _call("a")))
    provider.release("a")
    _settle(client, lambda: client.replies)
    assert svc.on_complete(_msg("b", _call("b"))) is DEFERRED  # 15 spent + 136 > 146
    svc.pump()
    notes = [b for d, b in client.sent if isinstance(b, m.BudgetExhausted)]
    assert [(n.agent_id, n.budget_of) for n in notes] == [("b", "boss")]
    assert "max_tokens budget of 146" in notes[0].reason
    assert provider.started == ["a"] and len(client.replies) == 1 and not client.errors
    svc.pump()
    assert len([b for d, b in client.sent if isinstance(b, m.BudgetExhausted)]) == 1  # asked once


def test_a_raised_budget_and_a_thaw_release_the_held_call():
    """After the supervisor's BudgetChanged and thaw, the held call fits and is answered."""
    provider = GatedProvider()
    tree = _tree(WORST - 1)
    svc, client = _service(provider, tree=tree)
    svc.on_complete(_msg("a", _call("a")))
    svc.pump()
    assert provider.started == []
    tree.set_budget("boss", 10_000)
    svc.on_budget_changed(_sup(m.BudgetChanged("boss")))
    svc.on_freeze(_sup(m.Freeze("a", False, "budget raised")))
    wait_for(lambda: provider.started == ["a"])
    provider.release("a")
    _settle(client, lambda: client.replies)


def test_kill_mode_refuses_with_budget_exhausted_and_a_stop_reason():
    """on_exhausted kill: the call is answered budget_exhausted and the Usage asks for a stop."""
    svc, client = _service(GatedProvider(), Quotas(on_exhausted="kill"), tree=_tree(WORST - 1))
    svc.on_complete(_msg("a", _call("a")))
    err = client.errors[0][1]
    assert isinstance(err, QuotaExhausted) and err.details["budget_of"] == "boss"
    assert client.usage("a")[-1].stop_reason == "budget_exhausted"


def test_running_calls_hold_their_worst_case_so_concurrent_calls_cannot_overrun():
    """With room for one worst case, a second concurrent call waits although nothing is spent yet."""
    provider = GatedProvider()
    svc, client = _service(provider, Quotas(on_exhausted="kill"), tree=_tree(WORST + 50))
    svc.on_complete(_msg("a", _call("a")))
    wait_for(lambda: provider.started == ["a"])
    svc.on_complete(_msg("b", _call("b")))
    assert isinstance(client.errors[0][1], QuotaExhausted)
    provider.release("a")
    _settle(client, lambda: client.replies)
    svc.on_complete(_msg("b", _call("b", "b-2")))  # 15 spent + 136 <= 186: it fits now
    wait_for(lambda: "b" in provider.started)
    provider.release("b")
    _settle(client, lambda: len(client.replies) == 2)


def test_usage_is_in_the_ledger_before_the_reply_leaves(tmp_path):
    """When the reply is sent, the ledger file (read by another connection) already holds the spend."""
    path = tmp_path / "ledger.db"
    provider = GatedProvider()
    svc, client = _service(provider, ledger=Ledger(path))
    seen = []

    def reply(msg, body):
        with sqlite3.connect(path) as other:
            seen.append(other.execute("SELECT tokens, requests FROM spend WHERE agent = 'a'").fetchone())
        client.replies.append((msg, body))

    client.reply = reply
    svc.on_complete(_msg("a", _call("a", "x-1")))
    provider.release("a")
    _settle(client, lambda: client.replies)
    assert seen == [(15, 1)]
    svc.accounts.ledger.close()


def test_a_finished_call_asked_again_gets_the_same_answer_and_is_counted_once(tmp_path):
    """The same call id after its answer was lost: answered from the ledger, the provider is not called."""
    provider = GatedProvider()
    svc, client = _service(provider, ledger=Ledger(tmp_path / "ledger.db"))
    svc.on_complete(_msg("a", _call("a", "n-7")))
    provider.release("a")
    _settle(client, lambda: client.replies)
    again = svc.on_complete(_msg("a", _call("a", "n-7")))
    assert isinstance(again, m.Completion) and again.text == "answer for a"
    assert provider.started == ["a"]
    assert (svc.accounts.totals("a").tokens, svc.accounts.totals("a").requests) == (15, 1)
    assert svc.on_complete(_msg("b", _call("b", "n-7"))) is DEFERRED  # another agent's id is its own call
    svc.accounts.ledger.close()


def test_a_restarted_gateway_interrupts_running_calls_and_the_retry_is_counted_once(tmp_path):
    """Gateway 1 dies with a call running; gateway 2 answers it call_interrupted and runs the retry on the
    reservation, so the spend is counted once and the budget never sees it twice."""
    path = tmp_path / "ledger.db"
    first = GatedProvider()
    svc1, _ = _service(first, ledger=Ledger(path), tree=_tree(WORST + 20))
    msg = _msg("a", _call("a", "r-1"))
    svc1.on_complete(msg)
    wait_for(lambda: first.started == ["a"])  # running; the process "dies" here: nothing more of svc1 runs
    second = GatedProvider()
    svc2, client = _service(second, ledger=Ledger(path), tree=_tree(WORST + 20))
    svc2.start()
    (answered, err), = client.errors
    assert isinstance(err, CallInterrupted)
    assert (answered.header.src, answered.header.msg_id) == ("a", msg.header.msg_id)
    assert svc2.accounts.check("b", svc2.accounts.worst(request_of(_msg("b", _call("b"))))) is not None
    svc2.on_complete(_msg("a", _call("a", "r-1")))  # the retry: admitted on its old reservation
    wait_for(lambda: second.started == ["a"])
    second.release("a")
    _settle(client, lambda: client.replies)
    assert (svc2.accounts.totals("a").tokens, svc2.accounts.totals("a").requests) == (15, 1)
    assert svc2.accounts.spend.subtree["boss"].reserved_tokens == 0
    first.release("a")


def test_a_reservation_nobody_retries_is_given_back(tmp_path):
    """A crashed gateway's running call not asked again within ORPHAN_SECONDS frees its reservation."""
    path = tmp_path / "ledger.db"
    first = GatedProvider()
    svc1, _ = _service(first, ledger=Ledger(path), tree=_tree(WORST + 20))
    svc1.on_complete(_msg("a", _call("a", "r-1")))
    wait_for(lambda: first.started == ["a"])
    now = [5000.0]
    svc2, _ = _service(GatedProvider(), ledger=Ledger(path), tree=_tree(WORST + 20), wall=lambda: now[0],
                       clock=Clock())
    svc2.start()
    assert svc2.accounts.spend.subtree["boss"].reserved_tokens == WORST
    now[0] += ORPHAN_SECONDS + 1
    svc2.tick()
    assert svc2.accounts.spend.subtree["boss"].reserved_tokens == 0
    first.release("a")


def test_a_call_asked_again_while_it_runs_answers_the_new_request():
    """The same call id while the call still runs: no second provider call; the answer goes to the new request."""
    provider = GatedProvider()
    svc, client = _service(provider)
    first, again = _msg("a", _call("a", "k-1"), deadline=0.0), _msg("a", _call("a", "k-1"))
    svc.on_complete(first)
    wait_for(lambda: provider.started == ["a"])
    assert svc.on_complete(again) is DEFERRED
    provider.release("a")
    _settle(client, lambda: client.replies)
    assert [msg.header.msg_id for msg, _ in client.replies] == [again.header.msg_id]
    assert provider.started == ["a"] and svc.accounts.totals("a").requests == 1


class CountingLedger(Ledger):
    """A real ledger that also notes which calls it reserved and settled."""

    def __init__(self, path):
        super().__init__(path)
        self.reserved: list[str] = []
        self.settled: list[str] = []

    def reserve(self, call_id, *args):
        self.reserved.append(call_id)
        super().reserve(call_id, *args)

    def settle(self, call_id, *args):
        self.settled.append(call_id)
        super().settle(call_id, *args)


def test_an_ordinary_call_is_written_once_a_budgeted_one_twice(tmp_path):
    """No budget or rate over the call: only its end goes to the ledger; with a budget its reservation too."""
    provider = GatedProvider()
    ledger = CountingLedger(tmp_path / "ledger.db")
    svc, client = _service(provider, ledger=ledger, tree=FakeTree(Node("a"), Node("b", None, Limit(10_000))))
    for agent in ("a", "b"):
        svc.on_complete(_msg(agent, _call(agent, f"{agent}-1")))
        provider.release(agent)
        _settle(client, lambda agent=agent: client.usage(agent))
    assert (ledger.reserved, ledger.settled) == (["b-1"], ["a-1", "b-1"])
    ledger.close()
