"""Child-side bootstrap of ``execute_python_file`` (run as a script, never imported).

``python -I sandbox_boot.py SPEC_JSON`` where SPEC has ``workspace``, ``cpu``,
``memory``, ``fsize``, ``nofile``, ``nproc``, ``fd`` (a descriptor holding the
source the parent scanned), ``name``, ``parent`` (the parent's pid),
``report`` (a descriptor for one JSON line saying which rule refused the
program, if one did), ``project`` (the folder holding the ``agents``
package), ``sandbox`` (``kernel`` or ``none``), ``static_scan`` (bool) and,
for the kernel sandbox, ``root``, ``prepared`` and ``workspace_root`` (see
:mod:`agents.confine.nested`). In this order it:

0. asks the kernel for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``;
   the child has its own process group, so killing the agent's group would
   not reach it otherwise) and exits at once if the parent is already gone;
1. reads exactly the bytes the parent scanned (no second read of the
   workspace file, so it cannot be swapped after the scan);
2. with ``sandbox: kernel``, enters the nested kernel sandbox
   (:func:`agents.confine.nested.enter`: its own user, PID, network and
   mount namespaces, the exec root, a Landlock layer, no capabilities) and
   goes on as the process that runs the code;
3. sets its own hard resource limits (address space, CPU with SIGXCPU one
   second before SIGKILL, file size, open files, processes, no core dumps) —
   an unprivileged process can never raise them again;
4. with ``static_scan`` (the default), installs an audit hook (PEP 578,
   cannot be removed) that refuses process creation, signals to other
   processes, sockets, every ``ctypes`` event but the self-``dlopen`` that
   ``import ctypes`` does (numpy needs it), code objects built by hand,
   resource-limit changes, ``chdir``, links, writes outside the workspace,
   and reads outside the workspace and the Python installation; and
   neuters ``_posixsubprocess.fork_exec`` (not audited). This is a first
   line that explains refusals; its table lives in this module's globals,
   which the code can reach: only the kernel sandbox is a boundary;
5. runs the code as ``__main__`` with the workspace as the working folder.

A ``MemoryError`` that reaches the top exits with :data:`MEMORY_EXIT`. An
uncaught refusal (a ``PermissionError`` of the hook, an ``OSError`` such as
``EACCES``, ``EPERM``, ``EROFS`` or ``ENETUNREACH``) is reported on the
``report`` descriptor as ``{"rule": ..., "error": ...}``.
Stdlib only until step 2 loads :mod:`agents.confine` from ``project``.
"""

import builtins
import importlib.util
import json
import os
import resource
import signal
import sys
import traceback

MEMORY_EXIT = 86
PARENT_GONE_EXIT = 87

_BLOCKED = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill", "os.killpg",
    "os.chdir", "os.symlink", "os.link", "os.startfile", "os.add_dll_directory", "subprocess.Popen",
    "pty.spawn", "signal.pthread_kill", "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.sendto", "socket.sethostname", "resource.setrlimit", "resource.prlimit",
    "code.__new__", "pickle.find_class", "webbrowser.open",
})
_BLOCKED_IMPORTS = frozenset({"zmq", "psutil", "llama_cpp", "orchestrator", "agents", "bus", "memory"})
# event -> (indexes of paths written, index of dir_fd or None)
_WRITE_EVENTS = {
    "os.remove": ((0,), 1), "os.rmdir": ((0,), 1), "os.mkdir": ((0,), 2), "os.rename": ((0, 1), 2),
    "os.chmod": ((0,), 2), "os.chown": ((0,), 3), "os.truncate": ((0,), None), "os.utime": ((0,), 3),
    "shutil.rmtree": ((0,), 1),
}
_READ_EVENTS = {"os.listdir": 0, "os.scandir": 0}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _die_with_parent(parent):
    """SIGKILL this process when the parent (thread) that started it dies (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes  # the bootstrap's own use, before the audit hook exists
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(PARENT_GONE_EXIT)


def _set_limits(spec):
    cpu = int(spec["cpu"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    for name, key in (("RLIMIT_AS", "memory"), ("RLIMIT_FSIZE", "fsize"), ("RLIMIT_NOFILE", "nofile"),
                      ("RLIMIT_NPROC", "nproc")):
        if key not in spec:
            continue
        value = int(spec[key])
        resource.setrlimit(getattr(resource, name), (value, value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _read_source(fd):
    chunks = []
    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _path_checks(workspace):
    """``(check_write, check_read)`` for ``workspace``: each raises PermissionError for a path outside it."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                           sys.base_exec_prefix, *sys.path) if p}
    roots.add("/usr/share/zoneinfo")
    devices = {"/dev/null", "/dev/urandom", "/dev/random"}

    def under(path, base):
        return path == base or path.startswith(base.rstrip("/") + "/")

    def real(path, dir_fd=None):
        if isinstance(path, int):
            return None  # an already-open descriptor: it was checked when it was opened
        path = os.fsdecode(os.fspath(path))
        if dir_fd not in (None, -1, getattr(os, "AT_FDCWD", -100)) and not os.path.isabs(path):
            raise PermissionError("sandbox: paths relative to a directory descriptor are not allowed")
        return os.path.realpath(path)

    def check_write(path, dir_fd=None, parent_only=False):
        r = real(path, dir_fd)
        if r is None or r in devices:
            return
        if parent_only:  # remove/rename act on the name itself, not a symlink's target
            r = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(os.fsdecode(path)))),
                             os.path.basename(os.fsdecode(path)))
        if not under(r, workspace):
            raise PermissionError(f"sandbox: writing outside the workspace is not allowed: {r}")

    def check_read(path):
        r = real(path)
        if r is None or r in devices or under(r, workspace) or any(under(r, b) for b in roots):
            return
        raise PermissionError(f"sandbox: reading outside the workspace is not allowed: {r}")

    return check_write, check_read


