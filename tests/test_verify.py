"""`mmconvert verify`: a series applies, reads well, passes checkpatch and
builds at every step; the user's checkout is never touched.

The sample-tree tests use the plain `make path/file.o` contract and run in
a second; the real-tree tests build x86 allmodconfig objects of Debian's 7.3
in the shared O= cache (the first run on a machine pays ~35 s for prepare).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import clone_kernel, git, remove_tree, run_mmconvert, tree_state

from mmconvert import build as buildmod
from mmconvert import verify
from mmconvert.gitrepo import GitTree

# -- helpers -------------------------------------------------------------------


def commit(tree: Path, subject: str, edits, body: str = "") -> None:
    """One commit made of (path, old, new) text replacements."""
    for path, old, new in edits:
        p = tree / path
        text = p.read_text() if p.exists() else ""
        assert old in text, (path, old)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text.replace(old, new, 1) if old else new + text)
        git(tree, "add", path)
    msg = subject + "\n\n" + (body or f"{subject.split(': ')[-1].capitalize()}.") + \
        "\n\nSigned-off-by: mmconvert tests <tests@mmconvert.invalid>\n"
    git(tree, "commit", "--quiet", "-m", msg)


def format_patch(tree: Path, out: Path, *extra: str) -> Path:
    git(tree, "format-patch", "--quiet", "--cover-letter", "--base=base", "-o", str(out),
        *extra, "base..HEAD")
    return out


def patches(d: Path) -> list[Path]:
    return sorted(p for p in d.glob("*.patch") if not p.name.startswith("0000-"))


def change_context_line(patch: Path) -> str:
    """Change the first context line of the patch's first hunk; return it."""
    lines = patch.read_text().split("\n")
    in_hunk = False
    for i, ln in enumerate(lines):
        if ln.startswith("@@ "):
            in_hunk = True
        elif in_hunk and ln.startswith(" ") and ln.strip():
            lines[i] = ln + " /* edited */"
            patch.write_text("\n".join(lines))
            return ln
    raise AssertionError(f"{patch}: no context line")


NULLMMAP = "drivers/char/nullmmap.c"
SAMPLEFS_H = "fs/samplefs/samplefs.h"


@pytest.fixture
def sample_series(sample_tree, tmp_path):
    """Two good patches on the sample tree: a .c file and a local header."""
    commit(sample_tree, "char: nullmmap: say why reads return nothing",
           [(NULLMMAP, "/* Nothing to read yet: always at end of file. */",
             "/* Nothing to read yet: the counter is not exposed. */")])
    commit(sample_tree, "samplefs: shorten the inode info comment",
           [(SAMPLEFS_H, "/* In-core part of a samplefs inode, hung off inode->i_private. */",
             "/* In-core part of a samplefs inode (inode->i_private). */")])
    out = format_patch(sample_tree, tmp_path / "series")
    git(sample_tree, "checkout", "--quiet", "base")
    return sample_tree, out


# -- sample tree: the make path/file.o contract ------------------------------------


def test_a_good_series_passes_and_builds_every_touched_object(sample_series):
    tree, series = sample_series
    before = tree_state(tree)
    r = run_mmconvert("verify", series, "--tree", tree, "--build")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[1/2] ok" in r.stdout and "[2/2] ok" in r.stdout
    assert "drivers/char/nullmmap.o" in r.stdout
    # the local header's directory objects are built for it
    assert "fs/samplefs/samplefs.h: built fs/samplefs/file.o" in r.stdout
    assert "result: PASS" in r.stdout
    assert tree_state(tree) == before
    assert git(tree, "worktree", "list").count("\n") == 1


def test_a_patch_that_breaks_compilation_fails_naming_the_object(sample_series, tmp_path):
    tree, _ = sample_series
    commit(tree, "char: nullmmap: return the counter",
           [(NULLMMAP, "\treturn 0;\n}", "\treturn undefined_counter;\n}")])
    series = format_patch(tree, tmp_path / "broken")
    before = tree_state(tree)
    r = run_mmconvert("verify", series, "--tree", tree, "--build")
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"\[1/1\] FAIL", r.stdout)
    assert "drivers/char/nullmmap.o: FAILED: drivers/char/nullmmap.c:" in r.stdout
    assert "undefined_counter" in r.stdout
    assert tree_state(tree) == before


