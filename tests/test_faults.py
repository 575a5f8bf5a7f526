"""The fault table: what a hostile or unlucky user does, and the outcome
mmconvert must have.  Every test compares the user's checkout before and
after (status, HEAD, branches) and, where a run is stopped, the worktree
list and the temporary directory (each test has its own TMPDIR).

| # | fault | outcome | test |
|---|---|---|---|
| 1 | `-o` is the tree, holds it or is inside it; `-o ''` | one line, exit 2, nothing removed, `--force` or not | test_faults.py::test_an_output_dir_that_is_holds_or_is_inside_the_tree_is_refused |
| 1b | `--force` on a DIR holding more than a series | one line, exit 2, DIR kept | test_faults.py::test_force_replaces_only_an_earlier_series |
| 2 | spatch gives up on a file (`EXN: Not_found`) | "not processed" with spatch's message, never cached | test_faults.py::test_a_file_spatch_gives_up_on_is_listed_and_never_cached |
| 3 | SIGTERM, SIGHUP in the middle of `series` | cleaned up, one line, exit 143 / 129 | test_faults.py::test_sigterm_and_sighup_clean_up_like_ctrl_c |
| 3b | SIGKILL in the middle of `series` | the next run removes the worktree and temp dirs left, and only mmconvert's | test_faults.py::test_after_a_sigkill_the_next_run_removes_what_it_left_and_only_that |
| 4 | Ctrl-C during `convert` | the tree untouched; an interrupt while writing puts every file back | test_faults.py::test_an_interrupted_convert_leaves_the_tree_as_it_was, test_faults.py::test_a_failure_while_writing_the_tree_puts_back_every_file |
| 5, 6 | a file named `ünï.c` or `sp dev.c` | converted like any other | test_faults.py::test_file_names_with_non_ascii_letters_and_spaces_are_converted |
| 7 | `verify --json` or `--junit` into a path that cannot be written | exit 2 before any work | test_faults.py::test_output_files_that_cannot_be_written_are_refused_before_any_work |
| 8 | Ctrl-C in the first moments | one line, exit 130 | test_faults.py::test_ctrl_c_at_start_up_is_one_line_and_exit_130 |
| 9 | two Ctrl-C in a row | nothing left, exit 130 | test_faults.py::test_two_ctrl_c_in_a_row_leave_nothing_behind |
| 10 | the cache is a file; a cache entry of the wrong shape | one warning, the same result | test_faults.py::test_an_unusable_cache_is_one_warning_and_a_bad_entry_is_rewritten |
| 11 | `--only` a path with no handler | one line naming it, exit 2 | test_faults.py::test_only_a_path_with_no_handler_is_an_error |
| 12 | `--timeout -5`; HOME unset | usage error; spatch's start-up failure named | test_faults.py::test_a_negative_timeout_is_a_usage_error, test_faults.py::test_spatch_that_cannot_start_is_named_as_such |
| 13 | the tree is a subdirectory of a repository; `report` without spatch | says so; the page is written with "Not computed" | test_faults.py::test_a_tree_inside_another_repository_is_named_as_such, test_faults.py::test_report_without_spatch_writes_the_page_with_not_computed |
| 14 | installed from a wheel, outside the checkout | `series` works | test_faults.py::test_a_wheel_installed_outside_the_checkout_writes_the_series |
| | TREE not a directory, not a git repository, not a kernel | one line, exit 2 | test_robustness.py::test_a_bad_tree_is_one_line_and_exit_2_for_the_commands_that_write |
| | unknown `--base` | one line, exit 2 | test_robustness.py::test_an_unknown_series_base_is_one_line_and_exit_2 |
| | spatch not installed | how to install it, nothing left | test_robustness.py::test_without_spatch_series_and_convert_say_how_to_install_and_leave_nothing |
| | spatch killed part-way | one line, exit 1, nothing cached | test_robustness.py::test_a_spatch_killed_part_way_is_an_error_and_nothing_it_said_is_kept |
| | a file spatch cannot parse / times out on | named, the rest converted | test_robustness.py::test_a_file_spatch_cannot_parse_is_named_and_the_rest_is_converted, test_robustness.py::test_a_file_spatch_times_out_on_is_named_with_the_timeout_and_the_rest_converted |
| | Ctrl-C in the middle of `series` | nothing left, exit 130 | test_robustness.py::test_ctrl_c_in_the_middle_of_series_leaves_nothing_behind |
| | a hand-edited patch | verify names it | test_robustness.py::test_verify_names_a_patch_of_the_series_edited_so_it_no_longer_applies |
| | DIR not empty, branch exists, Ctrl-C while writing the series | refused / nothing changed | test_series.py::test_an_existing_branch_or_a_non_empty_dir_is_refused, test_series.py::test_ctrl_c_while_writing_the_series_leaves_dir_and_branches_alone |
| | dirty tree, `convert` twice | refused / nothing changes | test_convert.py |
| | unknown `verify --base` | one line, exit 2 | test_verify.py |
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import MMCONVERT, ROOT, git, run_mmconvert, tree_state

from mmconvert import pipeline, scratch
from mmconvert.gitrepo import GitTree


@pytest.fixture
def tmpdir_env(tmp_path, monkeypatch) -> Path:
    """A TMPDIR of the test's own, so what a run leaves there is seen."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setenv("TMPDIR", str(d))
    return d


