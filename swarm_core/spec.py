"""The typed spec of one agent process: what the supervisor tells a new agent.

The supervisor builds an :class:`AgentSpec` from the config and the registry
record; it travels to the zygote as JSON (:meth:`AgentSpec.to_dict`) and is
rebuilt in the agent process with :meth:`AgentSpec.from_dict`, which refuses
unknown or missing keys and wrong types instead of dropping them. The
spec carries the agent's bus credential (issued for this incarnation):
memory is the only way it reaches the agent, whose sandbox gives it no
file of the run directory; it never appears in the spec's ``repr``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from swarm_core.defaults import HEARTBEAT_INTERVAL, LIVENESS
from swarm_core.errors import InvalidRequest


@dataclass(frozen=True)
class RLimits:
    """Kernel limits set in the agent's process before it runs (0 = leave as is)."""

    memory_mb: int = 0
    cpu_seconds: int = 0
    open_files: int = 0


@dataclass(frozen=True)
class AgentSpec:
    """Everything an agent process needs to know about itself and its swarm."""

    agent_id: str
    name: str
    role_name: str
    role: str
    task: str
    commands: tuple[str, ...]
    endpoint: str
    run_dir: str
    goals: tuple[str, ...] = ()
    can_start: tuple[str, ...] = ()
    examples: tuple[dict[str, Any], ...] = ()
    prompt: str = ""
    parent: str | None = None
    workspace: str | None = None
    per_agent_workspace: bool = False
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    liveness: int = LIVENESS
    llm_timeout: float = 300.0
    max_tokens: int = 256
    max_invalid: int = 3
    memory: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)  # tool settings and waits
    stdout: str = ""  # where the process's stdout/stderr go
    rlimits: RLimits = RLimits()
    credential: Mapping[str, str] = field(default_factory=dict, repr=False)  # bus.credentials.Credential
    traceparent: str = ""  # the span that started this agent: its steps are children of it

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["settings"] = dict(self.settings)
        d["credential"] = dict(self.credential)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AgentSpec":
        """Rebuild a spec; raises InvalidRequest naming the key on any mismatch."""
        if not isinstance(d, Mapping):
            raise InvalidRequest("an agent spec must be a mapping")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise InvalidRequest(f"agent spec has unknown keys: {', '.join(unknown)}")
        missing = sorted(n for n, f in known.items() if n not in d and _required(f))
        if missing:
            raise InvalidRequest(f"agent spec misses keys: {', '.join(missing)}")
        values = {k: _coerce(k, v) for k, v in d.items()}
        return cls(**values)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


_STR = ("agent_id", "name", "role_name", "role", "task", "endpoint", "run_dir", "prompt", "stdout",
        "traceparent")
_TUPLES = ("commands", "goals", "can_start", "examples")


def _coerce(key: str, value: Any) -> Any:
    """Check one value's type (JSON gives lists for tuples) and return it typed."""
    if key in _STR and not isinstance(value, str):
        raise InvalidRequest(f"agent spec: {key} must be a string")
    if key in _TUPLES:
        if not isinstance(value, (list, tuple)):
            raise InvalidRequest(f"agent spec: {key} must be a list")
        return tuple(dict(x) if isinstance(x, Mapping) else x for x in value)
    if key in ("parent", "workspace") and value is not None and not isinstance(value, str):
        raise InvalidRequest(f"agent spec: {key} must be a string or null")
    if key in ("per_agent_workspace", "memory") and not isinstance(value, bool):
        raise InvalidRequest(f"agent spec: {key} must be true or false")
    if key in ("heartbeat_interval", "llm_timeout") and not _number(value):
        raise InvalidRequest(f"agent spec: {key} must be a number")
    if key in ("liveness", "max_tokens", "max_invalid") and not (_number(value) and int(value) == value):
        raise InvalidRequest(f"agent spec: {key} must be an integer")
    if key == "settings":
        if not isinstance(value, Mapping):
            raise InvalidRequest("agent spec: settings must be a mapping")
        return dict(value)
    if key == "rlimits":
        return _rlimits(value)
    if key == "credential":
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            raise InvalidRequest("agent spec: credential must be a mapping of strings")
        return dict(value)
    return value


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _rlimits(value: Any) -> RLimits:
    if isinstance(value, RLimits):
        return value
    if not isinstance(value, Mapping) or set(value) - {"memory_mb", "cpu_seconds", "open_files"}:
        raise InvalidRequest("agent spec: rlimits must be a mapping of memory_mb, cpu_seconds, open_files")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value.values()):
        raise InvalidRequest("agent spec: rlimits must be whole numbers >= 0")
    return RLimits(**value)
