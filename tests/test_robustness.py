"""Faults a maintainer will meet, each with the outcome it must have, and
the user's checkout compared byte for byte (status, HEAD, refs) before and
after.

Rows of the fault table covered elsewhere and not repeated here:
test_scan.py (bad tree, spatch missing and a file spatch cannot parse for
`api`/`scan`), test_convert.py (dirty tree, convert twice), test_series.py
(output DIR not empty, branch exists, --force; Ctrl-C raised inside the
library), test_verify.py (a hand-edited patch, an unknown verify --base).
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import MMCONVERT, git, run_mmconvert, tree_state

# Handlers of the sample tree that `convert` converts (test_convert.py).
CONVERTED = {"fieldsdev_mmap", "nofile_mmap", "ifdefdev_mmap", "sharedfb_mmap",
             "samplefs_file_mmap", "generic_file_readonly_mmap"}
BROKEN = "drivers/char/brokendev.c"
HUGE = "drivers/char/hugedev.c"
SLOW = "drivers/char/slowdev.c"


# -- helpers ----------------------------------------------------------------

def add_file(tree: Path, path: str, text: str) -> None:
    p = tree / path
    p.write_text(text)
    git(tree, "add", path)
    git(tree, "commit", "--quiet", "-m", f"add {path}")


def broken_file() -> str:
    """A fops with .mmap that spatch cannot parse."""
    return ("static const struct file_operations brokendev_fops = {\n"
            "\t.mmap = brokendev_mmap,\n\t.open = (( ,\n};\n")


def huge_file(functions: int = 6000) -> str:
    """A correct, field-only handler at the end of 60,000 lines of small
    functions: a run long enough to be interrupted part-way (the timeout
    tests use slow_spatch() instead, which does not depend on speed)."""
    out = ["#include <linux/fs.h>", "#include <linux/mm.h>", ""]
    for i in range(functions):
        out += [f"static int hugedev_helper_{i}(int a, int b)", "{", "\tint r = 0;", "",
                f"\tif (a > {i})", "\t\tr = a + b;", "\telse", "\t\tr = a - b;", "\treturn r;",
                "}", ""]
    out += ["static int hugedev_mmap(struct file *file, struct vm_area_struct *vma)", "{",
            "\tif (vma->vm_pgoff)", "\t\treturn -EINVAL;",
            "\tvma->vm_private_data = file->private_data;", "\treturn 0;", "}", "",
            "static const struct file_operations hugedev_fops = {",
            "\t.mmap\t\t= hugedev_mmap,", "};", ""]
    return "\n".join(out)


def slow_file() -> str:
    """A small, correct, field-only handler: slow only under slow_spatch()."""
    return ("#include <linux/fs.h>\n#include <linux/mm.h>\n\n"
            "static int slowdev_mmap(struct file *file, struct vm_area_struct *vma)\n{\n"
            "\tif (vma->vm_pgoff)\n\t\treturn -EINVAL;\n"
            "\tvma->vm_private_data = file->private_data;\n\treturn 0;\n}\n\n"
            "static const struct file_operations slowdev_fops = {\n"
            "\t.mmap\t\t= slowdev_mmap,\n};\n")


# Put first in a pass's rule: on SLOW, spin until spatch's own --timeout
# timer fires.  That timer counts the CPU time spatch spends on the file
# (ITIMER_VIRTUAL, SIGVTALRM), so sleeping would never trip it; the signal
# is held while spinning and handed to spatch's handler at the end, so the
# spin lasts exactly the timeout however fast or busy the machine is, and
# spatch gives up on the file before any of mmconvert's rules has matched.
# A run without a short timeout (at most 10 s) is not slowed.
SPIN_RULE = r"""
@mmconvert_test_slow@
position p;
@@
slowdev_mmap@p(...) { ... }

@script:python depends on mmconvert_test_slow@
p << mmconvert_test_slow.p;
@@
import signal
import time
if (p[0].file.endswith("/drivers/char/slowdev.c")
        and 0 < signal.getitimer(signal.ITIMER_VIRTUAL)[0] <= 10):
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGVTALRM])
    end = time.process_time() + 30
    while signal.SIGVTALRM not in signal.sigpending() and time.process_time() < end:
        pass
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGVTALRM])

