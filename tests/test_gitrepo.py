"""The sparse series worktree: it must find exactly what a full checkout
finds, whether the user's checkout can be searched in its place or not, and
see the worktree's own commits."""

from __future__ import annotations

import pytest
from conftest import git, tree_state

from mmconvert.gitrepo import GitTree, pathspec_match

PATTERNS = [".mmap", "call_mmap"]


def _found(wt: GitTree) -> tuple[list, list]:
    return (wt.grep_lines(PATTERNS, fixed=True),
            wt.grep_files(["mmap_proto"], fixed=True, words=True))


@pytest.mark.parametrize("user_checkout", ["clean", "dirty", "elsewhere"])
def test_a_sparse_worktree_finds_what_a_full_checkout_finds(sample_tree, user_checkout):
    gt = GitTree(sample_tree)
    with gt.worktree("HEAD") as full:
        expected = _found(full)
    assert expected[0] and expected[1]
    if user_checkout == "dirty":
        # A .mmap only the user's unsaved edit has: the series must not see it.
        f = sample_tree / "drivers/char/remapdev.c"
        f.write_text(f.read_text() + "\nstatic int x = { .mmap = bogus_mmap };\n")
    elif user_checkout == "elsewhere":
        git(sample_tree, "checkout", "--quiet", "-b", "other")
        (sample_tree / "drivers/char/remapdev.c").unlink()
        git(sample_tree, "commit", "--quiet", "-am", "drop remapdev")
    before = tree_state(sample_tree)
    with gt.worktree("base", sparse=("include/linux/fs.h",)) as wt:
        assert _found(wt) == expected
        on_disk = {p.relative_to(wt.path).as_posix() for p in wt.path.rglob("*")
                   if p.is_file() and ".git" not in p.parts}
        found = {f for f, _, _ in expected[0]} | set(expected[1])
        assert found | {"include/linux/fs.h", "MAINTAINERS", "Makefile"} <= on_disk
        # Not everything: mm/filemap.c names neither pattern.
        assert "mm/filemap.c" not in on_disk and wt.has_file("mm/filemap.c")
        assert "generic_file_mmap" in wt.read_text("mm/filemap.c")
        # Every directory exists (get_maintainer.pl asks -d of F: paths).
        assert (wt.path / "mm").is_dir()
        assert wt.run("status", "--porcelain") == ""
    assert tree_state(sample_tree) == before


def test_a_sparse_worktree_sees_its_own_commits(sample_tree):
    gt = GitTree(sample_tree)
    with gt.worktree("HEAD", sparse=()) as wt:
        # Searched once before any commit: the base's answer is kept, and must
        # not hide what the commits change.
        before, _ = _found(wt)
        assert not any("added_mmap" in t for _, _, t in before)
        # A file that was not checked out until the stage asked for it.
        wt.ensure(["mm/filemap.c"])
        f = wt.path / "mm/filemap.c"
        f.write_text(f.read_text() + "\nstatic const struct file_operations f = "
                     "{ .mmap = added_mmap };\n")
        wt.run("add", "--", "mm/filemap.c")
        wt.run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "x")
        lines, _ = _found(wt)
        assert any(f == "mm/filemap.c" and "added_mmap" in t for f, _, t in lines)
        # And a commit that removes a match hides it.
        g = wt.path / "drivers/char/remapdev.c"
        g.write_text(g.read_text().replace(".mmap", ".map"))
        wt.run("add", "--", "drivers/char/remapdev.c")
        wt.run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "y")
        lines, _ = _found(wt)
        assert not any(f == "drivers/char/remapdev.c" and ".mmap" in t for f, _, t in lines)
        assert wt.run("status", "--porcelain") == ""


@pytest.mark.parametrize("pathspecs", [
    ("*.c", "*.h"),
    ("*.c", "*.h", ":(exclude)tools/*", ":(exclude)mm/*"),
    (":(literal)drivers/char/remapdev.c", ":(literal)include"),
    ("*.h", ":(exclude,literal)include/linux/fs.h"),
])
def test_pathspec_match_takes_the_files_git_takes(sample_tree, pathspecs):
    # The sparse worktree searches its changed files only when git would have.
    files = git(sample_tree, "ls-files").split()
    taken = set(git(sample_tree, "ls-files", "--", *pathspecs).split())
    assert taken and taken != set(files)
    assert {f for f in files if pathspec_match(f, pathspecs)} == taken
