"""Bus round trip and throughput: our Broker + BusClient against a raw pyzmq ROUTER forwarder.

Three processes per stack, as in a swarm: this process is the client, a
broker and a worker run as subprocesses. The stacks run side by side on
the same machine, so load from elsewhere hits them alike:

* raw: client DEALER -> ROUTER forwarder -> worker DEALER -> back, the
  idiomatic pyzmq loop (blocking recv_multipart/send_multipart), no
  security; the body is msgpack ``[seq, payload]``, unpacked and packed
  again by the worker.
* ours, once per authentication mechanism (``--mechanisms``, default
  ``plain,curve``: what ipc:// buses could use): ``BusClient.request(
  "worker", Ping(payload))`` through ``Broker`` with its ZAP handler
  (every peer presents a credential; the broker reads every message's
  User-Id and checks it against the header's src, checks the header,
  keeps liveness, sends non-blocking with ROUTER_MANDATORY); the worker's
  BusClient answers Pong(payload). CURVE also encrypts every message.

Sequential round trips alternate the stacks request by request; throughput
runs (256 in flight) alternate in slices. Printed per body size (100 B,
4 KiB): p50/p99 round trip (µs), round trips/s, and ours/raw per
mechanism. Targets: p50 <= 1.3x raw, throughput >= 0.7x raw. Exit status 0
either way (shared machines drift); the verdict line says whether the
targets were met.

    .venv/bin/python bench/bus.py [--rounds 3] [--seq 2000] [--pipelined 20000] [--mechanisms plain,curve]
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
# run as a script, this file's directory comes first on sys.path and its name
# would shadow the ``bus`` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
sys.path.append(str(Path(__file__).resolve().parent))  # last: the bench helpers (_direct), never before bus

SIZES = (100, 4096)
IN_FLIGHT = 256
SLICES = 5  # throughput: each round alternates raw/ours runs this many times


# ------------------------------------------------------------ server roles

def raw_broker(endpoint: str) -> None:
    """The baseline: the smallest ROUTER forwarder, [src, dst, body] -> [dst, src, body]."""
    import zmq

    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(endpoint)
    while True:
        src, dst, body = router.recv_multipart()
        router.send_multipart([dst, src, body])


def raw_worker(endpoint: str) -> None:
    """Baseline worker: unpack the msgpack body, pack the answer, send it back."""
    import msgpack
    import zmq

    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IDENTITY, b"worker")
    sock.connect(endpoint)
    while True:
        src, body = sock.recv_multipart()
        seq, payload = msgpack.unpackb(body)
        sock.send_multipart([src, msgpack.packb([seq, payload])])


def our_worker(endpoint: str, credential: str) -> None:
    """Our worker: a BusClient answering Ping with Pong."""
    from bus import messages as m
    from bus.client import BusClient
    from bus.credentials import read_credential

    client = BusClient(endpoint, "worker", credential=read_credential(credential)).connect()
    client.handle(m.Ping, lambda msg: m.Pong(msg.body.payload))
    while True:
        client.poll(1.0)


# ------------------------------------------------------------ raw client

class RawClient:
    def __init__(self, endpoint: str) -> None:
        import msgpack
        import zmq

        self.zmq = zmq
        self.packb, self.unpackb = msgpack.packb, msgpack.unpackb
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.IDENTITY, b"client")
        self.sock.connect(endpoint)
        self.seq = 0

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            self.sock.send_multipart([b"worker", self.packb([-1, b""])])
            if self.sock.poll(200):
                self.sock.recv_multipart()
                while self.sock.poll(50):  # answers to earlier probes
                    self.sock.recv_multipart()
                return
        raise SystemExit("raw stack did not come up")

    def round_trip(self, payload: bytes) -> None:
        self.seq += 1
        self.sock.send_multipart([b"worker", self.packb([self.seq, payload])])
        _, body = self.sock.recv_multipart()
        seq, _ = self.unpackb(body)
        if seq != self.seq:
            raise SystemExit(f"raw reply out of order: {seq} != {self.seq}")

    def pipelined(self, payload: bytes, total: int) -> None:
        send, recv, packb, unpackb = self.sock.send_multipart, self.sock.recv_multipart, self.packb, self.unpackb
        sent = done = 0
        while sent < min(IN_FLIGHT, total):
            sent += 1
            send([b"worker", packb([sent, payload])])
        while done < total:
            _, body = recv()
            unpackb(body)
            done += 1
            if sent < total:
                sent += 1
                send([b"worker", packb([sent, payload])])

    def close(self) -> None:
        self.sock.close(linger=0)


class OurClient:
    def __init__(self, endpoint: str, credential: Any) -> None:
        from bus import messages as m
        from bus.client import BusClient

        self.m = m
        self.client = BusClient(endpoint, "client", credential=credential).connect()

    def wait_ready(self, deadline: float) -> None:
        from swarm_core.errors import SwarmError

        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                self.client.request("worker", self.m.Ping(b""), 0.2)
                return
            except SwarmError as exc:
                last = exc
                # not yet there: unknown_destination / deadline while processes start
                self.client.poll(0.05)
        raise SystemExit(f"our stack did not come up: {last!r}")

    def round_trip(self, payload: bytes) -> None:
        self.client.request("worker", self.m.Ping(payload), 5.0)

    def pipelined(self, payload: bytes, total: int) -> None:
        client, body = self.client, self.m.Ping(payload)
        state = {"sent": 0, "done": 0, "errors": 0}

        def on_reply(msg) -> None:
            state["done"] += 1
            if msg.header.type != "pong":
                state["errors"] += 1
            if state["sent"] < total:
                state["sent"] += 1
                client.send_request("worker", body, 30.0, on_reply)

        while state["sent"] < min(IN_FLIGHT, total):
            state["sent"] += 1
            client.send_request("worker", body, 30.0, on_reply)
        deadline = time.monotonic() + 60
        while state["done"] < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"pipelined run stalled at {state['done']}/{total}")
            client.poll(0.01)
        if state["errors"]:
            raise SystemExit(f"{state['errors']} error replies in the pipelined run")

    def close(self) -> None:
        self.client.close()


# ------------------------------------------------------------ measurement

def measure_seq(clients: dict, payload: bytes, n: int, out: dict) -> None:
    """``n`` sequential round trips per stack, alternating stacks request by request."""
    clock = time.perf_counter_ns
    pairs = [(c.round_trip, out[k]) for k, c in clients.items()]
    for _ in range(n):
        for round_trip, samples in pairs:
            t0 = clock()
            round_trip(payload)
            samples.append((clock() - t0) / 1000.0)


def measure_tput(client, payload: bytes, total: int) -> float:
    t0 = time.perf_counter()
    client.pipelined(payload, total)
    return total / (time.perf_counter() - t0)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def spawn(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, *args], cwd=str(ROOT), env=env,
                            stdout=subprocess.DEVNULL, stderr=None,
                            start_new_session=True)


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seq", type=int, default=2000, help="sequential round trips per round and size")
    ap.add_argument("--pipelined", type=int, default=20000, help="round trips per throughput run")
    ap.add_argument("--mechanisms", default="plain,curve", help="our stacks' authentication mechanisms")
    return ap.parse_args()


def _measure_all(clients: dict[str, Any], args: argparse.Namespace) -> tuple[dict, dict]:
    """Sequential round trips and pipelined throughput of every stack, sizes and rounds interleaved."""
    seq = {s: {k: [] for k in clients} for s in SIZES}
    tput = {(k, s): [] for k in clients for s in SIZES}
    for size in SIZES:
        payload = os.urandom(size)
        measure_seq(clients, payload, 200, {k: [] for k in clients})  # warm up
        for c in clients.values():
            measure_tput(c, payload, 2000)
        for _ in range(args.rounds):
            measure_seq(clients, payload, args.seq, seq[size])
            for _ in range(SLICES):
                for kind, c in clients.items():
                    tput[kind, size].append(measure_tput(c, payload, args.pipelined // SLICES))
    return seq, tput


def _report(clients: dict[str, Any], seq: dict, tput: dict, args: argparse.Namespace, t_start: float) -> None:
    ok = True
    print(f"bus benchmark: 3 processes per stack, {os.cpu_count()} cpus, {args.rounds} rounds, "
          f"{args.seq} sequential + {args.pipelined} pipelined ({IN_FLIGHT} in flight) per round")
    print(f"{'body':>6} {'stack':>6} {'p50 us':>8} {'p99 us':>8} {'rt/s':>9}")
    for size in SIZES:
        row = {}
        for kind in clients:
            p50, p99 = pct(seq[size][kind], 0.5), pct(seq[size][kind], 0.99)
            rate = statistics.median(tput[kind, size])
            row[kind] = (p50, p99, rate)
            print(f"{size:>6} {kind:>6} {p50:>8.1f} {p99:>8.1f} {rate:>9.0f}")
        for kind in clients:
            if kind == "raw":
                continue
            r50, r99 = row[kind][0] / row["raw"][0], row[kind][1] / row["raw"][1]
            rt = row[kind][2] / row["raw"][2]
            good = r50 <= 1.3 and rt >= 0.7
            ok &= good
            print(f"{size:>6} {kind:>6} / raw  p50 {r50:.2f}x (target <= 1.3)  p99 {r99:.2f}x  "
                  f"throughput {rt:.2f}x (target >= 0.7)  {'OK' if good else 'MISSED'}")
    print(f"verdict: {'all targets met' if ok else 'target missed'} ({time.monotonic() - t_start:.1f} s)")


def _cleanup(clients: dict[str, Any], procs: list[subprocess.Popen], tmp: Path) -> None:
    for c in clients.values():
        c.close()
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    shutil.rmtree(tmp, ignore_errors=True)


def _our_stack(tmp: Path, mechanism: str, me: str) -> tuple[str, list[subprocess.Popen], Any]:
    """A broker admitting ``mechanism``'s credentials, and a worker: (endpoint, processes, client's key)."""
    from _direct import BenchKeys

    keys = BenchKeys(tmp, mechanism, client="agent", worker="agent")
    endpoint, pub = f"ipc://{tmp}/bus-{mechanism}.ipc", f"ipc://{tmp}/pub-{mechanism}.ipc"
    procs = [spawn("-m", "bus", "--endpoint", endpoint, "--pub", pub, "--keyring", str(keys.store)),
             spawn(me, "our-worker", endpoint, str(keys.files["worker"]))]
    return endpoint, procs, keys.credential("client")


def main() -> int:
    args = _parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="swarm-bench-"))
    os.chmod(tmp, 0o700)
    raw_ep = f"ipc://{tmp}/raw.ipc"
    me = str(Path(__file__).resolve())
    procs = [spawn(me, "raw-broker", raw_ep), spawn(me, "raw-worker", raw_ep)]
    clients: dict[str, Any] = {}
    t_start = time.monotonic()
    try:
        clients["raw"] = RawClient(raw_ep)
        for mechanism in args.mechanisms.split(","):
            endpoint, more, credential = _our_stack(tmp, mechanism, me)
            procs += more
            clients[mechanism] = OurClient(endpoint, credential)
        for c in clients.values():
            c.wait_ready(time.monotonic() + 20)
        seq, tput = _measure_all(clients, args)
        _report(clients, seq, tput, args, t_start)
        return 0
    finally:
        _cleanup(clients, procs, tmp)


if __name__ == "__main__":
    roles = {"raw-broker": raw_broker, "raw-worker": raw_worker, "our-worker": our_worker}
    if len(sys.argv) >= 3 and sys.argv[1] in roles:
        roles[sys.argv[1]](*sys.argv[2:])
    else:
        raise SystemExit(main())
