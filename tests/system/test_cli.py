"""System tests of the swarm CLI's error handling and listings."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.system.conftest import base_config, cmd

pytestmark = [pytest.mark.timeout(120)]

BAD = {
    "negative depth": ({"limits": {"max_depth": -3}}, "limits.max_depth"),
    "unknown root": ({"root": "nobody"}, "root role 'nobody'"),
    "unknown command": ({"agents": {"manager": {"role": "m", "commands": ["rm_rf"]}}}, "rm_rf"),
    "unknown key": ({"colour": "blue"}, "colour"),
    "bad provider": ({"llm": {"provider": "telepathy"}}, "llm.provider"),
    "missing cassette": ({"llm": {"provider": "replay", "cassette": "nope.yaml"}}, "llm.cassette"),
    "workspace not a directory": ({"workspace": "/dev/null"}, "workspace: /dev/null exists and is not a directory"),
    "root named like a service": ({"root": "supervisor", "agents": {"supervisor": {"role": "m"}}},
                                  "role 'supervisor' is named like"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_configs_one_line_exit_2(swarm, case):
    """Each bad config makes validate and up print one error line naming file and field, exit 2."""
    over, needle = BAD[case]
    run = swarm(base_config(**over), {})
    for args in (("validate", str(run.config_path)), ("up", str(run.config_path), "--detach")):
        p = run.cli(*args)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, p.stderr
        assert str(run.config_path) in lines[0] and needle in lines[0]
        assert "Traceback" not in p.stderr
    assert not (run.run_dir / "supervisor.pid").exists()


def test_malformed_cassette_is_caught_by_validate(swarm):
    """A cassette that is not valid YAML fails validate (not only up), naming the cassette and its line."""
    run = swarm(base_config(), {})
    (run.dir / "cassette.yaml").write_text("manager:\n  - {command: [unclosed\n")
    p = run.cli("validate", str(run.config_path))
    assert p.returncode == 2 and "llm.cassette" in p.stderr and "cassette.yaml:" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_malformed_yaml_names_the_line(swarm):
    """Broken YAML is reported with its line number, exit 2."""
    run = swarm(base_config(), {})
    run.config_path.write_text("name: x\ngoal: [oops\nroot: m\n")
    p = run.cli("validate", str(run.config_path))
    assert p.returncode == 2 and "invalid YAML" in p.stderr and f"{run.config_path}:" in p.stderr


def test_commands_without_a_swarm_say_so(swarm):
    """ps, kill and down on an empty run directory give one clear line, no traceback."""
    run = swarm(base_config(), {})
    for args in (("ps",), ("kill", "x"), ("send", "x", "hi"), ("freeze",), ("logs",)):
        p = run.cli(*args)
        assert p.returncode != 0 and "Traceback" not in p.stderr, (args, p.stderr)
        assert "no swarm" in p.stderr or "no logs" in p.stderr, (args, p.stderr)
    p = run.cli("down")
    assert p.returncode == 0 and "no swarm running" in p.stdout


@pytest.mark.slow
def test_listings_and_inspect(swarm):
    """ps/tree/inspect --json agree on the tree; send delivers to the inbox; unknown ids are clear errors."""
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="wait", role="worker"),
                                     cmd("do_nothing")], "repeat": True},
           "w": {"responses": [cmd("do_nothing")], "repeat": True}}
    run = swarm(base_config(), cas)
    run.up()
    run.wait_for(lambda a: a.get("w", {}).get("status") in ("running", "waiting"), what="w up")
    tree = json.loads(run.cli("tree", "--json", check=True).stdout)
    assert tree[0]["id"] == "manager" and tree[0]["children"][0]["id"] == "w"
    info = json.loads(run.cli("inspect", "w", "--json", check=True).stdout)
    assert info["parent"] == "manager" and info["task"] == "wait" and "cost_usd" in info
    assert run.cli("send", "w", "hello from the operator", check=True).returncode == 0
    from tests.system.conftest import wait_until

    wait_until(lambda: [e for e in run.log_events("w") if e.get("event") == "inbox_received"
                        and e.get("sender") == "operator"], what="operator message in w's inbox")
    for args in (("inspect", "ghost"), ("kill", "ghost"), ("send", "ghost", "x")):
        p = run.cli(*args)
        assert p.returncode != 0 and "ghost" in p.stderr and "Traceback" not in p.stderr
    assert "manager" in run.cli("ps", check=True).stdout
    assert yaml.safe_load(run.cli("logs", "w", "--json", "-n", "5", check=True).stdout.splitlines()[0])


@pytest.mark.slow
def test_malformed_body_to_the_supervisor_gets_an_error_reply(swarm):
    """A request with a body that does not decode, sent to a real supervisor, gets protocol_error with the
    reason at once; the next valid request on the same connection is served."""
    import msgpack
    import zmq

    from bus import protocol as p
    from orchestrator.runctl import endpoint_of, operator_credential
    from swarm_core import messages as m

    run = swarm(base_config(), {"manager": {"responses": [cmd("do_nothing")], "repeat": True}})
    run.up()
    run.wait_for(lambda a: a.get("manager", {}).get("status") in ("running", "waiting"), what="manager up")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    try:
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IDENTITY, b"cli-malformed")
        operator_credential(run.run_dir).apply_client(sock)  # an operator session, like the CLI's
        sock.connect(endpoint_of(run.run_dir))

        def ask(msg_id: str, body: bytes) -> p.Message:
            header = p.make_header(p.Kind.REQUEST, m.ListAgents.TYPE, "cli-malformed", "supervisor",
                                   msg_id=msg_id, deadline=time.time() + 30)
            sock.send_multipart([p.encode_header(header), body])
            assert sock.poll(15_000), f"no answer to {msg_id}"
            return p.decode(sock.recv_multipart())

        bad = ask("bad-1", msgpack.packb({"scope": "all"}))
        assert bad.header.kind is p.Kind.ERROR and bad.header.corr_id == "bad-1"
        assert bad.body.code == "protocol_error" and "not an array" in bad.body.message
        good = ask("good-1", p.encode_body(m.ListAgents("all")))
        assert good.header.kind is p.Kind.REPLY and [a["id"] for a in good.body.agents] == ["manager"]
    finally:
        sock.close()
        ctx.term()
