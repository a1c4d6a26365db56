"""A stand-in zygote for tests of the agent sandbox: ``python tests/agent_sandbox_harness.py CONFIG_JSON``.

Like the real zygote it prepares the sandbox once (:func:`prepare_zygote`:
user and mount namespaces, the exec root, read-only mounts) and forks agent
processes that confine themselves (:func:`confine_agent`) before running.
It forks a *sibling* agent that idles until the harness ends, then an
*attacker* agent that runs ``tests/hostile_attacks.py`` with
``CONFIG["targets"]`` (plus the sibling's pid) inside its own sandbox. It
prints one JSON line: ``{"sibling": pid, "attacker_exit": code, "confined_us": N}``.
CONFIG has ``run_dir``, ``workspace``, ``endpoint``, ``attacks`` (the file)
and ``targets`` (with ``duties``: the bus port and the attacker's log file, which it must still
reach after the attacks; the outcome goes to ``duties.json`` in its workspace).
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from agents.confine.agent import confine_agent, prepare_zygote  # noqa: E402
from swarm_core.spec import AgentSpec  # noqa: E402


def spec_for(cfg: dict, agent_id: str) -> AgentSpec:
    return AgentSpec(agent_id=agent_id, name=agent_id, role_name="coder", role="r", task="t",
                     commands=("execute_python_file",), endpoint=cfg["endpoint"], run_dir=cfg["run_dir"],
                     workspace=cfg["workspace"], per_agent_workspace=True, settings={"sandbox": "kernel"})


def sibling(cfg: dict, hold: int) -> None:
    """Confine, say so, then idle until the harness closes ``hold``."""
    confine_agent(spec_for(cfg, "sibling"))
    os.read(hold, 1)
    os._exit(0)


def attacker(cfg: dict, sibling_pid: int, report: int) -> None:
    with open(cfg["attacks"]) as f:  # read before: the sandbox keeps tests/ out of reach
        code = compile(f.read(), cfg["attacks"], "exec")
    spec = confine_agent(spec_for(cfg, "attacker"))
    os.write(report, str(spec.settings["confined_us"]).encode())
    os.chdir(os.path.join(cfg["workspace"], "attacker"))
    targets = dict(cfg["targets"])
    targets["pids"] = {**targets.get("pids", {}), "sibling agent": sibling_pid}
    namespace = {"__name__": "hostile_attacks"}
    exec(code, namespace)
    namespace["main"](targets)
    duties(targets["duties"])


def duties(d: dict) -> None:
    """What an agent must still be able to do inside its sandbox; written to ``duties.json``."""
    import socket

    done = {}
    for name, act in (("workspace", lambda: open("duty.txt", "w").write("done")),
                      ("log", lambda: open(d["log"], "a").write("{}\n")),
                      ("bus_port", lambda: socket.create_connection(("127.0.0.1", d["bus_port"]), 5)
                       .close())):
        try:
            act()
            done[name] = True
        except OSError:
            done[name] = False
    with open("duties.json", "w") as f:
        json.dump(done, f)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    prepare_zygote(spec_for(cfg, "sibling").to_dict())
    hold_r, hold_w = os.pipe()
    sib = os.fork()
    if sib == 0:
        os.close(hold_w)
        sibling(cfg, hold_r)
    os.close(hold_r)
    report_r, report_w = os.pipe()
    att = os.fork()
    if att == 0:
        os.close(report_r)
        code = 0
        try:
            attacker(cfg, sib, report_w)
        except BaseException:  # noqa: BLE001 - a harness failure shows in the exit code and stderr
            import traceback

            traceback.print_exc()
            code = 70
        os._exit(code)
    os.close(report_w)
    _, status = os.waitpid(att, 0)
    confined_us = os.read(report_r, 64).decode() or "0"
    os.close(hold_w)
    os.waitpid(sib, 0)
    print(json.dumps({"sibling": sib, "attacker_exit": os.waitstatus_to_exitcode(status),
                      "confined_us": int(confined_us)}))


if __name__ == "__main__":
    main()
