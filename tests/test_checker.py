"""cocci/mmap_prepare.cocci, the checker written for the kernel's own tools:
plain spatch on the sample tree in every mode it has, and `make coccicheck`
on Debian's 7.3 finding the literal part of what `scan` finds."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_mmconvert
from unidiff import PatchSet

CHECKER = ROOT / "mmconvert" / "cocci" / "mmap_prepare.cocci"
MESSAGE = "WARNING: .mmap is deprecated, convert {} to .mmap_prepare"
# coccilib.report.print_report(): file:line:column-end column: message.
REPORT = re.compile(r"^(?P<file>[^:\s]+):(?P<line>\d+):(?P<col>\d+)-(?P<end>\d+): (?P<msg>.*)$")

# Every struct file_operations .mmap of the sample tree but NULL, the
# DEFINE_DRM_GEM_FOPS() use and the macro that defines it, and the
# dma_buf_ops and vb2_mem_ops tables; plus an array and a compound literal.
SAMPLE_ENTRIES = sorted([
    ("drivers/char/arraydev.c", 14, "arraydev_mmap"),
    ("drivers/char/arraydev.c", 21, "arraydev_mmap"),
    ("drivers/char/fieldsdev.c", 76, "fieldsdev_mmap"),
    ("drivers/char/nofile.c", 56, "nofile_mmap"),
    ("drivers/char/remapdev.c", 52, "remapdev_mmap"),
    ("drivers/char/remaperr.c", 61, "remaperr_mmap"),
    ("drivers/misc/ifdefdev.c", 74, "ifdefdev_mmap"),
    ("drivers/misc/insertdev.c", 63, "insertdev_mmap"),
    ("drivers/video/sharedfb/alt.c", 21, "sharedfb_mmap"),
    ("drivers/video/sharedfb/core.c", 84, "sharedfb_mmap"),
    ("fs/samplefs/file.c", 28, "samplefs_file_mmap"),
    ("fs/samplefs/file.c", 34, "generic_file_readonly_mmap"),
    ("ipc/shmlike.c", 93, "shmlike_mmap"),
])

ARRAYDEV = """\
#include <linux/fs.h>

static int arraydev_mmap(struct file *file, struct vm_area_struct *vma)
{
\treturn 0;
}

static const struct file_operations arraydev_fops[] = {
\t{
\t\t.owner\t\t= THIS_MODULE,
\t},
\t{
\t\t.owner\t\t= THIS_MODULE,
\t\t.mmap\t\t= arraydev_mmap,
\t},
};

static void arraydev_swap(struct file *file)
{
\tfile->f_op = &(struct file_operations){
\t\t.mmap = arraydev_mmap,
\t};
}
"""


def options() -> list[str]:
    """The checker's own `// Options:` line, read as scripts/coccicheck does."""
    m = re.search(r"^// Options:(.*)$", CHECKER.read_text(), flags=re.MULTILINE)
    assert m, "no Options: line"
    return m.group(1).split()


