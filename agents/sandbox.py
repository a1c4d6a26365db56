"""Run a Python file from the workspace in a limited child process.

:func:`run_python_file` reads the file once (bounded) and hands the bytes to
:func:`run_python_source`, which (with ``static_scan``, the default) scans
them statically (:mod:`agents.codescan`; a refusal raises
:class:`SandboxRefused` and nothing runs) and runs *the scanned bytes* (on an
anonymous memory file, so the file cannot be swapped after the scan) in
``python -I agents/sandbox_boot.py``:

- with ``sandbox="kernel"`` (the default), inside the nested kernel sandbox
  of :mod:`agents.confine.nested`: its own user, PID, network and mount
  namespaces, locked (``chroot``) into an exec root that holds only the
  Python installation (read-only) and the workspace (read-write), a
  Landlock layer on top, no capabilities; nothing it forks, detaches or
  daemonizes outlives the run. An agent passes the root its zygote
  prepared (``exec_root``); any other caller gets one built in a private
  mount namespace on an empty temporary folder;
- its own session and process group (``start_new_session``), working folder
  = the workspace, stdin = /dev/null, a minimal environment (``PATH``,
  ``LANG``, ``HOME`` and ``TMPDIR`` = the workspace); it gets SIGKILL if
  the thread that started it dies (``PR_SET_PDEATHSIG``), so killing the
  agent kills the code it runs even though they are in different groups —
  call this from a thread that outlives the run (the agent's loop thread);
- hard limits set by the child on itself before the code runs: CPU seconds
  (SIGXCPU, then SIGKILL a second later), address space, file size, open
  files, processes; plus, with ``static_scan``, the runtime audit hook
  described in ``sandbox_boot``;
- stdout and stderr captured together, keeping the head and the tail when
  the output is longer than ``output_limit`` bytes;
- a wall-clock limit: on expiry the whole process group gets SIGKILL.

The parent never blocks for long: it polls the child and the pipe and, in
between, calls ``keep_alive(seconds)`` (the agent runtime drives its bus
loop there, so heartbeats go on while the code runs). Whatever happens —
normal exit, timeout, or an exception from ``keep_alive`` — the child's
process group is killed and reaped before this function returns.
:attr:`RunResult.refused_by` names the rule that refused the operation the
program died of, if one did (:mod:`agents.confine.denials`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from importlib.util import decode_source
from pathlib import Path
from typing import Callable

from agents.codescan import Violation, report, scan
from agents.sandbox_boot import MEMORY_EXIT

BOOT = Path(__file__).with_name("sandbox_boot.py")
PROJECT = str(Path(__file__).resolve().parents[1])
KERNEL, NONE = "kernel", "none"
MAX_PROCESSES = 64  # RLIMIT_NPROC of the code: counted in its own user namespace
MAX_SOURCE_BYTES = 1 << 20
POLL_SECONDS = 0.05
GROUP_GONE_SECONDS = 2.0

# reasons
OK, ERROR, TIMEOUT, CPU, MEMORY, SIGNAL = "ok", "error", "timeout", "cpu", "memory", "signal"


class SandboxRefused(Exception):
    """The file was not run; ``violations`` say why."""

    def __init__(self, message: str, violations: list[Violation]) -> None:
        super().__init__(message)
        self.message = message
        self.violations = violations


@dataclass(frozen=True)
class RunResult:
    """How a sandboxed run ended."""

    exit_code: int | None  # negative: killed by that signal
    output: str
    reason: str  # ok / error / timeout / cpu / memory / signal
    truncated: bool
    cpu_seconds: float
    refused_by: str | None = None  # the rule that refused what the program died of

    def describe(self, limits: dict[str, float]) -> str:
        """One line for the model saying how the run ended."""
        if self.reason == OK:
            return "exit code 0"
        if self.reason == TIMEOUT:
            return f"killed: it ran longer than the wall-clock limit of {limits.get('wall', 0):g} s"
        if self.reason == CPU:
            return f"killed: it used more than its CPU limit of {limits.get('cpu', 0):g} s"
        if self.reason == MEMORY:
            return f"failed: it exceeded its memory limit of {limits.get('memory_mb', 0):g} MB"
        if self.reason == SIGNAL:
            return f"killed by signal {signal.Signals(-self.exit_code).name}" if self.exit_code else "killed"
        return f"exit code {self.exit_code}"


class _Output:
    """Keep the first and the last bytes of a stream, count the rest."""

    def __init__(self, limit: int) -> None:
        self.head_limit = max(0, limit - limit // 4)
        self.tail_limit = max(0, limit // 4)
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_size = 0
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self.tail_limit:
            self.tail.append(data)
            self.tail_size += len(data)
            while self.tail_size - len(self.tail[0]) >= self.tail_limit:
                self.tail_size -= len(self.tail.popleft())

    def text(self) -> tuple[str, bool]:
        tail = b"".join(self.tail)[-self.tail_limit:] if self.tail_limit else b""
        kept = len(self.head) + len(tail)
        if kept >= self.total:
            return (bytes(self.head) + tail).decode("utf-8", "replace"), False
        note = f"\n[... output truncated: {self.total - kept} of {self.total} bytes omitted ...]\n"
        return (bytes(self.head).decode("utf-8", "replace") + note + tail.decode("utf-8", "replace")), True


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_group_gone(pgid: int, timeout: float = GROUP_GONE_SECONDS) -> bool:
    """Poll until no process of the group is left (killed members take a moment to exit)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return True
        if time.monotonic() >= deadline:
            return False
        _killpg(pgid)
        time.sleep(0.005)


