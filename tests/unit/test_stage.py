"""The workspace copy executed code works on: staged in, changes copied back through the jail and limit."""

from __future__ import annotations

import os

import pytest

from agents.stage import LINK, stage_in, stage_out
from agents.workspace import Workspace

MB = 1 << 20


@pytest.fixture
def dirs(tmp_path):
    """A workspace with a file, a folder and a link; an empty scratch folder."""
    ws, scratch = tmp_path / "ws", tmp_path / "scratch"
    (ws / "data").mkdir(parents=True)
    scratch.mkdir()
    (ws / "keep.txt").write_text("keep")
    (ws / "data" / "in.csv").write_text("1,2,3")
    (ws / "gone.txt").write_text("to delete")
    os.symlink("keep.txt", ws / "alias")
    return ws, scratch


def test_stage_in_copies_the_workspace(dirs):
    """Files, folders and links are copied; the manifest marks the links."""
    ws, scratch = dirs
    (scratch / "old-run.txt").write_text("left from a previous run")
    manifest = stage_in(str(ws), str(scratch))
    assert sorted(manifest) == ["alias", "data/in.csv", "gone.txt", "keep.txt"] and manifest["alias"] == LINK
    assert (scratch / "data" / "in.csv").read_text() == "1,2,3"
    assert os.readlink(scratch / "alias") == "keep.txt"
    assert not (scratch / "old-run.txt").exists()


def test_stage_out_copies_changes_back_and_deletes(dirs):
    """New and changed files come back, deleted ones go, links and FIFOs the code made are left out."""
    ws, scratch = dirs
    manifest = stage_in(str(ws), str(scratch))
    (scratch / "data" / "in.csv").write_text("4,5,6,7")
    (scratch / "out").mkdir()
    (scratch / "out" / "result.txt").write_text("42")
    os.unlink(scratch / "gone.txt")
    os.symlink("/etc/shadow", scratch / "escape")
    os.mkfifo(scratch / "pipe")
    result = stage_out(str(scratch), Workspace(ws), manifest)
    assert sorted(result.written) == ["data/in.csv", "out/result.txt"]
    assert result.deleted == ["gone.txt"] and sorted(result.skipped) == ["escape", "pipe"]
    assert (ws / "data" / "in.csv").read_text() == "4,5,6,7"
    assert (ws / "out" / "result.txt").read_text() == "42"
    assert not (ws / "gone.txt").exists() and not os.path.lexists(ws / "escape")
    assert (ws / "keep.txt").read_text() == "keep" and os.readlink(ws / "alias") == "keep.txt"
    assert os.listdir(scratch) == []
    assert "escape" in result.note()


def test_stage_out_keeps_the_workspace_within_its_limit(dirs):
    """Files past limits.workspace_mb are not copied back and are named; what fits is; the rest is intact."""
    ws, scratch = dirs
    manifest = stage_in(str(ws), str(scratch))
    for name in ("a.bin", "b.bin", "c.bin"):
        (scratch / name).write_bytes(b"x" * MB)
    result = stage_out(str(scratch), Workspace(ws, quota_bytes=2 * MB + MB // 2), manifest)
    assert result.written == ["a.bin", "b.bin"] and result.refused == ["c.bin"]
    assert not (ws / "c.bin").exists() and (ws / "keep.txt").read_text() == "keep"
    assert Workspace(ws).usage() <= 2 * MB + MB // 2
    assert "c.bin" in result.note()
