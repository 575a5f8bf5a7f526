"""`mmconvert series`: grouping, subjects, bodies, recipients, and the
promise that the user's checkout and DIR are left alone on every path.

The sample-tree tests build the series from Change objects made of real
diffs (real edits in the series worktree, taken with `git diff`), so they
run without the planning stages; the real-tree tests run the whole thing.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, commit_g1, git, remove_tree, run_mmconvert, tree_state

from mmconvert import maintainers, series
from mmconvert.errors import MmconvertError, UsageError
from mmconvert.model import Change, ForwarderChange, Handler, HandlerChange, Klass, LibraryTwin, Site

SAMPLE_MAINTAINERS = ROOT / "examples" / "minikernel" / "MAINTAINERS"


# -- helpers ----------------------------------------------------------------

def _change(gt, stage: str, edits, handlers, details, title) -> Change:
    """A Change made of a real edit in the worktree, which is then undone.
    The series worktree is sparse: files are checked out as a stage asks."""
    wt = gt.path
    gt.ensure([f for f, _, _ in edits])
    files = []
    for f, old, new in edits:
        p = wt / f
        text = p.read_text()
        assert old in text, (f, old)
        p.write_text(text.replace(old, new, 1))
        files.append(f)
    diff = git(wt, "diff", "--", *files)
    git(wt, "checkout", "--", *files)
    return Change(stage=stage, title=title, handlers=tuple(handlers), files=tuple(files),
                  diff=diff, details=tuple(details))


def _conv(handler, new, file, fops, klass=Klass.FIELDS, **kw):
    return HandlerChange(handler, new, file, 1, klass, fops=tuple(fops), **kw)


SKIPPED = [Handler(name="insertdev_mmap", klass=Klass.NEEDS_VMA,
                   reason=Site("drivers/misc/insertdev.c", 40,
                               "vm_insert_page(vma, vma->vm_start, page)"),
                   definitions=(), fops=())]


def sample_planner(fail_after_forwarders: BaseException | None = None):
    """Changes like the real stages make for the sample tree: one forwarder
    bailout, one library twin, and conversions in three subsystems (two
    handlers in drivers/char, one with a header prototype elsewhere)."""
    def plan(wt, api, commit_forwarders):
        fch = [_change(wt, "forwarders", [("ipc/shmlike.c", "call_mmap(",
                                          "-ENODEV ? 0 : call_mmap(")],
                       ["shmlike_mmap"],
                       [ForwarderChange(function="shmlike_mmap", file="ipc/shmlike.c", line=50,
                                        kind="forward", state="needs-bailout", action="bailout",
                                        expression="call_mmap(sfd->file, vma)")],
                       "bail out of shmlike_mmap() for .mmap_proto files")]
        commit_forwarders(fch)
        if fail_after_forwarders is not None:
            raise fail_after_forwarders
        lib = [_change(wt, "library",
                       [("mm/filemap.c", "EXPORT_SYMBOL(generic_file_mmap);",
                         "EXPORT_SYMBOL(generic_file_mmap);\n/* twin */")],
                       ["generic_file_mmap_proto"],
                       [LibraryTwin(helper="generic_file_mmap_proto",
                                    original="generic_file_mmap", file="mm/filemap.c")],
                       "add generic_file_mmap_proto()")]
        conv = [
            _change(wt, "conversion",
                    [("drivers/char/remapdev.c", "remapdev_mmap,", "remapdev_mmap_proto,")],
                    ["remapdev_mmap"],
                    [_conv("remapdev_mmap", "remapdev_mmap_proto", "drivers/char/remapdev.c",
                           ["drivers/char/remapdev.c:remapdev_fops"], klass=Klass.ACTION,
                           action="mmap_action_remap_full", mapping_call="remap_pfn_range")],
                    "convert remapdev_mmap() to .mmap_proto"),
            _change(wt, "conversion",
                    [("drivers/video/sharedfb/core.c", "sharedfb_mmap,", "sharedfb_mmap_proto,"),
                     ("drivers/video/sharedfb/alt.c", "sharedfb_mmap,", "sharedfb_mmap_proto,"),
                     ("include/linux/sharedfb.h", "sharedfb_mmap", "sharedfb_mmap_proto")],
                    ["sharedfb_mmap"],
                    [_conv("sharedfb_mmap", "sharedfb_mmap_proto",
                           "drivers/video/sharedfb/core.c",
                           ["drivers/video/sharedfb/core.c:sharedfb_fops",
                            "drivers/video/sharedfb/alt.c:sharedfb_alt_fops"])],
                    "convert sharedfb_mmap() to .mmap_proto"),
            _change(wt, "conversion",
                    [("drivers/char/fieldsdev.c", "fieldsdev_mmap,", "fieldsdev_mmap_proto,")],
                    ["fieldsdev_mmap"],
                    [_conv("fieldsdev_mmap", "fieldsdev_mmap_proto", "drivers/char/fieldsdev.c",
                           ["drivers/char/fieldsdev.c:fieldsdev_fops"], flags=True)],
                    "convert fieldsdev_mmap() to .mmap_proto"),
            _change(wt, "conversion",
                    [("fs/samplefs/file.c", "samplefs_file_mmap,", "samplefs_file_mmap_proto,")],
                    ["samplefs_file_mmap"],
                    [_conv("samplefs_file_mmap", "samplefs_file_mmap_proto",
                           "fs/samplefs/file.c", ["fs/samplefs/file.c:samplefs_file_operations"],
                           helper="generic_file_mmap_proto")],
                    "convert samplefs_file_mmap() to .mmap_proto"),
        ]
        cocci = [("convert", "@r@\nidentifier h;\n@@\n- h\n+ h_proto\n")]
        return fch, lib + conv, list(SKIPPED), [], cocci
    return plan


def build(tree, out, **kw):
    kw.setdefault("planner", sample_planner())
    return series.build(tree, out, **kw)


def headers(patch: Path) -> dict[str, str]:
    head = patch.read_text().split("\n\n", 1)[0]
    out: dict[str, str] = {}
    key = None
    for line in head.splitlines()[1:]:
        if line.startswith((" ", "\t")) and key:
            out[key] += " " + line.strip()
        else:
            key, _, val = line.partition(": ")
            out[key] = val
    return out


def patch_files(patch: Path) -> list[str]:
    return re.findall(r"^diff --git a/(\S+) ", patch.read_text(), flags=re.MULTILINE)


def git_am_applies(tree: Path, base: str, patches: list[Path], tmp: Path) -> None:
    """Plain `git am` (no 3-way) on a clean checkout of base, in a clone."""
    clone = tmp / "am-check"
    git(tmp, "clone", "--quiet", "--shared", "--no-checkout", str(tree), str(clone))
    try:
        git(clone, "checkout", "--quiet", "--detach", base)
        p = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "am",
                            "--no-3way", *map(str, patches)], cwd=clone, capture_output=True,
                           text=True, check=False)
    finally:
        remove_tree(clone)
    assert p.returncode == 0, p.stdout + p.stderr


# -- MAINTAINERS and prefixes ---------------------------------------------

def test_the_most_specific_maintainers_section_names_the_subsystem():
    m = maintainers.Maintainers(SAMPLE_MAINTAINERS.parent)
    assert m.subsystem("drivers/char/remapdev.c") == "CHAR DRIVERS"
    assert m.subsystem("fs/samplefs/file.c") == "SAMPLEFS"
    assert m.subsystem("fs/backing-file.c") == "FILESYSTEMS (VFS)"
    assert m.subsystem("fs/binfmt_sample.c") == "EXEC/BINFMT"
    assert m.subsystem("include/linux/mm_types.h") == "MEMORY MANAGEMENT"
    assert m.subsystem("mm/filemap.c") == "MEMORY MANAGEMENT"


def test_a_file_no_section_covers_falls_back_to_its_directory(tmp_path):
    (tmp_path / "MAINTAINERS").write_text(
        "THE REST\nM:\tLinus <l@x.org>\nL:\tlkml@x.org\nS:\tBuried\nF:\t*\nF:\t*/\n\n"
        "HPET\nM:\tH <h@x.org>\nS:\tMaintained\nF:\tdrivers/char/hpet.c\n\n"
        "CHAR\nM:\tC <c@x.org>\nS:\tMaintained\nF:\tdrivers/char/\nX:\tdrivers/char/tpm/\n")
    m = maintainers.Maintainers(tmp_path)
    assert m.subsystem("drivers/char/hpet.c") == "HPET"
    assert m.subsystem("drivers/char/mem.c") == "CHAR"
    assert m.subsystem("drivers/char/tpm/tpm.c") == "dir:drivers/char/tpm"
    assert m.subsystem("sound/core/x.c") == "dir:sound/core"
    to, cc = m.addresses(["drivers/char/hpet.c"])
    assert to == ["H <h@x.org>", "C <c@x.org>", "Linus <l@x.org>"]
    assert cc == ["lkml@x.org"]


@pytest.mark.parametrize("paths,prefix", [
    (["fs/ext4/file.c"], "ext4"),
    (["fs/smb/client/file.c"], "smb: client"),
    (["drivers/char/hpet.c"], "char: hpet"),
    (["drivers/char/hpet.c", "drivers/char/mem.c"], "char"),
    (["drivers/gpu/drm/i915/gem/i915_gem_mman.c"], "drm/i915"),
    (["drivers/gpu/drm/drm_gem.c"], "drm: drm_gem"),
    (["drivers/misc/sgi-gru/grufile.c"], "misc: sgi-gru"),
    (["mm/filemap.c"], "mm"),
    (["ipc/shm.c"], "ipc"),
    (["fs/backing-file.c"], "backing-file"),
    (["fs/backing-file.c", "fs/exec.c"], "fs"),
    (["arch/x86/kernel/cpu/sgx/virt.c"], "x86/sgx"),
    (["security/selinux/selinuxfs.c"], "selinux"),
])
def test_the_subject_prefix_comes_from_the_path_without_history(paths, prefix):
    assert maintainers.path_prefix(paths) == prefix


def test_the_subject_prefix_is_the_most_common_one_in_git_log(tmp_path):
    from mmconvert.gitrepo import GitTree

    r = tmp_path / "r"
    (r / "drivers/char").mkdir(parents=True)
    git(tmp_path, "init", "--quiet", str(r))
    for i, subj in enumerate(["initial", "char: hpet: fix a leak", "misc: hpet: whatever",
                              "char: hpet: fix another leak", "Revert \"x: y\""]):
        (r / "drivers/char/hpet.c").write_text(str(i))
        git(r, "add", "-A")
        git(r, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", subj)
    assert maintainers.subject_prefix(GitTree(r), ["drivers/char/hpet.c"]) == "char: hpet"


def test_prose_is_wrapped_at_75_columns_and_code_is_kept():
    text = (("word " * 60) + "\n\n    an indented line that is kept exactly as it is, "
            "even when it is longer than the limit\n- a bullet " + "x " * 50)
    out = series.wrap(text)
    lines = out.splitlines()
    assert all(len(ln) <= 75 for ln in lines if not ln.startswith("    "))
    assert any(ln.startswith("    an indented line") and len(ln) > 75 for ln in lines)
    assert any(ln.startswith("  x") for ln in lines)


# -- the series on the sample tree --------------------------------------

def test_the_series_applies_to_the_base_and_leaves_the_checkout_alone(sample_tree, tmp_path):
    before = tree_state(sample_tree)
    res = build(sample_tree, tmp_path / "out")
    after = tree_state(sample_tree)
    # Only the new branch is new.
    assert after[0] == before[0] and after[1] == before[1]
    new_refs = set(after[2].splitlines()) - set(before[2].splitlines())
    assert [r.split()[0] for r in new_refs] == [f"refs/heads/{res.branch}"]
    assert res.branch.startswith("mmconvert/proto-")
    assert git(sample_tree, "worktree", "list").count("\n") == 1
    assert res.cover_letter.name == "0000-cover-letter.patch"
    git_am_applies(sample_tree, "base", list(res.patches), tmp_path)
    # The branch holds the same commits.
    assert git(sample_tree, "rev-list", "--count", f"base..{res.branch}").strip() == \
        str(len(res.patches))


def test_patches_are_split_by_subsystem_and_ordered_by_stage_then_path(sample_tree, tmp_path):
    res = build(sample_tree, tmp_path / "out")
    subjects = [headers(p)["Subject"] for p in res.patches]
    assert subjects == [
        "[PATCH 1/5] ipc: bail out of shmlike_mmap() for .mmap_proto files",
        "[PATCH 2/5] mm: add generic_file_mmap_proto()",
        "[PATCH 3/5] char: convert fieldsdev_mmap() and remapdev_mmap() to .mmap_proto",
        "[PATCH 4/5] video: sharedfb: convert sharedfb_mmap() to .mmap_proto",
        "[PATCH 5/5] samplefs: convert samplefs_file_mmap() to .mmap_proto",
    ]
    m = maintainers.Maintainers(sample_tree)
    # The handler's header and second fops travel with its definition.
    assert patch_files(res.patches[3]) == ["drivers/video/sharedfb/alt.c",
                                           "drivers/video/sharedfb/core.c",
                                           "include/linux/sharedfb.h"]
    for p in res.patches:
        cfiles = [f for f in patch_files(p) if f.endswith(".c")]
        assert len({m.subsystem(f) for f in cfiles}) == 1, p.name


def test_subjects_fit_75_columns_and_bodies_are_wrapped(sample_tree, tmp_path):
    res = build(sample_tree, tmp_path / "out")
    for p in res.patches:
        subject = re.sub(r"^\[PATCH[^]]*\] ", "", headers(p)["Subject"])
        assert len(subject) <= 75
        body = p.read_text().split("\n\n", 1)[1].split("\n---\n", 1)[0]
        assert all(len(ln) <= 75 for ln in body.splitlines()), p.name
        assert "Signed-off-by" not in p.read_text()
        assert "mmconvert" in body


def test_a_body_tells_the_reviewer_what_happened_to_each_handler(sample_tree, tmp_path):
    res = build(sample_tree, tmp_path / "out")
    fwd = " ".join(res.patches[0].read_text().split())
    assert "-ENODEV" in fwd and "shmlike_mmap()" in fwd
    char = " ".join(res.patches[2].read_text().split())
    assert ("remap_pfn_range() call in remapdev_mmap() becomes mmap_action_remap_full(): the "
            "core maps the range once the VMA exists, and if that fails it unmaps the new VMA "
            "and mmap() fails, as it did when the handler failed.") in char
    assert "an error it returns needs no unwinding" in char
    assert headers(res.patches[4])["Subject"].endswith(
        "samplefs: convert samplefs_file_mmap() to .mmap_proto")
    lib = " ".join(res.patches[1].read_text().split())
    assert "generic_file_mmap() stays" in lib


def test_the_cover_letter_has_the_census_skips_and_semantic_patches(sample_tree, tmp_path):
    res = build(sample_tree, tmp_path / "out")
    cover = res.cover_letter.read_text()
    h = headers(res.cover_letter)
    assert h["Subject"] == "[PATCH 0/5] mm: move .mmap handlers to .mmap_proto"
    flat = " ".join(cover.split())
    # The census: how the handlers moved, and why the rest did not.
    assert "4 handlers move to .mmap_proto here (3 only moving field work to the descriptor, " \
        "1 also turning their last mapping call into a mapping action); 1 stays on .mmap (1 " \
        "that mmconvert cannot " \
        "convert mechanically)." \
        in flat
    assert "Merge plan: patches 1-2 (ipc, mm) must go in before the conversions; the " \
        "conversions do not depend on each other" in flat
    assert "needs-vma: insertdev_mmap() drivers/misc/insertdev.c:40: vm_insert_page(" in cover
    assert "    - h\n    + h_proto" in cover
    assert "mmconvert 0.1.0" in cover and "proto" in cover
    assert "base-commit: " + git(sample_tree, "rev-parse", "base").strip() in cover
    assert "*** " not in cover
    # Recipients: each patch its own, the cover letter the union.
    assert "ipc@lists.example.org" in headers(res.patches[0])["Cc"]
    assert "Carla Hart <carla.hart@example.org>" in headers(res.patches[2])["To"]
    assert "Carla Hart" not in headers(res.patches[0]).get("To", "")
    for addr in ("Carla Hart", "Ingrid Paulsen", "Miriam Kowalski", "Sam Pleasance"):
        assert addr in h["To"]
    assert "ipc@lists.example.org" in h["Cc"] and "fbdev@lists.example.org" in h["Cc"]


def test_running_series_twice_gives_the_same_patches(sample_tree, tmp_path):
    a = build(sample_tree, tmp_path / "a", branch="one")
    time.sleep(1.1)   # a date taken from the clock would now differ
    b = build(sample_tree, tmp_path / "b", branch="two", reuse=False)
    assert [p.name for p in a.patches] == [p.name for p in b.patches]
    for x, y in zip((a.cover_letter, *a.patches), (b.cover_letter, *b.patches), strict=True):
        assert x.read_text() == y.read_text()


def test_a_rerun_with_nothing_changed_reuses_the_series_and_a_new_base_plans_again(
        sample_tree, tmp_path):
    first = run_mmconvert("series", sample_tree, "-o", tmp_path / "a", "--branch", "one")
    assert first.returncode == 0 and "reusing" not in first.stderr, first.stderr
    again = run_mmconvert("series", sample_tree, "-o", tmp_path / "b", "--branch", "two")
    assert again.returncode == 0 and "reusing its commits" in again.stderr, again.stderr
    a, b = sorted((tmp_path / "a").iterdir()), sorted((tmp_path / "b").iterdir())
    assert [p.name for p in a] == [p.name for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))
    assert git(sample_tree, "rev-parse", "one") == git(sample_tree, "rev-parse", "two")
    # A new base: planned again, and the patches say so.
    path = sample_tree / "drivers/char/remapdev.c"
    path.write_text(path.read_text().replace(" * remapdev - maps", " * remapdev - map", 1))
    git(sample_tree, "commit", "--quiet", "-am", "char: remapdev: reword the summary")
    moved = run_mmconvert("series", sample_tree, "-o", tmp_path / "c", "--branch", "three")
    assert moved.returncode == 0 and "reusing" not in moved.stderr, moved.stderr
    head = git(sample_tree, "rev-parse", "HEAD").strip()
    assert f"base-commit: {head}" in (tmp_path / "c" / "0000-cover-letter.patch").read_text()


def test_signoff_adds_the_users_identity_only_when_asked(sample_tree, tmp_path):
    res = build(sample_tree, tmp_path / "out", signoff=True)
    for p in res.patches:
        assert "Signed-off-by: mmconvert tests <tests@mmconvert.invalid>" in p.read_text()
        assert headers(p)["From"] == "mmconvert tests <tests@mmconvert.invalid>"


def test_without_a_git_identity_commits_use_a_neutral_one(sample_tree, tmp_path, monkeypatch):
    git(sample_tree, "config", "--unset", "user.name")
    git(sample_tree, "config", "--unset", "user.email")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "empty-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    res = build(sample_tree, tmp_path / "out")
    assert headers(res.patches[0])["From"] == "mmconvert <mmconvert@localhost>"
    assert "Signed-off-by" not in res.patches[0].read_text()
    with pytest.raises(UsageError, match="identity"):
        build(sample_tree, tmp_path / "out2", signoff=True)


def test_a_reroll_is_numbered_and_carries_a_range_diff(sample_tree, tmp_path):
    v1 = build(sample_tree, tmp_path / "v1")
    v2 = build(sample_tree, tmp_path / "v2", reroll=2)
    assert v2.branch == v1.branch + "-v2"
    assert all(p.name.startswith("v2-") for p in v2.patches)
    assert headers(v2.patches[0])["Subject"].startswith("[PATCH v2 1/5] ")
    cover = v2.cover_letter.read_text()
    assert "Range-diff against v1:" in cover


def test_an_existing_branch_or_a_non_empty_dir_is_refused(sample_tree, tmp_path):
    res = build(sample_tree, tmp_path / "out")
    state = tree_state(sample_tree)
    with pytest.raises(UsageError, match="exists"):
        build(sample_tree, tmp_path / "other")
    with pytest.raises(UsageError, match="not empty"):
        build(sample_tree, tmp_path / "out", branch="another")
    assert tree_state(sample_tree) == state
    assert not (tmp_path / "other").exists()
    again = build(sample_tree, tmp_path / "out", force=True)
    assert again.branch == res.branch
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        sorted([again.cover_letter.name] + [p.name for p in again.patches])


@pytest.mark.parametrize("failure", [KeyboardInterrupt(), MmconvertError("boom")])
def test_a_failure_or_ctrl_c_leaves_nothing_behind(sample_tree, tmp_path, failure):
    out = tmp_path / "out"
    out.mkdir()
    (out / "0001-an-earlier-series.patch").write_text("mine")
    state = tree_state(sample_tree)
    with pytest.raises(type(failure)):
        build(sample_tree, out, force=True, planner=sample_planner(failure))
    assert tree_state(sample_tree) == state
    assert git(sample_tree, "worktree", "list").count("\n") == 1
    assert [p.name for p in out.iterdir()] == ["0001-an-earlier-series.patch"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["minikernel", "out"]


def test_ctrl_c_while_writing_the_series_leaves_dir_and_branches_alone(sample_tree, tmp_path):
    # A get_maintainer.pl that presses Ctrl-C on mmconvert, once the
    # patches are being written into the temporary directory.
    script = sample_tree / "scripts" / "get_maintainer.pl"
    script.parent.mkdir()
    script.write_text("kill 'INT', getppid(); sleep 2; exit 1;\n")
    git(sample_tree, "add", "scripts")
    git(sample_tree, "commit", "--quiet", "-m", "scripts: a get_maintainer.pl that interrupts")
    out = tmp_path / "out"
    state = tree_state(sample_tree)
    with pytest.raises(KeyboardInterrupt):
        build(sample_tree, out)
    assert tree_state(sample_tree) == state
    assert git(sample_tree, "worktree", "list").count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["minikernel"]


def test_the_command_refuses_a_non_empty_dir_in_one_line(sample_tree, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("")
    p = run_mmconvert("series", sample_tree, "-o", out)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        f"mmconvert: {out}: not empty (use --force to replace an earlier series)"]


def test_the_series_command_writes_the_sample_trees_series(sample_tree, tmp_path):
    out = tmp_path / "out"
    p = run_mmconvert("series", sample_tree, "-o", out)
    assert p.returncode == 0, p.stderr
    cover = Path(p.stdout.strip().splitlines()[-1])
    assert cover == out / "0000-cover-letter.patch" and cover.is_file()
    patches = sorted(out.glob("0*.patch"))[1:]
    assert patches
    git_am_applies(sample_tree, "base", patches, tmp_path)


# -- real kernel trees ------------------------------------------------------

def _checkpatch(tree: Path, patches: list[Path]) -> tuple[list[str], list[str]]:
    """(errors, warnings) of scripts/checkpatch.pl over every patch."""
    errors, warnings = [], []
    for patch in patches:
        p = subprocess.run(["perl", "scripts/checkpatch.pl", "--terse", "--no-summary",
                            "--showfile", str(patch)], cwd=tree, capture_output=True,
                           text=True, check=False)
        assert p.returncode in (0, 1), p.stderr
        for line in p.stdout.splitlines():
            if ": ERROR:" in line:
                errors.append(f"{patch.name}: {line}")
            elif ": WARNING:" in line or ": CHECK:" in line:
                warnings.append(f"{patch.name}: {line}")
    return errors, warnings


def _one_subsystem_each(tree: Path, patches: list[Path]) -> None:
    m = maintainers.Maintainers(tree)
    for patch in patches:
        sources = [f for f in patch_files(patch) if not f.startswith("include/")]
        subs = {m.subsystem(f) for f in sources}
        assert len(subs) <= 1, (patch.name, subs)


def _same_but_dates_and_ids(a: Path, b: Path) -> None:
    def norm(text: str) -> str:
        text = re.sub(r"^From [0-9a-f]{40} ", "From <id> ", text, flags=re.MULTILINE)
        return re.sub(r"^Date: .*$", "Date: <date>", text, flags=re.MULTILINE)
    names_a = sorted(p.name for p in a.iterdir())
    assert names_a == sorted(p.name for p in b.iterdir())
    for n in names_a:
        assert norm((a / n).read_text()) == norm((b / n).read_text()), n


@pytest.mark.realtree
def test_the_73_series_applies_to_base_passes_checkpatch_and_reruns_the_same(
        kernel_tree, tmp_path):
    tree = kernel_tree("7.3")
    out = tmp_path / "series"
    before = tree_state(tree)
    p = run_mmconvert("series", tree, "-o", out, "--signoff")
    assert p.returncode == 0, p.stderr
    assert tree_state(tree)[:2] == before[:2]
    patches = sorted(out.glob("0*.patch"))
    cover, patches = patches[0], patches[1:]
    # The README's figure: 25 patches.
    assert cover.name == "0000-cover-letter.patch" and len(patches) == 25, [
        p.name for p in patches]
    git_am_applies(tree, "base", patches, tmp_path)
    _one_subsystem_each(tree, patches)
    for patch in patches:
        h = headers(patch)
        subject = re.sub(r"^\[PATCH[^]]*\] ", "", h["Subject"])
        assert len(subject) <= 75, subject
        assert h.get("To"), patch.name
    errors, warnings = _checkpatch(tree, patches)
    print(f"checkpatch: {len(warnings)} warnings on {len(patches)} patches")
    print("\n".join(warnings))
    assert errors == []
    again = tmp_path / "again"
    p = run_mmconvert("series", tree, "-o", again, "--signoff", "--branch", "mmconvert/again",
                      "--no-cache")
    assert p.returncode == 0, p.stderr
    _same_but_dates_and_ids(out, again)


@pytest.mark.realtree
def test_the_612_proto_series_puts_forwarders_first_and_applies(kernel_tree, tmp_path):
    tree = kernel_tree("6.12")
    commit_g1(tree)
    out = tmp_path / "series"
    p = run_mmconvert("series", tree, "-o", out, "--api", "proto", "--signoff")
    assert p.returncode == 0, p.stderr
    patches = sorted(out.glob("0*.patch"))[1:]
    stages = []
    for patch in patches:
        subject = headers(patch)["Subject"]
        body = " ".join(patch.read_text().split())
        stages.append("forwarders" if "Some code does not map a file itself" in body
                      else "other")
        assert len(re.sub(r"^\[PATCH[^]]*\] ", "", subject)) <= 75
    assert stages[0] == "forwarders"
    assert stages == sorted(stages, key=lambda s: s != "forwarders")
    git_am_applies(tree, "HEAD", patches, tmp_path)
    _one_subsystem_each(tree, patches)
    errors, warnings = _checkpatch(tree, patches)
    print("\n".join(warnings))
    assert errors == []


@pytest.mark.realtree
def test_get_maintainer_gives_the_same_order_on_every_run(cached_kernel, tmp_path):
    # KVM's section lists two maintainers that get_maintainer.pl orders by
    # Perl hash order; the series must not change between runs because of it.
    tree = cached_kernel("7.3")
    files = ["virt/kvm/guest_memfd.c", "virt/kvm/kvm_main.c"]
    patch = tmp_path / "kvm.patch"
    patch.write_text("".join(
        f"diff --git a/{f} b/{f}\n--- a/{f}\n+++ b/{f}\n@@ -1 +1 @@\n-a\n+b\n" for f in files))
    m = maintainers.Maintainers(tree)
    runs = {tuple(map(tuple, maintainers.recipients(tree, m, patch, files)))
            for _ in range(16)}
    assert len(runs) == 1, runs
    (to, _cc), = runs
    assert {"Paolo Bonzini <pbonzini@redhat.com>",
            "Sean Christopherson <seanjc@google.com>"} <= set(to)
