"""Every domain message body, by family; ``from swarm_core import messages as m``.

Importing this package registers every domain type with ``swarm_core.wire``.
The bus's own bodies (heartbeat, error, ok, ping) are in ``bus.messages``.
"""

from swarm_core.messages.agents import (  # noqa: F401
    AgentDone,
    AgentList,
    AgentMessage,
    AgentReady,
    AgentReply,
    AgentStarted,
    AgentStatus,
    DeleteAgent,
    InboxMessage,
    ListAgents,
    StartAgent,
    StepReport,
    StepVerdict,
)
from swarm_core.messages.approvals import (  # noqa: F401
    ApprovalAnswer,
    AwaitApproval,
    BudgetChanged,
    BudgetExhausted,
    Decide,
    SetBudget,
)
from swarm_core.messages.control import (  # noqa: F401
    Down,
    Freeze,
    Inspect,
    InspectReply,
    KillAll,
    Lifecycle,
    OperatorMessage,
    ServiceRestarted,
    Stop,
    SwarmState,
    SwarmStatus,
)
from swarm_core.messages.gateway import (  # noqa: F401
    BreakerTripped,
    Complete,
    Completion,
    Embed,
    Embeddings,
    Usage,
)
from swarm_core.messages.inbox import Posted, PostMessage  # noqa: F401
from swarm_core.messages.memory import (  # noqa: F401
    MemAdd,
    MemAdded,
    MemClear,
    MemDelete,
    MemHits,
    MemSearch,
    MemStats,
    MemStatsReply,
)
from swarm_core.messages.tracing import TraceSpans  # noqa: F401
