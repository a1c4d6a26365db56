"""Commands bound to the catalog: signatures checked at import, found without a module list, dispatched safely."""

from __future__ import annotations

import inspect
import sys
import textwrap

import pytest

from agents.commands import registry
from agents.commands.binding import implements
from agents.commands.context import PORT_METHODS, AgentPorts, CommandContext, CommandError, Finished
from agents.commands.registry import CommandTable, discover
from agents.ports import BusPorts
from agents.workspace import Workspace
from swarm_core.catalog import CATALOG, Arg, CatalogError, Command, Port

EXTRA = CATALOG.with_commands([
    Command("greet", "Greet", (Arg("who", "whom to greet"), Arg("times", "how often", type="integer", optional=True))),
])


def _ctx(**kw):
    return CommandContext(agent_id="a", role="r", ports=kw.pop("ports", None), **kw)


# ------------------------------------------------------------------ binding


def test_every_catalog_entry_has_exactly_one_implementation():
    """The built-in table binds every catalog command, each to a function of agents/commands."""
    table = registry.builtin()
    assert set(table.bound) == set(CATALOG.names())
    assert all(impl.fn.__module__.startswith("agents.commands.") for impl in table.bound.values())


def test_implementing_an_unknown_command_fails_at_import():
    """@implements of a name the catalog does not have raises CatalogError at once."""
    with pytest.raises(CatalogError, match="no such command"):
        implements("teleport")


@pytest.mark.parametrize("source, fragment", [
    ("def f(ctx, who, times): ...", "cmds.f (implements 'greet'): parameters with a default [] differ"),
    ("def f(ctx, who, times=1, loud=False): ...", "differ from the catalog's arguments"),
    ("def f(ctx, times=1): ...", "differ from the catalog's arguments"),
    ("def f(ctx, who=None, times=1): ...", "parameters with a default ['times', 'who']"),
    ("def f(ctx, who, *more, times=1): ...", "plain keyword parameters"),
    ("def f(ctx, who, times=1, **more): ...", "plain keyword parameters"),
    ("def f(*, who, times=1): ...", "must take the CommandContext"),
])
def test_a_signature_that_differs_from_the_catalog_fails_at_import(source, fragment):
    """Parameter names or optionality that differ from the catalog entry raise CatalogError naming both."""
    scope: dict = {"__name__": "cmds"}
    exec(source, scope)
    with pytest.raises(CatalogError) as ei:
        implements("greet", catalog=EXTRA)(scope["f"])
    assert fragment in str(ei.value)


def test_a_matching_signature_binds_and_stays_callable():
    """A function whose keywords match the entry binds, and the binding calls it."""
    impl = implements("greet", catalog=EXTRA)(lambda ctx, who, times=1: f"hi {who}" * times)
    assert impl.command is EXTRA.get("greet")
    assert impl(_ctx(), who="bo", times=2) == "hi bohi bo"


def test_a_table_refuses_unbound_entries_foreign_bindings_and_doubles():
    """A catalog entry without implementation, an implementation of another catalog, or two of one fail."""
    builtins = discover()
    with pytest.raises(CatalogError, match="without an implementation: greet"):
        CommandTable(EXTRA, builtins)
    greet = implements("greet", catalog=EXTRA)(lambda ctx, who, times=1: who)
    with pytest.raises(CatalogError, match="not in the catalog"):
        CommandTable(CATALOG, [*builtins, greet])
    other = implements("greet", catalog=CATALOG.with_commands([Command("greet", "Greet", (Arg("who", "w"),))]))(
        lambda ctx, who: who)
    with pytest.raises(CatalogError, match="another catalog's 'greet'"):
        CommandTable(EXTRA, [*builtins, other])
    twice = implements("task_complete")(lambda ctx, reason: Finished(reason))
    with pytest.raises(CatalogError, match="'task_complete' is implemented twice"):
        CommandTable(CATALOG, [*builtins, twice])


