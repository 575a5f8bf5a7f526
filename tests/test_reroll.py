"""Rerolls on the sample tree with real git: version N finds version N-1
whatever its base, the cover letter has b4's "Changes in vN" and git's
range-diff below its `---`, and the trailers a reviewer gave travel with
the patches whose diff did not change."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from conftest import git, run_mmconvert

from mmconvert.errors import UsageError
from mmconvert.series import build

CARLA = "Acked-by: Carla Hart <carla.hart@example.org>"
FIONA = "Acked-by: Fiona Lind <fiona.lind@example.com>"
CHAR_V1 = "char: convert fieldsdev_mmap() and nofile_mmap() to .mmap_proto"
SAMPLEFS = "samplefs: convert the mmap handlers to .mmap_proto"


def add_trailer(tree, branch: str, subject: str, trailer: str) -> None:
    """What a maintainer does after review (b4 trailers -u, or an amend):
    the commit with `subject` gets `trailer`; the later commits are made
    again on top of it with their own trees, authors and dates."""
    base = git(tree, "merge-base", branch, "master").strip()
    parent = base
    for c in git(tree, "rev-list", "--reverse", f"{base}..{branch}").split():
        msg = git(tree, "log", "-1", "--format=%B", c)
        if msg.startswith(subject + "\n"):
            msg = subprocess.run(["git", "interpret-trailers", "--trailer", trailer],
                                 input=msg, text=True, capture_output=True, check=True).stdout
        fmt = dict(zip(("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE",
                        "GIT_COMMITTER_DATE"),
                       git(tree, "log", "-1", "--date=raw", "--format=%an%n%ae%n%ad%n%cd",
                           c).splitlines(), strict=False))
        parent = subprocess.run(["git", "commit-tree", f"{c}^{{tree}}", "-p", parent],
                                cwd=tree, input=msg, text=True, capture_output=True,
                                check=True, env=dict(os.environ, **fmt)).stdout.strip()
    git(tree, "update-ref", f"refs/heads/{branch}", parent)


def move_base(tree) -> None:
    """A new commit on the base: one handler more (newdev_mmap, like
    nofile's), one that now needs the VMA (ifdefdev_mmap inserts a page)."""
    c = tree / "drivers" / "char"
    (c / "newdev.c").write_text((c / "nofile.c").read_text().replace("nofile", "newdev")
                                .replace("NOFILE", "NEWDEV"))
    f = tree / "drivers" / "misc" / "ifdefdev.c"
    old = "\tvma->vm_ops = &ifdefdev_vm_ops;\n"
    text = f.read_text()
    assert text.count(old) == 1
    f.write_text(text.replace(old, "\tif (vm_insert_page(vma, vma->vm_start, idev->pages[0]))\n"
                              "\t\treturn -EAGAIN;\n\n" + old))
    git(tree, "add", "-A")
    git(tree, "commit", "--quiet", "-m", "char: add newdev; ifdefdev: map the first page")


def section(cover: str) -> str:
    """From the `---` after the blurb to the shortlog."""
    m = re.search(r"^---\nChanges in v\d+:\n.*?\n\n", cover, flags=re.MULTILINE | re.DOTALL)
    return m.group(0) if m else ""


def commit_ids(tree, branch: str) -> list[str]:
    base = git(tree, "merge-base", branch, "master").strip()
    return [c[:12] for c in git(tree, "rev-list", "--reverse", f"{base}..{branch}").split()]


def subjects(res) -> list[str]:
    return [re.search(r"^Subject: \[PATCH[^]]*\] (.*)$", p.read_text(), re.MULTILINE).group(1)
            for p in res.patches]


@pytest.fixture
def v1(sample_tree, tmp_path):
    res = build(sample_tree, tmp_path / "v1")
    add_trailer(sample_tree, res.branch, CHAR_V1, CARLA)
    add_trailer(sample_tree, res.branch, SAMPLEFS, FIONA)
    return res


V2_CHANGES = f"""---
Changes in v2:
- Rebased from {{old}} to {{new}}.
- "char: convert the mmap handlers to .mmap_proto" (was "char: convert
  fieldsdev_mmap() and nofile_mmap() to .mmap_proto"): code changed;
  newdev_mmap() is new to the series; dropped Acked-by: Carla Hart
  <carla.hart@example.org>, as the code changed.
- "{SAMPLEFS}": unchanged; kept
  Acked-by: Fiona Lind <fiona.lind@example.com>.
- Dropped "misc: ifdefdev: convert ifdefdev_mmap() to .mmap_proto":
  ifdefdev_mmap() is no longer converted (needs-vma:
  drivers/misc/ifdefdev.c:59: vm_insert_page(vma, vma->vm_start,
  idev->pages[0])).
- Link to v1: https://lore.kernel.org/r/20261201-v1@example.org

"""


def test_v2_on_a_moved_base_finds_v1_and_says_what_changed(sample_tree, tmp_path, v1):
    v1_ids = commit_ids(sample_tree, v1.branch)
    old_base = git(sample_tree, "rev-parse", "--short=12", "HEAD").strip()
    move_base(sample_tree)
    new_base = git(sample_tree, "rev-parse", "--short=12", "HEAD").strip()
    v2 = build(sample_tree, tmp_path / "v2", reroll=2,
               previous_link="<20261201-v1@example.org>")
    cover = v2.cover_letter.read_text()
    assert section(cover) == V2_CHANGES.format(old=old_base, new=new_base)
    # b4's layout: blurb, ---, changes, format-patch's shortlog and
    # diffstat, git's range-diff against v1's own range, base-commit, change-id.
    changes = cover.index("\n---\nChanges in v2:")
    shortlog = cover.index("mmconvert tests (6):")
    rdiff = cover.index("\nRange-diff against v1:\n")
    assert changes < shortlog < rdiff < cover.index("\nbase-commit: ")
    assert cover[changes:shortlog].endswith(".org\n\n---\n\n")    # b4's second ---
    rows = re.findall(r"^(\d+|-):\s+(\w+|-+) ([=!<>]) ", cover[rdiff:], flags=re.MULTILINE)
    assert [r[1] for r in rows if r[0] != "-"] == v1_ids
    assert re.search(r"^\d+:\s+\w+ < -:\s+-+ misc: ifdefdev: convert ifdefdev_mmap\(\)",
                     cover[rdiff:], flags=re.MULTILINE)    # its patch is gone
    v1_cover = v1.cover_letter.read_text()
    cid = re.search(r"^change-id: (\S+)$", v1_cover, re.MULTILINE).group(1)
    assert re.fullmatch(r"\d{8}-mmconvert-proto-[0-9a-f]{12}", cid)
    assert re.search(rf"^base-commit: [0-9a-f]{{40}}\nchange-id: {cid}$", cover, re.MULTILINE)
    # The Acked-by stays only where the diff is what was acked.
    by_subject = dict(zip(subjects(v2), v2.patches, strict=False))
    assert FIONA in by_subject[SAMPLEFS].read_text()
    assert "Acked-by" not in by_subject["char: convert the mmap handlers to .mmap_proto"] \
        .read_text()
    assert sum("Acked-by" in p.read_text() for p in v2.patches) == 1
    assert re.search(r"^Subject: \[PATCH v2 1/6\] ", v2.patches[0].read_text(), re.MULTILINE)
    # Same inputs, same bytes (with nothing reused).
    again = build(sample_tree, tmp_path / "v2again", reroll=2, branch="again", reuse=False,
                  previous_link="<20261201-v1@example.org>")
    for a, b in zip((v2.cover_letter, *v2.patches), (again.cover_letter, *again.patches),
                    strict=True):
        assert a.read_text() == b.read_text()


def test_without_mmconvert_s_record_the_v1_branch_is_found(sample_tree, tmp_path, v1):
    move_base(sample_tree)
    with_record = build(sample_tree, tmp_path / "a", reroll=2, branch="a")
    shutil.rmtree(sample_tree / ".git" / "mmconvert")
    without = build(sample_tree, tmp_path / "b", reroll=2, branch="b")
    assert section(without.cover_letter.read_text()) == \
        section(with_record.cover_letter.read_text()) != ""
    assert "Range-diff against v1:" in without.cover_letter.read_text()


def test_v3_finds_v2_not_v1_and_says_a_handler_moved(sample_tree, tmp_path, v1):
    move_base(sample_tree)
    v2 = build(sample_tree, tmp_path / "v2", reroll=2)
    v2_ids = commit_ids(sample_tree, v2.branch)
    m = sample_tree / "MAINTAINERS"
    m.write_text(m.read_text().replace(
        "CHAR DRIVERS\n", "NOFILE EVENT RING\nM:\tNora File <nora@example.org>\n"
        "S:\tMaintained\nF:\tdrivers/char/nofile.c\n\nCHAR DRIVERS\n", 1))
    git(sample_tree, "commit", "--quiet", "-am", "MAINTAINERS: nofile has its own section")
    v3 = build(sample_tree, tmp_path / "v3", reroll=3)
    cover = v3.cover_letter.read_text()
    rdiff = cover[cover.index("\nRange-diff against v2:\n"):]
    rows = re.findall(r"^(\d+|-):\s+(\w+|-+) [=!<>] ", rdiff, flags=re.MULTILINE)
    assert [r[1] for r in rows if r[0] != "-"] == v2_ids
    text = " ".join(section(cover).split())
    assert 'nofile_mmap() moved to "char: nofile: convert nofile_mmap() to .mmap_proto"' in text
    assert ('New patch "char: nofile: convert nofile_mmap() to .mmap_proto": nofile_mmap() '
            'moved here from "char: convert the mmap handlers to .mmap_proto"') in text
    assert "ifdefdev" not in text                 # dropped in v2, not news in v3
    assert f"kept {FIONA}" in text
    ids = {re.search(r"^change-id: (\S+)$", r.cover_letter.read_text(), re.MULTILINE).group(1)
           for r in (v1, v2, v3)}
    assert len(ids) == 1


def test_previous_overrides_the_lookup(sample_tree, tmp_path, v1):
    move_base(sample_tree)
    build(sample_tree, tmp_path / "v2", reroll=2)
    v1_ids = commit_ids(sample_tree, v1.branch)
    v3 = build(sample_tree, tmp_path / "v3", reroll=3, previous_ref=v1.branch)
    cover = v3.cover_letter.read_text()
    rows = re.findall(r"^(\d+|-):\s+(\w+|-+) [=!<>] ", cover[cover.index("\nRange-diff"):],
                      flags=re.MULTILINE)
    assert [r[1] for r in rows if r[0] != "-"] == v1_ids
    assert "Dropped \"misc: ifdefdev:" in section(cover)      # v1 had it, v2 did not
    with pytest.raises(UsageError, match="unknown revision"):
        build(sample_tree, tmp_path / "v4", reroll=4, previous_ref="no-such-branch")


def test_a_missing_v1_is_one_line_not_an_error(sample_tree, tmp_path):
    p = run_mmconvert("series", sample_tree, "-v", "2", "-o", tmp_path / "v2")
    assert p.returncode == 0, p.stderr
    assert p.stderr.splitlines() == [
        "series: no v1 of this series found (no record of it, no branch mmconvert/proto-*; "
        "--previous REF names it): v2 has no range-diff"]
    cover = next((tmp_path / "v2").glob("v2-0000-*")).read_text()
    assert "Range-diff" not in cover and "Changes in v2" not in cover
    assert re.search(r"^change-id: \S+$", cover, re.MULTILINE)
    bad = run_mmconvert("series", sample_tree, "-o", tmp_path / "x", "--previous", "HEAD")
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == ["mmconvert: --previous and --previous-link need -v 2 "
                                       "or more"]
