"""System tests of agents.sandbox: real child processes, real limits, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from agents.sandbox import POLL_SECONDS, SandboxRefused, run_python_file, run_python_source
from tests.hostile_rig import broken, table, targets  # noqa: F401 - targets is a fixture

M = "marker.txt"  # every hostile file would create this in the workspace if it ran

HOSTILE = {
    "os.system": "import os\nos.system('touch marker.txt')",
    "import os as o": "import os as o\no.system('touch marker.txt')",
    "from os import system": "from os import system\nsystem('touch marker.txt')",
    "re-bound module": "import os\nx = os\nx.system('touch marker.txt')",
    "getattr sys+tem": "import os\ngetattr(os, 'sys' + 'tem')('touch marker.txt')",
    "getattr computed": "import os\nn = 'sys'\ngetattr(os, n + 'tem')('touch marker.txt')",
    "subprocess.run": "import subprocess\nsubprocess.run(['touch', 'marker.txt'])",
    "from subprocess import Popen": "from subprocess import Popen\nPopen(['touch', 'marker.txt'])",
    "os.popen": "import os\nos.popen('touch marker.txt')",
    "os.execv": "import os\nos.execv('/usr/bin/touch', ['touch', 'marker.txt'])",
    "os.spawnlp": "import os\nos.spawnlp(os.P_WAIT, 'touch', 'touch', 'marker.txt')",
    "os.fork": "import os\nif os.fork() == 0:\n    open('marker.txt', 'w')",
    "os.posix_spawnp": "import os\nos.posix_spawnp('touch', ['touch', 'marker.txt'], {})",
    "os.kill parent": "open('marker.txt', 'w')\nimport os\nos.kill(os.getppid(), 9)",
    "pty.spawn": "import pty\npty.spawn(['touch', 'marker.txt'])",
    "ctypes libc": "import ctypes\nctypes.CDLL(None).system(b'touch marker.txt')",
    "socket": "open('marker.txt', 'w')\nimport socket\nsocket.socket().connect(('127.0.0.1', 9))",
    "multiprocessing": "import multiprocessing\nmultiprocessing.Process(target=open, args=('marker.txt', 'w')).start()",
    "__import__": "__import__('os').system('touch marker.txt')",
    "importlib": "import importlib\nimportlib.import_module('os').system('touch marker.txt')",
    "exec of literal with os.system": "exec(\"import os; os.system('touch marker.txt')\")",
    "exec of a variable": "code = \"open('marker.txt', 'w')\"\nexec(code)",
    "exec of built string": "exec(''.join(['op', \"en('marker.txt', 'w')\"]))",
    "compile then eval": "eval(compile(\"__import__('os').system('touch marker.txt')\", 'x', 'exec'))",
    "__builtins__ attribute": "__builtins__.__import__('os').system('touch marker.txt')",
    "globals()['__builtins__']": "globals()['__builtins__'].__import__('os').system('touch marker.txt')",
    "subclasses walk": "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0]"
                       "(['touch', 'marker.txt'])",
    "sys.modules": "import sys\nsys.modules['os'].system('touch marker.txt')",
    "shutil.os": "import shutil\nshutil.os.system('touch marker.txt')",
    "print.__self__": "print.__self__.__import__('os').system('touch marker.txt')",
    "function __globals__": "def f():\n    pass\nf.__globals__['__builtins__'].open('marker.txt', 'w')",
    "import builtins": "import builtins\nbuiltins.open('marker.txt', 'w')",
    "pickle payload": "import pickle\npickle.loads(b\"cos\\nsystem\\n(S'touch marker.txt'\\ntR.\")",
    "absolute path": "open('marker.txt', 'w')\nopen('/tmp/escape-marker.txt', 'w')",
    "parent path": "open('marker.txt', 'w')\nopen('../escape-marker.txt', 'w')",
    "methodcaller system": "import os, operator\noperator.methodcaller('system', 'touch marker.txt')(os)",
    "asyncio subprocess": "import asyncio\nasyncio.run(asyncio.create_subprocess_exec('touch', 'marker.txt'))",
    "frame globals": "import sys\nsys._getframe().f_globals['__builtins__'].open('marker.txt', 'w')",
    "traceback frame": "try:\n    1 / 0\nexcept Exception as e:\n"
                       "    e.__traceback__.tb_frame.f_builtins['open']('marker.txt', 'w')",
    "timeit string": "import timeit\ntimeit.timeit(\"open('marker.txt', 'w')\", number=1)",
    "os.symlink": "open('marker.txt', 'w')\nimport os\nos.symlink('/etc/passwd', 'passwd')",
    "os.chdir": "import os\nos.chdir('..')\nopen('marker.txt', 'w')",
    "resource.setrlimit": "open('marker.txt', 'w')\nimport resource\n"
                          "resource.setrlimit(resource.RLIMIT_CPU, (-1, -1))",
    "gc objects": "import gc\n[o for o in gc.get_objects() if getattr(o, '__name__', '') == 'os'][0]"
                  ".system('touch marker.txt')",
    "breakpoint": "open('marker.txt', 'w')\nbreakpoint()",
    "exec re-bound": "e = exec\ne(\"open('marker.txt', 'w')\")",
    "vars builtins": "vars()['__builtins__'].open('marker.txt', 'w')",
    "yaml unsafe": "import yaml\nyaml.load(\"!!python/object/apply:os.system ['touch marker.txt']\", Loader=yaml.Loader)",
    "logging.os": "import logging\nlogging.os.system('touch marker.txt')",
    "module as argument": "import os\ndef run(mod):\n    mod.system('touch marker.txt')\nrun(os)",
    "lambda default __import__": "(lambda m=__import__('os'): m.system('touch marker.txt'))()",
    "alias in for loop": "import os\nfor m in [os]:\n    m.system('touch marker.txt')",
    "types.CodeType": "open('marker.txt', 'w')\nimport types\ntypes.CodeType",
    "zmq to the bus": "open('marker.txt', 'w')\nimport zmq\nzmq.Context().socket(zmq.DEALER)",
    "home folder": "from pathlib import Path\nopen('marker.txt', 'w')\nPath.home().joinpath('x').write_text('x')",
}


@pytest.fixture
def ws(tmp_path):
    """An empty workspace folder."""
    d = tmp_path / "ws"
    d.mkdir()
    return d


def write(ws: Path, name: str, source: str) -> Path:
    path = ws / name
    path.write_text(textwrap.dedent(source))
    return path


def test_at_least_thirty_hostile_files():
    """The hostile set keeps covering at least 30 different tricks."""
    assert len(set(HOSTILE.values())) >= 30


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_file_refused_before_running(ws, tmp_path, source):
    """Each hostile file is refused with a reason and a line, and nothing of it ran."""
    path = write(ws, "job.py", source)
    with pytest.raises(SandboxRefused) as info:
        run_python_file(path, ws, wall_seconds=5)
    assert info.value.violations and "line " in info.value.message
    assert "Nothing was executed" in info.value.message
    assert not (ws / M).exists() and not (tmp_path / "escape-marker.txt").exists()
    assert not os.path.lexists(ws / "passwd")


RUNTIME_ONLY = {
    "write outside via computed path": ("import os\nup = '.' * 2\nopen(os.path.join(os.getcwd(), up, 'esc.txt'), 'w')",
                                        "writing outside the workspace"),
    "read outside via computed path": ("p = chr(47).join(['', 'etc', 'passwd'])\nprint(open(p).read())",
                                       "reading outside the workspace"),
    "os.system via computed getattr on a parameter":
        ("import os\ndef f(m, n):\n    return getattr(m, n)\nf(os, ''.join(reversed('metsys')))('touch esc.txt')",
         "os.system is not allowed"),
    "the hook's table cleared first (issue 10)":
        ("import sys, os\ntry:\n    [sys][0].modules['__main__']._BLOCKED.clear()\n"
         "except AttributeError:\n    pass\n"
         "getattr([os][0], ''.join(reversed('metsys')))('touch esc.txt')", "os.system is not allowed"),
}


@pytest.mark.parametrize("source, fragment", RUNTIME_ONLY.values(), ids=RUNTIME_ONLY.keys())
def test_runtime_hook_blocks_what_the_scan_cannot_see(ws, tmp_path, source, fragment):
    """Computed paths and names pass the scan but are blocked by the child's audit hook."""
    result = run_python_file(write(ws, "job.py", source), ws, wall_seconds=10)
    assert result.reason == "error" and fragment in result.output
    assert not (tmp_path / "esc.txt").exists() and not (ws / "esc.txt").exists()


