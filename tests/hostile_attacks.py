"""Attacks a hostile agent with arbitrary code execution tries; each records whether it worked.

The tests copy this file's text into a workspace (or exec it in a confined
process) with ``TARGETS`` filled in; it runs every attack not listed in
``TARGETS["skip"]`` and writes ``{attack: {"succeeded": bool, "detail": str}}``
as JSON to ``TARGETS["out"]``. An attack that raises is recorded as failed
with the exception; "succeeded" means the attack did what it set out to do.
Some outcomes are only visible from outside (a daemon outliving the swarm, a
signal delivered): the test checks those itself. Stdlib only.
"""

import json
import os
import signal
import socket
import subprocess
import sys

TARGETS = {}  # filled in by the test: run_dir, pids, secret, tcp_port, abstract, unrelated_pid, ...


def _read(path):
    with open(path, "rb") as f:
        return True, f"read {len(f.read(4096))} bytes of {path}"


def _read_run_dir(t):
    found = []
    for folder, _dirs, files in os.walk(t["run_dir"]):
        for name in files:
            path = os.path.join(folder, name)
            if path in t.get("own_files", ()):
                continue
            try:
                with open(path, "rb") as f:
                    f.read(1)
                found.append(path)
            except OSError:
                pass
    listing = os.listdir(t["run_dir"])
    return bool(found), f"listed {listing}; read {found[:5]}"


def _environ(pid):
    return lambda t: _read(f"/proc/{pid}/environ")


def _find_secret(t):
    secret = t["secret"]
    if any(secret in v for v in os.environ.values()):
        return True, "in os.environ"
    hits = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if secret.encode() in f.read():
                        hits.append(entry)
            except OSError:
                pass
    return bool(hits), f"found in /proc/{hits}"


def _signal(pid):
    def attack(t):
        os.kill(pid, signal.SIGCONT)  # harmless if it arrives; arriving is the break
        return True, f"signal delivered to {pid}"
    return attack


def _swarm_cli(*args):
    def attack(t):
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": t["project"]}
        p = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--run-dir", t["run_dir"], *args],
                           env=env, capture_output=True, text=True, timeout=60)
        return p.returncode == 0, f"exit {p.returncode}: {(p.stderr or p.stdout).strip()[-200:]}"
    return attack


def _daemon(t):
    """Fork, setsid, fork again, exec a long sleeper tagged with the marker: it must not outlive the swarm."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", "import time\nopen('daemon-started', 'w')\n"
                                          "time.sleep(900)", t["marker"]])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return False, "daemon launched (whether it survives is checked from outside)"


def _hook_table_then_shell(t):
    notes = []
    try:
        [sys][0].modules['__main__']._BLOCKED.clear()
        notes.append("hook table cleared")
    except Exception as exc:  # noqa: BLE001 - recorded
        notes.append(f"table: {exc!r}")
    code = getattr([os][0], ''.join(reversed('metsys')))('id > shell-proof.txt 2>&1')
    proof = open("shell-proof.txt").read() if os.path.exists("shell-proof.txt") else ""
    return "uid=" in proof, f"{notes}; system() returned {code}; proof {proof[:80]!r}"


def _dir_fd_write(folder):
    def attack(t):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            out = os.open(t["escape_name"], os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            os.write(out, b"import os\n")
            os.close(out)
        finally:
            os.close(fd)
        return True, f"wrote {t['escape_name']} in {folder}"
    return attack


def _pidfd_kill(t):
    fd = os.pidfd_open(t["unrelated_pid"])
    signal.pidfd_send_signal(fd, signal.SIGKILL)
    return True, f"SIGKILL sent to {t['unrelated_pid']} through a pidfd"


def _write_in(folder):
    def attack(t):
        path = os.path.join(folder, t["escape_name"])
        with open(path, "w") as f:
            f.write("escaped")
        return True, f"wrote {path}"
    return attack


def _tcp(t):
    socket.create_connection(("127.0.0.1", t["tcp_port"]), timeout=5).close()
    return True, f"connected to 127.0.0.1:{t['tcp_port']}"


def _abstract(t):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect("\0" + t["abstract"])
    finally:
        s.close()
    return True, f"connected to @{t['abstract']}"


def _bus_socket(t):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(t["bus_socket"])
    finally:
        s.close()
    return True, f"connected to {t['bus_socket']}"


def attacks(t):
    """Every attack by name (those with a missing target are left out)."""
    out = {"read run dir (registry, keys, logs)": _read_run_dir,
           "read registry": lambda t: _read(os.path.join(t["run_dir"], "registry.db")),
           "read supervisor log": lambda t: _read(os.path.join(t["run_dir"], "logs", "supervisor.jsonl")),
           "read /etc/shadow": lambda t: _read("/etc/shadow"),
           "find the secret environment variable": _find_secret,
           "hook table cleared, then a shell": _hook_table_then_shell,
           "pidfd_send_signal to an unrelated process": _pidfd_kill,
           "tcp connect to 127.0.0.1": _tcp,
           "abstract unix socket connect": _abstract,
           "connect to the bus socket": _bus_socket,
           "fork, setsid, fork: a daemon": _daemon}
    for name, pid in t.get("pids", {}).items():
        out[f"read /proc/<{name}>/environ"] = _environ(pid)
        out[f"signal {name}"] = _signal(pid)
    for args in (("down",), ("kill", "--all"), ("freeze",), ("memory", "add", "pwned")):
        out[f"swarm {' '.join(args)}"] = _swarm_cli(*args)
    for label, folder in t.get("outside", {}).items():
        out[f"write in {label}"] = _write_in(folder)
        out[f"dir_fd write in {label}"] = _dir_fd_write(folder)
    return {k: v for k, v in out.items() if k not in t.get("skip", ())}


def main(t):
    results = {}
    for name, attack in attacks(t).items():
        try:
            ok, detail = attack(t)
        except BaseException as exc:  # noqa: BLE001 - the attack failed: record how
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        results[name] = {"succeeded": bool(ok), "detail": str(detail)[:400]}
    with open(t["out"], "w") as f:
        json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main(TARGETS)
