"""The Ray backend as the supervisor uses it: hosts on nodes, placement, signals, exits.

The supervisor is the Ray driver and keeps policy, registry and broker. At
start it connects to the cluster (``cluster.py``), starts one detached,
named host actor ``swarm-NAME-host-NODE`` on every node offering
``backend.node_resource`` (``actor.py``), checks that every node sees the
workspace, and watches each host (``links.py``). A spawn picks a node
(``placement.py``), has that node's host issue the agent's CurveZMQ keypair
(only the public key comes back; the broker allows it before the agent
exists), then fork the agent from the node's zygote. Exits, restarts and
lost nodes come back through the ``report`` callable as
:class:`~orchestrator.supervisor.backends.base.Exited` and
:class:`~orchestrator.supervisor.backends.base.Lost`.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import ray
from ray.exceptions import RayError, RayTaskError

from orchestrator.config import SwarmConfig
from orchestrator.supervisor.backends.base import Exited, Known, Lost, Placed, Report
from orchestrator.supervisor.backends.onray.actor import start_host
from orchestrator.supervisor.backends.onray.cluster import ClusterLink
from orchestrator.supervisor.backends.onray.links import LOST, HostLink
from orchestrator.supervisor.backends.placement import NodeView, capacity, choose
from orchestrator.supervisor.spawner import SpawnError
from swarm_core.peers import PeerKind
from swarm_core.spec import AgentSpec
from swarm_core.status import Reason

HOST_START_TIMEOUT = 120.0  # a host's first answer (a worker process, then the zygote's preload)
CALL_TIMEOUT = 10.0  # a spawn or an adoption
MONITOR_EVERY = 1.0  # seconds between looks at the cluster's nodes


@dataclass(frozen=True)
class _Owned:
    node: str
    agent_id: str
    started: float


class RaySignaller:
    """The reaper's signaller for agents on Ray nodes: signals go through their host."""

    def __init__(self, backend: "RayBackend") -> None:
        self._backend = backend

    def send(self, target: int, sig: int) -> bool:
        return self._backend.signal(target, sig)

    def alive(self, target: int) -> bool:
        return self._backend.owns(target)


