"""The kernel sandbox around agent processes, applied in two steps by the zygote.

:func:`prepare_zygote` runs once, in the zygote itself (single-threaded,
before it forks the first agent of a ``safety.sandbox: kernel`` swarm): the
zygote enters a user namespace where it is root, mapped to the swarm's own
uid, so neither it nor any agent it forks holds a capability outside that
namespace, and a mount namespace of its own where it builds the exec root
(:mod:`agents.confine.execroot`) on ``RUN_DIR/sandbox``, invisible to every
other process; then every mount it sees becomes read-only but the
workspace and the run's logs (:func:`writable_mounts`). Agents inherit all
of it: their nested sandboxes later create
their own namespaces from this user namespace without writing uid maps
(Landlock would deny those writes) and ``chroot`` into the prepared root.

:func:`confine_agent` runs in each freshly forked, single-threaded agent
child after its rlimits:

1. creates what the agent will need and cannot create later: its workspace
   folder and its JSON log file ``logs/<id>.jsonl`` (``logs/<id>.out`` is
   already its stdout), and imports the project's top-level packages;
2. moves into a mount namespace of its own and mounts there a tmpfs of
   ``limits.workspace_mb`` over the workspace's place in the exec root
   (:func:`mount_scratch`): the code it runs works on a copy of the
   workspace there (:mod:`agents.stage`), and the kernel stops it at the
   limit however many files it writes;
3. restricts itself with Landlock to :func:`agents.confine.paths.agent_view`:
   nothing of the run directory but its own log file (its bus credential
   travels in its spec, in memory, on every backend), no signal to a
   process outside its own domain (each agent has its own, so not to a
   sibling either), no abstract Unix socket, TCP connect to the bus port
   only.

It returns the spec with ``settings["exec_root"]`` (the prepared root, or
None), ``settings["exec_scratch"]`` (the tmpfs, or None without a workspace)
and ``settings["confined_us"]`` (what it cost). Any failure raises:
the zygote child then exits and the agent never runs unconfined.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
from typing import Any, Mapping

from agents.confine import execroot, landlock, namespaces
from agents.confine.paths import AGENT_ETC, agent_view, devices, enforce, static_reads
from swarm_core.log import log_path
from swarm_core.spec import AgentSpec

PROJECT_PACKAGES = ("agents", "bus", "memory", "swarm_core")
KERNEL, NONE = "kernel", "none"
DEFAULT_WORKSPACE_MB = 512  # limits.workspace_mb's default
INODES_PER_MB = 256  # files and folders the scratch tmpfs may hold per MB of its size


def sandbox_mode(settings: object) -> str:
    """``kernel`` unless the settings say ``none`` (missing or unknown: the safe default)."""
    mode = settings.get("sandbox", KERNEL) if isinstance(settings, Mapping) else KERNEL
    return NONE if mode == NONE else KERNEL


def agent_workspace(spec: AgentSpec) -> str | None:
    """The folder the agent's file commands are jailed in (its own sub-folder when per-agent)."""
    if not spec.workspace:
        return None
    root = os.path.realpath(spec.workspace)
    return os.path.join(root, spec.agent_id) if spec.per_agent_workspace else root


def exec_root_in(run_dir: str) -> str:
    """The mount point of the exec root (mounted in the zygote's own mount namespace only)."""
    return os.path.join(run_dir, "sandbox")


def layout_problem(run_dir: str, workspace: str | None, bus_socket: str | None = None) -> str | None:
    """Why this layout defeats the sandbox, or None: the run directory or the bus socket inside the workspace.

    Agents may write, and executed code sees, the whole workspace: a run directory (registry, keys,
    logs) or a bus socket beneath it would be in reach.
    """
    if not workspace:
        return None
    ws = os.path.realpath(workspace)
    for what, path in (("the run directory", run_dir), ("the bus socket", bus_socket)):
        real = os.path.realpath(path) if path else None
        if real and (real == ws or real.startswith(ws.rstrip("/") + "/")):
            return f"{what} {real} lies inside the workspace {ws}; choose a run directory outside it"
    return None