BENIGN = {
    "math": ("import math\nprint(sum(i * i for i in range(10)), math.factorial(10))", "285 3628800\n"),
    "strings": ("s = 'hello world'\nprint(s[::-1].upper(), s.title().split())", "DLROW OLLEH ['Hello', 'World']\n"),
    "json": ("import json\nprint(json.dumps(json.loads('{\"b\": 1, \"a\": [1, 2]}'), sort_keys=True))",
             '{"a": [1, 2], "b": 1}\n'),
    "classes": ("class Animal:\n    def __init__(self, name):\n        self.name = name\n"
                "    def speak(self):\n        return f'{self.__class__.__name__} {self.name}'\n"
                "class Dog(Animal):\n    def __init__(self, name):\n        super().__init__(name)\n"
                "print(Dog('rex').speak())", "Dog rex\n"),
    "recursion": ("def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\nprint(fib(20))", "6765\n"),
    "read a file": ("print(open('input.txt').read().upper())", "SEA AND SKY\n\n"),
    "write a file in cwd": ("import os\nos.makedirs('out', exist_ok=True)\n"
                            "with open('out/result.txt', 'w') as f:\n    f.write('done')\nprint(os.listdir('out'))",
                            "['result.txt']\n"),
    "collections and dataclasses": ("from collections import Counter\nfrom dataclasses import dataclass\n"
                                    "@dataclass\nclass P:\n    x: int\nprint(Counter('abca').most_common(1), P(3))",
                                    "[('a', 2)] P(x=3)\n"),
    "unicode output": ("print('海 🌊 café')", "海 🌊 café\n"),
    "main guard and argv": ("import sys\nif __name__ == '__main__':\n    print(sys.argv[0], __file__)",
                            None),
    "tempfile in the workspace": ("import tempfile\nwith tempfile.TemporaryFile() as f:\n    f.write(b'x')\n"
                                  "    f.seek(0)\n    print(f.read())", "b'x'\n"),
    "numpy": ("import numpy as np\nprint(int(np.arange(10).sum()))", "45\n"),
}