def read_source(path: str | os.PathLike[str]) -> bytes:
    """At most ``MAX_SOURCE_BYTES + 1`` bytes of the file (the check refuses anything longer)."""
    with open(path, "rb") as f:
        return f.read(MAX_SOURCE_BYTES + 1)


def check_source(data: bytes, shown: str, static_scan: bool = True) -> None:
    """Refuse (SandboxRefused, with the reasons) a file too large, or one the static scan refuses."""
    if len(data) > MAX_SOURCE_BYTES:
        v = [Violation(0, f"the file is larger than {MAX_SOURCE_BYTES} bytes")]
        raise SandboxRefused(report(v, shown), v)
    if not static_scan:
        return
    try:
        source = decode_source(data)
    except (UnicodeDecodeError, SyntaxError, LookupError) as exc:
        v = [Violation(0, f"the file is not readable Python text ({exc})")]
        raise SandboxRefused(report(v, shown), v) from None
    violations = scan(source)
    if violations:
        raise SandboxRefused(report(violations, shown), violations)


def run_python_file(path: str | os.PathLike[str], workspace_root: str | os.PathLike[str], *,
                    cpu_seconds: float = 10, memory_mb: int = 512, wall_seconds: float = 30,
                    output_limit: int = 8000, keep_alive: Callable[[float], None] | None = None,
                    python: str = sys.executable, sandbox: str = KERNEL, static_scan: bool = True,
                    exec_root: str | None = None) -> RunResult:
    """Scan, then run the file at ``path`` with the workspace as cwd, within the limits."""
    return run_python_source(read_source(path), os.fspath(path), workspace_root, cpu_seconds=cpu_seconds,
                             memory_mb=memory_mb, wall_seconds=wall_seconds, output_limit=output_limit,
                             keep_alive=keep_alive, python=python, sandbox=sandbox, static_scan=static_scan,
                             exec_root=exec_root)


def run_python_source(data: bytes, shown: str, workspace_root: str | os.PathLike[str], *,
                      cpu_seconds: float = 10, memory_mb: int = 512, wall_seconds: float = 30,
                      output_limit: int = 8000, keep_alive: Callable[[float], None] | None = None,
                      python: str = sys.executable, sandbox: str = KERNEL, static_scan: bool = True,
                      exec_root: str | None = None) -> RunResult:
    """Scan ``data`` (the file's bytes, shown as ``shown``), then run exactly those bytes."""
    check_source(data, shown, static_scan)
    workspace = os.path.realpath(workspace_root)
    src = os.memfd_create("swarm-source", os.MFD_CLOEXEC)
    report_r, report_w = os.pipe()
    stage = None
    try:
        os.write(src, data)
        spec = {"workspace": workspace, "cpu": max(1, int(cpu_seconds)), "memory": int(memory_mb) << 20,
                "fsize": 64 << 20, "nofile": 64, "fd": src, "name": shown, "parent": os.getpid(),
                "report": report_w, "project": PROJECT, "sandbox": sandbox, "static_scan": bool(static_scan)}
        if sandbox == KERNEL:
            stage = _kernel_spec(spec, workspace, exec_root)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8",
               "HOME": workspace, "TMPDIR": workspace}
        proc = subprocess.Popen(
            [python, "-I", str(BOOT), json.dumps(spec)], cwd=workspace, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
            pass_fds=(src, report_w))
    except BaseException:
        os.close(report_r)
        _remove_stage(stage)
        raise
    finally:
        os.close(src)
        os.close(report_w)
    try:
        result = _supervise(proc, wall_seconds, output_limit, keep_alive, max(1, int(cpu_seconds)))
    finally:
        refused_by = _read_report(report_r)
        _remove_stage(stage)
    return dataclasses.replace(result, refused_by=refused_by)