def test_without_build_a_compile_error_is_not_looked_for(sample_series, tmp_path):
    tree, _ = sample_series
    commit(tree, "char: nullmmap: return the counter",
           [(NULLMMAP, "\treturn 0;\n}", "\treturn undefined_counter;\n}")])
    r = run_mmconvert("verify", format_patch(tree, tmp_path / "s"), "--tree", tree)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_changed_context_line_fails_at_that_patch_naming_file_and_hunk(sample_series):
    tree, series = sample_series
    change_context_line(patches(series)[1])
    before = tree_state(tree)
    r = run_mmconvert("verify", series, "--tree", tree, "--build")
    assert r.returncode == 1
    assert "[1/2] ok" in r.stdout
    assert re.search(r"\[2/2\] FAIL .*\n.*apply: fs/samplefs/samplefs.h: hunk #1 \(@@ -\d+,\d+ "
                     r"\+\d+,\d+ @@\) does not apply", r.stdout), r.stdout
    assert tree_state(tree) == before


def test_the_run_stops_at_the_first_patch_that_does_not_apply(sample_series):
    tree, series = sample_series
    change_context_line(patches(series)[0])
    r = run_mmconvert("verify", series, "--tree", tree, "--build")
    assert r.returncode == 1
    assert "[2/2] not reached" in r.stdout
    assert "not applied: the series stopped at 1/2" in r.stdout
    assert "fs/samplefs/file.o" not in r.stdout


def test_a_series_on_the_wrong_base_fails_with_a_clear_message(sample_series):
    tree, series = sample_series
    # the tree moves on: the line the first patch changes is changed already
    commit(tree, "char: nullmmap: reword a comment",
           [(NULLMMAP, "/* Nothing to read yet: always at end of file. */",
             "/* Nothing to read: at end of file. */")])
    before = tree_state(tree)
    r = run_mmconvert("verify", series, "--tree", tree, "--base", "HEAD")
    assert r.returncode == 1
    assert "drivers/char/nullmmap.c: hunk #1" in r.stdout
    assert "the series says base-commit" in r.stdout
    assert tree_state(tree) == before


def test_a_missing_or_unknown_base_is_one_line_and_exit_2(sample_series, tmp_path):
    tree, series = sample_series
    before = tree_state(tree)
    cover = series / "0000-cover-letter.patch"
    text = cover.read_text()
    cover.write_text(re.sub(r"base-commit: [0-9a-f]+", "base-commit: " + "1" * 40, text))
    r = run_mmconvert("verify", series, "--tree", tree)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "base commit 1111111111111111111111111111111111111111" in r.stderr
    assert "Traceback" not in r.stderr
    cover.write_text(re.sub(r"base-commit: [0-9a-f]+\n", "", text))
    r = run_mmconvert("verify", series, "--tree", tree)
    assert r.returncode == 2
    assert "no base-commit: line" in r.stderr and "--base" in r.stderr
    r = run_mmconvert("verify", series, "--tree", tree, "--base", "no-such-ref")
    assert r.returncode == 2 and "--base no-such-ref: not a commit" in r.stderr
    r = run_mmconvert("verify", tmp_path / "nowhere", "--tree", tree)
    assert r.returncode == 2 and "not a directory" in r.stderr
    assert tree_state(tree) == before


def test_added_trailing_whitespace_and_a_long_subject_are_format_errors(sample_tree, tmp_path):
    commit(sample_tree, "char: nullmmap: " + "a very long subject line " * 3,
           [(NULLMMAP, "/* Nothing to read yet: always at end of file. */",
             "/* Nothing to read yet. */  ")])
    series = format_patch(sample_tree, tmp_path / "s")
    r = run_mmconvert("verify", series, "--tree", sample_tree)
    assert r.returncode == 1
    assert "added line has trailing whitespace" in r.stdout
    assert re.search(r"subject is \d+ characters after the \[PATCH\] prefix", r.stdout)


