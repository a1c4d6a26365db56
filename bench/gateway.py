"""LLM gateway overhead: a completion through the bus and the gateway vs the same provider called directly.

Processes as in a swarm: a broker (``python -m bus``), the gateway
(``python -m orchestrator.gateway``), a peer named ``supervisor`` that also
answers Ping (it receives the gateway's Usage events and gives the bus
baseline), and this process as the agent: the *broker* path. Beside them,
the *direct* path: the same ``GatewayService`` serving its own
authenticated ROUTER (``bench/_direct.py``: same ZAP handler and
credentials, same per-message identity check, same authorization table, no
broker hop; its usage reports still go to the supervisor through the
broker). Every peer presents a credential. Calls alternate: the provider
called in this process, then the same request as ``Complete`` through each
path, so all see the same machine state. The figure is the median of the
paired differences (via a path − provider), with each path's p50/p99.

Providers:
* replay: a repeating cassette answer (a typical ~300-byte JSON command);
  the request carries a real seed-style prompt (~3 KB) and its context.
* openai: ``python -m llama_cpp.server`` with the Gemma weights on
  127.0.0.1, temperature 0; by default a short prompt, ``max_tokens`` 1 and
  no response_format (one server call is then ~7 ms ± 1.5 ms; a full step
  takes ~0.5 s ± 100 ms, a spread that would swamp a 1 ms figure; the
  transport cost of the full prompt is what the replay row measures).
  ``--openai-prompt seed`` uses the full step instead. Skipped when
  llama-cpp-python is not installed.

Also printed: what the gateway's accounts add to an ordinary call (no budget,
no rate), measured in this process on the same prompt: the worst case, the
budget check, the reservation and the settlement, with the SQLite ledger (two
commits) and without one; the target is ≤ 0.1 ms added.

And the bare bus round trip through the same broker (Ping/Pong
with the supervisor peer), i.e. the share of the overhead that is transport
(two hops each way), back to back and again after the same quiet a model
call leaves (every process idle for that long: waking them costs more on a
VM, and that is part of any bus path, not of the gateway).
Target: ≤ 1 ms added at p50. Exit status 0 either way; the verdict is printed.

    .venv/bin/python bench/gateway.py [--replay-calls 2000] [--openai-calls 40] [--no-openai]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# run as a script, this file's directory comes first on sys.path and bench/bus.py
# would shadow the ``bus`` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
sys.path.append(str(Path(__file__).resolve().parent))  # last: the bench helpers (_direct), never before bus

TARGET_MS = 1.0
ANSWER = {"thoughts": {"text": "The file is written, so I finish.", "reasoning": "The haiku is in haiku.txt.",
                       "plan": "- finish", "criticism": "none", "speak": "Done."},
          "command": {"name": "task_complete", "args": {"reason": "The haiku is in haiku.txt"}}}
COMMANDS = ["write_to_file", "read_file", "task_complete"]
SHORT_PROMPT = "You are a writer. Answer in JSON."


PATHS = ("broker", "direct")


def supervisor_peer(endpoint: str, credential: str) -> None:
    """The ``supervisor`` stand-in: swallows Usage events, answers Ping with Pong."""
    from bus import messages as bm
    from bus.client import BusClient
    from bus.credentials import read_credential
    from swarm_core import messages as m

    client = BusClient(endpoint, "supervisor", credential=read_credential(credential)).connect()
    client.handle(bm.Ping, lambda msg: bm.Pong(msg.body.payload))
    client.handle(m.Usage, lambda msg: None)
    while True:
        client.poll(1.0)


def direct_gateway(endpoint: str, bus: str, config: str, store: str, credential: str) -> None:
    """The direct path's process: the real GatewayService on its own authenticated ROUTER (until SIGTERM)."""
    import structlog
    from _direct import DirectServer, stored_keys

    from bus.client import BusClient
    from bus.credentials import read_credential
    from orchestrator.config import effective_llm, load_config
    from orchestrator.gateway.providers import make_provider
    from orchestrator.gateway.service import GatewayService

    log = structlog.get_logger("bench.direct_gateway")
    cfg = load_config(config)
    llm = effective_llm(cfg)
    upstream = BusClient(bus, "gateway-direct", credential=read_credential(credential)).connect()
    server = DirectServer(endpoint, "gateway", stored_keys(store), log, upstream=upstream)
    service = GatewayService(server, make_provider(llm, log), cfg.quotas, llm, log=log, safety=cfg.safety)
    service.attach()
    service.start()
    while True:
        server.poll(0.05)
        upstream.poll(0)
        service.tick()