@pytest.mark.parametrize("source, expected", BENIGN.values(), ids=BENIGN.keys())
def test_benign_file_runs(ws, source, expected):
    """Each benign file runs to exit code 0 with the expected output."""
    (ws / "input.txt").write_text("sea and sky\n")
    path = write(ws, "job.py", source)
    result = run_python_file(path, ws, wall_seconds=60)
    assert (result.exit_code, result.reason) == (0, "ok"), result.output
    if expected is not None:
        assert result.output == expected
    else:
        assert result.output.split() == [str(path), str(path)]


def test_written_file_lands_in_the_workspace(ws):
    """A file written with a relative path ends up in the workspace folder."""
    run_python_file(write(ws, "job.py", "open('made.txt', 'w').write('hi')"), ws)
    assert (ws / "made.txt").read_text() == "hi"


def test_lots_of_output_is_truncated(ws):
    """Output past the limit keeps its head and tail with a note of what was cut."""
    result = run_python_file(write(ws, "job.py", "for i in range(100000):\n    print(i)"), ws, output_limit=2000)
    assert result.reason == "ok" and result.truncated
    assert result.output.startswith("0\n1\n2\n") and result.output.endswith("99998\n99999\n")
    assert "output truncated" in result.output and len(result.output) < 2200


def test_failing_program_reports_its_traceback(ws):
    """An exception gives exit code 1 and the program's own traceback, not the bootstrap's."""
    result = run_python_file(write(ws, "job.py", "def f():\n    raise ValueError('boom')\nf()"), ws)
    assert (result.exit_code, result.reason) == (1, "error")
    assert "ValueError: boom" in result.output and "sandbox_boot" not in result.output


