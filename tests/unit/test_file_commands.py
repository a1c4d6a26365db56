"""Tests of the file and web commands through registry.dispatch, on real files."""

from __future__ import annotations

import os

import pytest

from agents.commands.context import CommandContext
from agents.commands.registry import dispatch
from agents.workspace import Workspace

FILES = {"read_file", "write_to_file", "append_to_file", "delete_file", "search_files"}
ALL = FILES | {"google", "browse_website"}


@pytest.fixture
def ctx(tmp_path):
    """A command context with a real workspace under tmp_path."""
    return CommandContext(agent_id="writer", role="writer", ports=None, workspace=Workspace(tmp_path / "ws"),
                          settings={"file_read_limit": 50, "file_list_limit": 5, "file_write_limit": 1000})


def run(ctx, name, **args):
    return dispatch(ctx, name, args, ALL)


def test_write_read_append_delete(ctx, tmp_path):
    """The file commands do what they say on real files and report it."""
    obs = run(ctx, "write_to_file", file="poems/haiku.txt", text="the sea\n")
    assert obs.ok and "8 bytes" in obs.text and "poems/haiku.txt" in obs.text
    assert run(ctx, "append_to_file", file="poems/haiku.txt", text="waves\n").ok
    assert (tmp_path / "ws" / "poems" / "haiku.txt").read_text() == "the sea\nwaves\n"
    assert run(ctx, "read_file", file="poems/haiku.txt").text == "the sea\nwaves\n"
    assert run(ctx, "search_files", directory="").text == "poems/haiku.txt"
    assert run(ctx, "delete_file", file="poems/haiku.txt").ok
    assert not (tmp_path / "ws" / "poems" / "haiku.txt").exists()
    assert run(ctx, "search_files", directory=".").text == "No files in '.'."


def test_read_is_truncated_with_a_note(ctx):
    """A file longer than the read limit is cut, with a note saying how much was shown."""
    run(ctx, "write_to_file", file="long.txt", text="x" * 120)
    text = run(ctx, "read_file", file="long.txt").text
    assert text.startswith("x" * 50) and "[truncated: showing the first 50 of 120 bytes of long.txt]" in text


def test_listing_is_bounded(ctx):
    """search_files lists at most the configured number of files and says it stopped."""
    for i in range(8):
        run(ctx, "write_to_file", file=f"d/{i}.txt", text="x")
    text = run(ctx, "search_files", directory="d").text
    assert text.splitlines()[:5] == [f"d/{i}.txt" for i in range(5)] and "truncated after 5" in text


def test_write_limit(ctx):
    """Text over the write limit is refused and nothing is written."""
    obs = run(ctx, "write_to_file", file="big.txt", text="y" * 1001)
    assert not obs.ok and "limit of 1000" in obs.text
    assert not run(ctx, "read_file", file="big.txt").ok


@pytest.mark.parametrize("name, args, fragment", [
    ("read_file", {}, "missing file"),
    ("read_file", {"file": "a", "mode": "r"}, "unexpected mode"),
    ("read_file", {"path": "a"}, "missing file"),
    ("write_to_file", {"file": "a"}, "missing text"),
    ("write_to_file", {"file": "a", "text": 5}, "text must be a string"),
    ("write_to_file", {"file": ["a"], "text": "x"}, "must be a string"),
    ("read_file", {"file": "/etc/passwd"}, "absolute"),
    ("read_file", {"file": "../x"}, "'..'"),
    ("read_file", {"file": "missing.txt"}, "does not exist"),
    ("delete_file", {"file": "."}, "workspace folder itself"),
    ("search_files", {"directory": "/"}, "absolute"),
    ("search_files", {"directory": None}, "must be a string"),
    ("google", {"input": "sea haiku"}, "no web search backend"),
    ("browse_website", {"url": "http://x", "question": "q"}, "no web browsing backend"),
    ("browse_website", {"url": "http://x"}, "missing question"),
    ("execute_shell", {"command_line": "ls"}, "unknown command"),
])
def test_bad_calls_are_error_observations(ctx, name, args, fragment):
    """Wrong arguments, refused paths and unavailable tools give error observations, never exceptions."""
    obs = dispatch(ctx, name, args, ALL)
    assert not obs.ok and obs.text.startswith("error:") and fragment in obs.text


def test_args_not_an_object(ctx):
    """Args that are not an object are an error observation."""
    obs = dispatch(ctx, "read_file", ["a.txt"], ALL)
    assert not obs.ok and "must be an object" in obs.text


def test_no_workspace_configured(tmp_path):
    """Without a workspace the file commands explain they are unavailable."""
    bare = CommandContext(agent_id="a", role="r", ports=None)
    obs = dispatch(bare, "read_file", {"file": "a.txt"}, ALL)
    assert not obs.ok and "no workspace" in obs.text


def test_symlink_out_refused_through_commands(ctx, tmp_path):
    """A symlink leading out of the workspace is refused by read and write commands."""
    (tmp_path / "secret.txt").write_text("s")
    os.symlink(tmp_path / "secret.txt", tmp_path / "ws" / "link.txt")
    for name, args in (("read_file", {"file": "link.txt"}), ("write_to_file", {"file": "link.txt", "text": "x"}),
                       ("append_to_file", {"file": "link.txt", "text": "x"})):
        obs = run(ctx, name, **args)
        assert not obs.ok and "leading out" in obs.text
    assert (tmp_path / "secret.txt").read_text() == "s"


def test_writes_past_the_workspace_limit_are_refused(tmp_path):
    """With limits.workspace_mb set, write and append that would take the workspace past it fail with
    the figures; the files already there are intact; replacing a file counts only the difference."""
    mb = 1 << 20
    c = CommandContext(agent_id="writer", role="writer", ports=None, settings={"file_write_limit": 2 * mb},
                       workspace=Workspace(tmp_path / "ws", quota_bytes=2 * mb))
    assert run(c, "write_to_file", file="a.txt", text="a" * (mb - 10)).ok
    assert run(c, "write_to_file", file="sub/b.txt", text="b" * (mb // 2)).ok
    over = run(c, "write_to_file", file="c.txt", text="c" * (mb - 10))
    assert not over.ok and "would hold 2.5 MB, more than its limit of 2 MB (limits.workspace_mb)" in over.text
    over = run(c, "append_to_file", file="a.txt", text="a" * (mb // 2 + 100))
    assert not over.ok and "limits.workspace_mb" in over.text
    assert (tmp_path / "ws" / "a.txt").read_text() == "a" * (mb - 10)
    assert not (tmp_path / "ws" / "c.txt").exists()
    assert run(c, "write_to_file", file="a.txt", text="z" * (mb + 100)).ok  # replacing counts the difference
    assert c.workspace.usage() == mb + 100 + mb // 2
