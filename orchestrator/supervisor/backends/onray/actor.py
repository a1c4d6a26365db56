"""The host actor: a :class:`NodeHost` in a Ray actor pinned to its node.

Methods run in three concurrency groups, so a kill never queues behind a
spawn and neither waits behind the exits long-poll. Everything passed in or
out is plain data (pids, codes, paths, public keys): no secret crosses Ray.
"""

from __future__ import annotations

from typing import Any

import ray

from orchestrator.supervisor.backends.hostnode import NodeHost

CONCURRENCY = {"spawn": 4, "kill": 4, "poll": 2}


class HostActor:
    """One node's host (see :class:`NodeHost` for each method's contract)."""

    def __init__(self, run_dir: str, node: str, kill_timeout: float) -> None:
        self.host = NodeHost(run_dir, node, kill_timeout)
        self.host.start()

    @ray.method(concurrency_group="kill")
    def info(self) -> dict[str, Any]:
        return self.host.info()

    @ray.method(concurrency_group="kill")
    def sees(self, path: str) -> bool:
        return self.host.sees(path)

    @ray.method(concurrency_group="spawn")
    def issue_key(self, agent_id: str) -> dict[str, str]:
        return self.host.issue_key(agent_id)

    @ray.method(concurrency_group="spawn")
    def spawn(self, spec: dict[str, Any]) -> int:
        return self.host.spawn(spec)

    @ray.method(concurrency_group="kill")
    def signal(self, pgids: list[int], sig: int) -> list[bool]:
        return self.host.signal(pgids, sig)

    @ray.method(concurrency_group="kill")
    def adopt(self, known: list[list[float]]) -> dict[str, list[int]]:
        return self.host.adopt(known)

    @ray.method(concurrency_group="kill")
    def sweep(self, known: list[list[float]]) -> list[int]:
        return self.host.sweep(known)

    @ray.method(concurrency_group="kill")
    def shutdown(self, kill_agents: bool = True) -> list[int]:
        return self.host.shutdown(kill_agents)

    @ray.method(concurrency_group="poll")
    def poll(self, incarnation: str | None, cursor: int, wait: float) -> dict[str, Any]:
        return self.host.poll(incarnation, cursor, wait)


def host_options(name: str, namespace: str, node_id: str) -> dict[str, Any]:
    """How a host actor is made: detached and named, pinned to its node, no CPU, restarted for ever."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {"name": name, "namespace": namespace, "lifetime": "detached", "get_if_exists": True,
            "max_restarts": -1, "num_cpus": 0,
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=False)}


def start_host(name: str, namespace: str, node_id: str, run_dir: str, node: str, kill_timeout: float) -> Any:
    """The handle of host ``name`` on ``node_id`` (the running one if it exists already)."""
    remote = ray.remote(concurrency_groups=CONCURRENCY)(HostActor)
    return remote.options(**host_options(name, namespace, node_id)).remote(run_dir, node, kill_timeout)