def test_exit_code_is_passed_through(ws):
    """sys.exit(3) is reported as exit code 3."""
    result = run_python_file(write(ws, "job.py", "import sys\nsys.exit(3)"), ws)
    assert (result.exit_code, result.reason) == (3, "error")


@pytest.mark.slow
def test_cpu_spinner_killed_at_cpu_limit(ws):
    """A busy loop is stopped by the kernel at its CPU limit."""
    result = run_python_file(write(ws, "job.py", "while True:\n    pass"), ws, cpu_seconds=1, wall_seconds=30)
    assert result.reason == "cpu" and result.exit_code in (-signal.SIGXCPU, -signal.SIGKILL)


@pytest.mark.slow
def test_memory_hog_fails_at_memory_limit(ws):
    """A program allocating without end fails at its address-space limit."""
    source = "x = []\nwhile True:\n    x.append(bytearray(10 ** 7))"
    result = run_python_file(write(ws, "job.py", source), ws, memory_mb=200, wall_seconds=30)
    assert result.reason == "memory" and "memory limit" in result.output


def test_kernel_sandbox_alone_holds_against_hostile_code(ws, tmp_path, targets):
    """With the static scan and the audit hook off, every attack of the hostile script fails."""
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "registry.db").write_text("agents")
    attack = targets.for_attacks(run_dir=str(run_dir), pids={"the test": os.getpid()}, out="outcomes.json",
                                 bus_socket=str(run_dir / "bus.ipc"))
    result = run_python_source(targets.source(attack).encode(), "attack.py", ws, static_scan=False,
                               wall_seconds=120)
    assert result.reason == "ok", result.output
    outcomes = json.loads((ws / "outcomes.json").read_text())
    assert len(outcomes) >= 25 and broken(outcomes) == {}, table(outcomes)
    assert (ws / "daemon-started").exists() and targets.daemons() == []
    assert targets.connections() == [] and targets.escaped_files() == [] and targets.bystander_alive()


def test_refusal_that_ends_a_program_is_named(ws):
    """A program that dies of a refused operation reports the rule that refused it."""
    result = run_python_source(b"import socket\nsocket.create_connection(('127.0.0.1', 9))\n", "net.py", ws,
                               static_scan=False)
    assert (result.reason, result.refused_by) == ("error", "landlock")
    assert "PermissionError" in result.output
    result = run_python_source(b"open('/usr/swarm-test', 'w')\n", "ro.py", ws, static_scan=False)
    assert result.refused_by in ("read_only_mount", "landlock")


def test_without_the_kernel_sandbox_the_hook_still_refuses(ws, tmp_path):
    """sandbox='none' keeps the previous behaviour: the audit hook refuses what the scan cannot see."""
    source = "import os\nup = '.' * 2\nopen(os.path.join(os.getcwd(), up, 'esc.txt'), 'w')"
    result = run_python_file(write(ws, "job.py", source), ws, sandbox="none")
    assert result.reason == "error" and "writing outside the workspace" in result.output
    assert result.refused_by == "audit_hook" and not (tmp_path / "esc.txt").exists()


