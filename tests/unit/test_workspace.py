"""Tests of agents.workspace: every path resolves inside the jail or is refused with a reason."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from agents.commands.context import CommandError
from agents.workspace import Workspace


@pytest.fixture
def env(tmp_path):
    """A workspace full of traps, plus an outside folder with a secret; sockets closed after."""
    ws_dir = tmp_path / "ws"
    outside = tmp_path / "outside"
    ws_dir.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (ws_dir / "sub").mkdir()
    (ws_dir / "sub" / "real.txt").write_text("inside")
    (ws_dir / "file.txt").write_text("plain")
    links = {
        "to_etc": "/etc", "passwd_link": "/etc/passwd", "chain1": "chain2",
        "chain2": str(outside / "secret.txt"), "linkdir": str(outside), "zero": "/dev/zero",
        "loop_a": "loop_b", "loop_b": "loop_a", "broken_out": "/nonexistent/x", "dev_null": "/dev/null",
        "dot_link": "..", "sub/up": "../../outside", "inner_link": "sub/real.txt",
        "abs_inside": str(ws_dir / "sub"), "broken_in": "sub/missing.txt", "chain_out_dir": "linkdir",
    }
    for name, target in links.items():
        os.symlink(target, ws_dir / name)
    os.mkfifo(ws_dir / "pipe")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock_path = ws_dir / "sock"
    if len(str(sock_path)) < 100:
        sock.bind(str(sock_path))
    else:  # a long tmp path: bind relative to a short cwd instead
        cwd = os.getcwd()
        os.chdir(ws_dir)
        try:
            sock.bind("sock")
        finally:
            os.chdir(cwd)
    if os.geteuid() == 0:
        os.mknod(ws_dir / "chardev", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    yield Workspace(ws_dir), ws_dir, outside
    sock.close()


HOSTILE = [
    "/etc/passwd", "/", "/dev/zero", "../outside/secret.txt", "a/../../outside/secret.txt", "sub/../..", "..",
    "sub/./../../x", "..\\..\\etc\\passwd", "sub\\..\\..\\x", "C:\\Windows\\system32", "c:/x",
    "\\\\server\\share\\x", "~root/.ssh/id_rsa", "~", "~/x", "", "   ", ".", "./", "a\x00b", "x" * 300,
    "a/" * 600, "to_etc/passwd", "to_etc", "passwd_link", "chain1", "linkdir/secret.txt", "linkdir",
    "chain_out_dir/secret.txt", "zero", "pipe", "sock", "loop_a", "broken_out", "broken_in", "file.txt/x",
    "file.txt/../file.txt", "dev_null", "dot_link/outside/secret.txt", "dot_link", "sub/up/secret.txt",
    "file:///etc/passwd", "a\nb", "tab\there", "\x1b[31m", "\udcff", 123, None, ["a"],
]


@pytest.mark.parametrize("path", HOSTILE, ids=[repr(p)[:40] for p in HOSTILE])
def test_hostile_paths_refused(env, path):
    """Each hostile path is refused by resolve, read and write, with a reason, and nothing outside changes."""
    ws, ws_dir, outside = env
    before = sorted(p.name for p in outside.iterdir())
    for attempt in (lambda: ws.resolve(path), lambda: ws.read_bytes(path, 100),
                    lambda: ws.write_bytes(path, b"pwned"), lambda: ws.delete(path)):
        with pytest.raises(CommandError) as info:
            attempt()
        text = str(info.value)
        assert text.startswith(("refused path", "cannot")) and ":" in text
    assert sorted(p.name for p in outside.iterdir()) == before
    assert (outside / "secret.txt").read_text() == "secret"
    assert os.path.islink(ws_dir / "passwd_link")


def test_there_are_at_least_thirty_hostile_paths():
    """The hostile list keeps covering at least 30 distinct tricks."""
    assert len({repr(p) for p in HOSTILE}) >= 30


def test_char_device_refused(env):
    """A character device inside the workspace is refused (root can create one)."""
    ws, ws_dir, _ = env
    if not (ws_dir / "chardev").exists():
        pytest.skip("creating a device node needs root")
    with pytest.raises(CommandError, match="character device"):
        ws.read_bytes("chardev", 10)


@pytest.mark.parametrize("path, reason", [
    ("/etc/passwd", "absolute"), ("../x", "'..'"), ("~root", "home"), ("", "empty"), ("a\x00", "NUL"),
    ("to_etc/passwd", "leading out"), ("loop_a", "loop"), ("broken_in", "broken"), ("pipe", "FIFO"),
    ("sock", "socket"), ("file.txt/x", "not a folder"), ("C:/x", "drive"), ("a\\b", "backslash"),
    ("x" * 300, "255 bytes"), ("a/" * 600, "characters long"), (".", "workspace folder itself"),
])
def test_refusal_reasons_are_specific(env, path, reason):
    """The refusal names the actual reason."""
    with pytest.raises(CommandError, match=reason):
        env[0].resolve(path)


def test_nested_paths_work(env):
    """Writing a nested path creates folders inside; read, append, list and delete work."""
    ws, ws_dir, _ = env
    real = ws.write_bytes("notes/2024/day.txt", b"one\n")
    assert real == ws_dir / "notes" / "2024" / "day.txt"
    ws.write_bytes("./notes//2024/day.txt", b"two\n", append=True)
    assert ws.read_bytes("notes/2024/day.txt", 100) == (b"one\ntwo\n", 8)
    assert ws.read_bytes("notes/2024/day.txt", 3) == (b"one", 8)
    files, truncated = ws.list_files("notes", 10)
    assert files == ["notes/2024/day.txt"] and not truncated
    ws.delete("notes/2024/day.txt")
    assert not real.exists()


def test_encoded_tricks_stay_literal(env):
    """Percent-encoded or look-alike dots are plain names on POSIX and stay inside."""
    ws, ws_dir, _ = env
    for path in ("%2e%2e/%2e%2e/x", "\uff0e\uff0e/x", "\u2025/x", "..x/y", "x../y", "...", "a..b"):
        real = ws.resolve(path)
        assert str(real).startswith(str(ws_dir) + os.sep), path


def test_symlinks_inside_are_followed(env):
    """Symlinks that stay inside (relative or absolute) resolve to their target."""
    ws, ws_dir, _ = env
    assert ws.resolve("inner_link") == ws_dir / "sub" / "real.txt"
    assert ws.read_bytes("inner_link", 100)[0] == b"inside"
    assert ws.resolve("abs_inside/real.txt") == ws_dir / "sub" / "real.txt"


def test_delete_of_symlink_removes_the_link(env):
    """delete() on an inside symlink removes the link, not its target."""
    ws, ws_dir, _ = env
    ws.delete("inner_link")
    assert not os.path.lexists(ws_dir / "inner_link")
    assert (ws_dir / "sub" / "real.txt").read_text() == "inside"


def test_folders_are_not_files(env):
    """Reading, writing or deleting a folder is an error, and listing a file is too."""
    ws = env[0]
    for attempt in (lambda: ws.read_bytes("sub", 10), lambda: ws.write_bytes("sub", b"x"),
                    lambda: ws.delete("sub"), lambda: ws.list_files("file.txt", 10)):
        with pytest.raises(CommandError, match="folder"):
            attempt()


def test_missing_file(env):
    """Reading or deleting a missing file says it does not exist."""
    ws = env[0]
    with pytest.raises(CommandError, match="does not exist"):
        ws.read_bytes("nope.txt", 10)
    with pytest.raises(CommandError, match="does not exist"):
        ws.delete("sub/nope.txt")


def test_listing_is_bounded_and_skips_links_out(env):
    """The listing stops at the limit and never descends into symlinked folders."""
    ws, ws_dir, _ = env
    for i in range(15):
        ws.write_bytes(f"many/{i:02d}.txt", b"x")
    files, truncated = ws.list_files("many", 10)
    assert truncated and files == [f"many/{i:02d}.txt" for i in range(10)]
    everything, _ = ws.list_files(".", 1000)
    assert not any(f.startswith(("linkdir/", "to_etc/", "dot_link/")) for f in everything)
    assert "sub/real.txt" in everything


def test_symlink_swapped_in_after_resolve_is_not_followed(env):
    """A folder replaced by a symlink after the check is refused by the descriptor walk."""
    ws, ws_dir, outside = env
    real = ws.resolve("victim/f.txt")
    (ws_dir / "victim").mkdir()
    real = ws.resolve("victim/f.txt")
    (ws_dir / "victim").rmdir()
    os.symlink(outside, ws_dir / "victim")
    with pytest.raises(OSError):
        dfd, _ = ws._open_parent(real, create=True)
        os.close(dfd)
    assert not (outside / "f.txt").exists()


def test_per_agent_subfolders_are_isolated(tmp_path):
    """An agent's jail is its own folder: siblings and the shared root are out of reach."""
    alice = Workspace(tmp_path / "ws", agent_subdir="alice")
    bob = Workspace(tmp_path / "ws", agent_subdir="bob")
    alice.write_bytes("x.txt", b"alice's")
    assert (tmp_path / "ws" / "alice" / "x.txt").read_bytes() == b"alice's"
    with pytest.raises(CommandError, match="does not exist"):
        bob.read_bytes("x.txt", 10)
    with pytest.raises(CommandError, match="'..'"):
        bob.read_bytes("../alice/x.txt", 10)
    os.symlink("../alice", tmp_path / "ws" / "bob" / "peek")
    with pytest.raises(CommandError, match="leading out"):
        bob.read_bytes("peek/x.txt", 10)
    assert bob.list_files(".", 10) == ([], False)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "a\x00", "x" * 300])
def test_bad_agent_subfolder_names(tmp_path, name):
    """An agent folder name that is not one plain name is a configuration error."""
    with pytest.raises(ValueError):
        Workspace(tmp_path, agent_subdir=name)


def test_agent_subfolder_that_is_a_symlink_is_refused(tmp_path):
    """A per-agent folder that is a symlink (e.g. planted to point out) is refused."""
    (tmp_path / "ws").mkdir()
    os.symlink("/etc", tmp_path / "ws" / "mallory")
    with pytest.raises(ValueError, match="not a real folder"):
        Workspace(tmp_path / "ws", agent_subdir="mallory")


def test_workspace_root_behind_a_symlink(tmp_path):
    """A root given through a symlink works: the jail is its real path."""
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "alias")
    ws = Workspace(tmp_path / "alias")
    assert ws.write_bytes("a.txt", b"x") == Path(os.path.realpath(tmp_path / "real")) / "a.txt"
