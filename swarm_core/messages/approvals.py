"""Message bodies: Operator in the loop: approval requests, decisions, budgets.

* An agent whose step is held (``StepVerdict`` ``hold``) asks the supervisor
  with :class:`AwaitApproval` until the request is decided; each ask is
  answered (:class:`ApprovalAnswer`) when the request is decided or after a
  few seconds with ``pending``, so a supervisor restart costs one ask.
* The operator decides with :class:`Decide` and sets budgets with
  :class:`SetBudget` (both answered with ``Ok``).
* The gateway tells the supervisor that a budget ran out and the call is
  held (:class:`BudgetExhausted`); the supervisor tells the gateway that an
  agent's budget changed (:class:`BudgetChanged`).

Bodies are small frozen dataclasses; fields travel positionally, so add new
fields at the end with a default to stay compatible.
"""

from __future__ import annotations

from dataclasses import dataclass

from swarm_core.wire import message


@message
@dataclass(frozen=True, slots=True)
class AwaitApproval:
    """An agent asks how its approval request ``request_id`` was decided (a bounded long poll)."""

    TYPE = "await_approval"
    request_id: str


@message
@dataclass(frozen=True, slots=True)
class ApprovalAnswer:
    """Reply to AwaitApproval: ``state`` is ``pending``, ``approved`` or ``denied``; ``text`` the
    operator's note (approved) or the reason (denied)."""

    TYPE = "approval_answer"
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    request_id: str
    state: str
    text: str = ""


@message
@dataclass(frozen=True, slots=True)
class Decide:
    """The operator approves (``approve``) or denies a request; ``text`` is the note or the reason."""

    TYPE = "decide"
    request_id: str
    approve: bool
    text: str = ""
    retry_id: str = ""  # the same for a retry of this decision: answered with the first outcome


@message
@dataclass(frozen=True, slots=True)
class SetBudget:
    """The operator sets an agent's (subtree) budget; 0 leaves that part as it is."""

    TYPE = "set_budget"
    agent_id: str
    max_tokens: int = 0
    max_cost_usd: float = 0.0


@message
@dataclass(frozen=True, slots=True)
class BudgetExhausted:
    """Gateway → supervisor: ``agent_id``'s call is held because ``budget_of``'s budget cannot cover it."""

    TYPE = "budget_exhausted"
    agent_id: str
    budget_of: str
    reason: str


@message
@dataclass(frozen=True, slots=True)
class BudgetChanged:
    """Supervisor → gateway: ``agent_id``'s budget changed in the registry (read it again)."""

    TYPE = "budget_changed"
    agent_id: str