@pytest.fixture
def pids_to_reap():
    """Pids a test learned about; any still alive at the end are killed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


def _boot_pids(ws: Path) -> list[int]:
    """Host pids of the sandbox processes running code of ``ws`` (the code's own pid is of its namespace)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"sandbox_boot" in cmd and os.fsencode(ws) in cmd and _alive(int(entry)):
            found.append(int(entry))
    return found


def _wrapper(tmp_path: Path) -> str:
    """A stand-in interpreter that leaves a grandchild in the group, then execs real Python."""
    wrapper = tmp_path / "python-with-grandchild"
    wrapper.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > grandchild.pid\nexec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.slow
def test_sleeper_killed_at_wall_timeout_with_its_group(ws, tmp_path, pids_to_reap):
    """A sleeping program is killed at the wall limit together with everything in its process group."""
    calls: list[float] = []
    waiter = threading.Event()

    def keep_alive(seconds: float) -> None:
        calls.append(seconds)
        waiter.wait(seconds)

    source = "import os, time\nopen('child.pid', 'w').write(str(os.getpid()))\ntime.sleep(300)"
    result = run_python_file(write(ws, "job.py", source), ws, wall_seconds=1, keep_alive=keep_alive,
                             python=_wrapper(tmp_path))
    grandchild = int((ws / "grandchild.pid").read_text())
    pids_to_reap.append(grandchild)
    assert (ws / "child.pid").read_text()  # the program ran (its pid is one of its PID namespace)
    assert result.reason == "timeout" and result.exit_code == -signal.SIGKILL
    assert not _boot_pids(ws) and not _alive(grandchild)
    assert len(calls) >= 2 and all(0 <= s <= POLL_SECONDS for s in calls)


def test_leftover_group_members_killed_after_normal_exit(ws, tmp_path, pids_to_reap):
    """A program that exits normally does not leave anything of its group behind."""
    result = run_python_file(write(ws, "job.py", "print('ok')"), ws, python=_wrapper(tmp_path))
    grandchild = int((ws / "grandchild.pid").read_text())
    pids_to_reap.append(grandchild)
    assert result.reason == "ok" and result.output == "ok\n"
    assert not _alive(grandchild)


def test_keep_alive_failure_kills_the_child(ws, pids_to_reap):
    """If keep_alive raises (the agent is being stopped), the child is killed and the error propagates."""
    class Stop(Exception):
        pass

    def keep_alive(seconds: float) -> None:
        if (ws / "child.pid").exists():
            raise Stop()
        threading.Event().wait(seconds)

    source = "import os, time\nopen('child.pid', 'w').write(str(os.getpid()))\ntime.sleep(300)"
    with pytest.raises(Stop):
        run_python_file(write(ws, "job.py", source), ws, wall_seconds=60, keep_alive=keep_alive)
    assert (ws / "child.pid").exists()
    assert not _boot_pids(ws)


def _wait_for(condition, timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        tick.wait(0.02)
    return True


@pytest.fixture
def helper_procs():
    """Helper processes a test starts; killed and reaped at the end."""
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.mark.slow
def test_child_dies_with_the_agent_that_runs_it(ws, helper_procs, pids_to_reap):
    """SIGKILL of the process running the sandbox (the agent) kills the sandboxed child too."""
    path = write(ws, "job.py", "import os, time\nopen('child.pid', 'w').write(str(os.getpid()))\ntime.sleep(300)")
    code = "import sys\nfrom agents.sandbox import run_python_file\nrun_python_file(sys.argv[1], sys.argv[2], wall_seconds=300)"
    agent = subprocess.Popen([sys.executable, "-c", code, str(path), str(ws)],
                             cwd=Path(__file__).resolve().parents[2])
    helper_procs.append(agent)
    assert _wait_for(lambda: (ws / "child.pid").exists() and (ws / "child.pid").read_text(), 30)
    children = _boot_pids(ws)
    pids_to_reap.extend(children)
    assert children
    agent.kill()
    agent.wait()
    assert _wait_for(lambda: not any(_alive(p) for p in children), 10)
