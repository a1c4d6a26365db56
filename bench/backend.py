"""The local and the Ray backend side by side, in one run: starts, bus, kills, memory, up/down.

For each backend one replay swarm on a tcp bus with CurveZMQ (the Ray one on
a private cluster of two simulated nodes on this machine) goes through:

* ``swarm up`` → root registered (wall time of the CLI and the registry);
* a burst of 20 ``start_agent`` (one per model step): start_agent →
  registered p50 (the supervisor's own clock) and the whole burst;
* idle USS per agent (p50 of the 20) and the fixed cost: the zygote(s), and
  for Ray the cluster's processes and the host actors;
* bus round trips of 100 B and 4 KiB, p50/p99, from a client to an echo peer
  through the swarm's broker: the client a local process, or for Ray a task
  on the second node (plus ipc, local only, on a standalone broker);
* kill of a hung (SIGSTOPped) agent with ``swarm kill`` (the ladder: stop
  message, grace, SIGTERM, then SIGKILL after the grace locally or
  ``kill_timeout_ms`` on Ray) until its pid is gone;
* hard kill of a 50-agent subtree (hub + 49 leaves) until every pid is gone;
* ``swarm down`` duration.

Targets: ray start p50 ≤ 2× local, kill of 50 ≤ 0.2 s, per-agent USS ≤ 1.2× local.

    .venv/bin/python bench/backend.py [--pings 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import psutil
from _swarmkit import ROOT, WAIT, BenchSwarm, cmd, percentile

BURST = 20
LEAVES = 49  # + the hub = a 50-agent subtree
SIZES = (100, 4096)
ECHO = "cli-bench-echo"

ECHO_CODE = """
import sys
from bus import messages as bm
from bus.client import BusClient
from bus.credentials import OPERATOR_FILE, read_credential
endpoint, run_dir = sys.argv[1], sys.argv[2]
c = BusClient(endpoint, "cli-bench-echo", credential=read_credential(f"{run_dir}/{OPERATOR_FILE}")).connect()
c.handle(bm.Ping, lambda msg: bm.Pong(msg.body.payload))
print("ready", flush=True)
while True:
    c.poll(1.0)
"""


def round_trips(endpoint: str, run_dir: str, n: int) -> dict[int, list[float]]:
    """Seconds per round trip to the echo peer, per body size (runs in a client process or a Ray task)."""
    import os
    import sys
    import time

    # a Ray worker gets the driver's script folder on its path: bench/bus.py must not shadow the package
    sys.path[:] = [p for p in sys.path if not os.path.exists(os.path.join(p or ".", "_swarmkit.py"))]
    if getattr(sys.modules.get("bus"), "__file__", "").endswith(os.path.join("bench", "bus.py")):
        del sys.modules["bus"]
    from bus import messages as bm
    from bus.client import BusClient
    from bus.credentials import OPERATOR_FILE, read_credential

    cred = read_credential(os.path.join(run_dir, OPERATOR_FILE))  # an operator session, like the CLI's
    c = BusClient(endpoint, f"cli-bench-{os.getpid()}", credential=cred).connect()
    out: dict[int, list[float]] = {}
    try:
        for size in SIZES:
            body = bm.Ping(b"x" * size)
            for _ in range(100):
                c.request(ECHO, body, 10.0)
            times = []
            for _ in range(n):
                t = time.perf_counter()
                c.request(ECHO, body, 10.0)
                times.append(time.perf_counter() - t)
            out[size] = times
    finally:
        c.close()
    return out


def _client_process(endpoint: str, run_dir: str, n: int) -> dict[int, list[float]]:
    # appended, not first: bench/bus.py must not shadow the bus package
    code = ("import json, sys; sys.path.append(sys.argv[4]); from backend import round_trips; "
            "print(json.dumps(round_trips(sys.argv[1], sys.argv[2], int(sys.argv[3]))))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code, endpoint, run_dir, str(n), str(ROOT / "bench")],
                         capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    return {int(k): v for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def _ray_client(facts: dict[str, Any], endpoint: str, run_dir: str, n: int) -> dict[int, list[float]]:
    """The same client as a Ray task on the second simulated node (a second driver on the swarm's cluster)."""
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(address=facts["gcs"], logging_level="ERROR", log_to_driver=False, configure_logging=False)
    try:
        task = ray.remote(num_cpus=0, resources={"swarm_node_1": 0.01})(round_trips)
        return {int(k): v for k, v in ray.get(task.remote(endpoint, run_dir, n), timeout=300).items()}
    finally:
        ray.shutdown()


def _echo(endpoint: str, run_dir: str) -> subprocess.Popen:
    """The echo peer (its own session), once it is on the bus."""
    proc = subprocess.Popen([sys.executable, "-c", ECHO_CODE, endpoint, run_dir], text=True, cwd=ROOT,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            start_new_session=True)
    if proc.stdout is None or proc.stdout.readline().strip() != "ready":
        raise SystemExit("the echo peer did not come up")
    return proc


def _ipc_round_trips(n: int) -> dict[int, list[float]]:
    """A standalone broker on ipc (the local backend's default transport), an echo peer and a client."""
    import tempfile

    run = tempfile.mkdtemp(prefix="swarm-bench-ipc-")
    endpoint = f"ipc://{run}/bus.ipc"
    broker_code = ("import sys, time; from bus.broker import Broker; b = Broker(sys.argv[1], sys.argv[2]); "
                   "b.bind(); b.start_thread(); print('ready', flush=True); time.sleep(3600)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", broker_code, endpoint, f"ipc://{run}/ev.ipc"],
                              stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT, start_new_session=True)]
    try:
        procs[0].stdout.readline()
        procs.append(_echo(endpoint, run))
        return _client_process(endpoint, run, n)
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


