"""What the kernel sandbox costs: applying it to an agent, and running code inside the nested one.

1. Agent: in a process that preloaded the agent runtime (like the zygote), a
   fork that confines itself (``confine_agent``: Landlock) and exits, against
   a bare fork that exits, p50 over N; plus the one-off ``prepare_zygote``.
2. ``execute_python_file``: a trivial program run with ``sandbox="none"``
   (the scan and the audit hook only) against the kernel sandbox, from a
   confined agent (exec root prepared by the zygote: what agents do) and from
   an unconfined caller (the exec root built per run).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from _swarmkit import percentile

N = 40
PROGRAM = b"print(sum(range(10)))\n"


def forks(child) -> tuple[list[float], list[float]]:
    """N times fork → ``child()`` → exit → reaped: the wall times, and the seconds ``child`` reported."""
    out, inside = [], []
    for _ in range(N):
        r, w = os.pipe()
        t = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os.write(w, repr(child()).encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        out.append(time.perf_counter() - t)
        with os.fdopen(r) as f:
            inside.append(float(f.read() or 0))
    return out, inside


def runs(ws: str, **kw) -> list[float]:
    from agents.sandbox import run_python_source

    out = []
    for _ in range(N // 2):
        t = time.perf_counter()
        r = run_python_source(PROGRAM, "bench.py", ws, **kw)
        assert r.reason == "ok", r.output
        out.append(time.perf_counter() - t)
    return out


def ms(xs: list[float]) -> str:
    return f"p50 {percentile(xs, 50) * 1e3:6.1f} ms  p95 {percentile(xs, 95) * 1e3:6.1f} ms"


def main() -> None:
    import structlog  # noqa: F401 - what the zygote preloads
    import zmq  # noqa: F401

    import agents.process  # noqa: F401
    from agents.confine.agent import confine_agent, prepare_zygote
    from swarm_core.spec import AgentSpec

    tmp = Path(tempfile.mkdtemp(prefix="swarm-bench-sandbox-"))
    (tmp / "run" / "logs").mkdir(parents=True)
    spec = AgentSpec(agent_id="a", name="a", role_name="r", role="r", task="t",
                     commands=("execute_python_file",), endpoint=f"ipc://{tmp}/run/bus.ipc",
                     run_dir=str(tmp / "run"), workspace=str(tmp / "ws"), settings={"sandbox": "kernel"})
    (tmp / "ws").mkdir()
    plain = runs(str(tmp / "ws"), sandbox="none")
    built = runs(str(tmp / "ws"), sandbox="kernel", static_scan=False)
    bare, _ = forks(lambda: 0.0)
    t = time.perf_counter()
    prepare_zygote(spec.to_dict())
    prepared_ms = (time.perf_counter() - t) * 1e3
    confined, cost = forks(lambda: confine_agent(spec).settings["confined_us"] / 1e6)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        root = confine_agent(spec).settings["exec_root"]
        os.write(w, repr(runs(str(tmp / "ws"), sandbox="kernel", static_scan=False, exec_root=root)).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        nested = [float(x) for x in f.read().strip("[]").split(",")]
    os.waitpid(pid, 0)
    print(f"sandbox: {N} agent forks each way, {N // 2} runs of a trivial program each way")
    print(f"  prepare_zygote (once per swarm: namespaces, exec root, read-only mounts): {prepared_ms:.1f} ms")
    print(f"  fork+exit, bare:              {ms(bare)}")
    print(f"  fork+confine_agent+exit:      {ms(confined)}")
    print(f"  confine_agent itself (Landlock ruleset, log file, workspace): "
          f"p50 {percentile(cost, 50) * 1e6:.0f} µs  p95 {percentile(cost, 95) * 1e6:.0f} µs")
    print(f"  execute, sandbox none:        {ms(plain)}")
    for label, xs in (("kernel, agent:     ", nested), ("kernel, root built:", built)):
        print(f"  execute, {label}  {ms(xs)}   ratio p50 {percentile(xs, 50) / percentile(plain, 50):.2f}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