def one_line(r: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def worktrees(tree: Path) -> list[str]:
    return git(tree, "worktree", "list").splitlines()


def left_in(d: Path, expected: tuple[str, ...] = (), wait: float = 20) -> list[str]:
    """What is left in `d` once mmconvert's background removal of a worktree
    (started as it exits) has had time to finish: as soon as it is what the
    test expects, or when the wait is over."""
    deadline = time.monotonic() + wait
    while True:
        names = sorted(p.name for p in d.iterdir())
        if names == sorted(expected) or time.monotonic() > deadline:
            return names
        time.sleep(0.1)


def add_file(tree: Path, path: str, text: str) -> None:
    p = tree / path
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    git(tree, "add", path)
    git(tree, "commit", "--quiet", "-m", f"add {path}")


def field_handler(name: str) -> str:
    """A handler that only sets fields: `convert` converts it."""
    return (f"#include <linux/fs.h>\n#include <linux/mm.h>\n\n"
            f"static int {name}_mmap(struct file *file, struct vm_area_struct *vma)\n{{\n"
            f"\tif (vma->vm_pgoff)\n\t\treturn -EINVAL;\n"
            f"\tvma->vm_private_data = file->private_data;\n\treturn 0;\n}}\n\n"
            f"static const struct file_operations {name}_fops = {{\n"
            f"\t.mmap\t\t= {name}_mmap,\n}};\n")


def start(args, **kw) -> subprocess.Popen:
    return subprocess.Popen([*MMCONVERT, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def wait_for_worktree(p: subprocess.Popen, tree: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(worktrees(tree)) < 2:
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, "no worktree within 60 s"
        time.sleep(0.02)


def slow_spatch(tmp_path: Path, seconds: float = 3) -> Path:
    """The real spatch, started late: a run stays inside the stages long
    enough to be stopped there, whatever the machine's speed."""
    wrapper = tmp_path / "spatch-slow"
    wrapper.write_text(f'#!/bin/sh\nsleep {seconds}\nexec {shutil.which("spatch")} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


# -- 1: the output directory -------------------------------------------------

def test_an_output_dir_that_is_holds_or_is_inside_the_tree_is_refused(sample_tree, tmp_path):
    project = tmp_path / "P"
    project.mkdir()
    tree = project / "tree"
    shutil.move(str(sample_tree), tree)
    (tree / "work-in-progress.c").write_text("uncommitted\n")
    before = tree_state(tree)
    files = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    cases = [(("-o", project, "--force"), None), (("-o", ".", "--force"), project),
             (("-o", tree, "--force"), None), (("-o", tree / "patches"), None),
             (("-o", tree / ".git" / "x", "--force"), None)]
    for args, cwd in cases:
        r = run_mmconvert("series", "tree" if cwd else tree, *args, cwd=cwd)
        assert r.returncode == 2, (args, r.stderr)
        line = one_line(r)
        assert "write the series somewhere else" in line and str(tree) in line, line
        assert tree_state(tree) == before
        assert sorted(str(p.relative_to(tree)) for p in tree.rglob("*")) == files
        assert len(worktrees(tree)) == 1
    r = run_mmconvert("series", tree, "-o", "")
    assert r.returncode == 2 and one_line(r) == "mmconvert: -o: an output directory is needed"
    assert (tree / "work-in-progress.c").read_text() == "uncommitted\n"


def test_force_replaces_only_an_earlier_series(sample_tree, tmp_path):
    out = tmp_path / "out"
    r = run_mmconvert("series", sample_tree, "-o", out)
    assert r.returncode == 0, r.stderr
    first = sorted(p.name for p in out.iterdir())
    r = run_mmconvert("series", sample_tree, "-o", out, "--force", "--branch", "again")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == first
    (out / "notes.txt").write_text("my review notes\n")
    before = tree_state(sample_tree)
    r = run_mmconvert("series", sample_tree, "-o", out, "--force", "--branch", "third")
    assert r.returncode == 2
    assert "holds more than a patch series (notes.txt)" in one_line(r)
    assert (out / "notes.txt").read_text() == "my review notes\n"
    assert sorted(p.name for p in out.iterdir()) == sorted([*first, "notes.txt"])
    assert tree_state(sample_tree) == before


# -- 2: spatch gives up on one file ------------------------------------------

def test_a_file_spatch_gives_up_on_is_listed_and_never_cached(sample_tree, tmp_path):
    # An unterminated function-like #define after a fops: spatch 1.1.1
    # stops on the file with "EXN: Not_found" and exit status 0.
    add_file(sample_tree, "drivers/char/exndev.c",
             "static const struct file_operations exndev_fops = {\n"
             "\t.mmap = exndev_mmap,\n};\n#define X(\n")
    cache = tmp_path / "cache"
    for _ in range(2):      # the second run must not take an empty result from the cache
        r = run_mmconvert("scan", sample_tree, "--json", cache=cache)
        assert r.returncode == 0, r.stderr
        warned = {(w["file"], w["problem"], w["detail"]) for w in json.loads(r.stdout)["warnings"]}
        assert ("drivers/char/exndev.c", "parse",
                "spatch gave up on the file: EXN: Not_found") in warned, warned
    r = run_mmconvert("scan", sample_tree, cache=cache)
    listed = r.stdout.split("not processed:", 1)[1]
    assert "drivers/char/exndev.c: parse: spatch gave up on the file: EXN: Not_found" in listed


# -- 3: SIGTERM, SIGHUP, SIGKILL -------------------------------------------------

@pytest.mark.parametrize("sig,status,word", [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                              (signal.SIGHUP, 129, "hung up (SIGHUP)")])
def test_sigterm_and_sighup_clean_up_like_ctrl_c(sample_tree, tmp_path, tmpdir_env,
                                                  monkeypatch, sig, status, word):
    monkeypatch.setenv("MMCONVERT_SPATCH", str(slow_spatch(tmp_path)))
    before = tree_state(sample_tree)
    out = tmp_path / "out"
    p = start(["series", sample_tree, "-o", out, "--no-cache"])
    wait_for_worktree(p, sample_tree)
    time.sleep(0.5)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == status, err
    assert err.strip().splitlines() == [f"mmconvert: {word}; nothing was left behind"]
    assert tree_state(sample_tree) == before
    assert len(worktrees(sample_tree)) == 1
    assert not out.exists()
    assert left_in(tmpdir_env) == []


def test_after_a_sigkill_the_next_run_removes_what_it_left_and_only_that(
        sample_tree, tmp_path, tmpdir_env, monkeypatch):
    # Not ours: a directory with mmconvert's prefix but no mark, and one
    # whose owner (this test) is alive.
    foreign = tmpdir_env / "mmconvert-someone-elses"
    foreign.mkdir()
    (foreign / "data").write_text("keep\n")
    alive = scratch.mkdtemp("mmconvert-alive-", dir=tmpdir_env)
    monkeypatch.setenv("MMCONVERT_SPATCH", str(slow_spatch(tmp_path)))
    before = tree_state(sample_tree)
    p = start(["series", sample_tree, "-o", tmp_path / "out", "--no-cache"])
    wait_for_worktree(p, sample_tree)
    time.sleep(0.5)
    p.kill()
    p.communicate()
    assert len(worktrees(sample_tree)) == 2          # what a SIGKILL leaves
    assert any(n.startswith("mmconvert-wt-") for n in os.listdir(tmpdir_env))
    monkeypatch.delenv("MMCONVERT_SPATCH")
    r = run_mmconvert("series", sample_tree, "-o", tmp_path / "out2")
    assert r.returncode == 0, r.stderr
    assert len(worktrees(sample_tree)) == 1
    ours = (foreign.name, alive.name)
    assert left_in(tmpdir_env, ours) == sorted(ours)
    assert (foreign / "data").read_text() == "keep\n"
    assert tree_state(sample_tree)[:2] == before[:2]


# -- 4: convert writes the tree last ---------------------------------------------

def test_an_interrupted_convert_leaves_the_tree_as_it_was(sample_tree, tmp_path, tmpdir_env,
                                                          monkeypatch):
    monkeypatch.setenv("MMCONVERT_SPATCH", str(slow_spatch(tmp_path, 1)))
    before = tree_state(sample_tree)
    p = start(["convert", sample_tree], env=dict(os.environ, MMCONVERT_CACHE=str(tmp_path / "c")))
    wait_for_worktree(p, sample_tree)
    time.sleep(2.5)                  # past the forwarder stage, inside the conversion
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert err.strip().splitlines()[-1] == "mmconvert: interrupted; nothing was left behind"
    assert tree_state(sample_tree) == before
    assert len(worktrees(sample_tree)) == 1
    assert left_in(tmpdir_env) == []


def test_a_failure_while_writing_the_tree_puts_back_every_file(sample_tree):
    gt = GitTree(sample_tree)
    before = tree_state(sample_tree)
    old = {f: (sample_tree / f).read_bytes() for f in ("drivers/char/fieldsdev.c",
                                                       "drivers/char/nofile.c")}
    # The third file cannot be written: its directory is a file.
    texts = {**dict.fromkeys(old, b"rewritten\n"), "include/linux/fs.h/x.h": b"x\n",
             "drivers/char/new.c": b"new\n"}
    with pytest.raises(OSError):
        pipeline.write_files(gt, texts)
    assert {f: (sample_tree / f).read_bytes() for f in old} == old
    assert not (sample_tree / "drivers/char/new.c").exists()
    assert tree_state(sample_tree) == before


def test_convert_writes_what_the_series_commits(sample_tree, tmp_path):
    out = tmp_path / "out"
    r = run_mmconvert("series", sample_tree, "-o", out)
    assert r.returncode == 0, r.stderr
    branch = git(sample_tree, "branch", "--list", "mmconvert/*").split()[-1]
    series_diff = git(sample_tree, "diff", "HEAD", branch)
    r = run_mmconvert("convert", sample_tree)
    assert r.returncode == 0, r.stderr
    assert git(sample_tree, "diff", "HEAD") == series_diff


# -- 5, 6: file names ----------------------------------------------------------

def test_file_names_with_non_ascii_letters_and_spaces_are_converted(sample_tree, tmp_path):
    names = {"drivers/char/ünï.c": "unidev", "drivers/char/sp dev.c": "spdev"}
    for path, name in names.items():
        add_file(sample_tree, path, field_handler(name))
    r = run_mmconvert("scan", sample_tree, "--json")
    assert r.returncode == 0, r.stderr
    classes = {h["handler"]: h["class"] for h in json.loads(r.stdout)["handlers"]}
    assert classes["unidev_mmap"] == classes["spdev_mmap"] == "fields"
    r = run_mmconvert("convert", sample_tree, "--json")
    assert r.returncode == 0, r.stderr
    done = {d["handler"]: d["file"] for c in json.loads(r.stdout)["changes"]
            for d in c["details"] if c["stage"] == "conversion"}
    for path, name in names.items():
        assert done.get(f"{name}_mmap") == path
        text = (sample_tree / path).read_text()
        assert f"static int {name}_mmap_proto(struct vma_proto *desc)" in text
        assert ".mmap_proto" in text and f"= {name}_mmap_proto," in text
    git(sample_tree, "checkout", "--quiet", ".")
    out = tmp_path / "out"
    r = run_mmconvert("series", sample_tree, "-o", out)
    assert r.returncode == 0, r.stderr
    patches = "".join(p.read_text() for p in out.glob("*.patch"))
    for path, name in names.items():
        assert f"+static int {name}_mmap_proto(struct vma_proto *desc)" in patches
        assert f"+++ b/{path}" in patches


# -- 7: output files checked first -----------------------------------------------

def test_output_files_that_cannot_be_written_are_refused_before_any_work(sample_tree, tmp_path):
    out = tmp_path / "out"
    assert run_mmconvert("series", sample_tree, "-o", out).returncode == 0
    afile = tmp_path / "afile"
    afile.write_text("")
    for opt in ("--json", "--junit"):
        r = run_mmconvert("verify", out, "--tree", sample_tree, opt, afile / "x")
        assert r.returncode == 2, r.stderr
        assert "cannot be written" in one_line(r) and opt in one_line(r)
        assert r.stdout == ""             # not one patch was checked
    r = run_mmconvert("report", sample_tree, "-o", afile / "r.html")
    assert r.returncode == 2 and "cannot be written" in one_line(r)
    # A missing directory is created.
    r = run_mmconvert("verify", out, "--tree", sample_tree, "--json", tmp_path / "new" / "v.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "new" / "v.json").read_text())


# -- 8, 9: Ctrl-C at start-up, twice ---------------------------------------------

def handlers_installed(pid: int) -> bool:
    """Whether the process catches SIGTERM yet: mmconvert's first act (Python
    itself only catches SIGINT), so the run is past the interpreter's start."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigCgt:")), 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def test_ctrl_c_at_start_up_is_one_line_and_exit_130(sample_tree, tmp_path):
    # From the first line mmconvert runs, through the imports (typer, git,
    # jinja2: the first 0.3 s), to the stages.
    for delay in (0, 0.05, 0.1, 0.2, 0.3):
        p = start(["scan", sample_tree], env=dict(os.environ, MMCONVERT_CACHE=str(tmp_path / "c")))
        deadline = time.monotonic() + 30
        while not handlers_installed(p.pid):
            assert p.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 130, (delay, err)
        assert err.strip().splitlines() == ["mmconvert: interrupted; nothing was left behind"], \
            (delay, err)


def test_two_ctrl_c_in_a_row_leave_nothing_behind(sample_tree, tmp_path, tmpdir_env):
    before = tree_state(sample_tree)
    for delay in (0.3, 0.6, 0.9, 1.2, 1.5):
        p = start(["series", sample_tree, "-o", tmp_path / "out", "--no-cache"])
        wait_for_worktree(p, sample_tree)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        time.sleep(0.03)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        if p.returncode == 0:     # finished before the signals: a later delay will not help
            break
        assert p.returncode == 130, (delay, err)
        assert "Traceback" not in err, err
        assert len(worktrees(sample_tree)) == 1
        assert left_in(tmpdir_env) == [], (delay, err)
        assert tree_state(sample_tree) == before
        assert not (tmp_path / "out").exists()


# -- 10: the cache ------------------------------------------------------------

def test_an_unusable_cache_is_one_warning_and_a_bad_entry_is_rewritten(sample_tree, tmp_path):
    plain = run_mmconvert("scan", sample_tree, "--json", cache=tmp_path / "fresh")
    assert plain.returncode == 0, plain.stderr
    afile = tmp_path / "afile"
    afile.write_text("")
    r = run_mmconvert("scan", sample_tree, "--json", cache=afile)
    assert r.returncode == 0, r.stderr
    assert "the result cache" in one_line(r) and "running without it" in one_line(r)
    assert r.stdout == plain.stdout

    entries = sorted((tmp_path / "fresh").rglob("*.json"))
    assert entries
    for e in entries:
        e.write_text(json.dumps({"records": [{"no": "kind"}], "diff": 3}))
    r = run_mmconvert("scan", sample_tree, "--json", cache=tmp_path / "fresh")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout == plain.stdout
    for e in entries:
        assert isinstance(json.loads(e.read_text())["records"], list)
        assert isinstance(json.loads(e.read_text())["diff"], str)


# -- 11, 12: options ------------------------------------------------------------

@pytest.mark.parametrize("command", ["series", "convert"])
def test_only_a_path_with_no_handler_is_an_error(sample_tree, tmp_path, command):
    before = tree_state(sample_tree)
    extra = ("-o", tmp_path / "out") if command == "series" else ()
    r = run_mmconvert(command, sample_tree, *extra, "--only", "drivers/nosuch")
    assert r.returncode == 2, r.stderr
    assert one_line(r) == "mmconvert: --only drivers/nosuch: no .mmap handler is defined there"
    assert tree_state(sample_tree) == before
    assert not (tmp_path / "out").exists()
    assert not git(sample_tree, "branch", "--list", "mmconvert/*").strip()


def test_a_negative_timeout_is_a_usage_error(sample_tree, tmp_path):
    for command, extra in (("scan", ()), ("series", ("-o", tmp_path / "out")), ("convert", ()),
                           ("report", ("--markdown", tmp_path / "r.md"))):
        r = run_mmconvert(command, sample_tree, *extra, "--timeout", "-5")
        assert r.returncode == 2, (command, r.stderr)
        assert "--timeout" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "r.md").exists()


def test_spatch_that_cannot_start_is_named_as_such(sample_tree, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HOME"}
    env["MMCONVERT_CACHE"] = str(tmp_path / "cache")
    r = subprocess.run([*MMCONVERT, "scan", str(sample_tree)], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 1, r.stderr
    line = one_line(r)
    assert line.startswith("mmconvert: spatch cannot start") and "HOME is not set" in line
    assert "rendered rule" not in line


# -- 13: where the tree is; report without spatch ---------------------------------

def test_a_tree_inside_another_repository_is_named_as_such(sample_tree, tmp_path):
    outer = tmp_path / "outer"
    outer.mkdir()
    shutil.copytree(sample_tree, outer / "linux", ignore=shutil.ignore_patterns(".git"))
    git(outer, "init", "--quiet")
    r = run_mmconvert("scan", outer / "linux")
    assert r.returncode == 2
    assert one_line(r) == (f"mmconvert: {outer / 'linux'}: a subdirectory of the git checkout "
                           f"{outer}; mmconvert needs the kernel tree at the top of a checkout "
                           "of its own")


def test_report_without_spatch_writes_the_page_with_not_computed(sample_tree, tmp_path,
                                                                monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git", "sh", "perl"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("MMCONVERT_SPATCH", raising=False)
    before = tree_state(sample_tree)
    r = run_mmconvert("report", sample_tree, "-o", tmp_path / "r.html", "--markdown",
                      tmp_path / "r.md")
    assert r.returncode == 0, r.stderr
    assert "spatch not found" in r.stderr
    md = (tmp_path / "r.md").read_text()
    summary = md.split("## Summary", 1)[1].split("##", 1)[0]
    assert "Not computed: the inventory stage failed (spatch not found" in summary
    assert "handlers left on" not in summary      # no figure that was never computed
    assert "Not computed" in md.split("## Forwarders", 1)[1]
    html = (tmp_path / "r.html").read_text()
    assert 'id="inventory-not-computed"' in html and 'id="summary-total"' not in html
    assert tree_state(sample_tree) == before


# -- 14: a wheel, installed elsewhere ---------------------------------------------

def test_a_wheel_installed_outside_the_checkout_writes_the_series(sample_tree, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "out", "build",
                                                            "*.egg-info", "__pycache__"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist),
                    str(src)], check=True, capture_output=True)
    shutil.rmtree(src)                    # nothing may be read from a source tree
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    wheel = next(dist.glob("mmconvert-*.whl"))
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], check=True,
                   capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    r = subprocess.run([str(venv / "bin" / "mmconvert"), "series", str(sample_tree), "-o",
                        str(out)], cwd=elsewhere, capture_output=True, text=True,
                       env=dict(os.environ, MMCONVERT_CACHE=str(tmp_path / "cache")))
    assert r.returncode == 0, r.stderr
    ref = run_mmconvert("series", sample_tree, "-o", tmp_path / "ref", "--branch", "ref")
    assert ref.returncode == 0, ref.stderr
    for p in sorted(out.iterdir()):
        assert p.read_text() == (tmp_path / "ref" / p.name).read_text(), p.name