"""


def slow_spatch(tmp_path: Path, only: str = "") -> Path:
    """The real spatch (for MMCONVERT_SPATCH), made to time out on SLOW in
    every pass that reads it, or only in the passes whose rendered rule
    contains `only` ("find_fops.cocci.j2": the scan's first pass;
    "convert.cocci.j2": the conversion).  Other runs go to spatch as they are."""
    wrapper = tmp_path / "spatch-slow"
    wrapper.write_text(f"""#!{sys.executable}
import os
import sys

real = {shutil.which("spatch")!r}
args = sys.argv[1:]
if "--cocci-file" in args and "--dir" in args:
    i = args.index("--cocci-file") + 1
    rule = open(args[i]).read()
    if os.path.exists(os.path.join(args[args.index("--dir") + 1], {SLOW!r})) and {only!r} in rule:
        first = rule.find("\\n@") + 1
        with open(args[i] + ".slow", "w") as f:
            f.write(rule[:first] + {SPIN_RULE!r} + rule[first:])
        args[i] += ".slow"
os.execv(real, [real, *args])
""")
    wrapper.chmod(0o755)
    return wrapper


def one_line(r: subprocess.CompletedProcess) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def worktrees(tree: Path) -> int:
    return len(git(tree, "worktree", "list").splitlines())


def nothing_left_beside(out: Path) -> None:
    """No DIR and no temporary series directory next to where DIR would be."""
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def converted(result: dict) -> set[str]:
    return {d["handler"] for c in result["changes"] if c["stage"] == "conversion"
            for d in c["details"]}


# -- TREE is not a directory / not a git repo / not a kernel tree ------------

@pytest.fixture
def bad_trees(tmp_path, sample_tree):
    plain = tmp_path / "plain"
    shutil.copytree(sample_tree, plain, ignore=shutil.ignore_patterns(".git"))
    notkernel = tmp_path / "notkernel"
    notkernel.mkdir()
    (notkernel / "README").write_text("not a kernel\n")
    git(notkernel, "init", "--quiet")
    git(notkernel, "add", "-A")
    git(notkernel, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "--quiet",
        "-m", "x")
    afile = tmp_path / "afile"
    afile.write_text("")
    return {"not a directory": afile, "not a git repository": plain,
            "not a kernel tree": notkernel, "no such directory": tmp_path / "missing"}


@pytest.mark.parametrize("command", ["convert", "series", "report"])
def test_a_bad_tree_is_one_line_and_exit_2_for_the_commands_that_write(
        command, bad_trees, tmp_path):
    for problem, tree in bad_trees.items():
        out = tmp_path / f"out-{command}"
        extra = {"convert": (), "series": ("-o", out), "report": ("--markdown", out)}[command]
        before = tree_state(tree) if (tree / ".git").is_dir() else None
        r = run_mmconvert(command, tree, *extra)
        assert r.returncode == 2, (problem, r.stderr)
        line = one_line(r)
        assert problem in line and str(tree) in line, line
        assert not out.exists()
        if before is not None:
            assert tree_state(tree) == before


# -- --base unknown ---------------------------------------------------------

def test_an_unknown_series_base_is_one_line_and_exit_2(sample_tree, tmp_path):
    before = tree_state(sample_tree)
    out = tmp_path / "out"
    r = run_mmconvert("series", sample_tree, "-o", out, "--base", "no-such-ref")
    assert r.returncode == 2
    assert one_line(r) == "mmconvert: unknown ref: no-such-ref"
    nothing_left_beside(out)
    assert tree_state(sample_tree) == before
    assert worktrees(sample_tree) == 1


# -- spatch missing from PATH -----------------------------------------------

def test_without_spatch_series_and_convert_say_how_to_install_and_leave_nothing(
        sample_tree, tmp_path, monkeypatch):
    # A PATH with git and the shell but no spatch, as on a machine without it.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git", "sh", "perl", "rm"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("MMCONVERT_SPATCH", raising=False)
    before = tree_state(sample_tree)
    out = tmp_path / "out"
    for args in (("series", sample_tree, "-o", out), ("convert", sample_tree)):
        r = run_mmconvert(*args)
        assert r.returncode == 2, r.stderr
        line = one_line(r)
        assert "spatch not found" in line and "apt-get install coccinelle" in line
        nothing_left_beside(out)
        assert tree_state(sample_tree) == before
        assert worktrees(sample_tree) == 1


def test_a_spatch_killed_part_way_is_an_error_and_nothing_it_said_is_kept(
        sample_tree, tmp_path, monkeypatch):
    """The real spatch, killed as it finishes (as the OOM killer would): the
    run stops with one line, and a rerun does not take its results from
    the cache."""
    wrapper = tmp_path / "spatch-killed"
    wrapper.write_text(f'#!/bin/sh\n{shutil.which("spatch")} "$@"\nkill -KILL $$\n')
    wrapper.chmod(0o755)
    cache = tmp_path / "cache"
    monkeypatch.setenv("MMCONVERT_SPATCH", str(wrapper))
    before = tree_state(sample_tree)
    r = run_mmconvert("scan", sample_tree, cache=cache)
    assert r.returncode == 1, r.stderr
    assert "spatch was killed (SIGKILL)" in one_line(r)
    assert not list(cache.rglob("*.json"))
    assert tree_state(sample_tree) == before
    monkeypatch.delenv("MMCONVERT_SPATCH")
    r = run_mmconvert("scan", sample_tree, cache=cache)
    assert r.returncode == 0, r.stderr
    assert list(cache.rglob("*.json"))


# -- one C file spatch cannot parse / times out on ---------------------------

def test_a_file_spatch_cannot_parse_is_named_and_the_rest_is_converted(sample_tree):
    add_file(sample_tree, BROKEN, broken_file())
    head = git(sample_tree, "rev-parse", "HEAD")
    r = run_mmconvert("convert", sample_tree, "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    warned = [(w["file"], w["problem"]) for w in result["warnings"]]
    assert (BROKEN, "parse") in warned
    assert converted(result) == CONVERTED
    # Only the converted files changed; the broken one is as it was.
    assert git(sample_tree, "rev-parse", "HEAD") == head
    changed = git(sample_tree, "status", "--porcelain").split()
    assert BROKEN not in changed and "drivers/char/fieldsdev.c" in changed


@pytest.mark.parametrize("where", ["entries", "conversion"])
def test_a_file_spatch_times_out_on_is_named_with_the_timeout_and_the_rest_converted(
        sample_tree, tmp_path, monkeypatch, where):
    """spatch's own --timeout, hit on one file in the scan's first pass (the
    file is not processed: a warning) or in the conversion (its handler is
    skipped); either way it is named, never converted, and the rest is."""
    add_file(sample_tree, SLOW, slow_file())
    only = {"entries": "find_fops.cocci.j2", "conversion": "convert.cocci.j2"}[where]
    monkeypatch.setenv("MMCONVERT_SPATCH", str(slow_spatch(tmp_path, only)))
    head = git(sample_tree, "rev-parse", "HEAD")
    # A result cached by a run with a longer timeout would rightly be used.
    r = run_mmconvert("convert", sample_tree, "--timeout", "1", cache=tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    warn = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("warning")]
    if where == "entries":
        assert [w.split()[1] for w in warn] == [f"{SLOW}:"], r.stdout
        named = warn[0]
        assert "timeout" in named and "Timeout" in named
        assert "slowdev_mmap" not in out
    else:
        assert warn == [], r.stdout
        named = next(ln for ln in r.stdout.splitlines() if "slowdev_mmap" in ln)
        assert named.split()[:3] == ["skipped", "slowdev_mmap", "[unclear]"], named
        assert f" {SLOW}:" in named and f"spatch timed out on {SLOW}" in named
    # The detail names the file as in the tree, not spatch's scratch copy.
    assert "/tmp" not in named and "mmconvert-spatch" not in named
    for name in CONVERTED:
        assert f"converted {name} -> " in out, name
    assert "converted slowdev_mmap" not in out
    assert git(sample_tree, "rev-parse", "HEAD") == head
    changed = git(sample_tree, "status", "--porcelain").split()
    assert SLOW not in changed and "drivers/char/fieldsdev.c" in changed


def test_the_report_and_the_cover_letter_list_the_files_not_processed(sample_tree, tmp_path,
                                                                      monkeypatch):
    add_file(sample_tree, BROKEN, broken_file())
    add_file(sample_tree, SLOW, slow_file())
    monkeypatch.setenv("MMCONVERT_SPATCH", str(slow_spatch(tmp_path)))
    before = tree_state(sample_tree)
    md = tmp_path / "report.md"
    r = run_mmconvert("report", sample_tree, "--markdown", md, "--timeout", "1",
                      cache=tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    section = md.read_text().split("## Not processed", 1)[1]
    assert f"`{BROKEN}`: parse" in section
    assert f"`{SLOW}`: timeout" in section
    assert tree_state(sample_tree) == before

    r = run_mmconvert("series", sample_tree, "-o", tmp_path / "out", "--timeout", "1",
                      cache=tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    cover = (tmp_path / "out" / "0000-cover-letter.patch").read_text()
    listed = cover.split("could not process", 1)[1].split("\n\n", 1)[0]
    assert f"{BROKEN}: parse" in listed and f"{SLOW}: timeout" in listed
    assert "mmconvert-spatch" not in cover
    after = tree_state(sample_tree)
    assert after[:2] == before[:2]


# -- SIGINT in the middle of `series` ----------------------------------------

@pytest.mark.parametrize("whom", ["mmconvert", "the terminal's process group"])
def test_ctrl_c_in_the_middle_of_series_leaves_nothing_behind(sample_tree, tmp_path, whom):
    """Ctrl-C once the series worktree exists: no branch, no worktree, no
    DIR, the user's checkout unchanged.  A terminal sends SIGINT to the
    whole foreground process group (spatch and git included)."""
    add_file(sample_tree, HUGE, huge_file())      # a run long enough to interrupt
    before = tree_state(sample_tree)
    out = tmp_path / "out"
    env = dict(os.environ, MMCONVERT_CACHE=str(tmp_path / "cache"))
    p = subprocess.Popen([*MMCONVERT, "series", str(sample_tree), "-o", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while worktrees(sample_tree) < 2:
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "no worktree within 60 s"
            time.sleep(0.05)
        time.sleep(0.5)                           # inside the stages, not at their start
        assert p.poll() is None
        if whom == "mmconvert":
            p.send_signal(signal.SIGINT)
        else:
            os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert err.strip().splitlines()[-1] == "mmconvert: interrupted; nothing was left behind"
    assert "Traceback" not in err
    assert tree_state(sample_tree) == before
    assert worktrees(sample_tree) == 1
    assert not git(sample_tree, "branch", "--list", "mmconvert/*").strip()
    nothing_left_beside(out)


# -- a patch of an mmconvert series edited by hand ----------------------------

def test_verify_names_a_patch_of_the_series_edited_so_it_no_longer_applies(
        sample_tree, tmp_path):
    out = tmp_path / "out"
    r = run_mmconvert("series", sample_tree, "-o", out)
    assert r.returncode == 0, r.stderr
    patches = sorted(p for p in out.glob("*.patch") if not p.name.startswith("0000-"))
    victim = patches[-1]
    lines = victim.read_text().split("\n")
    i = next(i for i, ln in enumerate(lines) if ln.startswith("-") and not ln.startswith("---"))
    lines[i] = lines[i] + " /* edited by hand */"
    victim.write_text("\n".join(lines))
    before = tree_state(sample_tree)
    r = run_mmconvert("verify", out, "--tree", sample_tree)
    assert r.returncode == 1
    n = len(patches)
    assert f"[{n}/{n}] FAIL" in r.stdout, r.stdout
    fail = r.stdout.split(f"[{n}/{n}] FAIL", 1)[1]
    assert "does not apply" in fail
    # The sample series has several patches: the one before the edit still applies.
    assert n > 1 and f"[{n - 1}/{n}] ok" in r.stdout
    assert tree_state(sample_tree) == before


# -- progress: on a terminal, not in CI logs --------------------------------

def test_progress_shows_on_a_terminal_and_not_in_a_log(sample_tree, tmp_path):
    env = dict(os.environ, MMCONVERT_CACHE=str(tmp_path / "cache"))
    log = subprocess.run([*MMCONVERT, "scan", str(sample_tree)], capture_output=True,
                         text=True, env=env)
    assert log.returncode == 0 and "files" not in log.stderr and "\r" not in log.stderr

    primary, secondary = pty.openpty()
    try:
        p = subprocess.run([*MMCONVERT, "scan", str(sample_tree)], stdout=subprocess.DEVNULL,
                           stderr=secondary, env=dict(env, MMCONVERT_CACHE=str(tmp_path / "c2")))
        os.close(secondary)
        secondary = -1
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(primary)
        if secondary >= 0:
            os.close(secondary)
    assert p.returncode == 0
    text = seen.decode(errors="replace")
    counts = [(int(d), int(t)) for d, t in re.findall(r"(\d+)/(\d+) files", text)]
    assert counts and all(d <= t for d, t in counts), text
    # Counted per file as spatch goes, not only at the start and end of a pass.
    assert any(0 < d < t for d, t in counts), text