def spatch(tree: Path, mode: str) -> str:
    """spatch as scripts/coccicheck runs it over a directory (M=dir)."""
    flags = ["--no-show-diff"] if mode in ("report", "org") else []
    p = subprocess.run(["spatch", "-D", mode, *flags, "--very-quiet", "--cocci-file",
                        str(CHECKER), *options(), "--dir", "."], cwd=tree,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def columns(tree: Path, file: str, line: int, handler: str) -> tuple[int, int]:
    text = (tree / file).read_text().splitlines()[line - 1]
    col = re.search(rf"\.mmap\s*=\s*({handler})\b", text).start(1)
    return col, col + len(handler)


@pytest.fixture
def checked_tree(sample_tree) -> Path:
    (sample_tree / "drivers/char/arraydev.c").write_text(ARRAYDEV)
    return sample_tree


def test_the_header_is_what_coccicheck_reads():
    text = CHECKER.read_text()
    assert text.startswith("// SPDX-License-Identifier: GPL-2.0-only\n///")
    for key in ("Confidence: High", "Copyright:", "Options: --no-includes --include-headers",
                "Keywords:"):
        assert f"// {key}" in text
    assert re.findall(r"^virtual (\w+)$", text, flags=re.MULTILINE) == ["context", "report",
                                                                        "org"]
    # No handler is named: the checker holds no list, and is no template.
    assert "{{" not in text and "=~" not in text
    assert not any(h in text for _, _, h in SAMPLE_ENTRIES)
    assert "generic_file" not in text and "drm_gem" not in text


def test_report_mode_names_every_literal_entry_and_its_handler(checked_tree):
    out = spatch(checked_tree, "report").splitlines()
    want = []
    for file, line, handler in SAMPLE_ENTRIES:
        col, end = columns(checked_tree, file, line, handler)
        want.append(f"./{file}:{line}:{col}-{end}: {MESSAGE.format(handler)}")
    assert sorted(out) == sorted(want)


def test_context_mode_marks_the_mmap_lines_and_nothing_else(checked_tree):
    out = spatch(checked_tree, "context")
    marked = sorted((pf.source_file.removeprefix("./"), ln.source_line_no, ln.value.strip())
                    for pf in PatchSet(out) for h in pf for ln in h
                    if ln.is_removed or ln.is_added)
    assert marked == [(f, n, f".mmap\t\t= {h}," if (f, n) != ("drivers/char/arraydev.c", 21)
                       else f".mmap = {h},") for f, n, h in SAMPLE_ENTRIES]
    # Context mode only shows: no line is added.
    assert not any(ln.is_added for pf in PatchSet(out) for h in pf for ln in h)


def test_org_mode_gives_one_todo_per_entry(checked_tree):
    out = spatch(checked_tree, "org").splitlines()
    want = []
    for file, line, handler in SAMPLE_ENTRIES:
        col, end = columns(checked_tree, file, line, handler)
        want.append(f"* TODO [[view:./{file}::face=ovl-face1::linb={line}::colb={col}::"
                    f"cole={end}][{MESSAGE.format(handler)}]]")
    assert sorted(out) == sorted(want)


# -- Debian's 7.3 through the kernel's own make coccicheck -------------------

def coccicheck(tree: Path, mode: str, directory: str) -> list[str]:
    """`make coccicheck MODE=... COCCI=... M=dir`, as a maintainer runs it."""
    p = subprocess.run(["make", "-s", "coccicheck", f"MODE={mode}", f"COCCI={CHECKER}",
                        f"M={directory}", "J=2"], cwd=tree, capture_output=True, text=True)
    assert p.returncode == 0 and "coccicheck failed" not in p.stdout, p.stdout + p.stderr
    return p.stdout.splitlines()


@pytest.mark.realtree
def test_coccicheck_on_73_reports_what_scan_finds_outside_macros(cached_kernel, kernel_tree):
    cached = cached_kernel("7.3")
    scan = run_mmconvert("scan", cached, "--json")
    assert scan.returncode == 0, scan.stderr
    entries = json.loads(scan.stdout)["entries"]
    literal = [e for e in entries if e["form"] != "macro"]
    # The README's census: 205 entries, 120 literal (4 of them NULL).
    assert (len(entries), len(literal), sum(e["handler"] is None for e in literal)) == \
        (205, 120, 4)
    want = {(e["file"], e["line"]): e["handler"] for e in literal if e["handler"]}

    tree = kernel_tree("7.3")
    # Debian's tarball has the kernel's .cocciconfig, which the git tree of
    # scripts/get-kernel does not track (its .gitignore hides dot files).
    if (cached / ".cocciconfig").is_file():
        shutil.copy(cached / ".cocciconfig", tree / ".cocciconfig")
    # One M= run per top-level directory with C in it: all of the tree, so
    # a report outside scan's directories would be seen too.
    dirs = sorted(d.name for d in tree.iterdir() if d.is_dir() and not d.name.startswith(".")
                  and any(d.rglob("*.[ch]")))
    got: dict[tuple[str, int], str] = {}
    start = time.monotonic()
    for d in dirs:
        for line in coccicheck(tree, "report", d):
            m = REPORT.match(line)
            if not m:
                assert "WARNING" not in line, line
                continue
            at = (f"{d}/{m.group('file').removeprefix('./')}", int(m.group("line")))
            handler = re.fullmatch(MESSAGE.format(r"(\w+)").replace(".", r"\."), m.group("msg"))
            assert handler, line
            assert at not in got, f"reported twice: {line}"
            got[at] = handler.group(1)
    took = time.monotonic() - start
    print(f"\n7.3: make coccicheck MODE=report over {len(dirs)} directories: {took:.1f} s, "
          f"{len(got)} reports")
    assert got == want
    assert len(got) == 116

    # Context mode marks the same lines (ipc/: shm.c's two fops).
    marked = [(pf.source_file.removeprefix("./"), ln.source_line_no)
              for pf in PatchSet("\n".join(coccicheck(tree, "context", "ipc")) + "\n")
              for h in pf for ln in h if ln.is_removed]
    assert sorted(("ipc/" + f, n) for f, n in marked) == sorted(
        at for at in want if at[0].startswith("ipc/"))
