"""Budget arithmetic of the gateway: worst cases, reservations over a subtree, refusals, restore."""

from __future__ import annotations

import random

import pytest

from orchestrator.config import Bucket, Price, Quotas
from orchestrator.gateway.spend import (
    Account,
    Cost,
    Exhausted,
    Limit,
    Node,
    SpendBook,
    dearest,
    shortfall,
    worst_case,
)


class FakeTree:
    """A tree given as nodes; counts reads so a test sees when budgets are read again."""

    def __init__(self, *nodes: Node) -> None:
        self.truth = {n.agent: n for n in nodes}
        self.cached: dict[str, Node] = {}
        self.reads = 0

    def node(self, agent: str) -> Node:
        if agent not in self.cached:
            self.reads += 1
            self.cached[agent] = self.truth.get(agent, Node(agent))
        return self.cached[agent]

    def forget(self, agents):
        for a in agents:
            self.cached.pop(a, None)

    def set_budget(self, agent: str, tokens: int | None, usd: float | None = None, override: bool = True) -> None:
        n = self.truth[agent]
        self.truth[agent] = Node(agent, n.parent, Limit(tokens, usd), override)


def three_levels(manager_tokens: int | None = 1000) -> FakeTree:
    """manager → lead → leaf-1, leaf-2; only the manager has a budget."""
    return FakeTree(Node("manager", None, Limit(manager_tokens) if manager_tokens else None),
                    Node("lead", "manager"), Node("leaf-1", "lead"), Node("leaf-2", "lead"))


def test_worst_case_is_prompt_bound_plus_max_tokens_at_the_dearest_price():
    """The worst case counts every completion token at the highest completion price of the table."""
    price = dearest({"a": Price(prompt=1.0, completion=2.0), "b": Price(prompt=3.0, completion=0.5)})
    assert price == Price(prompt=3.0, completion=2.0)
    assert worst_case(1000, 500, price) == Cost(1500, pytest.approx(4.0))
    assert worst_case(10, 5, None) == Cost(15, 0.0)


def test_a_call_that_exactly_fits_is_allowed_and_one_token_more_is_not():
    """Spent + reserved + worst equal to the budget fits; one token over does not."""
    acc = Account(tokens=600, reserved_tokens=300)
    assert shortfall(Limit(1000), acc, Cost(100)) == ""
    why = shortfall(Limit(1000), acc, Cost(101))
    assert why.startswith("max_tokens budget of 1000 cannot cover this call") and "600 used, 300 reserved" in why
    assert "max_cost_usd budget of 0.5" in shortfall(Limit(None, 0.5), Account(usd=0.4), Cost(1, 0.2))


def test_reservations_of_running_calls_count_against_the_subtree_budget():
    """Two leaves' running calls hold their worst case: a third call that would overrun is refused."""
    book = SpendBook(Quotas(), three_levels(1000))
    assert book.check("leaf-1", Cost(400)) is None
    book.reserve("c1", "leaf-1", Cost(400))
    assert book.check("leaf-2", Cost(400)) is None
    book.reserve("c2", "leaf-2", Cost(400))
    refused = book.check("lead", Cost(400))
    assert refused == Exhausted("subtree", "manager", refused.reason)
    assert "800 reserved" in refused.reason
    assert book.check("lead", Cost(200)) is None  # exactly what is left


def test_settling_replaces_the_reservation_with_the_usage_along_the_whole_line():
    """A settled call's real usage counts for the agent, every ancestor and the swarm; the reservation goes."""
    book = SpendBook(Quotas(), three_levels(1000))
    book.reserve("c1", "leaf-1", Cost(400, 0.4))
    own = book.settle("c1", "leaf-1", Cost(150, 0.1))
    assert (own.tokens, own.requests, own.reserved_tokens) == (150, 1, 0)
    for holder in ("leaf-1", "lead", "manager"):
        acc = book.subtree[holder]
        assert (acc.tokens, acc.reserved_tokens, acc.requests) == (150, 0, 1)
        assert acc.usd == pytest.approx(0.1)
    assert (book.swarm.tokens, book.swarm.reserved_tokens) == (150, 0)


def test_release_gives_the_reservation_back():
    """A failed call's reservation is returned: the budget is whole again."""
    book = SpendBook(Quotas(), three_levels(1000))
    book.reserve("c1", "leaf-1", Cost(900))
    assert book.check("leaf-2", Cost(200)) is not None
    book.release("c1")
    book.release("c1")  # twice is harmless
    assert book.check("leaf-2", Cost(1000)) is None
    assert book.subtree["manager"].reserved_tokens == 0


