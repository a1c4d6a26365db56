"""The zygote: a preloaded fork server for agent processes.

The supervisor starts it once (``python -m orchestrator.supervisor.zygote``)
before any thread or ZeroMQ context exists in it. It imports zmq, the wire
protocol (msgpack), structlog and the agent runtime once, freezes the GC (so forked children do
not copy those pages by touching them) and then forks one child per spawn
request. Each child gets its own session and process group, its rlimits, its
stdout/stderr in ``logs/<id>.out``, and runs the agent.

Protocol on stdin/stdout, one JSON object per line:
  supervisor → zygote: ``{"op": "spawn", "req": N, "spec": {...}}``
  zygote → supervisor: ``{"op": "spawned", "req": N, "pid": P}``,
  ``{"op": "error", "req": N, "error": "..."}``,
  ``{"op": "exit", "pid": P, "code": C}`` (C < 0: killed by signal -C).
The zygote reaps its children and reports every exit; when the supervisor
goes away (EOF on stdin) it exits and leaves the agents alone (a restarted
supervisor finds them in the registry).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import select
import signal
import sys
import traceback
from typing import Any

from agents.confine.agent import confine_agent, prepare_zygote
from swarm_core.spec import AgentSpec, RLimits

EXIT_OUT_OF_MEMORY = 12  # ENOMEM: the agent ran out of its address-space limit

_RLIMITS = {
    "memory_mb": (resource.RLIMIT_AS, lambda v: v * 1024 * 1024),
    "cpu_seconds": (resource.RLIMIT_CPU, lambda v: v),
    "open_files": (resource.RLIMIT_NOFILE, lambda v: v),
}


def _write(fd: int, obj: dict[str, Any]) -> None:
    data = (json.dumps(obj) + "\n").encode()
    while data:
        n = os.write(fd, data)
        data = data[n:]


def apply_rlimits(limits: RLimits) -> None:
    """Set the given rlimits (0 or missing = leave as is); hard = soft so they stick.

    CPU gets a hard limit one second above the soft one: SIGXCPU first, then
    the kernel's SIGKILL.
    """
    for key, (res, conv) in _RLIMITS.items():
        value = int(getattr(limits, key))
        if value <= 0:
            continue
        soft = conv(value)
        _, hard = resource.getrlimit(res)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        new_hard = soft + 1 if res == resource.RLIMIT_CPU else soft
        if hard != resource.RLIM_INFINITY:
            new_hard = min(new_hard, hard)
        resource.setrlimit(res, (soft, new_hard))


def _child(raw: dict[str, Any], keep: set[int]) -> None:
    code = 70
    try:
        os.setsid()
        spec = AgentSpec.from_dict(raw)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        out_path = spec.stdout
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        if out_path:
            fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
        os.close(devnull)
        for fd in keep:
            try:
                os.close(fd)
            except OSError:
                pass
        apply_rlimits(spec.rlimits)
        spec = confine_agent(spec)  # safety.sandbox: kernel; raises rather than run the agent unconfined
        from agents.process import run_agent

        code = run_agent(spec)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except MemoryError:  # the address-space rlimit: say so in the exit code
        traceback.print_exc()
        code = EXIT_OUT_OF_MEMORY
    except BaseException:  # process boundary: report and exit non-zero
        traceback.print_exc()
        code = 70
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - we are exiting regardless
            pass
        os._exit(code)


def serve(in_fd: int = 0, out_fd: int = 1) -> None:
    """Run the fork server until EOF on ``in_fd``."""
    rd, wr = os.pipe()
    os.set_blocking(rd, False)
    os.set_blocking(wr, False)
    signal.set_wakeup_fd(wr)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when we stop
    buf = b""
    keep = {in_fd, out_fd, rd, wr}
    gc.collect()
    gc.freeze()
    while True:
        try:
            ready, _, _ = select.select([in_fd, rd], [], [])
        except InterruptedError:
            continue
        if rd in ready:
            try:
                while os.read(rd, 4096):
                    pass
            except BlockingIOError:
                pass
        _reap(out_fd)
        if in_fd in ready:
            chunk = os.read(in_fd, 65536)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                _handle(line, out_fd, keep)


def _reap(out_fd: int) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        _write(out_fd, {"op": "exit", "pid": pid, "code": code})


def _handle(line: bytes, out_fd: int, keep: set[int]) -> None:
    try:
        req = json.loads(line)
        if req.get("op") != "spawn" or not isinstance(req.get("spec"), dict):
            raise ValueError("expected {op: spawn, spec: {...}}")
    except (ValueError, AttributeError) as exc:
        _write(out_fd, {"op": "error", "req": None, "error": f"bad request: {exc}"})
        return
    try:
        prepare_zygote(req["spec"])  # once: the sandbox's namespaces and exec root, before the first fork
    except (OSError, RuntimeError, KeyError, TypeError) as exc:
        _write(out_fd, {"op": "error", "req": req.get("req"), "error": f"kernel sandbox: {exc}"})
        return
    try:
        pid = os.fork()
    except OSError as exc:
        _write(out_fd, {"op": "error", "req": req.get("req"), "error": f"fork failed: {exc}"})
        return
    if pid == 0:
        _child(req["spec"], keep)
    _write(out_fd, {"op": "spawned", "req": req.get("req"), "pid": pid})


def preload() -> None:
    """Import what every agent needs, once, before the first fork."""
    import structlog  # noqa: F401
    import zmq  # noqa: F401

    import agents.process  # noqa: F401
    import bus.protocol  # noqa: F401 - brings msgpack (only the protocol module imports it)
    from agents.commands import registry

    registry.load_builtin_commands()


def main() -> None:
    preload()
    _write(1, {"op": "ready", "pid": os.getpid()})
    serve(0, 1)


if __name__ == "__main__":
    main()