def test_inconsistent_hunk_counts_are_reported_by_the_reader(sample_series):
    tree, series = sample_series
    p = patches(series)[0]
    p.write_text(re.sub(r"@@ -(\d+),7 \+(\d+),7 @@", r"@@ -\1,9 +\2,9 @@", p.read_text(), count=1))
    r = run_mmconvert("verify", series, "--tree", tree)
    assert r.returncode == 1
    assert "format: malformed diff: Hunk is shorter than expected" in r.stdout, r.stdout


def test_numbering_gaps_and_a_missing_cover_letter_are_reported(sample_series):
    tree, series = sample_series
    (series / "0000-cover-letter.patch").unlink()
    r = run_mmconvert("verify", series, "--tree", tree, "--base", "base")
    assert r.returncode == 1
    assert "no cover letter (0/2) for a series of 2 patches" in r.stdout
    patches(series)[1].unlink()
    r = run_mmconvert("verify", series, "--tree", tree, "--base", "base")
    assert "subjects say N = 2, but the directory has 1 patches" in r.stdout


def test_an_empty_patch_is_reported(sample_tree, tmp_path):
    git(sample_tree, "commit", "--quiet", "--allow-empty", "-m", "char: nothing at all")
    commit(sample_tree, "char: nullmmap: reword",
           [(NULLMMAP, "always at end of file", "always at the end of file")])
    series = format_patch(sample_tree, tmp_path / "s")
    # format-patch drops empty commits; write one by hand as a reviewer might
    empty = series / "0001-char-nothing.patch"
    first = patches(series)[0]
    head = first.read_text().split("\n---\n")[0]
    empty.write_text(head.replace("reword", "nothing at all") + "\n---\n-- \n2.39.5\n")
    first.rename(series / "0002-char-nullmmap-reword.patch")
    for p, k in ((empty, 1), (series / "0002-char-nullmmap-reword.patch", 2)):
        p.write_text(re.sub(r"\[PATCH \d+/\d+\]", f"[PATCH {k}/2]", p.read_text(), count=1))
    r = run_mmconvert("verify", series, "--tree", sample_tree)
    assert r.returncode == 1
    assert "empty patch" in r.stdout


def test_json_and_junit_files_describe_every_patch_and_check(sample_series, tmp_path):
    tree, series = sample_series
    commit(tree, "char: nullmmap: return the counter",
           [(NULLMMAP, "\treturn 0;\n}", "\treturn undefined_counter;\n}")])
    series = format_patch(tree, tmp_path / "s3")
    js, ju = tmp_path / "r.json", tmp_path / "r.xml"
    r = run_mmconvert("verify", series, "--tree", tree, "--build", "--json", js, "--junit", ju)
    assert r.returncode == 1
    data = json.loads(js.read_text())
    assert data["passed"] is False
    assert [p["status"] for p in data["patches"]] == ["FAIL"]
    assert data["patches"][0]["objects"][0]["object"] == "drivers/char/nullmmap.o"
    assert data["patches"][0]["objects"][0]["status"] == "failed"
    suite = ET.parse(ju).getroot()
    assert suite.get("failures") == "1"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["build drivers/char/nullmmap.o"]


def test_the_library_reads_a_series_and_its_base(sample_series):
    _, series = sample_series
    s = verify.load_series(series)
    assert s.cover is not None
    assert [p.label for p in s.patches] == ["1/2", "2/2"]
    assert re.fullmatch(r"[0-9a-f]{40}", s.base_commit())