class RayBackend:
    """One host actor per node; agents are plain processes forked by each node's zygote."""

    kind = "ray"

    def __init__(self, cfg: SwarmConfig, run_dir: Path, report: Report, log: Any, keys: Any = None) -> None:
        self.settings = cfg.backend
        self.swarm = cfg.name
        self.workspace = cfg.workspace
        self.run_dir = Path(run_dir)
        self.report = report
        self.log = log
        self.keys = keys  # bus.keyring.Keyring: enrolls the public keys hosts make (the lifecycle revokes)
        self.cluster = ClusterLink(self.settings, self.run_dir, log)
        self.signaller = RaySignaller(self)
        self.links: dict[str, HostLink] = {}
        self._owned: dict[int, _Owned] = {}
        self._sweep: dict[str, list[list[float]]] = {}
        self._resources: dict[str, dict[str, float]] = {}  # node -> its Ray resources (placement reads them)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    # ------------------------------------------------------------ start

    def start(self) -> None:
        """Connect, start a host on every node offering the resource, check the workspace, watch."""
        self.cluster.connect()
        nodes = [n for n in self._look() if n["alive"] and self._offers(n)]
        if not nodes:
            raise SpawnError(f"no node of the Ray cluster offers resource {self.settings.node_resource!r}")
        for link in [self._start_host(n["id"]) for n in nodes]:
            self._ready(link)
        self._check_workspace()
        self._monitor = threading.Thread(target=self._watch_nodes, name="ray-nodes", daemon=True)
        self._monitor.start()

    def _look(self) -> list[dict[str, Any]]:
        """The cluster's nodes now (and remember their resources for placement)."""
        nodes = self.cluster.nodes()
        self._resources = {n["id"][:12]: n["resources"] for n in nodes}
        return nodes

    def _offers(self, node: dict[str, Any]) -> bool:
        return node["resources"].get(self.settings.node_resource, 0) > 0

    def _start_host(self, node_id: str) -> HostLink:
        node = node_id[:12]
        actor = start_host(f"swarm-{self.swarm}-host-{node}", self.cluster.namespace, node_id,
                           str(self.run_dir), node, self.settings.kill_timeout_ms / 1000)
        return HostLink(node_id, node, actor, self, self.log)

    def _ready(self, link: HostLink) -> None:
        """Wait for a host's first answer, then watch it."""
        try:
            info = link.call("info", timeout=HOST_START_TIMEOUT)
        except RayError as exc:
            raise SpawnError(f"the host on node {link.node} did not start: {_cause(exc)}") from None
        link.incarnation = info["incarnation"]
        with self._lock:
            self.links[link.node] = link
        link.start()
        self.log.info("host_ready", node=link.node, pid=info["pid"], hostname=info["hostname"])

    def _check_workspace(self) -> None:
        """Every node must see the workspace at the same path (a marker written here, looked for there)."""
        marker = Path(self.workspace) / f".swarm-node-check-{uuid.uuid4().hex[:8]}"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("")
        try:
            blind = [link.node for link in self._links()
                     if not link.call("sees", str(marker), timeout=CALL_TIMEOUT)]
        finally:
            marker.unlink()
        if blind:
            raise SpawnError(f"the workspace {self.workspace} is not visible on node(s) {', '.join(blind)}; "
                             "backend ray needs it on a filesystem every node shares")

    def _links(self) -> list[HostLink]:
        with self._lock:
            return list(self.links.values())

    # ------------------------------------------------------------ spawn

    def spawn(self, spec: AgentSpec) -> Placed:
        """Place the agent, have its node's host issue its key and fork it (SpawnError when it cannot)."""
        link = self.links[self._place(spec.role_name)]
        try:
            public = link.call("issue_key", spec.agent_id, timeout=CALL_TIMEOUT)["public"]
            cred = self.keys.enroll(spec.agent_id, PeerKind.AGENT, public)
            raw = {**spec.to_dict(), "credential": cred.to_dict()}  # no secret: the host has it
            pid = int(link.call("spawn", raw, timeout=CALL_TIMEOUT))
        except RayError as exc:
            raise SpawnError(f"node {link.node}: {_cause(exc)}") from None
        with self._lock:
            self._owned[pid] = _Owned(link.node, spec.agent_id, time.time() - 1.0)
        return Placed(pid, link.node)

    def _place(self, role: str) -> str:
        used: dict[str, int] = {}
        with self._lock:
            for owned in self._owned.values():
                used[owned.node] = used.get(owned.node, 0) + 1
        resources = self._resources
        views = [NodeView(link.node, capacity(resources.get(link.node, {}), self.settings.agents_per_node),
                          used.get(link.node, 0), frozenset(resources.get(link.node, {})), link.state != LOST)
                 for link in self._links()]
        return choose(views, role, self.settings.placement)

    # ------------------------------------------------------------ signals and ownership

    def signal(self, pgid: int, sig: int) -> bool:
        """Have the owning host signal ``pgid`` (no wait); False when it is not ours or its host is lost."""
        with self._lock:
            owned = self._owned.get(pgid)
            link = self.links.get(owned.node) if owned else None
        return link is not None and link.signal([pgid], sig)

    def owns(self, pgid: int) -> bool:
        """Whether ``pgid`` is an agent of ours whose exit has not been reported."""
        with self._lock:
            return pgid in self._owned

    def gone(self, pid: int) -> bool:
        """Its host reported its exit (hosts watch adopted processes themselves)."""
        return not self.owns(pid)

    def adopt(self, agents: Iterable[Known]) -> dict[int, str | None]:
        """After a supervisor restart: each node's host takes over the agents still alive there.

        A private cluster died with its supervisor (its nodes are new): the first host takes all.
        """
        by_node: dict[str, list[Known]] = {}
        links = sorted(self.links)
        for a in agents:
            # a private cluster died with its supervisor: its nodes are new, but all on this machine
            node = a.node if a.node in self.links or not self.cluster.private else links[0]
            if node in self.links and a.pid:
                by_node.setdefault(node, []).append(a)
        adopted: dict[int, str | None] = {}
        for node, known in by_node.items():
            try:
                got = self.links[node].call("adopt", [[a.pid, a.created_at] for a in known],
                                            timeout=CALL_TIMEOUT)
            except RayError as exc:
                self.log.warning("adopt_failed", node=node, error=_cause(exc))
                continue
            with self._lock:
                for a in known:
                    if a.pid in got["adopted"]:
                        self._owned[a.pid] = _Owned(node, a.agent_id, a.created_at)
            adopted.update({pid: node for pid in got["adopted"]})
        return adopted

    def term_grace(self, grace: float) -> float:
        """SIGTERM → SIGKILL takes ``kill_timeout_ms`` (the host escalates on its node)."""
        return self.settings.kill_timeout_ms / 1000

    def facts(self) -> dict[str, Any]:
        """Kind, cluster and hosts, for ``swarm down`` after a supervisor crash."""
        return {"kind": self.kind, **self.cluster.facts(), "hosts": sorted(self.links)}

    # ------------------------------------------------------------ what links tell us

    def exits(self, link: HostLink, events: list[list[Any]]) -> None:
        for _, pid, code in events:
            with self._lock:
                owned = self._owned.pop(int(pid), None)
            if owned is not None:
                self.report(Exited(int(pid), None if code is None else int(code)))

    def restarted(self, link: HostLink) -> None:
        """A new incarnation of a host: it adopts our agents of its node; the others ended unseen."""
        with self._lock:
            known = [[pid, o.started] for pid, o in self._owned.items() if o.node == link.node]
        try:
            got = link.call("adopt", known, timeout=CALL_TIMEOUT) if known else {"adopted": [], "gone": []}
        except RayError as exc:
            self.log.warning("adopt_failed", node=link.node, error=_cause(exc))
            return
        self.log.info("host_adopted", node=link.node, adopted=got["adopted"], gone=got["gone"])
        self.exits(link, [[0, pid, None] for pid in got["gone"]])
        for pgids, sig in link.take_deferred():
            link.signal(pgids, sig)

    def lost(self, link: HostLink) -> None:
        """A host that does not answer: its agents end ``node_unreachable`` (the gate holds them)."""
        with self._lock:
            gone = [(pid, o) for pid, o in self._owned.items() if o.node == link.node]
            for pid, owned in gone:
                del self._owned[pid]
                self._sweep.setdefault(link.node, []).append([pid, owned.started])
        for pid, _owned in gone:
            self.report(Lost(pid, Reason.NODE_UNREACHABLE))

    def back(self, link: HostLink) -> None:
        """A lost host answers again: it kills what we gave up on (nobody owns it now)."""
        with self._lock:
            known = self._sweep.pop(link.node, [])
        if known:
            try:
                killed = link.call("sweep", known, timeout=CALL_TIMEOUT)
                self.log.warning("host_swept", node=link.node, killed=killed)
            except RayError as exc:
                self.log.warning("sweep_failed", node=link.node, error=_cause(exc))
                with self._lock:
                    self._sweep.setdefault(link.node, []).extend(known)

    # ------------------------------------------------------------ nodes coming and going

    def _watch_nodes(self) -> None:
        while not self._stop.wait(MONITOR_EVERY):
            try:
                nodes = self._look()
            except Exception as exc:  # noqa: BLE001 - a thread boundary: try again next time
                self.log.warning("ray_nodes_failed", error=str(exc))
                continue
            alive = {n["id"][:12] for n in nodes if n["alive"]}
            for link in self._links():
                if link.node not in alive and link.state != LOST:
                    link.lose("Ray reports the node dead")
            for n in nodes:
                joined = n["id"][:12] in self.links
                if n["alive"] and self._offers(n) and not joined and not self._stop.is_set():
                    self._join(n["id"])

    def _join(self, node_id: str) -> None:
        """A node that joined the cluster gets a host too."""
        try:
            self._ready(self._start_host(node_id))
        except SpawnError as exc:
            self.log.warning("host_start_failed", node=node_id[:12], error=exc.message)

    # ------------------------------------------------------------ teardown

    def stop(self) -> None:
        """Every host kills what it still owns and stops its zygote; hosts go; the cluster link closes."""
        self._close(timeout=5.0)

    def kill(self) -> None:
        """The same, waiting less."""
        self._close(timeout=1.0)

    def _close(self, timeout: float) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        links = self._links()
        refs = [link.actor.shutdown.remote(True) for link in links if link.state != LOST]
        try:
            ray.wait(refs, num_returns=len(refs), timeout=timeout)
        except RayError:
            pass
        for link in links:
            link.close()
            try:
                ray.kill(link.actor, no_restart=True)
            except (RayError, ValueError):
                pass
        self.cluster.close()



def _cause(exc: BaseException) -> str:
    """The message of what failed on the other side (a task's own exception, not Ray's wrapping)."""
    if isinstance(exc, RayTaskError) and exc.cause is not None:
        return str(getattr(exc.cause, "message", exc.cause))
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
