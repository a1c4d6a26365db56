"""Unit tests of the sandbox's pure parts: environments, views, rule names, settings, config, `swarm up`."""

from __future__ import annotations

import errno
import os
import sys

import pytest

from agents.confine import paths
from agents.confine.agent import layout_problem, sandbox_mode, writable_mounts
from agents.confine.denials import classify
from agents.confine.environment import agent_environment, memory_environment
from agents.confine.probe import Probe
from orchestrator import cli, runctl
from orchestrator.config import parse_config
from swarm_core.errors import ConfigError, SwarmError

UP_ENV = {"PATH": "/usr/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": "/home/op",
          "OPENAI_API_KEY": "sk-secret", "SWARM_LLM_BASE_URL": "http://x", "SWARM_RUN_DIR": "/r",
          "AWS_SECRET_ACCESS_KEY": "aws", "PYTHONPATH": "/elsewhere", "HTTPS_PROXY": "http://proxy:3128",
          "EMBED_KEY": "ek"}


def test_agent_environment_keeps_only_the_allow_list():
    """The agents' environment keeps locale, PATH and HOME, PYTHONPATH = the project; no key, no SWARM_*."""
    env = agent_environment(UP_ENV, "/project")
    assert env == {"PATH": "/usr/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": "/home/op",
                   "PYTHONPATH": "/project"}


def test_memory_environment_gets_only_its_own_key():
    """The memory service gets the agents' environment plus its embedder's key and proxy, and nothing else."""
    assert memory_environment(UP_ENV, "/p") == agent_environment(UP_ENV, "/p")
    env = memory_environment(UP_ENV, "/p", "EMBED_KEY")
    assert env["EMBED_KEY"] == "ek" and env["HTTPS_PROXY"] == "http://proxy:3128"
    assert "OPENAI_API_KEY" not in env and not any(k.startswith("SWARM_") for k in env)


def test_minimal_drops_missing_and_nested_paths(tmp_path):
    """minimal() keeps existing real paths that are not inside another one, sorted."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    got = paths.minimal([str(tmp_path / "a" / "b"), str(tmp_path / "a"), str(tmp_path / "nope"),
                         str(tmp_path / "c"), str(tmp_path / "a") + "/../c"])
    assert got == (str(tmp_path / "a"), str(tmp_path / "c"))


def test_interpreter_files_name_the_binary_and_its_loader():
    """The executable files of a view are the real interpreter and the ELF loader it names."""
    files = paths.interpreter_files()
    assert os.path.realpath(sys.executable) in files
    loader = paths.elf_interpreter(os.path.realpath(sys.executable))
    assert loader is None or os.path.realpath(loader) in files
    assert paths.elf_interpreter(__file__) is None


@pytest.mark.parametrize("endpoint, port", [("tcp://127.0.0.1:5555", 5555), ("ipc:///run/x/bus.ipc", None),
                                            ("tcp://host", None)])
def test_tcp_port_of_an_endpoint(endpoint, port):
    """Only a tcp endpoint gives a port to allow."""
    assert paths.tcp_port(endpoint) == port


def test_exec_view_is_the_interpreter_and_the_workspace(tmp_path):
    """Executed code reads the installation, writes only the workspace, may connect nowhere."""
    view = paths.exec_view(str(tmp_path))
    assert view.write == (str(tmp_path),) and view.ports == ()
    assert os.path.realpath(sys.base_prefix) in view.read
    assert not any(p.startswith("/etc") and p not in paths.EXEC_ETC for p in view.read)
    assert "/etc/shadow" not in view.read and "/tmp" not in view.read


def test_agent_view_allows_the_bus_port_and_its_own_log(tmp_path):
    """An agent on a tcp bus may connect to the bus port only and write its own log file only."""
    log = tmp_path / "logs" / "a.jsonl"
    log.parent.mkdir()
    log.touch()
    view = paths.agent_view(workspace=str(tmp_path / "ws"), log_file=str(log), packages=("agents",),
                            endpoint="tcp://127.0.0.1:7001")
    assert view.ports == (7001,) and str(log) in view.files_rw
    assert os.path.dirname(paths.__file__).rsplit("/", 1)[0] in view.read  # the agents package
    assert str(tmp_path) not in view.read


@pytest.mark.parametrize("exc, rule", [
    (PermissionError("sandbox: os.system is not allowed"), "audit_hook"),
    (PermissionError(errno.EACCES, "Permission denied", "/etc/shadow"), "landlock"),
    (PermissionError(errno.EPERM, "Operation not permitted"), "landlock"),
    (OSError(errno.EROFS, "Read-only file system", "/usr/x"), "read_only_mount"),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), "network_namespace"),
    (ProcessLookupError(errno.ESRCH, "No such process"), "pid_namespace"),
    (FileNotFoundError(errno.ENOENT, "No such file", "x"), None),
    (ValueError("boom"), None),
])
def test_classify_names_the_refusing_rule(exc, rule):
    """An exception maps to the rule that refused it, or None for the program's own failures."""
    assert classify(exc) == rule


@pytest.mark.parametrize("settings, mode", [({"sandbox": "none"}, "none"), ({"sandbox": "kernel"}, "kernel"),
                                            ({}, "kernel"), ({"sandbox": "off"}, "kernel"), (None, "kernel")])
def test_sandbox_mode_defaults_to_kernel(settings, mode):
    """Only an explicit 'none' turns the sandbox off; anything else keeps it."""
    assert sandbox_mode(settings) == mode