def test_only_the_most_recently_used_build_directories_are_kept(tmp_path, monkeypatch):
    """Each prepared build directory holds a kernel source tree: old ones go,
    the one in use and one another run holds stay."""
    monkeypatch.setenv("MMCONVERT_CACHE", str(tmp_path))
    root = buildmod.cache_root()
    dirs = []
    for age, name in enumerate(["newest", "newer", "older", "locked", "oldest"]):
        d = root / f"{name}-x86_64-allmodconfig"
        (d / "src").mkdir(parents=True)
        (d / "prepared").write_text("1\n")
        os.utime(d / "prepared", (1e9 - age * 1000, 1e9 - age * 1000))
        dirs.append(d)
    current = root / "current-x86_64-allmodconfig"
    current.mkdir()
    with open(root / "locked-x86_64-allmodconfig.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        removed = buildmod.evict_builds(keep=3, current=current)
    assert sorted(d.name.split("-")[0] for d in removed) == ["older", "oldest"]
    assert sorted(d.name.split("-")[0] for d in root.glob("*-allmodconfig")) == [
        "current", "locked", "newer", "newest"]


def test_headers_choose_includers_and_other_arch_files_go_to_their_arch(sample_tree):
    gt = GitTree(sample_tree)
    targets, skipped = buildmod.targets_for(
        gt, ["include/linux/miscdevice.h", "arch/arm/kernel/foo.c", "arch/arm/include/foo.h",
             "README"], kbuild=True)
    users = [t for t in targets if t.via]
    assert 0 < len(users) <= buildmod.HEADER_USERS
    assert all(t.via == "include/linux/miscdevice.h" and t.arch == "" for t in users)
    for t in users:
        assert "#include <linux/miscdevice.h>" in (sample_tree / (t.object[:-2] + ".c")).read_text()
    assert [(t.object, t.arch) for t in targets if not t.via] == [("arch/arm/kernel/foo.o", "arm")]
    assert [(s.object, s.status) for s in skipped] == [("arch/arm/include/foo.h", "skipped")]
    assert "a header of arch/arm" in skipped[0].reason


# -- real 7.3 tree: x86 allmodconfig in the cached O= directory ----------------------

UV = "drivers/char/uv_mmtimer.c"
UV_OLD = """static int uv_mmtimer_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long uv_mmtimer_addr;

	if (vma->vm_end - vma->vm_start != PAGE_SIZE)
		return -EINVAL;

	if (vma->vm_flags & VM_WRITE)
		return -EPERM;

	if (PAGE_SIZE > (1 << 16))
		return -ENOSYS;

	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);

	uv_mmtimer_addr = UV_LOCAL_MMR_BASE | UVH_RTC;
	uv_mmtimer_addr &= ~(PAGE_SIZE - 1);
	uv_mmtimer_addr &= 0xfffffffffffffffUL;

	if (remap_pfn_range(vma, vma->vm_start, uv_mmtimer_addr >> PAGE_SHIFT,
					PAGE_SIZE, vma->vm_page_prot)) {
		printk(KERN_ERR "remap_pfn_range failed in uv_mmtimer_mmap\\n");
		return -EAGAIN;
	}

	return 0;
}"""
UV_NEW = """static int uv_mmtimer_mmap_prepare(struct vm_area_desc *desc)
{
	unsigned long uv_mmtimer_addr;

	if (vma_desc_size(desc) != PAGE_SIZE)
		return -EINVAL;

	if (vma_desc_test(desc, VMA_WRITE_BIT))
		return -EPERM;

	if (PAGE_SIZE > (1 << 16))
		return -ENOSYS;

	desc->page_prot = pgprot_noncached(desc->page_prot);

	uv_mmtimer_addr = UV_LOCAL_MMR_BASE | UVH_RTC;
	uv_mmtimer_addr &= ~(PAGE_SIZE - 1);
	uv_mmtimer_addr &= 0xfffffffffffffffUL;

	mmap_action_remap_full(desc, uv_mmtimer_addr >> PAGE_SHIFT);
	desc->action.error_override = -EAGAIN;
	return 0;
}"""
IPMI_H = "drivers/char/ipmi/ipmi_si.h"


def uv_conversion(tree: Path) -> None:
    """A hand conversion of a real 7.3 handler (built as a module by x86
    allmodconfig), then a comment change in a local header."""
    commit(tree, "char: uv_mmtimer: convert to mmap_prepare", [
        (UV, "static int uv_mmtimer_mmap(struct file *file, struct vm_area_struct *vma);",
         "static int uv_mmtimer_mmap_prepare(struct vm_area_desc *desc);"),
        (UV, ".mmap =\tuv_mmtimer_mmap,", ".mmap_prepare =\tuv_mmtimer_mmap_prepare,"),
        (UV, (" * uv_mmtimer_mmap - maps the clock's registers into userspace\n"
             " * @file: file structure for the device\n"
             " * @vma: VMA to map the registers into\n"),
         (" * uv_mmtimer_mmap_prepare - maps the clock's registers into userspace\n"
         " * @desc: the mapping being set up\n")),
        (UV, "Calls remap_pfn_range() to map", "Asks for a PFN remap to map"),
        (UV, UV_OLD, UV_NEW),
    ], body="Move uv_mmtimer to the mmap_prepare hook: the remap becomes a mapping\n"
            "action and keeps its old error code.")
    commit(tree, "ipmi: si: say where the type names live", [
        (IPMI_H, "/* Array is defined in the ipmi_si_intf.c */",
         "/* Array is defined in ipmi_si_intf.c */")])


def _objects_built(out: str) -> int:
    m = re.search(r"^build: (\d+) objects built in ([\d.]+) s", out, re.MULTILINE)
    assert m, out
    return int(m.group(1))


@pytest.mark.realtree
def test_a_hand_converted_7_3_series_passes_checkpatch_and_builds(kernel_tree, tmp_path):
    tree = kernel_tree("7.3")
    uv_conversion(tree)
    series = format_patch(tree, tmp_path / "series")
    git(tree, "checkout", "--quiet", "base")
    before = tree_state(tree)
    r = run_mmconvert("verify", series, "--tree", tree, "--checkpatch", "--build",
                      "--json", tmp_path / "r.json")
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "drivers/char/uv_mmtimer.o" in r.stdout
    # the header's own directory: ipmi_si objects that include it
    assert re.search(r"drivers/char/ipmi/ipmi_si.h: built drivers/char/ipmi/\S+\.o", r.stdout)
    assert _objects_built(r.stdout) >= 2
    assert "checkpatch: 0 errors" in r.stdout
    assert tree_state(tree) == before
    # a second run reuses the prepared O= directory
    r2 = run_mmconvert("verify", series, "--tree", tree, "--build")
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert "(x86, prepared earlier)" in r2.stdout


@pytest.mark.realtree
def test_7_3_a_patch_that_breaks_the_build_fails_naming_the_object(kernel_tree, tmp_path):
    tree = kernel_tree("7.3")
    uv_conversion(tree)
    commit(tree, "char: uv_mmtimer: use a helper that does not exist", [
        (UV, "mmap_action_remap_full(desc,", "mmap_action_remap_everything(desc,")])
    series = format_patch(tree, tmp_path / "series")
    before = tree_state(tree)
    r = run_mmconvert("verify", series, "--tree", tree, "--build")
    print(r.stdout)
    assert r.returncode == 1
    assert "[1/3] ok" in r.stdout and "[2/3] ok" in r.stdout
    assert re.search(r"\[3/3\] FAIL .*\n.*\n\s+drivers/char/uv_mmtimer.o: FAILED: "
                     r"drivers/char/uv_mmtimer.c:\d+: error: .*mmap_action_remap_everything",
                     r.stdout), r.stdout
    assert tree_state(tree) == before


@pytest.mark.realtree
def test_7_3_a_changed_hunk_context_fails_at_that_patch(kernel_tree, tmp_path):
    tree = kernel_tree("7.3")
    uv_conversion(tree)
    series = format_patch(tree, tmp_path / "series")
    change_context_line(patches(series)[1])
    before = tree_state(tree)
    r = run_mmconvert("verify", series, "--tree", tree)
    assert r.returncode == 1
    assert "[1/2] ok" in r.stdout
    assert re.search(r"\[2/2\] FAIL ipmi: si: .*\n.*apply: drivers/char/ipmi/ipmi_si.h: hunk #1",
                     r.stdout), r.stdout
    assert tree_state(tree) == before


@pytest.mark.realtree
def test_7_3_a_series_on_the_wrong_base_fails_clearly(kernel_tree, tmp_path):
    tree = kernel_tree("7.3")
    uv_conversion(tree)
    series = format_patch(tree, tmp_path / "series")
    before = tree_state(tree)
    # HEAD already has the conversion: the first patch cannot apply again
    r = run_mmconvert("verify", series, "--tree", tree, "--base", "HEAD")
    assert r.returncode == 1
    assert re.search(r"\[1/2\] FAIL .*\n.*apply: drivers/char/uv_mmtimer.c: hunk #1 .*does "
                     r"not apply \(the series says base-commit [0-9a-f]{12}, it was applied to "
                     r"[0-9a-f]{12}\)", r.stdout), r.stdout
    assert tree_state(tree) == before


@pytest.mark.realtree
def test_7_3_files_for_other_architectures_are_built_there(kernel_tree, tmp_path):
    """A file x86 does not build is built on the architecture it lives
    under, or on the first one whose allmodconfig selects it (Kbuild says
    which); a broken hunk there fails the patch, naming the compiler line."""
    tree = kernel_tree("7.3")
    out = tmp_path / "s"
    commit(tree, "tty: sunsu: mention sparc", [
        ("drivers/tty/serial/sunsu.c", "", "// sparc only\n")])
    commit(tree, "sparc: say hello", [
        ("arch/sparc/kernel/setup_64.c", "", "// hello\n")])
    commit(tree, "powerpc/kvm: break the build", [
        ("arch/powerpc/kvm/book3s_64_vio.c", "\treturn 0;\n}\n",
         "\treturn mmconvert_undeclared;\n}\n")])
    format_patch(tree, out)
    r = run_mmconvert("verify", out, "--tree", tree, "--build", "--json", tmp_path / "r.json")
    print(r.stdout)
    assert r.returncode == 1, r.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    objs = [(o["object"], o["status"], o["arch"]) for p in data["patches"] for o in p["objects"]]
    assert objs == [("drivers/tty/serial/sunsu.o", "passed", "sparc"),
                    ("arch/sparc/kernel/setup_64.o", "passed", "sparc"),
                    ("arch/powerpc/kvm/book3s_64_vio.o", "failed", "powerpc")]
    line = next(n for n, text in enumerate(
        (tree / "arch/powerpc/kvm/book3s_64_vio.c").read_text().splitlines(), 1)
        if "mmconvert_undeclared" in text)
    assert re.search(r"^  \[3/3\] FAIL powerpc/kvm: break the build$", r.stdout, re.MULTILINE)
    assert (f"arch/powerpc/kvm/book3s_64_vio.o [powerpc]: FAILED: "
            f"arch/powerpc/kvm/book3s_64_vio.c:{line}: error: 'mmconvert_undeclared' "
            "undeclared") in r.stdout
    assert "not build-checked" not in r.stdout
    assert data["objects_built"] == 3


@pytest.fixture(scope="module")
def series_73(cached_kernel, tmp_path_factory):
    """The 7.3 series `mmconvert series` writes, made once for the tests below
    (in a throwaway clone, like the kernel_tree fixture's)."""
    d = tmp_path_factory.mktemp("series73")
    tree = clone_kernel(cached_kernel("7.3"), d / "linux-7.3")
    out = d / "series"
    r = run_mmconvert("series", tree, "-o", out, "--signoff")
    assert r.returncode == 0, r.stdout + r.stderr
    yield tree, out
    remove_tree(tree)


@pytest.mark.realtree
def test_the_7_3_series_from_mmconvert_series_passes_checkpatch_and_build(series_73):
    """The run says how many objects it built and how long it took."""
    tree, out = series_73
    before = tree_state(tree)
    r = run_mmconvert("verify", out, "--tree", tree, "--checkpatch", "--build")
    print(r.stdout)
    assert tree_state(tree) == before
    assert _objects_built(r.stdout) > 0
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.realtree
def test_a_copy_of_the_7_3_series_with_a_changed_context_fails_at_that_patch(series_73,
                                                                             tmp_path):
    tree, out = series_73
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    k = len(patches(copy)) // 2
    label = verify.load_series(copy).patches[k].label
    change_context_line(patches(copy)[k])
    before = tree_state(tree)
    r = run_mmconvert("verify", copy, "--tree", tree)
    assert r.returncode == 1
    assert re.search(rf"\[{re.escape(label)}\] FAIL .*\n.*apply: \S+: hunk #\d+ \(@@", r.stdout), \
        r.stdout
    assert f"not applied: the series stopped at {label}" in r.stdout
    assert tree_state(tree) == before


@pytest.mark.realtree
def test_the_7_3_series_on_the_wrong_base_fails_clearly(series_73):
    tree, out = series_73
    tip = git(tree, "for-each-ref", "--format=%(refname)", "refs/heads/mmconvert/").split()[0]
    before = tree_state(tree)
    r = run_mmconvert("verify", out, "--tree", tree, "--base", tip)
    assert r.returncode == 1
    assert re.search(r"\[1/\d+\] FAIL .*\n.*apply: .*does not apply \(the series says "
                     r"base-commit [0-9a-f]{12}, it was applied to [0-9a-f]{12}\)", r.stdout), \
        r.stdout
    assert tree_state(tree) == before


@pytest.mark.realtree
def test_7_3_a_half_written_cmd_file_in_the_build_cache_is_repaired(kernel_tree):
    tree = kernel_tree("7.3")
    gt = GitTree(tree)
    b = buildmod.KbuildBuilder(gt, gt.resolve("base"))
    with b.session():
        assert [r.status for r in b.build([buildmod.Target("drivers/char/mem.o")])] == ["passed"]
        cmd = b.objdir / "drivers/char/.mem.o.cmd"
        cmd.write_text(cmd.read_text() + "neric/sections.h \\\n  half written\n")
        res = b.build([buildmod.Target("drivers/char/mem.o")])
        assert [r.status for r in res] == ["passed"], res
        assert "half written" not in cmd.read_text()


@pytest.mark.realtree
def test_7_3_a_directory_kbuild_enters_twice_is_built_without_parallel_jobs(kernel_tree):
    """drivers/Makefile names char/ipmi/ itself: with -j2, drivers/char and
    drivers/char/ipmi would both compile an ipmi object at the same time."""
    tree = kernel_tree("7.3")
    gt = GitTree(tree)
    b = buildmod.KbuildBuilder(gt, gt.resolve("base"), jobs=2)
    with b.session():
        assert b.unselected("drivers/char/ipmi/ipmi_si_intf.o") is None
        assert b.unselected("drivers/char/mem.o") is None
        assert b.jobs_for(["drivers/char/ipmi/ipmi_si_intf.o", "drivers/char/mem.o"]) == 1
        assert b.jobs_for(["drivers/char/mem.o"]) == 2
        assert "not built by x86 allmodconfig" in b.unselected("drivers/tty/serial/sunsu.o")


def test_a_missing_cross_compiler_is_named_when_installing_is_off(monkeypatch):
    monkeypatch.setenv("MMCONVERT_NO_INSTALL", "1")
    missing = [(a, cross, pkg) for a, (cross, pkg) in buildmod.ARCHES.items()
               if cross and not shutil.which(cross + "gcc")]
    if not missing:
        pytest.skip("every cross compiler mmconvert knows is installed here")
    arch, cross, pkg = missing[0]
    assert buildmod.ensure_compiler(arch) == f"no {cross}gcc for {arch} (Debian package {pkg})"
    assert buildmod.ensure_compiler("x86") is None
    # UML, alpha, ...: no Debian cross compiler mmconvert knows of.
    assert buildmod.ensure_compiler("um") == "no cross compiler mmconvert knows for arch/um"
