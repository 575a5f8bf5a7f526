"""The 7.3 series read as a reviewer reads it: the rules issue 15 names,
checked on every patch of Debian's 7.3 series (one `series` run for the
module).  Each rule is general; the handlers named are where it showed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import clone_kernel, git, remove_tree, run_mmconvert

pytestmark = pytest.mark.realtree


@pytest.fixture(scope="module")
def series73(cached_kernel, tmp_path_factory):
    tree = clone_kernel(cached_kernel("7.3"), tmp_path_factory.mktemp("review") / "linux-7.3")
    out = tree.parent / "series"
    r = run_mmconvert("series", tree, "-o", out, "--build")
    assert r.returncode == 0, r.stderr
    branch = r.stdout.split(" on branch ", 1)[1].split()[0]
    patches = sorted(p for p in out.glob("*.patch") if not p.name.startswith("0000-"))
    yield tree, branch, patches
    remove_tree(tree)


def changed_files(patches: list[Path]) -> list[str]:
    return sorted({ln[6:] for p in patches for ln in p.read_text().splitlines()
                   if ln.startswith("+++ b/")})


def functions(text: str, suffix: str = "_mmap_prepare"):
    """(name, text) of every function whose name ends in `suffix`."""
    for m in re.finditer(rf"^(?:static )?int\s*\n?(\w+{suffix})\(struct vm_area_desc \*desc\)\n\{{"
                         r"\n(.*?)^\}", text, flags=re.MULTILINE | re.DOTALL):
        yield m.group(1), m.group(2)


def after(tree: Path, branch: str, path: str) -> str:
    return git(tree, "show", f"{branch}:{path}")


def test_a_file_local_is_declared_only_when_the_file_is_used_twice(series73):
    tree, branch, patches = series73
    seen = 0
    for f in changed_files(patches):
        if not f.endswith(".c"):
            continue
        for name, body in functions(after(tree, branch, f)):
            seen += 1
            m = re.search(r"struct file \*(\w+) = desc->file;", body)
            if m:
                uses = len(re.findall(rf"(?<![.>\w]){m.group(1)}\b", body)) - 1
                assert uses >= 2, (f, name)
    assert seen >= 30


def test_a_mapping_of_the_whole_vma_uses_the_full_action(series73):
    tree, branch, patches = series73
    full = 0
    for f in changed_files(patches):
        if not f.endswith(".c"):
            continue
        for name, body in functions(after(tree, branch, f)):
            full += len(re.findall(r"mmap_action_\w+_full\(", body))
            for m in re.finditer(r"mmap_action_(?:io)?remap\(desc, desc->start,\s*(.*?),\s*(.*?)\);",
                                 body, flags=re.DOTALL):
                size = m.group(2).strip()
                assert size != "vma_desc_size(desc)", (f, name, m.group(0))
                sets = re.findall(rf"(?<![.>\w]){re.escape(size)}\s*=\s*([^;]+);", body)
                assert sets != ["vma_desc_size(desc)"], (f, name, m.group(0))
    assert full >= 10


def test_a_changed_local_copy_of_the_protection_becomes_the_descriptors(series73):
    tree, branch, _ = series73
    text = after(tree, branch, "drivers/soc/aspeed/aspeed-lpc-ctrl.c")
    body = dict(functions(text))["aspeed_lpc_ctrl_mmap_prepare"]
    assert body == (
        "\tstruct aspeed_lpc_ctrl *lpc_ctrl = file_aspeed_lpc_ctrl(desc->file);\n\n"
        "\tif (desc->pgoff + vma_desc_pages(desc) >\n"
        "\t    lpc_ctrl->mem_size >> PAGE_SHIFT)\n"
        "\t\treturn -EINVAL;\n\n"
        "\t/* ast2400/2500 AHB accesses are not cache coherent */\n"
        "\tdesc->page_prot = pgprot_noncached(desc->page_prot);\n\n"
        "\tmmap_action_remap_full(desc,\n"
        "\t\t\t(lpc_ctrl->mem_base >> PAGE_SHIFT) + desc->pgoff);\n"
        "\tdesc->action.error_override = -EAGAIN;\n\n"
        "\treturn 0;\n")
    commits = git(tree, "log", "--format=%H %s", f"base..{branch}").splitlines()
    aspeed = [c.split()[0] for c in commits if "soc: aspeed:" in c]
    assert len(aspeed) == 1, commits
    log = git(tree, "log", "-1", "--format=%B", aspeed[0])
    assert ("used to map with a changed local copy of the page protection" in " ".join(log.split())
            and "the VMA's protection matches what is mapped" in " ".join(log.split()))


def _eq_layout(line: str) -> tuple[str, int, str]:
    m = re.match(r"^(\s*\.\w+)([ \t]+)=([ \t]*)", line)
    return m.group(2), len((m.group(1) + m.group(2)).expandtabs(8)), m.group(3)


def test_initialisers_keep_their_tables_layout(series73):
    _, _, patches = series73
    pairs = 0
    for p in patches:
        lines = p.read_text().splitlines()
        for i, ln in enumerate(lines):
            if not re.match(r"^\+\s*\.mmap_prepare\s*=", ln) or not lines[i - 1].startswith("-"):
                continue
            old, new = lines[i - 1][1:], ln[1:]
            ob, ocol, oafter = _eq_layout(old)
            nb, ncol, nafter = _eq_layout(new)
            width = len(re.match(r"^\s*\.\w+", new).group(0).expandtabs(8))
            pairs += 1
            assert ("\t" in nafter) == ("\t" in oafter), (p.name, old, new)
            if ob == " ":
                assert nb == " ", (p.name, old, new)
            elif ocol > width:
                assert ncol == ocol, (p.name, old, new)
    assert pairs >= 36


def test_kernel_doc_reports_nothing_new(series73):
    tree, branch, patches = series73
    files = [f for f in changed_files(patches) if f.endswith((".c", ".h"))]

    def warnings() -> str:
        runs = [subprocess.run(["scripts/kernel-doc", "-none", f], cwd=tree, capture_output=True,
                               text=True) for f in files]
        assert all(r.returncode in (0, 1) for r in runs), [r.stderr for r in runs]
        return "".join(r.stdout + r.stderr for r in runs)
    before = warnings()
    git(tree, "checkout", "--quiet", branch)
    try:
        now = warnings()
    finally:
        git(tree, "checkout", "--quiet", "base")
    assert now == before


def test_changelogs_say_why_once_and_only_what_is_true_on_73(series73):
    tree, _, patches = series73
    fs_h = (tree / "include/linux/fs.h").read_text()
    assert "call_mmap(" not in fs_h          # 7.3 has no call_mmap()
    for p in patches:
        text = p.read_text()
        body = text.split("\n\n", 1)[1].split("\n---\n", 1)[0]
        flat = " ".join(body.split())
        assert flat.count("deprecated in favour of .mmap_prepare") == 1, p.name
        assert "call_mmap" not in text, p.name
        assert "final page protection" not in flat and "second merge" not in flat, p.name
        assert not re.search(r"\w/[\w/.-]+\.c:\w+", body), p.name      # no path:fops lists
        paragraphs = [" ".join(x.split()) for x in body.split("\n\n") if x.strip()]
        assert len(paragraphs) == len(set(paragraphs)), p.name
        # The hook runs before the merge attempt, which matters only for a
        # mapping that can merge: none with a VM_SPECIAL flag or an action.
        added = "\n".join(ln for ln in text.split("\n---\n", 1)[1].splitlines()
                          if ln.startswith("+"))
        special = re.search(r"mmap_action_\w+\(|vma_desc_set_flags\([^;]*"
                            r"VMA_(?:IO|DONTEXPAND|PFNMAP|MIXEDMAP)_BIT", added)
        if not special:
            assert "merges into a neighbouring VMA" in flat, p.name
        if "-convert-idxd_cdev_mmap-" in p.name or "-convert-mon_bin_mmap-" in p.name:
            assert "merges" not in flat, p.name


def test_subjects_carry_no_counts_and_the_cover_prefix_fits(series73):
    _, _, patches = series73
    cover = next(patches[0].parent.glob("0000-*.patch")).read_text()
    subject = re.search(r"^Subject: (.*)$", cover, flags=re.MULTILINE).group(1)
    touches_mm = any(f.startswith("mm/") for f in changed_files(patches))
    assert touches_mm or not re.match(r"\[PATCH 0/\d+\] mm:", subject), subject
    for p in patches:
        s = re.search(r"^Subject: (.*)$", p.read_text(), flags=re.MULTILINE).group(1)
        assert not re.search(r"\bconvert \d+ ", s), s


def test_a_forward_no_file_with_the_new_hook_can_take_is_listed_not_patched(series73):
    tree, _, patches = series73
    assert "drivers/gpu/drm/drm_prime.c" not in changed_files(patches)
    cover = " ".join(next(patches[0].parent.glob("0000-*.patch")).read_text().split())
    assert ("drm_gem_prime_mmap() drivers/gpu/drm/drm_prime.c:798: "
            "obj->dev->driver->fops->mmap(fil, vma): calls ->mmap() through a file_operations "
            "pointer, and no file_operations under drivers/gpu/drm/ has .mmap_prepare") in cover
    assert not git(tree, "grep", "-l", "-E", r"\.mmap_prepare\s*=", "base", "--",
                   "drivers/gpu/drm/", check=False).strip()


def test_swapped_fops_and_unbounded_sizes_are_left_alone_with_the_reason(series73):
    _, _, patches = series73
    cover = " ".join(next(patches[0].parent.glob("0000-*.patch")).read_text().split())
    assert ("needs-vma: snd_disconnect_mmap() sound/core/init.c:516: "
            "mfile->file->f_op = &snd_shutdown_f_ops;") in cover
    assert "needs-vma: flash_mmap() drivers/sbus/char/flash.c:71: io_remap_pfn_range(" in cover
    assert "sound/core/init.c" not in changed_files(patches)
    assert "drivers/sbus/char/flash.c" not in changed_files(patches)


def test_no_line_grows_past_80_columns_or_keeps_a_needless_parenthesis(series73):
    _, _, patches = series73
    for p in patches:
        for hunk in re.split(r"\n(?=@@ )", p.read_text().split("\n---\n", 1)[1]):
            lines = hunk.splitlines()
            old = max([len(ln[1:].expandtabs(8)) for ln in lines
                       if ln.startswith("-") and not ln.startswith("---")] or [0])
            for ln in lines:
                if ln.startswith("+") and not ln.startswith("+++"):
                    assert len(ln[1:].expandtabs(8)) <= max(80, old), (p.name, ln)
                    # `(vma_desc_test(...)) &&`: a call in parentheses of its own
                    assert not re.search(r"[(!\s]\(vma_desc_\w+\([^()]*\)\)\s*(?:&&|\|\||\))",
                                         ln), (p.name, ln)


def _headers(p: Path) -> str:
    return p.read_text().split("\n\n", 1)[0]


def test_the_api_owners_see_the_cover_letter_and_fs_patches_reach_the_vfs_list(series73):
    tree, _, patches = series73
    maint = (tree / "MAINTAINERS").read_text()
    # The lists of the sections that own the hook's header and mm's side of it.
    sections = [s for s in maint.split("\n\n") if "\nF:\tinclude/linux/fs.h\n" in s + "\n"
                or "\nF:\tmm/vma.c\n" in s + "\n"]
    lists = {ln.split()[1] for s in sections for ln in s.splitlines() if ln.startswith("L:\t")}
    assert {"linux-fsdevel@vger.kernel.org", "linux-mm@kvack.org"} <= lists
    cover = _headers(next(patches[0].parent.glob("0000-*.patch")))
    for addr in lists:
        assert addr in cover, addr
    for p in patches:
        if any(f.startswith("fs/") for f in changed_files([p])):
            assert "linux-fsdevel@vger.kernel.org" in _headers(p), p.name


def _tokens(text: str) -> str:
    """C text without comments and whitespace: what the compiler reads."""
    return re.sub(r"\s+", "", re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.DOTALL))


def test_the_cover_letters_rule_makes_every_change_the_series_makes(series73, tmp_path):
    """Plain spatch with the semantic patch the cover letter shows, over
    every file that names a converted handler (static handlers share names
    across drivers: two afu_mmap()), changes no file the series leaves, and
    what it writes is the series' code but for layout and comments."""
    tree, branch, patches = series73
    cover = next(patches[0].parent.glob("0000-*.patch")).read_text()
    block = cover.split("    // ---- convert ----\n", 1)[1]
    rule = []
    for ln in block.splitlines():
        if ln and not ln.startswith("    "):
            break
        rule.append(ln[4:])
    (tmp_path / "convert.cocci").write_text("\n".join(rule) + "\n")
    names = re.search(r'^identifier fn =~ "\^\((.*)\)\$";$', "\n".join(rule),
                      flags=re.MULTILINE).group(1).split("|")
    candidates = git(tree, "grep", "-l", "-w", *[a for n in names for a in ("-e", n)], "base",
                     "--", "*.c", "*.h").split()
    files = sorted({c.split(":", 1)[1] for c in candidates})
    farm = tmp_path / "farm"
    for f in files:
        (farm / f).parent.mkdir(parents=True, exist_ok=True)
        (farm / f).write_bytes((tree / f).read_bytes())
    r = subprocess.run(["spatch", "--very-quiet", "--no-includes", "--include-headers",
                        "--in-place", "--cocci-file", str(tmp_path / "convert.cocci"),
                        "--dir", str(farm)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    touched = {f for f in files if (farm / f).read_bytes() != (tree / f).read_bytes()}
    assert "drivers/misc/ocxl/file.c" in files          # the other afu_mmap()
    assert touched == set(changed_files(patches))
    for f in sorted(touched):
        assert _tokens((farm / f).read_text()) == _tokens(after(tree, branch, f)), f


def test_the_cover_letter_says_what_was_built_and_what_was_not(series73):
    _, _, patches = series73
    cover = " ".join(next(patches[0].parent.glob("0000-*.patch")).read_text().split())
    testing = cover.split("Testing: ", 1)[1].split(" handlers move to", 1)[0]
    assert testing.startswith(
        "every patch applied in turn to the base, and after each one the objects it touches "
        "(for a header, 3 of the files that include it) were built (allmodconfig, x86_64; "
        "powerpc for arch/powerpc/kvm/book3s_64_vio.o, arch/powerpc/platforms/cell/spufs/file.o, "
        "arch/powerpc/platforms/powernv/memtrace.o, "
        "drivers/misc/ocxl/afu_irq.o, drivers/misc/ocxl/config.o, drivers/misc/ocxl/context.o, "
        "drivers/misc/ocxl/core.o, drivers/misc/ocxl/file.o): ")
    assert "without errors" in testing and "did NOT build" not in testing
    assert testing.endswith(" Nothing was booted or run. 38")
    # The census counts what each handler needed (idxd: a helper and an action).
    assert "38 handlers move to .mmap_prepare here (22 only moving field work to the " \
        "descriptor, 14 also turning their last mapping call into a mapping action, 2 also " \
        "converting the helpers they hand the VMA to, 1 also moving per-VMA work to a .mapped " \
        "callback; some do more than one); 64 stay on .mmap" in cover
    built = int(re.search(r"(\d+) objects built", testing).group(1))
    skipped = re.findall(r"([\w/.-]+\.[co]) \(", testing.split("Not build-checked: ", 1)[1])
    sources = {f for f in changed_files(patches) if f.endswith(".c")}
    # Every changed .c, and three more ocxl files that include the
    # ocxl_internal.h the series changes.
    assert built + len(skipped) == len(sources) + 3
    assert sorted(skipped) == ["drivers/hv/mshv_root_main.o", "drivers/hv/mshv_vtl_main.o"]
    assert {s.removesuffix(".o").removesuffix(".c") for s in skipped} <= \
        {s.removesuffix(".c") for s in sources}
