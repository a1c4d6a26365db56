"""A real browser for system tests: Debian's chromium driven by Playwright (never a downloaded browser).

:func:`chromium_page` skips the test with a loud reason (and a warning in the
summary) only when no Chromium or no Playwright is installed; `.ci/run`
installs Debian's chromium first, so on CI the browser test runs for real.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM = os.environ.get("SWARM_TEST_CHROMIUM", "/usr/bin/chromium")
# what works here as root, headless, offline; a fresh profile per test (launch_persistent_context)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}


def _skip_loudly(reason: str) -> None:
    message = f"BROWSER TEST NOT RUN: {reason}"
    warnings.warn(message, stacklevel=3)
    print(f"\n*** {message} ***", file=sys.stderr)
    pytest.skip(message)


@contextmanager
def chromium_page(profile: Path) -> Iterator[Any]:
    """A page of headless Chromium (1280x800) with a fresh profile; closed afterwards."""
    if not os.access(CHROMIUM, os.X_OK):
        _skip_loudly(f"no Chromium at {CHROMIUM}; install it with: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_loudly("the playwright package is missing; install the dev extra: pip install -e '.[dev]'")
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS, viewport=VIEWPORT)
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.set_default_timeout(60_000)  # a loaded 2-core machine
            yield page
        finally:
            ctx.close()


class DashboardProcess:
    """``swarm dashboard --port 0`` as a real process; its URL read from its first line of output."""

    def __init__(self, run_dir: Path, env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "--run-dir", str(run_dir), "dashboard", "--port", "0"],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.url = self._read_url(60.0)
        self.base = self.url.split("?", 1)[0]
        self.token = self.url.split("token=", 1)[1]

    def _read_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"swarm dashboard exited {self.proc.returncode}: {self.proc.stderr.read()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if "http://" in line:
                    return line[line.index("http://"):].strip()
        raise AssertionError("swarm dashboard printed no URL in time")

    def call(self, method: str, path: str, body: bytes | None = None,
             token: str | None = "") -> tuple[int, Any]:
        """One API call: ``(status, JSON body)``; ``token`` "" means the dashboard's own, None none at all."""
        headers = {} if token is None else {"Authorization": f"Bearer {token or self.token}"}
        req = urllib.request.Request(self.base.rstrip("/") + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def stop(self) -> None:
        """SIGTERM (it shuts down cleanly), then SIGKILL to its group if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; AssertionError when the file is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    assert data[12:16] == b"IHDR", "no IHDR chunk first"
    assert data[-8:-4] == b"IEND", "no IEND chunk last"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
