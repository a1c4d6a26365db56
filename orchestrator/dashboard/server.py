"""The dashboard's HTTP server: auth, static assets, the JSON API and the event stream.

Standard library only (``ThreadingHTTPServer``: one thread per connection,
which an SSE stream holds open). Every request needs the run's token: as
``Authorization: Bearer TOKEN``, or the HttpOnly SameSite=Strict cookie that
``GET /?token=TOKEN`` sets once (then redirects to ``/`` so the token leaves
the address bar). Without it: 401, and nothing is read or changed.
"""

from __future__ import annotations

import json
import queue
import threading
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from orchestrator.dashboard.api import MAX_BODY, Api, Request, Response, error_response
from orchestrator.dashboard.events import EventHub
from orchestrator.dashboard.token import ensure_token, matches

COOKIE = "swarm_dashboard"
KEEPALIVE_S = 15.0  # an SSE comment this often finds closed connections
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
_SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),  # the first URL carries the token
    ("Cache-Control", "no-store"),
)


def load_assets() -> dict[str, bytes]:
    """The page's files, read once from the package (``orchestrator/dashboard/static``)."""
    root = resources.files("orchestrator.dashboard") / "static"
    return {f.name: f.read_bytes() for f in root.iterdir() if f.is_file() and f.name[0] != "."}


class DashboardServer(ThreadingHTTPServer):
    """One dashboard: the token, the API, the event hub, the assets."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, run_dir: Path, host: str, port: int, log: Any, *, api: Api | None = None,
                 hub: EventHub | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.log = log
        self.token = ensure_token(self.run_dir)
        self.api = api or Api(self.run_dir)
        self.hub = hub or EventHub(self.run_dir, log)
        self.assets = load_assets()
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> "DashboardServer":
        """Start watching the run (serving is :meth:`serve_forever`)."""
        self.hub.start()
        return self

    def close(self) -> None:
        """Stop the watcher (ending every stream) and close the socket."""
        self.hub.stop()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "swarm-dashboard"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        self.server.log.debug("dashboard_request", line=format % args)

    # ------------------------------------------------------------ dispatch

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        try:
            url = urlsplit(self.path)
            query = dict(parse_qsl(url.query))
            if method == "GET" and url.path == "/" and "token" in query:
                self._login(query["token"])
            elif not self._authorized():
                self._deny(url.path)
            elif method == "POST" and not self._same_origin():
                self._json(error_response(403, "cross_origin", "cross-origin requests are refused"))
            elif url.path == "/api/events" and method == "GET":
                self._stream()
            elif url.path.startswith("/api/"):
                self._api(method, url.path, query)
            else:
                self._asset(method, url.path)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away
        except Exception:  # handler boundary: log the traceback, the client gets a JSON 500
            self.server.log.exception("dashboard_request_failed", path=self.path)
            self._json(error_response(500, "internal_error", "the dashboard failed; see its log"))

    # ------------------------------------------------------------ auth

    def _given_token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer "):].strip()
        try:
            jar = SimpleCookie(self.headers.get("Cookie", ""))
        except CookieError:
            return None
        morsel = jar.get(COOKIE)
        return morsel.value if morsel is not None else None

    def _authorized(self) -> bool:
        return matches(self._given_token(), self.server.token)

    def _same_origin(self) -> bool:
        origin = self.headers.get("Origin")
        return origin is None or urlsplit(origin).netloc == self.headers.get("Host", "")

    def _login(self, given: str) -> None:
        if not matches(given, self.server.token):
            self._deny("/")
            return
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Location", "/")
        self.send_header("Set-Cookie", f"{COOKIE}={self.server.token}; HttpOnly; SameSite=Strict; Path=/")
        self._finish_headers(0)

    def _deny(self, path: str) -> None:
        self.server.log.info("dashboard_unauthorized", path=path, client=self.client_address[0])
        if path.startswith("/api/"):
            self._json(error_response(401, "unauthorized", "a valid dashboard token is required"))
            return
        body = (b"<!doctype html><title>401</title><p>401: open the address that "
                b"<code>swarm dashboard</code> printed (it carries the token).</p>")
        self._send(401, "text/html; charset=utf-8", body)

    # ------------------------------------------------------------ responses

    def _finish_headers(self, length: int) -> None:
        for name, value in _SECURITY_HEADERS:
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self._finish_headers(len(body))
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, resp: Response) -> None:
        body = json.dumps(resp.body, ensure_ascii=False, default=str).encode()
        self._send(resp.status, "application/json", body)

    def _api(self, method: str, path: str, query: dict[str, str]) -> None:
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit():
            self._json(error_response(400, "bad_length", "Content-Length must be a number"))
            return
        if int(length) > MAX_BODY:
            self._json(error_response(413, "too_large", f"the body may be at most {MAX_BODY} bytes"))
            return
        body = self.rfile.read(int(length)) if int(length) else b""
        self._json(self.server.api.handle(Request(method, path, query, body)))

    def _asset(self, method: str, path: str) -> None:
        name = "index.html" if path == "/" else path[len("/static/"):] if path.startswith("/static/") else ""
        data = self.server.assets.get(name)
        if method != "GET" or data is None:
            self._json(error_response(404, "not_found", f"nothing at {path}"))
            return
        self._send(200, _TYPES.get(Path(name).suffix, "application/octet-stream"), data)

    def _stream(self) -> None:
        hub = self.server.hub
        client = hub.connect()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        try:
            while not client.dropped:
                try:
                    frame = client.queue.get(timeout=KEEPALIVE_S)
                except queue.Empty:
                    frame = b": keepalive\n\n"
                if frame is None:
                    break
                self.wfile.write(frame)
                self.wfile.flush()
        finally:
            hub.disconnect(client)


def serve_in_thread(server: DashboardServer) -> threading.Thread:
    """Serve on a background thread (tests, benches); stop with ``shutdown()`` then ``close()``."""
    server.start()
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                         name="dashboard-http", daemon=True)
    t.start()
    return t
