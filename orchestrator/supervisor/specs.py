"""The typed spec an agent process is started with, built from the config and its record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import SwarmConfig
from orchestrator.supervisor.registry import AgentRecord
from swarm_core.spec import AgentSpec, RLimits


@dataclass(frozen=True)
class SpecBuilder:
    """Builds :class:`AgentSpec` for agents of one swarm (``builder(rec, prompt)``)."""

    cfg: SwarmConfig
    run_dir: Path
    endpoint: str
    heartbeat_interval: float
    liveness: int

    def __call__(self, rec: AgentRecord, prompt: str = "") -> AgentSpec:
        cfg = self.cfg
        role = cfg.agents[rec.role]
        lim = cfg.limits
        return AgentSpec(
            agent_id=rec.id, name=rec.name, role_name=rec.role, role=role.role, task=rec.task,
            commands=tuple(role.commands), goals=tuple(role.goals), can_start=tuple(role.can_start),
            examples=tuple(dict(e) for e in role.examples), prompt=prompt, parent=rec.parent,
            endpoint=self.endpoint, run_dir=str(self.run_dir),
            workspace=cfg.workspace, per_agent_workspace=cfg.per_agent_workspace,
            heartbeat_interval=self.heartbeat_interval, liveness=self.liveness,
            llm_timeout=max(600.0, float(lim.max_wall_seconds)), max_tokens=cfg.llm.max_tokens,
            memory=cfg.memory,
            settings={"idle_wait_seconds": lim.idle_wait_seconds, "message_timeout": lim.message_timeout,
                      "workspace_mb": lim.workspace_mb, **cfg.tools.model_dump(),
                      "sandbox": cfg.safety.sandbox},
            stdout=str(self.run_dir / "logs" / f"{rec.id}.out"),
            rlimits=RLimits(memory_mb=lim.memory_mb, cpu_seconds=lim.cpu_seconds, open_files=lim.open_files),
        )