def _spawn(*argv: str, log: Path) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        out.close()


def _stop(procs: list[subprocess.Popen]) -> None:
    from tests.gateway_harness import stop_process

    for p in procs:
        stop_process(p, grace=5)


def _request():
    """A realistic step: the seed-style prompt and context of a writer with one step done."""
    from agents.prompt import PromptInput, build_prompt

    prompt, context = build_prompt(PromptInput(
        name="writer", role="a writer. You write what you are asked into a file, then finish.",
        task="Write a haiku about the sea into haiku.txt", goals=["Write the haiku", "Finish"],
        commands=COMMANDS,
        history=[{"command": "write_to_file", "args": {"file": "haiku.txt", "text": "Waves..."},
                  "result": "Wrote 60 bytes to haiku.txt."}]))
    return prompt, context


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def measure(provider, clients: dict[str, Any], prompt: str, context: dict, n: int, max_tokens: int,
            warmup: int, commands: list[str] = COMMANDS) -> dict[str, list[float]]:
    """Alternate a provider call in this process and the same request through each path; times in ms."""
    from orchestrator.gateway.providers.base import Request
    from swarm_core import messages as m

    req = Request("writer", prompt, tuple(commands), max_tokens, (), "writer", context)
    body = m.Complete("writer", prompt, list(commands), max_tokens, [], "writer", context)
    times: dict[str, list[float]] = {"provider": [], **{path: [] for path in clients}}
    for i in range(warmup + n):
        t0 = time.perf_counter()
        a = provider.complete(req)
        took = {"provider": time.perf_counter() - t0}
        for path, client in clients.items():
            t1 = time.perf_counter()
            b = client.request("gateway", body, 600)
            took[path] = time.perf_counter() - t1
            if provider.name == "replay" and a.text != b.text:
                raise SystemExit(f"the {path} path answered differently:\n{a.text!r}\n{b.text!r}")
        if i >= warmup:
            for name, seconds in took.items():
                times[name].append(seconds * 1e3)
    return times


def bus_round_trip(client, n: int, idle_s: float = 0.0) -> list[float]:
    """Ping/Pong with the supervisor peer; ``idle_s`` of quiet before each (as during a model call)."""
    from bus import messages as bm

    out = []
    payload = b"x" * 3000
    for i in range(n + 50):
        if idle_s:
            time.sleep(idle_s)  # the quiet a model call leaves: every process goes idle
        t0 = time.perf_counter()
        client.request("supervisor", bm.Ping(payload), 10)
        if i >= 50:
            out.append((time.perf_counter() - t0) * 1e3)
    return out


def start_gateways(tmp: Path, name: str, endpoint: str, llm: dict, keys: Any) -> list[subprocess.Popen]:
    """The gateway behind the broker and the direct one, on the same config."""
    import yaml

    run = tmp / name
    run.mkdir()
    cfg = run / "swarm.yaml"
    cfg.write_text(yaml.safe_dump({"name": "bench", "goal": "bench", "root": "writer", "llm": llm,
                                   "agents": {"writer": {"role": "w", "commands": COMMANDS}}}))
    return [_spawn("-m", "orchestrator.gateway", "--run-dir", str(run), "--config", str(cfg),
                   "--endpoint", endpoint, "--credential", str(keys.files["gateway"]),
                   log=run / "gateway.out"),
            _spawn(__file__, "direct-gateway", direct_endpoint(tmp), endpoint, str(cfg), str(keys.store),
                   str(keys.files["gateway-direct"]), log=run / "direct.out")]


def direct_endpoint(tmp: Path) -> str:
    return f"ipc://{tmp}/gateway-direct.ipc"


def wait_gateways(clients: dict[str, Any], procs: list[subprocess.Popen], timeout: float = 60.0) -> None:
    for client, proc in zip(clients.values(), procs):
        wait_gateway(client, proc, timeout)


def wait_gateway(client, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    from bus import messages as bm
    from swarm_core.errors import SwarmError, UnknownDestination

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"the gateway exited {proc.returncode}")
        try:
            client.request("gateway", bm.Ping(b""), 1.0)
        except UnknownDestination:
            client.poll(0.05)
            continue
        except SwarmError:
            return  # it answered (it does not handle Ping): it is up
        return
    raise SystemExit("the gateway did not come up")