def _kernel_spec(spec: dict, workspace: str, exec_root: str | None) -> str | None:
    """Add the kernel sandbox's keys to ``spec``; return the temporary stage folder it made, if any."""
    from agents.confine import execroot

    spec["nproc"] = MAX_PROCESSES
    if exec_root and execroot.is_prepared(exec_root):
        spec.update(root=exec_root, prepared=True, workspace_root=None)
        return None
    stage = tempfile.mkdtemp(prefix="swarm-exec-")
    spec.update(root=stage, prepared=False, workspace_root=workspace)
    return stage


def _remove_stage(stage: str | None) -> None:
    if stage is not None:
        try:
            os.rmdir(stage)
        except OSError:
            pass


def _read_report(fd: int) -> str | None:
    """The rule the child reported (its last JSON line), or None; closes ``fd``."""
    try:
        os.set_blocking(fd, False)
        data = b""
        while len(data) < 1 << 16:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    for line in reversed(data.decode("utf-8", "replace").splitlines()):
        try:
            rule = json.loads(line).get("rule")
        except (ValueError, AttributeError):
            continue
        if isinstance(rule, str):
            return rule
    return None


def _supervise(proc: subprocess.Popen[bytes], wall_seconds: float, output_limit: int,
               keep_alive: Callable[[float], None] | None, cpu_limit: int) -> RunResult:
    """Collect output until the child ends or the wall limit passes; always kill its group."""
    out = _Output(output_limit)
    stdout = proc.stdout
    if stdout is None:  # cannot happen: we asked for a pipe
        raise RuntimeError("the child has no stdout pipe")
    fd = stdout.fileno()
    os.set_blocking(fd, False)
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + wall_seconds
    timed_out, eof, status, rusage = False, False, None, None
    try:
        while True:
            eof = _drain(fd, out) or eof
            if status is None:
                pid, status_, rusage_ = _wait4(proc.pid, os.WNOHANG)
                if pid:
                    status, rusage = status_, rusage_
                    _killpg(proc.pid)  # leftovers of the group must not hold the pipe open
            if status is not None and eof:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 and status is None:
                timed_out = True
                break
            if status is not None and remaining <= 0:
                break  # the pipe is held by something we cannot see; stop reading
            wait = min(POLL_SECONDS, max(0.0, remaining))
            if keep_alive is not None:
                keep_alive(wait)
            else:
                sel.select(wait)
    finally:
        _killpg(proc.pid)
        if status is None:
            _, status, rusage = _wait4(proc.pid, 0)
        proc.returncode = None if status < 0 else os.waitstatus_to_exitcode(status)
        if _wait_group_gone(proc.pid):
            end = time.monotonic() + 1.0  # nobody is left to write: read to the end, bounded
            while not _drain(fd, out) and time.monotonic() < end:
                sel.select(0.01)
        else:
            _drain(fd, out)
        sel.close()
        stdout.close()
    text, truncated = out.text()
    cpu = rusage.ru_utime + rusage.ru_stime if rusage is not None else 0.0
    return RunResult(proc.returncode, text, _reason(proc.returncode, timed_out, cpu, cpu_limit), truncated, cpu)


def _wait4(pid: int, options: int) -> tuple[int, int, os.struct_rusage | None]:
    """``os.wait4``; if someone else reaped the child, its status is lost (-1)."""
    try:
        return os.wait4(pid, options)
    except ChildProcessError:
        return pid, -1, None


def _drain(fd: int, out: _Output, max_chunks: int = 32) -> bool:
    """Read what is available (at most ``max_chunks`` reads, so a flood cannot starve the loop); True at EOF."""
    for _ in range(max_chunks):
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if not chunk:
            return True
        out.add(chunk)
    return False


def _reason(code: int | None, timed_out: bool, cpu: float, cpu_limit: int) -> str:
    if timed_out:
        return TIMEOUT
    if code is None:
        return ERROR
    if code == 0:
        return OK
    if code == MEMORY_EXIT:
        return MEMORY
    # The kernel's RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL at the hard one.
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and cpu >= cpu_limit - 0.05):
        return CPU
    if code < 0:
        return SIGNAL
    return ERROR
