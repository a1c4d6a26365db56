"""Dashboard event latency: an agent's status change → seen by a connected SSE client, p50.

A replay swarm with one idle agent; the operator freezes and thaws it N
times through runctl (the CLI's path). For each change the bench notes when
the request was acknowledged, when a reader polling the registry file every
millisecond saw the new status (the raw baseline: nothing can see it sooner
from outside the supervisor), and when a client of ``GET /api/events`` on a
real dashboard server got the ``agent`` event. Prints p50/p90 of each,
measured from the request, and the ratio SSE / raw.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
import time

from _swarmkit import WAIT, BenchSwarm, cmd, percentile

N = 40


class NullLog:
    def __getattr__(self, name):
        return lambda *a, **k: None


class SseClient:
    """Reads the dashboard's stream on a thread; ``seen(status)`` is when w first showed it."""

    def __init__(self, server) -> None:
        host, port = server.server_address[:2]
        self.conn = http.client.HTTPConnection(host, port, timeout=30)
        self.conn.request("GET", "/api/events", headers={"Authorization": f"Bearer {server.token}"})
        self.resp = self.conn.getresponse()
        self.events: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        kind = None
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "agent":
                    data = json.loads(line[6:])
                    if data["id"] == "w":
                        with self.cond:
                            self.events.append((time.perf_counter(), data["status"]))
                            self.cond.notify_all()
        except (OSError, ValueError):
            pass

    def wait(self, status: str, since: float, timeout: float = 10.0) -> float:
        deadline = time.perf_counter() + timeout
        with self.cond:
            while True:
                for t, s in self.events:
                    if t >= since and s == status:
                        return t
                if not self.cond.wait(max(0.0, deadline - time.perf_counter())):
                    raise SystemExit(f"the stream did not show w {status} within {timeout}s")


def poll_registry(path, status: str, timeout: float = 10.0) -> float:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if conn.execute("SELECT status FROM agents WHERE id='w'").fetchone()[0] == status:
                return time.perf_counter()
            time.sleep(0.001)
    finally:
        conn.close()
    raise SystemExit(f"the registry did not show w {status}")


def main() -> None:
    from orchestrator import runctl
    from orchestrator.dashboard.server import DashboardServer, serve_in_thread

    sw = BenchSwarm({"manager": [cmd("start_agent", name="w", task="idle", role="worker"), cmd("do_nothing")],
                     "w": WAIT})
    acks, raws, sses = [], [], []
    try:
        sw.up()
        sw.wait_for(lambda a: a.get("w", {}).get("status") in ("running", "waiting"), 60, "w up")
        server = DashboardServer(sw.run_dir, "127.0.0.1", 0, NullLog())
        serve_in_thread(server)
        client = SseClient(server)
        try:
            for i in range(N):
                frozen = i % 2 == 0
                status = "frozen" if frozen else "running"
                result: dict[str, float] = {}
                raw = threading.Thread(target=lambda: result.update(raw=poll_registry(
                    sw.run_dir / "registry.db", status)))
                t0 = time.perf_counter()
                raw.start()
                runctl.freeze_agent(sw.run_dir, "w", frozen)
                acks.append(time.perf_counter() - t0)
                sses.append(client.wait(status, t0) - t0)
                raw.join()
                raws.append(result["raw"] - t0)
        finally:
            server.shutdown()
            server.close()
    finally:
        sw.close()
    print(f"dashboard event latency: {N} status changes (freeze/thaw via runctl), times from the request")
    for label, xs in (("request acknowledged", acks), ("registry poll, 1 ms (raw)", raws),
                      ("SSE client got the event", sses)):
        print(f"  {label:27s} p50 {percentile(xs, 50) * 1e3:6.1f} ms  p90 {percentile(xs, 90) * 1e3:6.1f} ms")
    print(f"  ratio p50 SSE/raw = {percentile(sses, 50) / percentile(raws, 50):.2f}")


if __name__ == "__main__":
    main()
