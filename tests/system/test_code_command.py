"""System tests of the execute_python_file command through registry.dispatch (real child processes)."""

from __future__ import annotations

import threading

import pytest

from agents.commands.context import CommandContext
from agents.commands.registry import dispatch
from agents.workspace import Workspace

ALLOWED = {"execute_python_file", "write_to_file"}


class Ports:
    """The one port the command uses: keep_alive waits (bounded) and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self._never = threading.Event()

    def keep_alive(self, seconds: float) -> None:
        self.calls += 1
        self._never.wait(seconds)


@pytest.fixture
def ctx(tmp_path):
    """A context with a per-agent workspace and tight execution limits."""
    return CommandContext(agent_id="coder", role="coder", ports=Ports(),
                          workspace=Workspace(tmp_path / "ws", agent_subdir="coder"),
                          settings={"exec_wall_seconds": 1, "exec_output_limit": 500})


def call(ctx, name, **args):
    return dispatch(ctx, name, args, ALLOWED)


def test_runs_a_file_written_by_the_agent(ctx, tmp_path):
    """A file written with write_to_file runs with the agent's folder as cwd; output is returned."""
    call(ctx, "write_to_file", file="calc.py", text="open('r.txt', 'w').write(str(6 * 7))\nprint(6 * 7)")
    obs = call(ctx, "execute_python_file", file="calc.py")
    assert obs.ok and obs.text == "calc.py: exit code 0\n42\n"
    assert (tmp_path / "ws" / "coder" / "r.txt").read_text() == "42"


def test_refused_file_is_an_error_observation(ctx, tmp_path):
    """A hostile file becomes an error observation with the reason; it does not run."""
    call(ctx, "write_to_file", file="evil.py", text="open('m.txt', 'w')\nimport os\nos.system('id')")
    obs = call(ctx, "execute_python_file", file="evil.py")
    assert not obs.ok and "refused to run evil.py: line 3: os.system" in obs.text
    assert not (tmp_path / "ws" / "coder" / "m.txt").exists()


def test_failure_and_timeout_are_error_observations(ctx):
    """A crashing program and one past the wall limit are reported as errors with their output."""
    call(ctx, "write_to_file", file="bad.py", text="print('before')\nraise SystemExit('bye')")
    obs = call(ctx, "execute_python_file", file="bad.py")
    assert not obs.ok and "exit code 1" in obs.text and "before" in obs.text and "bye" in obs.text
    call(ctx, "write_to_file", file="slow.py", text="import time\nprint('start', flush=True)\ntime.sleep(60)")
    obs = call(ctx, "execute_python_file", file="slow.py")
    assert not obs.ok and "wall-clock limit of 1 s" in obs.text and "start" in obs.text
    assert ctx.ports.calls >= 2


@pytest.mark.parametrize("args, fragment", [
    ({"file": "nope.py"}, "does not exist"),
    ({"file": "/usr/lib/python3/x.py"}, "absolute"),
    ({"file": "../x.py"}, "'..'"),
    ({"file": "notes.txt"}, "only .py files"),
    ({}, "missing file"),
    ({"file": "x.py", "timeout": 5}, "unexpected timeout"),
])
def test_bad_arguments_are_error_observations(ctx, args, fragment):
    """Missing, refused or wrong files give an error observation, never an exception."""
    call(ctx, "write_to_file", file="notes.txt", text="hello")
    obs = dispatch(ctx, "execute_python_file", args, ALLOWED)
    assert not obs.ok and fragment in obs.text


def test_invalid_settings_fall_back_to_defaults(ctx):
    """Nonsense limits in the settings are ignored in favour of the defaults."""
    ctx.settings.update(exec_cpu_seconds="lots", exec_memory_mb=-1, exec_wall_seconds=True)
    call(ctx, "write_to_file", file="ok.py", text="print('fine')")
    assert call(ctx, "execute_python_file", file="ok.py").text.endswith("fine\n")


class RecordingLog:
    """A logger port that keeps (level, event, fields) of every call."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict]] = []

    def info(self, event: str, **fields) -> None:
        self.events.append(("info", event, fields))

    def warning(self, event: str, **fields) -> None:
        self.events.append(("warning", event, fields))


def test_refusals_are_logged_with_the_agent_and_the_rule(ctx):
    """A scan refusal and a run that dies of a kernel refusal each leave a log line naming agent and rule."""
    log = RecordingLog()
    ctx = CommandContext(agent_id=ctx.agent_id, role=ctx.role, ports=ctx.ports, workspace=ctx.workspace,
                         settings=ctx.settings, log=log)
    call(ctx, "write_to_file", file="evil.py", text="import os\nos.system('id')")
    assert not call(ctx, "execute_python_file", file="evil.py").ok
    ctx.settings.update(static_scan=False, exec_wall_seconds=30)
    call(ctx, "write_to_file", file="net.py",
         text="import socket\nsocket.create_connection(('127.0.0.1', 9))")
    assert not call(ctx, "execute_python_file", file="net.py").ok
    refusals = [(e, f["agent"], f["rule"], f["file"]) for _, e, f in log.events if e.endswith("_refused")]
    assert refusals == [("code_refused", "coder", "static_scan", "evil.py"),
                        ("sandbox_refused", "coder", "landlock", "net.py")]


def test_static_scan_off_lets_the_kernel_decide(ctx, tmp_path):
    """With static_scan false a file the scan would refuse runs, and the kernel sandbox refuses its escape."""
    ctx.settings.update(static_scan=False, exec_wall_seconds=30)
    call(ctx, "write_to_file", file="esc.py", text=f"import os\nopen({str(tmp_path / 'esc.txt')!r}, 'w')")
    obs = call(ctx, "execute_python_file", file="esc.py")
    assert not obs.ok and "Read-only file system" in obs.text and "refused to run" not in obs.text
    assert not (tmp_path / "esc.txt").exists()
