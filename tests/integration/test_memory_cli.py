"""``swarm memory add|search|stats`` against a real broker and memory service process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from memory.client import MemoryClient
from orchestrator.cli_memory import memory
from tests.memory_harness import ROOT, start_broker, start_service, stop_process, wait_ready


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory with a broker thread and a memory service process; torn down at the end."""
    run = tmp_path_factory.mktemp("clirun")
    broker = start_broker(run)
    proc = start_service(run)
    bus = broker.client("cli-test-ready")
    try:
        wait_ready(MemoryClient(bus), proc)
        yield run
    finally:
        bus.close()
        stop_process(proc)
        broker.stop()


def _cli(run, *args):
    return CliRunner().invoke(memory, list(args), obj={"run_dir": run})


def test_add_then_search_json_contract(run_dir):
    """search --json prints a JSON list, best first, of objects with id, score and text."""
    first = _cli(run_dir, "add", "The staging database password rotates every Monday", "--json")
    assert first.exit_code == 0, first.output
    item = json.loads(first.stdout)
    _cli(run_dir, "add", "Lunch is served at noon in the atrium")
    res = _cli(run_dir, "search", "when does the db password change", "-k", "2", "--json")
    assert res.exit_code == 0, res.output
    hits = json.loads(res.stdout)
    assert isinstance(hits, list) and len(hits) == 2
    assert all({"id", "score", "text"} <= set(h) for h in hits)
    assert hits[0]["id"] == item["id"]
    assert hits[0]["score"] >= hits[1]["score"]


def test_human_output_and_stats(run_dir):
    """Without --json, add and search print readable lines and stats counts namespaces."""
    res = _cli(run_dir, "add", "private note", "--namespace", "agent:writer")
    assert res.exit_code == 0 and res.stdout.startswith("added memory ")
    res = _cli(run_dir, "search", "private note", "-n", "agent:writer")
    assert res.exit_code == 0 and "[agent:writer #" in res.stdout and "private note" in res.stdout
    res = _cli(run_dir, "stats", "--json")
    assert json.loads(res.stdout)["namespaces"]["agent:writer"] == 1
    res = _cli(run_dir, "stats")
    assert "agent:writer: 1" in res.stdout and "384 dims" in res.stdout


@pytest.mark.parametrize("args, code, message", [
    (["search", "x", "-k", "0"], 2, "k must be an integer from 1 to 100, got 0"),
    (["search", "x", "-k", "101"], 2, "got 101"),
    (["add", "   "], 2, "is empty"),
    (["add", "x", "--namespace", "everyone"], 2, "unknown memory namespace 'everyone'"),
])
def test_bad_input_is_one_line_and_exit_code(run_dir, args, code, message):
    """Bad input prints one line on stderr naming the problem and exits with the error's code."""
    res = _cli(run_dir, *args)
    assert res.exit_code == code
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.output


def test_no_swarm_running_is_a_clear_error(tmp_path):
    """In a run directory with no bus, the command (a real process) says so on one line and exits 4."""
    code = "from orchestrator.cli_memory import memory; import sys, pathlib; " \
           "memory(['stats'], obj={'run_dir': pathlib.Path(sys.argv[1])})"
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "nothing")], cwd=ROOT,
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 4
    assert out.stderr.strip().startswith("swarm memory stats: no swarm is running in")
    assert len(out.stderr.strip().splitlines()) == 1
