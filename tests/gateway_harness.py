"""Helpers for gateway tests: a broker thread, the gateway process, agent and supervisor peers.

:class:`GatewayRig` records everything it starts (broker, processes, bus
clients, serving threads) and ``close()`` tears all of it down, even after a
failure. Waits poll a condition until a deadline; nothing sleeps to
synchronise. The broker's keyring issues every credential: the gateway's
(``RUN_DIR/creds/gateway.cred``) and one per peer (agents by their id, the
supervisor's for ``supervisor``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import structlog
import yaml

from bus.broker import Broker
from bus.client import BusClient
from bus.credentials import write_file
from bus.keyring import Keyring
from bus.sockets import ipc_endpoint, secure_dir
from swarm_core import messages as m
from swarm_core.peers import GATEWAY, PeerKind, kind_of
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[1]





def swarm_yaml(llm: dict[str, Any], quotas: dict[str, Any] | None = None) -> dict[str, Any]:
    """A minimal swarm config: the gateway reads only ``llm`` and ``quotas`` from it."""
    return {"name": "gwtest", "goal": "test the gateway", "root": "a", "llm": llm,
            "quotas": quotas or {}, "agents": {"a": {"role": "test", "commands": ["task_complete"]}}}


def stop_process(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL after ``grace``; reap it."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


class Supervisor:
    """A bus peer named ``supervisor`` that keeps every Usage and BudgetExhausted event (served in a thread)."""

    def __init__(self, client: BusClient) -> None:
        self.client = client
        self.usage: list[m.Usage] = []
        self.exhausted: list[m.BudgetExhausted] = []
        self._lock = threading.Lock()
        self._todo: list[Callable[[], None]] = []
        client.handle(m.Usage, self._on_usage)
        client.handle(m.BudgetExhausted, self._on_exhausted)

    def _on_usage(self, msg: Any) -> None:
        with self._lock:
            self.usage.append(msg.body)

    def _on_exhausted(self, msg: Any) -> None:
        with self._lock:
            self.exhausted.append(msg.body)

    def of(self, agent: str) -> list[m.Usage]:
        with self._lock:
            return [u for u in self.usage if u.agent_id == agent]

    def send(self, body: Any) -> None:
        """Send an event to the gateway from the serving thread (the client is not thread-safe)."""
        done = threading.Event()

        def go() -> None:
            self.client.send("gateway", body)
            done.set()

        self.client.call_soon_threadsafe(go)
        if not done.wait(10):
            raise AssertionError("the supervisor peer did not send")


class GatewayRig:
    """A broker thread, a gateway process on a written config, and bus peers."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.run_dir = tmp_path / "run"
        self.run_dir.mkdir(exist_ok=True)
        self.endpoint = ipc_endpoint(self.run_dir, "bus")
        quiet = structlog.wrap_logger(structlog.ReturnLogger())
        self.keys = Keyring()
        self.credential_file = write_file(secure_dir(self.run_dir / "creds") / "gateway.cred",
                                          self.keys.issue(GATEWAY, PeerKind.GATEWAY))
        self.broker = Broker(self.endpoint, ipc_endpoint(self.run_dir, "pub"), log=quiet, keyring=self.keys)
        self.broker.start_thread()
        self.procs: list[subprocess.Popen] = []
        self.clients: list[BusClient] = []
        self._threads: list[tuple[threading.Thread, threading.Event]] = []
        self.proc: subprocess.Popen | None = None

    # ---------------------------------------------------------------- setup

    def write_config(self, llm: dict[str, Any], quotas: dict[str, Any] | None = None,
                     cassette: dict[str, Any] | None = None) -> Path:
        if cassette is not None:
            (self.tmp / "cassette.yaml").write_text(yaml.safe_dump(cassette, allow_unicode=True))
            llm = {"provider": "replay", "cassette": "cassette.yaml", **llm}
        path = self.tmp / "swarm.yaml"
        path.write_text(yaml.safe_dump(swarm_yaml(llm, quotas)))
        return path

    def launch(self, config: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start the gateway process (output to run/gateway.out) without waiting for it."""
        out = open(self.run_dir / "gateway.out", "ab")  # noqa: SIM115 - handed to the child
        base = {k: v for k, v in os.environ.items()
                if k not in ("SWARM_LLM_PROVIDER", "SWARM_LLM_BASE_URL", "SWARM_LLM_MODEL", "OPENAI_API_KEY")}
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "orchestrator.gateway", "--run-dir", str(self.run_dir),
                 "--config", str(config), "--endpoint", self.endpoint,
                 "--credential", str(self.credential_file)],
                cwd=ROOT, stdout=out, stderr=out, start_new_session=True,
                env={**base, "PYTHONPATH": str(ROOT), **(env or {})})
        finally:
            out.close()
        self.procs.append(proc)
        return proc

    def start(self, llm: dict[str, Any] | None = None, quotas: dict[str, Any] | None = None,
              cassette: dict[str, Any] | None = None, env: dict[str, str] | None = None,
              timeout: float = 30.0) -> subprocess.Popen:
        """Write the config, start the gateway and wait until it is on the bus."""
        self.proc = self.launch(self.write_config(llm or {}, quotas, cassette), env)
        wait_until(lambda: "gateway" in self.broker.peers() or self.proc.poll() is not None,
                   timeout, "the gateway to join the bus")
        if self.proc.poll() is not None:
            raise AssertionError(f"the gateway exited {self.proc.returncode}: {self.output()}")
        return self.proc

    def output(self) -> str:
        p = self.run_dir / "gateway.out"
        return p.read_text(errors="replace") if p.exists() else ""

    def log_events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The gateway's JSON log events (those named ``name``)."""
        p = self.run_dir / "logs" / "gateway.jsonl"
        if not p.exists():
            return []
        events = []
        for line in p.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # a line being written
        return [e for e in events if name is None or e.get("event") == name]

    # ---------------------------------------------------------------- peers

    def client(self, identity: str) -> BusClient:
        """A connected peer with a credential of its own (its kind by its id: an agent, the supervisor)."""
        cred = self.keys.issue(identity, kind_of(identity))
        c = BusClient(self.endpoint, identity, heartbeat_interval=0.5, credential=cred)
        self.clients.append(c)
        return c.connect()

    def serve(self, client: BusClient) -> None:
        """Run ``client``'s loop in a thread until close()."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                client.poll(0.01)

        t = threading.Thread(target=loop, name=f"serve-{client.identity}", daemon=True)
        self._threads.append((t, stop))
        t.start()

    def supervisor(self) -> Supervisor:
        sup = Supervisor(self.client("supervisor"))
        self.serve(sup.client)
        wait_until(lambda: "supervisor" in self.broker.peers(), 10, "the supervisor peer to join")
        return sup

    # ------------------------------------------------------------- teardown

    def close(self) -> None:
        for t, stop in self._threads:
            stop.set()
        for t, _ in self._threads:
            t.join(5)
        for proc in self.procs:
            stop_process(proc)
        for c in self.clients:
            c.close()
        self.broker.stop()


def complete(agent: str, prompt: str = "Decide the next command.", commands: tuple[str, ...] = ("task_complete",),
             max_tokens: int = 64, name: str = "", context: dict[str, Any] | None = None,
             call_id: str = "") -> m.Complete:
    """A Complete request body as an agent sends it."""
    return m.Complete(agent, prompt, list(commands), max_tokens, [], name or agent, context or {}, call_id)


# ------------------------------------------------------------ llama.cpp server


def llama_available() -> bool:
    """Whether llama-cpp-python (the local extra) is importable."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def free_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_llama_server(model: Path, log: Path, port: int | None = None,
                       timeout: float = 180.0, threads: int = 2) -> tuple[subprocess.Popen, str]:
    """``python -m llama_cpp.server`` on 127.0.0.1 in its own process group; returns (proc, base_url).

    Polls ``/v1/models`` until the server answers; the caller stops it with
    :func:`stop_process` (the whole group).
    """
    import urllib.error
    import urllib.request

    port = port or free_port()
    out = open(log, "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "4096", "--n_threads", str(threads)],
            stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        out.close()
    base_url = f"http://127.0.0.1:{port}/v1"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"llama_cpp.server exited {proc.returncode}: "
                                 f"{log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(base_url + "/models", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_until(up, timeout, "llama_cpp.server to answer /v1/models", step=0.1)
    except BaseException:
        stop_process(proc)
        raise
    return proc, base_url


# ------------------------------------------------------------ scripted upstream


def upstream_completion(text="hello", model="served-model"):
    """An OpenAI chat.completion body."""
    return {"id": "c1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}


def _lower(headers):
    return {k.lower(): v for k, v in headers.items()}


def upstream_error(status, message, code="x"):
    """(status, headers, body) of an OpenAI-style error answer."""
    return status, {}, {"error": {"message": message, "type": "invalid_request_error", "code": code}}


class Upstream:
    """A scripted OpenAI-compatible HTTP server on 127.0.0.1: queued answers first, then a success.

    It plays the upstream of the openai provider where a real server cannot
    be made to fail on demand (401, 404, 429 with Retry-After, 5xx, 400).
    """

    def __init__(self):
        self.queue = []  # (status, headers, body, delay_s)
        self.requests = []  # (method, path, headers, json body)
        self.models = ["first-model", "second-model"]
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, headers, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                upstream.requests.append(("GET", self.path, _lower(self.headers), None))
                self._send(200, {}, {"object": "list",
                                     "data": [{"id": m, "object": "model"} for m in upstream.models]})

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n) or b"{}")
                upstream.requests.append(("POST", self.path, _lower(self.headers), body))
                if upstream.queue:
                    status, headers, answer, delay = upstream.queue.pop(0)
                else:
                    status, headers, answer, delay = 200, {}, upstream_completion(), 0
                if delay:
                    time.sleep(delay)  # the upstream being slow is the behaviour under test
                try:
                    self._send(status, headers, answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def push(self, status, headers=None, body=None, delay=0.0):
        self.queue.append((status, headers or {}, body if body is not None else upstream_completion(), delay))

    def posts(self):
        return [r for r in self.requests if r[0] == "POST"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