def test_agent_view_holds_nothing_of_the_run_dir_but_its_log_even_on_tcp(tmp_path):
    """On a tcp bus too, an agent reads no file of the run dir but writes its log (its credential is in its spec)."""
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    log = run / "logs" / "a.jsonl"
    log.touch()
    view = paths.agent_view(workspace=None, log_file=str(log), packages=(), endpoint="tcp://127.0.0.1:5")
    everything = view.read + view.execute + view.write + view.files_rw
    assert [p for p in everything if p.startswith(str(run))] == [str(log)]
    assert view.ports == (5,)


def test_writable_mounts_are_workspace_and_logs(tmp_path):
    """Only the logs and the workspace (also in the exec root) stay writable for agents."""
    run, ws = tmp_path / "run", tmp_path / "ws"
    (run / "logs").mkdir(parents=True)
    ws.mkdir()
    (run / "sandbox" / str(ws).lstrip("/")).mkdir(parents=True)
    assert writable_mounts(str(run), str(ws)) == [str(run / "logs"), str(ws),
                                                  str(run / "sandbox" / str(ws).lstrip("/"))]


CONFIG = """\
name: s
goal: g
root: a
agents: {a: {role: r}}
"""


def test_config_sandbox_defaults_and_values():
    """safety.sandbox defaults to kernel, tools.static_scan to true; both take their documented values."""
    cfg = parse_config(CONFIG)
    assert (cfg.safety.sandbox, cfg.tools.static_scan) == ("kernel", True)
    cfg = parse_config(CONFIG + "safety: {sandbox: none}\ntools: {static_scan: false}\n")
    assert (cfg.safety.sandbox, cfg.tools.static_scan) == ("none", False)


def test_config_rejects_an_unknown_sandbox():
    """An unknown sandbox kind is a config error naming the field and the line."""
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG + "safety: {sandbox: docker}\n", source="s.yaml")
    assert "s.yaml:5: safety.sandbox" in str(info.value)


def _up(tmp_path, capsys, monkeypatch, extra: str, probe_result: Probe) -> tuple[int, str]:
    """Run `swarm up` in-process with a faked probe; the supervisor's start is faked to fail."""
    cfg = tmp_path / "s.yaml"
    cfg.write_text(CONFIG + extra)
    monkeypatch.setattr("agents.confine.probe.probe", lambda: probe_result)

    def no_supervisor(*args, **kwargs):
        raise SwarmError("supervisor start faked away")

    monkeypatch.setattr(runctl, "start_supervisor", no_supervisor)
    with pytest.raises(SystemExit) as info:
        cli.main(["--run-dir", str(tmp_path / "run"), "up", str(cfg), "--detach"])
    return info.value.code, capsys.readouterr().err


def test_up_refuses_a_kernel_sandbox_the_kernel_cannot_give(tmp_path, capsys, monkeypatch):
    """With the probe failing, `swarm up` exits 2 with one line naming the file, the field and the cause."""
    reason = "the kernel sandbox needs Landlock ABI >= 6"
    code, err = _up(tmp_path, capsys, monkeypatch, "", Probe(False, 3, reason))
    assert code == 2
    assert err.count("\n") == 1 and f"s.yaml: safety.sandbox: kernel: {reason}" in err


def test_up_goes_on_when_the_probe_passes(tmp_path, capsys, monkeypatch):
    """With the probe passing, `swarm up` goes on to start the supervisor and prints no sandbox warning."""
    code, err = _up(tmp_path, capsys, monkeypatch, "", Probe(True, 7))
    assert code == 1 and "supervisor start faked away" in err and "warning" not in err


def test_up_without_a_sandbox_warns(tmp_path, capsys, monkeypatch):
    """safety.sandbox: none prints a warning on up (and says more when the static scan is off too)."""
    code, err = _up(tmp_path, capsys, monkeypatch, "safety: {sandbox: none}\ntools: {static_scan: false}\n",
                    Probe(False, 0, "must not be asked"))
    assert code == 1 and err.startswith("warning: safety.sandbox is none") and "nothing at all limits" in err


@pytest.mark.parametrize("run, ws, sock, bad", [
    ("/s/run", "/s/ws", "/s/run/sock/bus.ipc", None),
    ("/s/ws/.swarm", "/s/ws", None, "the run directory /s/ws/.swarm lies inside the workspace /s/ws"),
    ("/s/run", "/tmp", "/tmp/swarm-0-abc/bus.ipc", "the bus socket /tmp/swarm-0-abc/bus.ipc lies inside"),
    ("/s/run", "/s/run/ws", "/s/run/sock/bus.ipc", None),
    ("/s/run", None, None, None),
])
def test_layout_problem_finds_the_run_dir_or_socket_in_the_workspace(run, ws, sock, bad):
    """A run directory or bus socket inside the workspace is named as the problem; other layouts pass."""
    problem = layout_problem(run, ws, sock)
    assert (problem is None) if bad is None else (bad in problem)


def test_up_refuses_a_run_dir_inside_the_workspace(tmp_path, capsys, monkeypatch):
    """`swarm up` with the run directory inside the workspace exits 2 with one line."""
    cfg = tmp_path / "s.yaml"
    cfg.write_text(CONFIG + "workspace: .\n")
    monkeypatch.setattr("agents.confine.probe.probe", lambda: Probe(True, 7))
    with pytest.raises(SystemExit) as info:
        cli.main(["--run-dir", str(tmp_path / ".swarm"), "up", str(cfg), "--detach"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "lies inside the workspace" in err