# ------------------------------------------------------------ one backend


def _cassette() -> dict[str, Any]:
    burst = [cmd("start_agent", name=f"w{i}", task="idle", role="worker") for i in range(BURST)]
    # after the burst the manager waits; an operator message wakes it to start the 50-agent subtree
    then = [cmd("do_nothing"), cmd("start_agent", name="hub", task="hub", role="worker"), cmd("do_nothing")]
    c: dict[str, Any] = {"manager": {"responses": burst + then, "repeat": True},
                         "hub": {"responses": [cmd("start_agent", name=f"leaf{i}", task="idle", role="worker")
                                               for i in range(LEAVES)] + [cmd("do_nothing")], "repeat": True}}
    for i in range(BURST):
        c[f"w{i}"] = WAIT
    for i in range(LEAVES):
        c[f"leaf{i}"] = WAIT
    return c


def _live(agents: dict[str, Any], prefix: str) -> int:
    return sum(1 for k, a in agents.items() if k.startswith(prefix) and a["status"] in ("running", "waiting"))


def _uss(pids: list[int]) -> list[float]:
    out = []
    for pid in pids:
        try:
            out.append(psutil.Process(pid).memory_full_info().uss / 2**20)
        except psutil.NoSuchProcess:
            pass
    return out


def _fixed(sup: int) -> dict[str, float]:
    """USS (MiB) of what a backend runs besides its agents: zygotes; Ray's processes and hosts."""
    zygotes, ray_procs, hosts = [], [], []
    forked = {p.info["pid"] for p in psutil.process_iter(["pid", "cmdline"])
              if "orchestrator.supervisor.zygote" in (p.info["cmdline"] or [])}
    for proc in psutil.process_iter(["pid", "cmdline", "ppid"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.info["pid"] in forked:
                if proc.info["ppid"] not in forked:  # agents keep their zygote's command line
                    zygotes.append(proc.info["pid"])
            elif proc.info["pid"] != sup and os.getsid(proc.info["pid"]) == sup:
                (hosts if "HostActor" in cmdline else ray_procs).append(proc.info["pid"])
        except (psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            continue
    mine = set(psutil.Process(sup).children(recursive=True))
    zygotes = [z for z in zygotes if psutil.Process(z) in mine]
    return {"zygotes": sum(_uss(zygotes)), "ray": sum(_uss(ray_procs)), "hosts": sum(_uss(hosts)),
            "supervisor": sum(_uss([sup]))}


def _starts(sw: BenchSwarm) -> dict[str, Any]:
    """``swarm up`` → root registered, the burst's per-agent starts and its length, the idle agents' USS."""
    r: dict[str, Any] = {}
    t = time.perf_counter()
    sw.up()
    sw.wait_for(lambda a: a.get("manager", {}).get("status") in ("running", "waiting"), 300, "root up")
    r["up"] = time.perf_counter() - t
    agents = sw.wait_for(lambda a: _live(a, "w") >= BURST, 300, f"{BURST} agents")
    events = sw.log_events("supervisor")
    asked = {e["agent"]: e["t"] for e in events if e.get("event") == "spawn_requested"}
    ready = {e["agent"]: e["t"] for e in events if e.get("event") == "agent_registered"}
    burst = [f"w{i}" for i in range(BURST)]
    r["start"] = [ready[a] - asked[a] for a in burst]
    r["burst"] = max(ready[a] for a in burst) - min(asked[a] for a in burst)
    time.sleep(2.0)  # idle agents settle before their memory is read
    r["uss"] = _uss([agents[a]["pid"] for a in burst])
    r["fixed"] = _fixed(int((sw.run_dir / "supervisor.pid").read_text()))
    r["hung_pid"] = agents["w0"]["pid"]
    return r


def _bus(sw: BenchSwarm, kind: str, pings: int) -> dict[int, list[float]]:
    """Round trips through the swarm's broker to an echo peer, from here or from a task on node 1."""
    from orchestrator.supervisor.registry import Registry

    reg = Registry(sw.run_dir / "registry.db", readonly=True)
    endpoint, facts = reg.meta("endpoint"), reg.meta("backend")
    reg.close()
    echo = _echo(endpoint, str(sw.run_dir))
    try:
        if kind == "ray":
            return _ray_client(facts, endpoint, str(sw.run_dir), pings)
        return _client_process(endpoint, str(sw.run_dir), pings)
    finally:
        os.killpg(echo.pid, signal.SIGKILL)
        echo.wait()


def _kills(sw: BenchSwarm, hung: int) -> dict[str, Any]:
    """Kill a SIGSTOPped agent (swarm kill), then hard-kill a 50-agent subtree; time until pids are gone."""
    from orchestrator import runctl
    from orchestrator.runctl import gone
    from swarm_core import messages as m

    r: dict[str, Any] = {}
    os.kill(hung, signal.SIGSTOP)
    t = time.perf_counter()
    runctl.ask(sw.run_dir, m.DeleteAgent("w0", reason="bench"))
    while not gone(hung):
        time.sleep(0.002)
    r["hung"] = time.perf_counter() - t
    runctl.ask(sw.run_dir, m.OperatorMessage("manager", "start the hub now"))
    agents = sw.wait_for(lambda a: _live(a, "leaf") >= LEAVES and _live(a, "hub") == 1, 300, "the subtree")
    subtree = ["hub", *(f"leaf{i}" for i in range(LEAVES))]
    pids = [agents[k]["pid"] for k in subtree]
    r["nodes"] = sorted({agents[k]["node"] or "-" for k in subtree})
    t = time.perf_counter()
    runctl.ask(sw.run_dir, m.DeleteAgent("hub", reason="bench", hard=True))
    while not all(gone(p) for p in pids):
        time.sleep(0.001)
    r["kill50"] = time.perf_counter() - t
    return r


def run_backend(kind: str, pings: int) -> dict[str, Any]:
    """Every figure of one backend, from one swarm (brought down at the end, timed)."""
    extra: dict[str, Any] = {"bus": {"transport": "tcp", "host": "127.0.0.1", "port": 0}}
    if kind == "ray":
        extra["backend"] = {"kind": "ray", "address": "local", "local_nodes": 2}
    sw = BenchSwarm(_cassette(), max_agents=BURST + LEAVES + 8, max_children=LEAVES + 1,
                    limits={"bus_messages_per_second": 10_000}, extra=extra)
    r: dict[str, Any] = {}
    try:
        r.update(_starts(sw))
        r["bus"] = _bus(sw, kind, pings)
        r.update(_kills(sw, r["hung_pid"]))
    finally:
        t = time.perf_counter()
        sw.close()
        r["down"] = time.perf_counter() - t
    return r


# ------------------------------------------------------------ report


def _ms(x: float) -> str:
    return f"{x * 1e3:8.1f} ms"


def _us(xs: list[float], p: float) -> str:
    return f"{percentile(xs, p) * 1e6:6.0f}"


def report(local: dict[str, Any], ray: dict[str, Any], ipc: dict[int, list[float]]) -> None:
    print("backend: local and ray side by side (ray: a private cluster of 2 simulated nodes on this machine)")
    print(f"{'figure':<44}{'local':>14}{'ray':>14}   ratio")
    rows = [("swarm up → root registered", local["up"], ray["up"]),
            ("start_agent → registered, p50", percentile(local["start"], 50), percentile(ray["start"], 50)),
            (f"burst of {BURST} start_agent, first → last", local["burst"], ray["burst"]),
            ("kill of a hung (SIGSTOPped) agent", local["hung"], ray["hung"]),
            (f"hard kill of a {LEAVES + 1}-agent subtree", local["kill50"], ray["kill50"]),
            ("swarm down", local["down"], ray["down"])]
    for name, a, b in rows:
        print(f"{name:<44}{_ms(a):>14}{_ms(b):>14}   {b / a:5.2f}×")
    for size in SIZES:
        lo, ra, ip = local["bus"][size], ray["bus"][size], ipc[size]
        print(f"{f'bus round trip {size} B, p50 / p99 (µs)':<44}{_us(lo, 50) + ' /' + _us(lo, 99):>14}"
              f"{_us(ra, 50) + ' /' + _us(ra, 99):>14}   {percentile(ra, 50) / percentile(lo, 50):5.2f}×"
              f"   (ipc, local: {_us(ip, 50).strip()} / {_us(ip, 99).strip()})")
    lu, ru = percentile(local["uss"], 50), percentile(ray["uss"], 50)
    print(f"{'idle agent USS, p50 (MiB)':<44}{lu:>14.1f}{ru:>14.1f}   {ru / lu:5.2f}×")
    for key, label in (("zygotes", "zygote(s)"), ("hosts", "host actors"), ("ray", "Ray's own processes"),
                       ("supervisor", "the supervisor")):
        print(f"{'fixed USS: ' + label + ' (MiB)':<44}{local['fixed'][key]:>14.1f}{ray['fixed'][key]:>14.1f}")
    print(f"  ray subtree spread over nodes: {', '.join(ray['nodes'])}")
    start = percentile(ray["start"], 50) / percentile(local["start"], 50)
    verdicts = [("ray start p50 ≤ 2× local", start <= 2.0, f"{start:.2f}×"),
                ("kill of 50 ≤ 0.2 s (local)", local["kill50"] <= 0.2, f"{local['kill50']:.3f} s"),
                ("kill of 50 ≤ 0.2 s (ray)", ray["kill50"] <= 0.2, f"{ray['kill50']:.3f} s"),
                ("per-agent USS ≤ 1.2× local", ru / lu <= 1.2, f"{ru / lu:.2f}×")]
    for name, ok, value in verdicts:
        print(f"  target {name}: {'met' if ok else 'MISSED'} ({value})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pings", type=int, default=2000, help="round trips per body size and client")
    args = ap.parse_args()
    local = run_backend("local", args.pings)
    ray = run_backend("ray", args.pings)
    report(local, ray, _ipc_round_trips(args.pings))


if __name__ == "__main__":
    main()