def accounting_cost(tmp: Path, calls: int) -> tuple[list[float], list[float]]:
    """Per-call time (µs) of the gateway's accounts for an ordinary call: without a ledger, with one."""
    from orchestrator.config import LLM, Quotas
    from orchestrator.gateway.accounting import Accounting
    from orchestrator.gateway.ledger import Answer, Ledger
    from orchestrator.gateway.providers.base import Request
    from orchestrator.gateway.providers.replay import Answer as Reply
    from orchestrator.gateway.providers.replay import ReplayProvider, Track
    from orchestrator.gateway.quotas import QuotaBook

    prompt, _ = _request()
    provider = ReplayProvider({"writer": Track((Reply(json.dumps(ANSWER)),), True)})
    req = Request("writer", prompt, tuple(COMMANDS), 256)
    answer = Answer("writer", json.dumps(ANSWER), len(prompt) // 4, 60, "replay", 0.0)
    out = []
    for ledger in (None, Ledger(tmp / "bench-ledger.db")):
        accounts, rates = Accounting(Quotas(), LLM(provider="replay", cassette="x"), provider, ledger=ledger,
                                     wall=time.time), QuotaBook(Quotas())
        times = []
        for i in range(calls + 200):
            t0 = time.perf_counter()
            worst = accounts.worst(req)
            accounts.check("writer", worst)
            accounts.admitted(f"c{i}", "writer", f"m{i}", worst, rates.state("writer"))
            accounts.settled(f"c{i}", answer, rates.state("writer"))
            if i >= 200:
                times.append((time.perf_counter() - t0) * 1e6)
            if i % 100 == 99:
                time.sleep(0.02)  # calls come at a pace: the ledger's syncer runs between them, as in a swarm
        accounts.ledger.close()
        out.append(times)
    return out[0], out[1]


def row(name: str, xs: list[float]) -> str:
    return f"{name:<28} {statistics.median(xs):>9.3f} {_pct(xs, 0.99):>9.3f}"


class _Quiet:
    def __getattr__(self, name):
        return lambda *a, **k: None


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replay-calls", type=int, default=2000)
    ap.add_argument("--openai-calls", type=int, default=300)
    ap.add_argument("--no-openai", action="store_true", help="skip the llama.cpp server part")
    ap.add_argument("--server-threads", type=int, default=1,
                    help="llama.cpp server threads (default 1: its spinning threads would otherwise "
                         "hold both cores of a 2-core machine while the gateway and broker wait)")
    ap.add_argument("--openai-prompt", choices=("short", "seed"), default="short",
                    help="short (default): the server's own run-to-run spread stays small next to "
                         "1 ms; seed: the full step prompt")
    return ap.parse_args()


def _replay_part(tmp: Path, endpoint: str, clients: dict[str, Any], keys: Any, procs: list,
                 args: argparse.Namespace, results: list) -> list[float]:
    """The replay provider in this process vs through each path; returns the bus round trips after it."""
    import yaml

    from orchestrator.gateway.providers.replay import ReplayProvider

    prompt, context = _request()
    cassette = tmp / "cassette.yaml"
    cassette.write_text(yaml.safe_dump({"writer": {"responses": [ANSWER], "repeat": True}}))
    gws = start_gateways(tmp, "replay", endpoint, {"provider": "replay", "cassette": str(cassette)}, keys)
    procs += gws
    wait_gateways(clients, gws)
    results.append(("replay", measure(ReplayProvider.from_file(cassette), clients, prompt, context,
                                      args.replay_calls, 256, warmup=200)))
    ping = bus_round_trip(clients["broker"], args.replay_calls)
    _stop(gws)
    return ping


def _openai_part(tmp: Path, endpoint: str, clients: dict[str, Any], keys: Any, procs: list,
                 args: argparse.Namespace, results: list) -> tuple[float, list[float]]:
    """The openai provider against a local llama.cpp server, called here vs through each path."""
    from orchestrator.config import LLM
    from orchestrator.gateway.model_files import gemma_path
    from orchestrator.gateway.providers.openai import OpenAIProvider
    from tests.gateway_harness import start_llama_server

    server, url = start_llama_server(gemma_path(), tmp / "llama.out", threads=args.server_threads)
    procs.append(server)
    llm = {"provider": "openai", "base_url": url, "temperature": 0.0, "max_retries": 0, "timeout": 120}
    gws = start_gateways(tmp, "openai", endpoint, llm, keys)
    procs += gws
    wait_gateways(clients, gws)
    provider = OpenAIProvider(LLM(**llm), _Quiet(), env={})
    if args.openai_prompt == "seed":
        prompt, context = _request()
        times = measure(provider, clients, prompt, context, args.openai_calls, 8, warmup=3)
    else:
        times = measure(provider, clients, SHORT_PROMPT, {}, args.openai_calls, 1, warmup=5, commands=[])
    results.append((f"openai ({args.openai_prompt} prompt)", times))
    provider.close()
    idle = statistics.median(times["provider"]) / 1e3
    return idle, bus_round_trip(clients["broker"], min(args.openai_calls, 300), idle)


def _report_accounts(null: list[float], ledger: list[float]) -> None:
    added = (statistics.median(ledger)) / 1e3
    print(f"{'accounts, no ledger (us)':<28} {statistics.median(null):>9.1f} {_pct(null, 0.99):>9.1f}")
    print(f"{'accounts + ledger (us)':<28} {statistics.median(ledger):>9.1f} {_pct(ledger, 0.99):>9.1f}"
          f"   added to an ordinary call p50 {added:.3f} ms: target <= 0.1 ms: "
          f"{'met' if added <= 0.1 else 'MISSED'}")


def _report(results: list, ping: list[float], ping_idle: tuple[float, list[float]] | None) -> None:
    prompt, _ = _request()
    print(f"gateway benchmark: {os.cpu_count()} cpus; agent, broker, gateway, direct gateway, supervisor "
          f"peer (and llama.cpp server) as separate processes; prompt {len(prompt)} chars")
    print(f"{'path':<28} {'p50 ms':>9} {'p99 ms':>9}")
    ok = {path: True for path in PATHS}
    for name, times in results:
        base = times["provider"]
        print(row(f"{name}: provider here", base))
        for path in PATHS:
            added = statistics.median([b - a for a, b in zip(base, times[path])])
            print(row(f"{name}: via {path}", times[path]))
            ratio = statistics.median(times[path]) / statistics.median(base)
            met = added <= TARGET_MS
            ok[path] = ok[path] and met
            print(f"{'  added (median of pairs)':<28} {added:>9.3f}           {path}/provider p50 "
                  f"{ratio:.2f}x  target <= {TARGET_MS:g} ms: {'met' if met else 'MISSED'}  (n={len(base)})")
    print(row("bus round trip (Ping 3 KB)", ping))
    if ping_idle is not None:
        print(row(f"  same after {ping_idle[0] * 1e3:.0f} ms idle", ping_idle[1]))
    for path in PATHS:
        print(f"verdict, {path} path: {'target met' if ok[path] else 'target missed'} "
              "(figures drift on shared machines)")


def main() -> int:
    args = _parse_args()
    from _direct import BenchKeys

    from bus.client import BusClient
    from bus.sockets import ipc_endpoint
    from tests.gateway_harness import llama_available

    tmp = Path(tempfile.mkdtemp(prefix="swarm-bench-gw-"))
    endpoint = ipc_endpoint(tmp, "bus")
    keys = BenchKeys(tmp, "plain", writer="agent", gateway="gateway", supervisor="supervisor",
                     **{"gateway-direct": "agent"})
    procs = [_spawn("-m", "bus", "--endpoint", endpoint, "--pub", ipc_endpoint(tmp, "pub"),
                    "--keyring", str(keys.store), log=tmp / "broker.out"),
             _spawn(__file__, "supervisor-peer", endpoint, str(keys.files["supervisor"]),
                    log=tmp / "supervisor.out")]
    writer = keys.credential("writer")
    clients = {"broker": BusClient(endpoint, "writer", credential=writer).connect(),
               "direct": BusClient(direct_endpoint(tmp), "writer", credential=writer).connect()}
    results: list[tuple[str, dict[str, list[float]]]] = []
    ping_idle: tuple[float, list[float]] | None = None
    try:
        accounts = accounting_cost(tmp, args.replay_calls)
        ping = _replay_part(tmp, endpoint, clients, keys, procs, args, results)
        if not args.no_openai and llama_available():
            ping_idle = _openai_part(tmp, endpoint, clients, keys, procs, args, results)
        elif not args.no_openai:
            print("openai part skipped: llama-cpp-python is not installed (pip install -e '.[local]')")
    finally:
        for client in clients.values():
            client.close()
        _stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    _report(results, ping, ping_idle)
    _report_accounts(*accounts)
    return 0


if __name__ == "__main__":
    roles = {"supervisor-peer": supervisor_peer, "direct-gateway": direct_gateway}
    if len(sys.argv) >= 3 and sys.argv[1] in roles:
        roles[sys.argv[1]](*sys.argv[2:])
    else:
        sys.exit(main())