def _prepare(spec: AgentSpec) -> tuple[str | None, str]:
    workspace = agent_workspace(spec)
    if workspace:
        os.makedirs(workspace, exist_ok=True)
    log_file = str(log_path(spec.run_dir, spec.agent_id))
    os.makedirs(os.path.dirname(log_file), exist_ok=True)
    os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600))
    for name in PROJECT_PACKAGES:
        importlib.import_module(name)
    return workspace, log_file


def prepare_zygote(raw: Mapping[str, Any]) -> None:
    """In the zygote, before forking the agent of spec dict ``raw``: namespaces, exec root, read-only mounts.

    Done once per zygote (later calls find the root prepared); a no-op for ``safety.sandbox: none``.
    """
    if sandbox_mode(raw.get("settings")) != KERNEL:
        return
    root = exec_root_in(str(raw["run_dir"]))
    if execroot.is_prepared(root):
        return
    endpoint = str(raw.get("endpoint", ""))
    problem = layout_problem(str(raw["run_dir"]), raw.get("workspace"),
                             endpoint[len("ipc://"):] if endpoint.startswith("ipc://") else None)
    if problem:
        raise RuntimeError(problem)
    os.makedirs(root, mode=0o700, exist_ok=True)
    workspace = os.path.realpath(raw["workspace"]) if raw.get("workspace") else None
    if workspace:
        os.makedirs(workspace, exist_ok=True)
    for name in PROJECT_PACKAGES:
        importlib.import_module(name)
    static_reads(AGENT_ETC, PROJECT_PACKAGES)  # computed once here, inherited by every agent
    devices()
    landlock.abi_version()
    namespaces.enter_user_namespace(namespaces.CLONE_NEWNS)
    execroot.build(root, workspace)
    namespaces.read_only_except(writable_mounts(str(raw["run_dir"]), workspace))


def writable_mounts(run_dir: str, workspace: str | None) -> list[str]:
    """What stays writable in the zygote's mount namespace (Landlock narrows it further per agent).

    The workspace (also inside the exec root) and the run's logs. Everything else is read-only, which
    also covers what Landlock does not govern: chmod, chown, timestamps, extended attributes.
    """
    paths = [os.path.join(run_dir, "logs")]
    if workspace:
        paths += [workspace, execroot.inside(exec_root_in(run_dir), workspace)]
    return [p for p in paths if os.path.isdir(p)]


def confine_agent(spec: AgentSpec) -> AgentSpec:
    """Apply the agent sandbox to this process (see the module docstring); return the updated spec."""
    if sandbox_mode(spec.settings) != KERNEL:
        return spec
    started = time.perf_counter()
    root = exec_root_in(spec.run_dir)
    if not execroot.is_prepared(root):
        raise RuntimeError(f"the kernel sandbox is not prepared in this zygote ({root} is not an exec root)")
    workspace, log_file = _prepare(spec)
    scratch = mount_scratch(root, workspace, workspace_mb(spec.settings)) if workspace else None
    enforce(agent_view(workspace=workspace, log_file=log_file, packages=PROJECT_PACKAGES,
                       endpoint=spec.endpoint, scratch=scratch))
    cost = round((time.perf_counter() - started) * 1e6)
    return dataclasses.replace(spec, settings={**spec.settings, "exec_root": root, "exec_scratch": scratch,
                                               "confined_us": cost})


def workspace_mb(settings: Mapping[str, Any]) -> int:
    """``limits.workspace_mb`` from the agent's settings (the default when missing or nonsense)."""
    value = settings.get("workspace_mb")
    good = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return value if good else DEFAULT_WORKSPACE_MB


def mount_scratch(root: str, workspace: str, megabytes: int) -> str:
    """Before Landlock (which forbids mounting): a private mount namespace for this agent where a tmpfs of
    ``megabytes`` covers ``workspace`` inside the exec root ``root``; returns that path."""
    namespaces.unshare(namespaces.CLONE_NEWNS)
    namespaces.private_mounts()
    target = execroot.inside(root, workspace)
    namespaces.mount_tmpfs(target, size=f"{megabytes}m", mode=0o755, inodes=megabytes * INODES_PER_MB)
    return target