def test_discovery_walks_the_package_without_a_module_list(tmp_path, monkeypatch):
    """A new module dropped into a commands package is found; a catalog entry it lacks is reported."""
    pkg = tmp_path / "extra_cmds"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "waiting.py").write_text(textwrap.dedent("""\
        from agents.commands.binding import implements
        from agents.commands.registry import dispatch as imported_not_defined  # noqa: F401

        @implements("do_nothing")
        def idle(ctx):
            return "idle"
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        found = discover("extra_cmds")
    finally:
        for name in ("extra_cmds", "extra_cmds.waiting"):
            sys.modules.pop(name, None)
    assert [impl.command.name for impl in found] == ["do_nothing"]
    assert found[0].fn.__module__ == "extra_cmds.waiting"
    with pytest.raises(CatalogError, match="without an implementation: start_agent"):
        CommandTable(CATALOG, found)


# ------------------------------------------------------------------ dispatch


@pytest.fixture
def table():
    """The built-in commands plus ``greet``, whose implementation fails in the ways a command can."""
    def greet(ctx, who, times=1):
        if who == "nobody":
            raise CommandError("nobody is there")
        if who == "boom":
            raise ValueError("boom is not a name")
        return None if who == "silence" else f"hello {who}" * int(times)

    return CommandTable(EXTRA, [*discover(), implements("greet", catalog=EXTRA)(greet)])


@pytest.mark.parametrize("name, args, text", [
    ("", {}, "error: the command name must be a non-empty string"),
    (["greet"], {}, "error: the command name must be a non-empty string"),
    ("teleport", {}, "error: unknown command 'teleport'; you may use: greet, task_complete"),
    ("read_file", {"file": "a"}, "error: unknown command 'read_file'; you may use: greet, task_complete"),
    ("greet", ["bo"], "error: args of greet must be an object"),
    ("greet", {"times": 2, "loud": True},
     "error: bad arguments for greet (missing who; unexpected loud); it takes: who, times"),
    ("task_complete", {}, "error: bad arguments for task_complete (missing reason); it takes: reason"),
    ("greet", {"who": "nobody"}, "error: nobody is there"),
    ("greet", {"who": "boom"}, "error: bad arguments for greet: boom is not a name"),
    ("greet", {"who": "bo", "times": "x"}, "error: bad arguments for greet: invalid literal for int() with base 10: 'x'"),
])
def test_bad_commands_are_error_observations(table, name, args, text):
    """Unknown or forbidden names, bad args and failing implementations give an error observation, never raise."""
    obs = table.dispatch(_ctx(), name, args, {"greet", "task_complete"})
    assert not obs.ok and not obs.finished and obs.text == text


def test_results_become_observations(table):
    """A string result is the observation, None an empty one, Finished ends the task; args None means none."""
    allowed = {"greet", "task_complete", "list_agents"}
    assert table.dispatch(_ctx(), "greet", {"who": "bo", "times": 2}, allowed).text == "hello bohello bo"
    assert table.dispatch(_ctx(), "greet", {"who": "silence"}, allowed).text == ""
    done = table.dispatch(_ctx(), "task_complete", {"reason": " the poem is written "}, allowed)
    assert done.ok and done.finished and done.text == "the poem is written"

    class NoAgents:
        def list_agents(self):
            return []

    assert table.dispatch(_ctx(ports=NoAgents()), "list_agents", None, allowed).text == "you have no sub-agents"


def test_describe_renders_the_seed_lines_from_the_catalog(table):
    """describe numbers the allowed commands seed style, with argument descriptions, skipping unknown names."""
    assert table.describe(["greet", "no_such", "task_complete"]) == [
        '1. Greet: "greet", args: "who": "<whom to greet>", "times": "<how often>"',
        '3. Task Complete (Shutdown): "task_complete", args: "reason": "<result or reason>"',
    ]
    assert registry.describe(["list_agents"]) == ['1. List GPT Agents: "list_agents", args: ']


# --------------------------------------------------------------------- ports


def _protocol_methods() -> dict[str, inspect.Signature]:
    return {n: inspect.signature(f) for n, f in vars(AgentPorts).items()
            if callable(f) and not n.startswith("_")}


def test_bus_ports_implement_every_agent_port_method():
    """BusPorts has every AgentPorts method (wait_for_news included) with the same parameter names."""
    methods = _protocol_methods()
    assert "wait_for_news" in methods
    for name, sig in methods.items():
        impl = getattr(BusPorts, name, None)
        assert callable(impl), f"BusPorts lacks {name}"
        assert list(inspect.signature(impl).parameters) == list(sig.parameters), name


def test_every_port_of_the_catalog_exists():
    """Each port an entry needs maps to AgentPorts methods (or the context's workspace); no method is unclaimed."""
    methods = set(_protocol_methods())
    used = {p for c in CATALOG for p in c.ports}
    assert used <= set(PORT_METHODS) == set(Port)
    for port, names in PORT_METHODS.items():
        assert set(names) <= methods, port
    assert {n for names in PORT_METHODS.values() for n in names} == methods
    assert PORT_METHODS[Port.WORKSPACE] == () and "workspace" in inspect.signature(CommandContext).parameters


class StrictPorts:
    """Ports that offer only the methods of the given ports and record every call."""

    RESULTS = {"start_agent": "started", "message_agent": "replied", "list_agents": [{"id": "p"}],
               "delete_agent": "stopped", "memory_add": 3, "memory_search": [{"id": 1, "text": "t", "score": 1.0}],
               "wait_for_news": True, "keep_alive": None}

    def __init__(self, ports):
        self.offered = {m for p in ports for m in PORT_METHODS[p]}
        self.calls: list[str] = []

    def __getattr__(self, name):
        if name not in self.offered:
            raise AttributeError(f"{name} is not a method of the declared ports")
        return lambda *a, **k: self.calls.append(name) or self.RESULTS[name]


def _samples():
    """Valid args for each command, taken from the catalog's own worked episodes."""
    out: dict[str, dict] = {}
    for cmd in CATALOG:
        for step in (cmd.episode.all_steps() if cmd.episode else ()):
            out.setdefault(step.command, step.args)
    return out


def test_commands_use_only_the_ports_they_declare(tmp_path):
    """Run with only their declared ports (and a workspace only if declared), commands succeed and call no other."""
    samples = _samples()
    # execute_python_file runs a real child process: tests/system/test_code_command.py covers it
    checked = [c for c in CATALOG if c.ports and c.name != "execute_python_file"]
    assert {c.name for c in checked} <= set(samples)
    for cmd in checked:
        ws = Workspace(tmp_path / cmd.name) if Port.WORKSPACE in cmd.ports else None
        args = samples[cmd.name]
        if ws is not None and "file" in args:
            ws.write_bytes(args["file"], b"x")
        if ws is not None and "directory" in args:
            ws.write_bytes(f"{args['directory']}/a.txt", b"x")
        ports = StrictPorts(cmd.ports)
        obs = registry.dispatch(_ctx(ports=ports, workspace=ws), cmd.name, args, {cmd.name})
        assert obs.ok, (cmd.name, obs.text)
        assert set(ports.calls) <= ports.offered
