"""Connect the supervisor (the Ray driver) to a cluster, or start a private one on this machine.

``address: local`` starts a private cluster of ``local_nodes`` simulated
nodes (``ray.cluster_utils.Cluster``): node *i* offers ``node_resource`` and
``<node_resource>_<i>`` (so a ``{ROLE: RESOURCE}`` placement can pick it).
Its temp dir is ``RUN_DIR/ray`` (or, when that is too long for Ray's Unix
sockets, a short private dir under the system temp dir); usage stats are off;
nothing of it reaches beyond this machine. :meth:`close`
stops it and SIGKILLs whatever of its process tree is left. ``auto`` or
``HOST:PORT`` connects to a running cluster (``ray start`` on every node, or
KubeRay) and leaves it running.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import ray

from orchestrator.config import Backend as BackendSettings
from swarm_core.errors import SwarmError

MAX_TEMP_DIR = 40  # Ray adds ~70 bytes of session and socket names; a Unix socket path holds 107
CONNECT_TIMEOUT = 60.0  # seconds for ray.init to reach the cluster
OBJECT_STORE = 80 * 1024 * 1024  # a private node's object store (we pass almost nothing through it)


def temp_dir_for(run_dir: Path) -> Path:
    """``RUN_DIR/ray`` when short enough for Ray's sockets, else ``$TMPDIR/swarm-ray-<uid>-<hash>``."""
    wanted = Path(run_dir).resolve() / "ray"
    if len(str(wanted)) <= MAX_TEMP_DIR:
        return wanted
    digest = hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"swarm-ray-{os.getuid()}-{digest}"


def namespace_for(run_dir: Path) -> str:
    """The Ray namespace of one run directory's swarm (its host actors are named in it)."""
    return "swarm-" + hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:10]


class ClusterLink:
    """The driver's connection; owns the private cluster when it started one."""

    def __init__(self, settings: BackendSettings, run_dir: Path, log: Any) -> None:
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.namespace = namespace_for(self.run_dir)
        self.log = log
        self.temp_dir: Path | None = None
        self._cluster: Any = None
        self._tree: dict[int, float] = {}  # pid -> start time of every private-cluster process seen
        self._started = time.time()
        self._gcs = settings.address  # what ray.init connects to (a private cluster's GCS address)

    @property
    def private(self) -> bool:
        return self.settings.address == "local"

    def connect(self) -> None:
        """Start the private cluster (``local``) or reach the configured one; then ``ray.init``."""
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        self._started = time.time()
        address = self._gcs = self._start_private() if self.private else self.settings.address
        failure: list[BaseException] = []

        def init() -> None:
            try:
                ray.init(address=address, namespace=self.namespace, logging_level=logging.ERROR,
                         log_to_driver=False, configure_logging=False)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                failure.append(exc)

        # ray.init retries an unreachable cluster for ever: give it a bound
        thread = threading.Thread(target=init, name="ray-init", daemon=True)
        thread.start()
        thread.join(CONNECT_TIMEOUT)
        if thread.is_alive() or failure:
            why = f"{failure[0]}".splitlines()[0] if failure else f"no answer within {CONNECT_TIMEOUT:g}s"
            hint = "" if self.private else " (start one: `ray start --head`; or set backend.address: local)"
            raise SwarmError(f"cannot connect to the Ray cluster at {address}: {why}{hint}")

    def _start_private(self) -> str:
        from ray.cluster_utils import Cluster

        self.temp_dir = temp_dir_for(self.run_dir)
        self.temp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.environ["RAY_TMPDIR"] = str(self.temp_dir)  # everything Ray writes, ray_current_cluster too
        res = self.settings.node_resource
        cluster = self._cluster = Cluster(initialize_head=False, shutdown_at_exit=False)
        for i in range(self.settings.local_nodes):
            cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE, include_dashboard=False,
                             resources={res: 1, f"{res}_{i}": 1})
            self._remember_tree()
        cluster.wait_for_nodes()
        self.log.info("ray_private_cluster_started", nodes=self.settings.local_nodes,
                      address=cluster.address, temp_dir=str(self.temp_dir))
        return str(cluster.address)

    def nodes(self) -> list[dict[str, Any]]:
        """Every node Ray knows: ``{"id", "alive", "resources"}``."""
        return [{"id": n["NodeID"], "alive": bool(n["Alive"]), "resources": dict(n.get("Resources") or {})}
                for n in ray.nodes()]

    def _remember_tree(self) -> None:
        """Note every process of the private cluster (and its children) so that close() can end them."""
        if self._cluster is None:
            return
        roots = []
        for node in [self._cluster.head_node, *self._cluster.worker_nodes]:
            for infos in (getattr(node, "all_processes", None) or {}).values():
                roots += [info.process.pid for info in infos]
        for pid in roots:
            try:
                proc = psutil.Process(pid)
                for p in [proc, *proc.children(recursive=True)]:
                    self._tree[p.pid] = p.create_time()
            except psutil.NoSuchProcess:
                continue

    def facts(self) -> dict[str, Any]:
        """What ``swarm down`` needs after a supervisor crash."""
        # a private cluster lives in our session; name it only when we lead it (else it is a shell's)
        session = os.getpid() if self.private and os.getsid(0) == os.getpid() else None
        return {"address": self.settings.address, "gcs": self._gcs, "namespace": self.namespace,
                "private": self.private, "temp_dir": str(self.temp_dir) if self.temp_dir else None,
                "session": session, "started": self._started}

    def close(self) -> None:
        """Disconnect; stop the private cluster and SIGKILL whatever of it is left (idempotent)."""
        self._remember_tree()
        try:
            ray.shutdown()
        except Exception as exc:  # noqa: BLE001 - closing must go on
            self.log.warning("ray_shutdown_failed", error=str(exc))
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            try:
                cluster.shutdown()
            except Exception as exc:  # noqa: BLE001 - the sweep below still ends it
                self.log.warning("ray_cluster_shutdown_failed", error=str(exc))
        self._kill_tree()
        if self.temp_dir is not None and self.temp_dir.name.startswith("swarm-ray-"):
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _kill_tree(self) -> None:
        tree, self._tree = self._tree, {}
        for pid, started in tree.items():
            if pid != os.getpid() and _same(pid, started):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(_same(p, s) for p, s in tree.items() if p != os.getpid()):
            time.sleep(0.02)


def _same(pid: int, started: float) -> bool:
    """Whether ``pid`` is still the (non-zombie) process that started at ``started``."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - started) < 0.5
    except psutil.NoSuchProcess:
        return False