def test_a_budget_is_read_again_before_a_refusal():
    """A refusal reads the tree again first, so a budget raised meanwhile lets the call through."""
    tree = three_levels(1000)
    book = SpendBook(Quotas(), tree)
    book.settle("c1", "leaf-1", Cost(950))
    assert book.check("leaf-1", Cost(100)) is not None
    tree.set_budget("manager", 5000)
    reads = tree.reads
    assert book.check("leaf-1", Cost(100)) is None
    assert tree.reads > reads
    assert book.check("leaf-1", Cost(100)) is None and tree.reads == reads + 3  # no read while it fits


def test_the_agent_quota_names_the_agent_and_an_operator_budget_replaces_it():
    """quotas.agent bounds an agent's own spend (scope agent); a budget the operator set replaces it."""
    tree = three_levels(None)
    book = SpendBook(Quotas(agent=Bucket(max_tokens=300)), tree)
    book.settle("c1", "leaf-1", Cost(250))
    refused = book.check("leaf-1", Cost(100))
    assert (refused.scope, refused.budget_of) == ("agent", "leaf-1")
    assert book.check("leaf-2", Cost(100)) is None  # another agent's own quota is its own
    tree.set_budget("leaf-1", 1000, override=True)
    assert book.check("leaf-1", Cost(100)) is None


def test_the_swarm_quota_names_the_root_and_the_roots_operator_budget_replaces_it():
    """quotas.swarm is the root's subtree: refused with budget_of = the root, lifted by the root's override."""
    tree = three_levels(None)
    book = SpendBook(Quotas(swarm=Bucket(max_cost_usd=1.0)), tree)
    book.settle("c1", "leaf-1", Cost(10, 0.9))
    refused = book.check("leaf-2", Cost(10, 0.2))
    assert (refused.scope, refused.budget_of) == ("swarm", "manager")
    assert refused.reason.startswith("swarm max_cost_usd budget of 1")
    tree.set_budget("manager", None, 5.0, override=True)
    assert book.check("leaf-2", Cost(10, 0.2)) is None


def test_the_nearest_exhausted_budget_on_the_line_is_named():
    """With budgets on the lead and the manager, the lead's (checked first, lower down) is named."""
    tree = FakeTree(Node("manager", None, Limit(10_000)), Node("lead", "manager", Limit(500)),
                    Node("leaf-1", "lead"))
    book = SpendBook(Quotas(), tree)
    book.settle("c1", "leaf-1", Cost(450))
    assert book.check("leaf-1", Cost(100)).budget_of == "lead"
    assert book.check("manager", Cost(100)) is None  # the manager's own calls are under its budget only


def test_restore_rebuilds_every_account_from_the_ledger():
    """Spend per agent and running reservations loaded from the ledger give the same subtree accounts."""
    book = SpendBook(Quotas(), three_levels(1000))
    book.restore({"leaf-1": (300, 2, 0.3), "lead": (100, 1, 0.1)}, {"c9": ("leaf-2", Cost(400, 0.4))})
    assert (book.subtree["manager"].tokens, book.subtree["manager"].reserved_tokens) == (400, 400)
    assert book.subtree["manager"].requests == 3
    assert book.own_account("leaf-1").requests == 2
    assert book.check("leaf-1", Cost(201)) is not None and book.check("leaf-1", Cost(200)) is None
    book.settle("c9", "leaf-2", Cost(50))
    assert book.subtree["manager"].reserved_tokens == 0 and book.subtree["manager"].tokens == 450


def test_random_concurrent_calls_never_overrun_the_budget():
    """Whatever order calls start and end in, spend never exceeds the manager's budget (fixed seed)."""
    rng = random.Random(7)
    book = SpendBook(Quotas(), three_levels(5000))
    running: dict[str, tuple[str, Cost]] = {}
    refused = 0
    for i in range(2000):
        if running and rng.random() < 0.5:
            call_id = rng.choice(list(running))
            agent, worst = running.pop(call_id)
            book.settle(call_id, agent, Cost(rng.randint(0, worst.tokens)))
        else:
            agent = rng.choice(["manager", "lead", "leaf-1", "leaf-2"])
            worst = Cost(rng.randint(50, 400))
            if book.check(agent, worst) is None:
                book.reserve(f"c{i}", agent, worst)
                running[f"c{i}"] = (agent, worst)
            else:
                refused += 1
        m = book.subtree["manager"]
        assert m.tokens + m.reserved_tokens <= 5000
    assert refused > 0 and book.subtree["manager"].tokens <= 5000
