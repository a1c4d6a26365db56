"""The command catalog: well-formed entries, checked episodes, lookups, and the README kept true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from swarm_core.catalog import CATALOG, Arg, Catalog, CatalogError, Command, Episode, Port, Step, delegation

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_episode_shows_its_own_command_and_ends_with_task_complete():
    """An entry's worked episode uses that entry's command and finishes with task_complete."""
    with_episode = [c for c in CATALOG if c.episode is not None]
    assert with_episode
    for cmd in with_episode:
        used = [s.command for s in cmd.episode.all_steps()]
        assert cmd.name in used, cmd.name
        assert cmd.episode.steps[-1].command == "task_complete", cmd.name


def test_delegation_starts_the_child_it_is_given():
    """delegation(child) starts that child and names it in its steps; the catalog's own starts a poet."""
    start = delegation("scribe").steps[0]
    assert start.command == "start_agent" and start.args["name"] == "scribe"
    assert CATALOG.get("start_agent").episode.steps[0].args["name"] == "poet"


def test_lookups():
    """get, names, in and len see every entry; unknown or non-string names are simply absent."""
    assert CATALOG.get("write_to_file").arg_names == ("file", "text")
    assert CATALOG.get("no_such") is None and CATALOG.get(None) is None  # type: ignore[arg-type]
    assert "read_file" in CATALOG and "no_such" not in CATALOG and 3 not in CATALOG
    assert len(CATALOG) == len(CATALOG.names()) == len(set(CATALOG.names()))
    start = CATALOG.get("start_agent")
    assert start.required == ("name", "task") and start.optional == {"prompt", "role", "budget"}
    assert start.ports == {Port.SUPERVISOR}


def test_arg_problems_name_missing_and_unexpected_arguments():
    """arg_problems lists missing required and unexpected names, sorted; optional ones may be left out."""
    start = CATALOG.get("start_agent")
    assert start.arg_problems({"name": "a", "task": "t"}) == []
    assert start.arg_problems({"task": "t", "colour": 1, "age": 2}) == ["missing name", "unexpected age, colour"]


def test_with_commands_adds_without_changing_the_original():
    """with_commands returns a larger catalog and leaves the built-in one as it was."""
    extra = Command("ping", "Ping", (Arg("host", "host"),))
    bigger = CATALOG.with_commands([extra])
    assert bigger.get("ping") is extra and "ping" not in CATALOG
    assert bigger.names()[:-1] == CATALOG.names()


@pytest.mark.parametrize("build, fragment", [
    (lambda: Arg("Bad-Name", "x"), "lower-case identifier"),
    (lambda: Arg("n", "x", type="int"), "type 'int'"),
    (lambda: Arg("n", "x", type="integer", max_length=3), "strings only"),
    (lambda: Arg("n", "x", max_length=0), "at least 1"),
    (lambda: Arg("n", "x", pattern="(unclosed"), "does not compile"),
    (lambda: Command("two", "Two", (Arg("a", "a"), Arg("a", "again"))), "declared twice"),
    (lambda: Command("ported", "Ported", (), frozenset({"telepathy"})), "unknown port(s) telepathy"),
    (lambda: CATALOG.with_commands([Command("read_file", "Again")]), "in the catalog twice"),
    (lambda: Catalog((Command("solo", "Solo", (), frozenset(), Episode("n", "r", "t", (
        Step("vanish", {}, "gone"),))),)), "unknown command 'vanish'"),
    (lambda: CATALOG.with_commands([Command("shown", "Shown", (), frozenset(), Episode("n", "r", "t", (
        Step("write_to_file", {"file": "a"}, "half"),)))]), "write_to_file step has missing text"),
])
def test_malformed_entries_fail_when_built(build, fragment):
    """A malformed argument, command or catalog raises CatalogError naming what is wrong."""
    with pytest.raises(CatalogError) as ei:
        build()
    assert fragment in str(ei.value)


def test_the_readme_lists_every_command_with_its_arguments():
    """The README's list of commands a role may allow is exactly the catalog, arguments included."""
    text = README.read_text(encoding="utf-8")
    start = text.index("Commands a role may allow")
    paragraph = text[start:text.index("\n\n", start)]
    listed = dict(re.findall(r"`(\w+)\(([\w, ]*)\)`", paragraph))
    assert listed == {c.name: ", ".join(c.arg_names) for c in CATALOG}