def _make_hook(workspace):
    check_write, check_read = _path_checks(os.path.realpath(workspace))
    state = {"busy": False}
    # the tables are bound here, not looked up as globals the code could rebind
    blocked, blocked_imports = _BLOCKED, _BLOCKED_IMPORTS
    write_events, read_events = dict(_WRITE_EVENTS), dict(_READ_EVENTS)

    def hook(event, args):
        if state["busy"]:
            return
        if event in blocked or (event.startswith("ctypes.") and not _self_dlopen(event, args)):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "import" and args and str(args[0]).split(".")[0] in blocked_imports:
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
        if event not in ("open", "os.listdir", "os.scandir") and event not in write_events:
            return
        state["busy"] = True
        try:
            if event == "open":
                path, mode, flags = (list(args) + [None, None, None])[:3]
                writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                    mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS)
                (check_write if writing else check_read)(path)
            elif event in read_events:
                path = args[read_events[event]] if args else None
                check_read("." if path is None else path)
            else:
                paths, fd_at = write_events[event]
                dir_fd = args[fd_at] if fd_at is not None and len(args) > fd_at else None
                for i in paths:
                    if i < len(args):
                        check_write(args[i], dir_fd, parent_only=event in ("os.remove", "os.rename"))
        finally:
            state["busy"] = False

    return hook


def _self_dlopen(event, args):
    """``ctypes`` opening the running program itself (``import ctypes`` does): no new code."""
    return event == "ctypes.dlopen" and bool(args) and args[0] is None


def _blocked_fork_exec(*args, **kwargs):
    raise PermissionError("sandbox: starting processes is not allowed")


def _load_agents_package(project):
    """Import ``agents`` from ``project`` by location (``-I`` keeps the project off ``sys.path``)."""
    pkg = os.path.join(project, "agents")
    spec = importlib.util.spec_from_file_location("agents", os.path.join(pkg, "__init__.py"),
                                                  submodule_search_locations=[pkg])
    module = importlib.util.module_from_spec(spec)
    sys.modules["agents"] = module
    spec.loader.exec_module(module)


def _report(fd, exc, classify):
    """Write which rule refused the program (if one did) on the report descriptor."""
    try:
        rule = classify(exc)
        if rule is not None and fd is not None:
            os.write(fd, (json.dumps({"rule": rule, "error": str(exc)[:300]}) + "\n").encode())
    except Exception:  # noqa: BLE001 - reporting must never hide the program's own failure
        pass


def _run(code, name, spec, report_fd, classify):
    scope = {"__name__": "__main__", "__file__": name, "__builtins__": builtins, "__doc__": None}
    try:
        exec(code, scope)
    except MemoryError:
        sys.stderr.write(f"MemoryError: the program exceeded its memory limit "
                         f"({int(spec['memory']) >> 20} MiB)\n")
        sys.stderr.flush()
        try:
            sys.stdout.flush()
        except BaseException:  # noqa: BLE001 - exiting anyway
            pass
        os._exit(MEMORY_EXIT)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's program failed: show its traceback
        _report(report_fd, exc, classify)
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        traceback.print_exception(type(exc), exc, tb)
        sys.exit(1)


def main():
    spec = json.loads(sys.argv[1])
    _die_with_parent(int(spec["parent"]))
    source = _read_source(int(spec["fd"]))
    report_fd = spec.get("report")
    _load_agents_package(spec["project"])
    from agents.confine.denials import classify  # now: the project is not visible inside the sandbox

    if spec.get("sandbox") == "kernel":
        from agents.confine import nested

        nested.enter(spec)
    _set_limits(spec)
    name = spec["name"]
    code = compile(source, name, "exec", dont_inherit=True)
    if spec.get("static_scan", True):
        import _posixsubprocess
        _posixsubprocess.fork_exec = _blocked_fork_exec
        sys.addaudithook(_make_hook(spec["workspace"]))
    sys.argv = [name]
    _run(code, name, spec, report_fd, classify)


if __name__ == "__main__":
    main()
