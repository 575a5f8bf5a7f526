"""`mmconvert convert`: what a reviewer reads in the diff, proven by the
compiler (the sample tree's Makefile, the kernel's own build)."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import time

import pytest
from conftest import commit_g1, git, run_mmconvert, tree_state


def convert(tree, *args):
    r = run_mmconvert("convert", tree, "--json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def read(tree, path):
    return (tree / path).read_text()


def function(text: str, name: str) -> str:
    m = re.search(rf"^[^\n]*\b{name}\(.*?^}}$", text, re.S | re.M)
    return m.group(0) if m else ""


def add_driver(tree, path: str, text: str) -> None:
    """A file of the test's own in the sample tree, committed."""
    (tree / path).write_text(text)
    git(tree, "add", path)
    git(tree, "commit", "-qm", f"add {path}")


def without_the_new_hook(tree) -> None:
    """The sample tree as a G0 tree: fs.h declares no .mmap_proto, so
    --api names the generation to write."""
    fs_h = tree / "include/linux/fs.h"
    fs_h.write_text(re.sub(r".*\(\*mmap_proto\).*\n", "", fs_h.read_text()))
    git(tree, "commit", "-qam", "no new hook")


# -- the sample tree -------------------------------------------------------

@pytest.fixture
def converted_sample(sample_tree):
    return sample_tree, convert(sample_tree)


def test_the_converted_sample_tree_compiles(converted_sample):
    tree, _ = converted_sample
    r = subprocess.run(["make", "-s", "all"], cwd=tree, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr


def test_a_field_only_handler_takes_the_descriptor(converted_sample):
    tree, _ = converted_sample
    src = read(tree, "drivers/char/fieldsdev.c")
    fn = function(src, "fieldsdev_mmap_proto")
    # The file is used once: read from the descriptor there, no local.
    assert fn.startswith("static int fieldsdev_mmap_proto(struct vma_proto *desc)\n{\n"
                         "\tstruct fieldsdev *fdev = desc->file->private_data;\n")
    assert "struct file" not in fn
    # The library twin uses it once too.
    twin = function(read(tree, "mm/filemap.c"), "generic_file_mmap_proto")
    assert "\tfile_accessed(desc->file);\n" in twin and "struct file" not in twin
    assert "vma" not in fn.replace("vma_proto", "")
    assert "\tdesc->flags |= VM_DONTEXPAND | VM_DONTDUMP;\n" in fn
    assert "desc->page_prot = pgprot_noncached(desc->page_prot);" in fn
    # The initialiser keeps its alignment.
    assert "\t.mmap_proto\t= fieldsdev_mmap_proto,\n" in src
    assert ".mmap\t" not in src


def test_an_unused_file_parameter_is_not_declared(converted_sample):
    tree, _ = converted_sample
    fn = function(read(tree, "drivers/char/nofile.c"), "nofile_mmap_proto")
    assert fn and "struct file" not in fn
    assert "desc->flags &= ~VM_MAYWRITE;" in fn


def test_both_ifdef_variants_follow(converted_sample):
    tree, _ = converted_sample
    src = read(tree, "drivers/misc/ifdefdev.c")
    assert src.count("static int ifdefdev_mmap_proto(struct vma_proto *desc)") == 2
    assert "ifdefdev_mmap(" not in src
    stub = src[src.index("#else"):]
    # The stub never used the file: no declaration, no blank line left over.
    assert stub.startswith("#else\nstatic int ifdefdev_mmap_proto(struct vma_proto *desc)\n{\n"
                           "\treturn -ENODEV;\n}")


def test_a_shared_handler_moves_with_its_prototype_export_and_kernel_doc(converted_sample):
    tree, _ = converted_sample
    core = read(tree, "drivers/video/sharedfb/core.c")
    assert "EXPORT_SYMBOL_GPL(sharedfb_mmap_proto);" in core
    assert " * sharedfb_mmap_proto - map the frame buffer\n * @desc: the VMA descriptor\n" in core
    assert "@vma" not in core and "@file" not in core
    assert "int sharedfb_mmap_proto(struct vma_proto *desc);" in read(tree, "include/linux/sharedfb.h")
    assert ".mmap_proto\t= sharedfb_mmap_proto," in read(tree, "drivers/video/sharedfb/alt.c")
    assert "sharedfb_mmap(" not in core


def test_library_twins_are_added_beside_the_originals(converted_sample):
    tree, _ = converted_sample
    filemap = read(tree, "mm/filemap.c")
    # The originals stay for the users that remain on .mmap.
    assert "int generic_file_mmap(struct file *file, struct vm_area_struct *vma)" in filemap
    assert "int generic_file_mmap_proto(struct vma_proto *desc)" in filemap
    assert "EXPORT_SYMBOL(generic_file_mmap_proto);" in filemap
    assert "int generic_file_readonly_mmap_proto(struct vma_proto *desc)" in filemap
    fs_h = read(tree, "include/linux/fs.h")
    assert re.search(r"int generic_file_mmap_proto\(struct vma_proto \*desc\);", fs_h)
    samplefs = read(tree, "fs/samplefs/file.c")
    assert "return generic_file_mmap_proto(desc);" in samplefs
    assert ".mmap_proto\t= generic_file_readonly_mmap_proto," in samplefs


def test_handlers_that_need_the_vma_and_other_ops_are_left_alone(converted_sample):
    tree, result = converted_sample
    for path in ("drivers/misc/insertdev.c", "drivers/char/remapdev.c",
                 "drivers/dma-buf/heaps/sample_heap.c", "drivers/media/common/sample_vb2.c",
                 "drivers/gpu/drm/drm_gem.c", "drivers/gpu/drm/sampledrm/sampledrm_drv.c"):
        assert not git(tree, "diff", "--stat", "HEAD", "--", path), path
    skipped = {h["handler"]: h["class"] for h in result["skipped"]}
    assert skipped["insertdev_mmap"] == "needs-vma"
    assert skipped["shmlike_mmap"] == "forwarder"


TWO_USES = """// SPDX-License-Identifier: GPL-2.0
#include <linux/fs.h>
#include <linux/mm.h>

static int twice_mmap(struct file *file, struct vm_area_struct *vma)
{
	if (!file->private_data)
		return -ENODEV;
	vma->vm_private_data = file->private_data;
	return 0;
}

static int once_mmap(struct file *file, struct vm_area_struct *vma)
{
	/* the file is only looked at once */
	vma->vm_private_data = file->private_data;
	return 0;
}

static int set_mmap(struct file *file, struct vm_area_struct *vma)
{
	file = file->private_data;
	vma->vm_private_data = file;
	return 0;
}

static const struct file_operations twice_fops = {
	.mmap = twice_mmap,
};

static const struct file_operations once_fops = {
	.mmap = once_mmap,
};

static const struct file_operations set_fops = {
	.mmap = set_mmap,
};
"""


def test_a_file_local_only_where_the_file_is_used_twice_or_assigned(sample_tree):
    add_driver(sample_tree, "drivers/char/uses.c", TWO_USES)
    convert(sample_tree, "--only", "drivers/char/uses.c")
    src = read(sample_tree, "drivers/char/uses.c")
    assert function(src, "twice_mmap_proto") == (
        "static int twice_mmap_proto(struct vma_proto *desc)\n{\n"
        "\tstruct file *file = desc->file;\n\n"
        "\tif (!file->private_data)\n\t\treturn -ENODEV;\n"
        "\tdesc->private_data = file->private_data;\n\treturn 0;\n}")
    # A word in a comment is not a use.
    assert function(src, "once_mmap_proto") == (
        "static int once_mmap_proto(struct vma_proto *desc)\n{\n"
        "\t/* the file is only looked at once */\n"
        "\tdesc->private_data = desc->file->private_data;\n\treturn 0;\n}")
    # An assigned parameter stays a variable of its own.
    assert function(src, "set_mmap_proto").startswith(
        "static int set_mmap_proto(struct vma_proto *desc)\n{\n"
        "\tstruct file *file = desc->file;\n\n\tfile = file->private_data;\n")


def test_convert_twice_changes_nothing(sample_tree):
    convert(sample_tree)
    git(sample_tree, "commit", "-qam", "converted")
    again = convert(sample_tree)
    assert not git(sample_tree, "status", "--porcelain")
    assert not again["changes"]


def test_a_dirty_tree_is_refused_and_left_as_it_was(sample_tree):
    (sample_tree / "drivers/char/nofile.c").write_text("/* work in progress */\n")
    before = tree_state(sample_tree)
    r = run_mmconvert("convert", sample_tree)
    assert r.returncode == 2 and "uncommitted changes" in r.stderr
    assert tree_state(sample_tree) == before


def test_only_limits_the_conversion(sample_tree):
    result = convert(sample_tree, "--only", "drivers/char")
    names = {d["handler"] for c in result["changes"] if c["stage"] == "conversion"
             for d in c["details"]}
    assert names == {"fieldsdev_mmap", "nofile_mmap"}
    assert not git(sample_tree, "diff", "--stat", "--", "drivers/misc")


def test_prepare7_text_for_a_tree_without_that_api(sample_tree):
    """--api names a generation the tree does not have: the text is written
    for it (it will not compile here), to prepare a series early."""
    git(sample_tree, "checkout", "-q", "-b", "g0")
    without_the_new_hook(sample_tree)
    convert(sample_tree, "--api", "prepare-7")
    fn = function(read(sample_tree, "drivers/char/fieldsdev.c"), "fieldsdev_mmap_prepare")
    assert "vma_desc_set_flags(desc, VMA_DONTEXPAND_BIT, VMA_DONTDUMP_BIT);" in fn
    assert "if (vma_desc_size(desc) > fdev->size)" in fn
    nofile = function(read(sample_tree, "drivers/char/nofile.c"), "nofile_mmap_prepare")
    assert "if (!vma_desc_test(desc, VMA_SHARED_BIT))" in nofile
    assert "vma_desc_clear_flags(desc, VMA_MAYWRITE_BIT);" in nofile
    remap = function(read(sample_tree, "drivers/char/remapdev.c"), "remapdev_mmap_prepare")
    assert "\tmmap_action_remap_full(desc, pfn);\n\treturn 0;\n}" in remap
    err = function(read(sample_tree, "drivers/char/remaperr.c"), "remaperr_mmap_prepare")
    assert "desc->action.error_override = -EAGAIN;" in err
    # Never a call to a function the tree does not have: the generic
    # helpers prepare-7 names get twins, as under proto.
    filemap = read(sample_tree, "mm/filemap.c")
    assert "int generic_file_mmap_prepare(struct vm_area_desc *desc)\n{\n" \
        "\tfile_accessed(desc->file);\n\tdesc->vm_ops = &generic_file_vm_ops;\n" in filemap
    assert "int generic_file_readonly_mmap_prepare(struct vm_area_desc *desc)" in filemap
    assert "int generic_file_mmap(struct file *file, struct vm_area_struct *vma)" in filemap
    assert "int generic_file_mmap_prepare(struct vm_area_desc *desc);" in \
        read(sample_tree, "include/linux/fs.h")
    assert "return generic_file_mmap_prepare(desc);" in read(sample_tree, "fs/samplefs/file.c")


# -- real trees, proven by the compiler ------------------------------------

def build_changed(tree, base="base"):
    """Build every .c the conversion touched, each on an architecture whose
    allmodconfig builds it (x86 first), as verify does; return (results,
    skipped)."""
    from mmconvert.build import builder_for, targets_for
    from mmconvert.gitrepo import GitTree

    git(tree, "commit", "-qam", "mmconvert convert")
    files = git(tree, "diff", "--name-only", f"{base}..HEAD").split()
    base_id = git(tree, "rev-parse", f"{base}^{{commit}}").strip()
    head = git(tree, "rev-parse", "HEAD").strip()
    # Built the way `verify` builds: a worktree at the base, then the change.
    # An object that does not build at the base either (nommu-only, UML, a
    # warning the base already has) is "fails-at-base": it says nothing of
    # the change.
    with GitTree(tree).worktree(base_id) as wt, builder_for(wt, base_id) as b:
        wt.run("checkout", "-q", head)
        b.sync(files)
        targets, skipped = targets_for(wt, files, True)
        results = b.build(targets)
    return results, skipped


@pytest.mark.realtree
def test_debian_7_3_conversion_compiles(kernel_tree):
    tree = kernel_tree("7.3")
    start = time.monotonic()
    scan = json.loads(run_mmconvert("scan", tree, "--json").stdout)
    result = convert(tree)
    took = time.monotonic() - start
    convertible = {h["handler"] for h in scan["handlers"]
                   if h["class"] in ("fields", "action", "library")}
    details = [d for c in result["changes"] if c["stage"] == "conversion" for d in c["details"]]
    converted = {d["handler"] for d in details}
    left = {h["handler"]: h for h in result["skipped"]}
    # Every convertible handler is converted, none that is not.
    assert converted == convertible, {n: left[n]["reason"] for n in convertible - converted}
    for h in scan["handlers"]:
        if h["class"] in ("needs-vma", "forwarder"):
            for d in h["definitions"]:
                text = read(tree, d["file"])
                assert re.search(rf"\b{h['handler']}\(struct file \*", text), h["handler"]
    print(f"\n7.3: {len(converted)} converted of {len(scan['handlers'])} handlers in "
          f"{took:.0f} s: {dict(collections.Counter(d['klass'] for d in details))}")
    # The README's figures: a change in them is a change of the README too.
    # Two of them are static afu_mmap()s (dfl-afu and ocxl): 37 names.
    assert len(scan["handlers"]) == 102 and len(details) == 38 and len(converted) == 37
    assert collections.Counter(d["klass"] for d in details) == {"fields": 24, "action": 14}
    # drm_prime.c's call through a fops pointer is listed, not given a bailout
    # (no DRM fops has the hook yet): no forwarder changes.
    assert result["forwarders"] == []
    assert not git(tree, "diff", "--stat", "--", "drivers/gpu/drm/drm_prime.c")
    results, skipped = build_changed(tree)
    counts = collections.Counter(r.status for r in results)
    unchecked = sorted([s.object for s in skipped]
                       + [r.object for r in results if r.status == "skipped"])
    print(f"objects: {dict(counts)}; not build-checked: {unchecked}; by architecture: "
          f"{sorted((r.arch, r.object) for r in results if r.status == 'passed')}")
    failed = [(r.object, r.reason) for r in results if r.status == "failed"]
    assert not failed
    assert dict(counts) == {"passed": 32, "skipped": 2}
    # ocxl's afu_irq, config and core include the ocxl_internal.h it changes.
    assert sorted(r.object for r in results if r.arch == "powerpc") == [
        "arch/powerpc/kvm/book3s_64_vio.o", "arch/powerpc/platforms/cell/spufs/file.o",
        "arch/powerpc/platforms/powernv/memtrace.o", "drivers/misc/ocxl/afu_irq.o",
        "drivers/misc/ocxl/config.o", "drivers/misc/ocxl/context.o", "drivers/misc/ocxl/core.o",
        "drivers/misc/ocxl/file.o"]
    # Left unchecked only after every architecture was asked: allmodconfig
    # sets HYPERV_VTL_MODE (MSHV_ROOT needs it off) and MTRR (MSHV_VTL too).
    assert unchecked == ["drivers/hv/mshv_root_main.o", "drivers/hv/mshv_vtl_main.o"]
    for r in results:
        if r.status == "skipped":
            assert r.reason == ("no allmodconfig selects it on x86, arm64, arm, powerpc, "
                                "riscv, s390, sparc"), r


@pytest.mark.realtree
def test_debian_6_12_proto_conversion_compiles(kernel_tree):
    tree = kernel_tree("6.12")
    commit_g1(tree)
    git(tree, "tag", "g1")
    api = json.loads(run_mmconvert("api", tree, "--json").stdout)
    assert api["generation"] == "proto"
    result = convert(tree)
    conv = [d for c in result["changes"] if c["stage"] == "conversion" for d in c["details"]]
    twins = sorted(d["helper"] for c in result["changes"] if c["stage"] == "library"
                   for d in c["details"])
    forwarders = sorted(f for c in result["forwarders"] for f in c["files"])
    left = collections.Counter(h["class"] for h in result["skipped"])
    filemap, fs_h = read(tree, "mm/filemap.c"), read(tree, "include/linux/fs.h")
    print(f"\n6.12 proto: {len(conv)} converted ({len({d['handler'] for d in conv})} names), "
          f"twins {twins}; skipped {dict(left)}; forwarders: {forwarders}")
    # The README's figures: a change in them is a change of the README too.
    # 61 handlers convert, 45 names: the fops of 15 and 3 files move from
    # generic_file_mmap() and generic_file_readonly_mmap() to their twins.
    assert len(conv) == 64 and len({d["handler"] for d in conv}) == 47
    assert collections.Counter(d["new_name"] for d in conv if d["new_name"].startswith(
        "generic_file_")) == {"generic_file_mmap_proto": 15, "generic_file_readonly_mmap_proto": 3}
    assert any(d["helper"] for d in conv)
    # The two library twins, beside the originals, with prototype and export.
    assert twins == ["generic_file_mmap_proto", "generic_file_readonly_mmap_proto"]
    for twin in twins:
        assert f"int {twin}(struct vma_proto *desc)\n{{" in filemap, twin
        assert f"EXPORT_SYMBOL({twin});" in filemap, twin
        assert re.search(rf"\bint {twin}\(struct vma_proto \*desc\);", fs_h), twin
    assert "int generic_file_mmap(struct file *file, struct vm_area_struct *vma)" in filemap
    # Every handler scan calls convertible converts (orangefs's vm_flags_mod() too).
    assert dict(left) == {"needs-vma": 64, "dispatcher": 20, "forwarder": 4}
    assert "orangefs_file_mmap" in {d["handler"] for d in conv}
    # Three forwarders bail out, four "can be mapped" checks accept either hook.
    assert forwarders == ["drivers/gpu/drm/drm_prime.c",
                          "drivers/gpu/drm/i915/gem/i915_gem_dmabuf.c", "fs/binfmt_elf.c",
                          "fs/binfmt_elf_fdpic.c", "fs/debugfs/file.c", "fs/ecryptfs/file.c",
                          "ipc/shm.c"]
    results, skipped = build_changed(tree, "g1")
    counts = collections.Counter(r.status for r in results)
    at_base = sorted(r.object for r in results if r.status == "fails-at-base")
    unchecked = sorted(s.object for s in skipped)
    print(f"objects: {dict(counts)}; fail at the base: {at_base}; not build-checked: "
          f"{unchecked}")
    assert not [(r.object, r.reason) for r in results if r.status == "failed"]
    print({r.object: r.arch for r in results if r.arch != "x86"})
    assert dict(counts) == {"passed": 83, "fails-at-base": 3}
    # UML and nommu only: no allmodconfig mmconvert builds has them.
    assert at_base == ["fs/hostfs/hostfs_kern.o", "fs/ramfs/file-nommu.o",
                       "fs/romfs/mmap-nommu.o"]
    # What x86 cannot build (or not at the base) is built where Kbuild can.
    assert {r.object: r.arch for r in results if r.arch != "x86"} == {
        "arch/powerpc/kvm/book3s_64_vio.o": "powerpc",
        "arch/powerpc/platforms/cell/spufs/file.o": "powerpc",
        "drivers/hsi/clients/cmt_speech.o": "arm", "drivers/scsi/cxlflash/ocxl_hw.o": "powerpc",
        "fs/binfmt_elf_fdpic.o": "arm",
        # ocxl's own objects, and those that include its changed ocxl_internal.h.
        "drivers/misc/ocxl/afu_irq.o": "powerpc", "drivers/misc/ocxl/config.o": "powerpc",
        "drivers/misc/ocxl/context.o": "powerpc", "drivers/misc/ocxl/core.o": "powerpc",
        "drivers/misc/ocxl/file.o": "powerpc"}
    assert unchecked == []


def test_long_rewritten_calls_are_wrapped_and_needless_braces_dropped():
    from mmconvert.convert import drop_needless_braces, wrap_long_calls

    split = ("\tvma_desc_set_flags(desc,\n\t\t\t   VMA_IO_BIT, VMA_PFNMAP_BIT, VMA_DONTCOPY_BIT, "
             "VMA_DONTEXPAND_BIT, VMA_DONTDUMP_BIT);")
    # Within 80 columns, continued under the open parenthesis (privcmd's list).
    assert wrap_long_calls(split) == (
        "\tvma_desc_set_flags(desc, VMA_IO_BIT, VMA_PFNMAP_BIT, VMA_DONTCOPY_BIT,\n"
        "\t\t\t   VMA_DONTEXPAND_BIT, VMA_DONTDUMP_BIT);")
    braces = "\tif (!vma_desc_test_all(desc, VMA_SHARED_BIT)) {\n\t\treturn -EINVAL;\n\t}"
    assert drop_needless_braces(braces) == (
        "\tif (!vma_desc_test_all(desc, VMA_SHARED_BIT))\n\t\treturn -EINVAL;")
    untouched = "\tif (x) {\n\t\treturn -EINVAL;\n\t}"
    assert drop_needless_braces(untouched) == untouched


FLAG_TESTS = """// SPDX-License-Identifier: GPL-2.0
#include <linux/fs.h>
#include <linux/mm.h>

static int ro_mmap(struct file *file, struct vm_area_struct *vma)
{
	if ((vma->vm_flags & (VM_READ | VM_WRITE)) != VM_READ)
		return -EROFS;
	if ((vma->vm_flags & VM_SHARED) == 0)
		return -EINVAL;
	return 0;
}

static int odd_mmap(struct file *file, struct vm_area_struct *vma)
{
	if ((vma->vm_flags & (VM_READ | VM_WRITE)) > VM_READ)
		return -EROFS;
	return 0;
}

static const struct file_operations ro_fops = {
	.mmap = ro_mmap,
};

static const struct file_operations odd_fops = {
	.mmap = odd_mmap,
};
"""


def test_masked_flag_comparisons_become_tests_and_others_are_named(sample_tree):
    """On a flags bitmap (prepare-7): `(flags & M) == 0` and `!= V` for
    one flag V of M become vma_desc_test*() calls; `>` has no form and
    is named as the reason.  A flags word (proto) keeps the expressions."""
    add_driver(sample_tree, "drivers/char/flagtests.c", FLAG_TESTS)
    git(sample_tree, "branch", "word")
    without_the_new_hook(sample_tree)
    result = convert(sample_tree, "--only", "drivers/char/flagtests.c", "--api", "prepare-7")
    src = read(sample_tree, "drivers/char/flagtests.c")
    assert function(src, "ro_mmap_prepare") == (
        "static int ro_mmap_prepare(struct vm_area_desc *desc)\n{\n"
        "\tif (!vma_desc_test(desc, VMA_READ_BIT) ||\n\t    vma_desc_test(desc, VMA_WRITE_BIT))\n"
        "\t\treturn -EROFS;\n"
        "\tif (!vma_desc_test(desc, VMA_SHARED_BIT))\n\t\treturn -EINVAL;\n\treturn 0;\n}")
    assert "odd_mmap(struct file *file" in src
    skipped = {s["handler"]: s for s in result["skipped"]}
    assert skipped["odd_mmap"]["reason"]["expression"] == \
        "(vma->vm_flags & (VM_READ | VM_WRITE)) > VM_READ"
    git(sample_tree, "checkout", "-qf", "word")
    convert(sample_tree, "--only", "drivers/char/flagtests.c")
    src = read(sample_tree, "drivers/char/flagtests.c")
    assert "\tif ((desc->flags & (VM_READ | VM_WRITE)) != VM_READ)\n" in src
    assert "\tif ((desc->flags & (VM_READ | VM_WRITE)) > VM_READ)\n" in src


FLAG_CALLS = """// SPDX-License-Identifier: GPL-2.0
#include <linux/fs.h>
#include <linux/mm.h>

static int mod_mmap(struct file *file, struct vm_area_struct *vma)
{
	vm_flags_mod(vma, VM_DONTEXPAND, VM_MAYWRITE | VM_MAYEXEC);
	return 0;
}

static const struct file_operations mod_fops = {
	.mmap = mod_mmap,
};
"""


def test_vm_flags_mod_is_rewritten_in_both_flag_styles(sample_tree):
    add_driver(sample_tree, "drivers/char/flagcalls.c", FLAG_CALLS)
    git(sample_tree, "branch", "word")
    convert(sample_tree, "--only", "drivers/char/flagcalls.c")
    assert function(read(sample_tree, "drivers/char/flagcalls.c"), "mod_mmap_proto") == (
        "static int mod_mmap_proto(struct vma_proto *desc)\n{\n"
        "\tdesc->flags |= VM_DONTEXPAND;\n\tdesc->flags &= ~(VM_MAYWRITE | VM_MAYEXEC);\n"
        "\treturn 0;\n}")
    git(sample_tree, "checkout", "-qf", "word")
    without_the_new_hook(sample_tree)
    convert(sample_tree, "--only", "drivers/char/flagcalls.c", "--api", "prepare-7")
    assert function(read(sample_tree, "drivers/char/flagcalls.c"), "mod_mmap_prepare") == (
        "static int mod_mmap_prepare(struct vm_area_desc *desc)\n{\n"
        "\tvma_desc_set_flags(desc, VMA_DONTEXPAND_BIT);\n"
        "\tvma_desc_clear_flags(desc, VMA_MAYWRITE_BIT, VMA_MAYEXEC_BIT);\n"
        "\treturn 0;\n}")


def test_a_message_naming_the_handler_is_no_use_that_needs_a_twin(sample_tree):
    add_driver(sample_tree, "drivers/char/says.c",
        "// SPDX-License-Identifier: GPL-2.0\n#include <linux/fs.h>\n#include <linux/mm.h>\n\n"
        "static int says_mmap(struct file *file, struct vm_area_struct *vma)\n{\n"
        "\tpr_debug(\"says_mmap: called\\n\");\n\tvma->vm_ops = NULL;\n\treturn 0;\n}\n\n"
        "static const struct file_operations says_fops = {\n\t.mmap = says_mmap,\n};\n")
    convert(sample_tree, "--only", "drivers/char/says.c")
    src = read(sample_tree, "drivers/char/says.c")
    assert "says_mmap(struct file" not in src          # converted in place, no twin
    assert '\tpr_debug("says_mmap: called\\n");\n' in function(src, "says_mmap_proto")


SAME_NAME = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/fs.h>
#include <linux/mm.h>

static int dup_mmap(struct file *file, struct vm_area_struct *vma)
{
	vma->vm_private_data = file->private_data;
	return 0;
}
{extra}
const struct file_operations {name}_fops = {
	.mmap		= dup_mmap,
};
"""


def test_a_static_handler_whose_namesake_gets_a_twin_is_converted_once(sample_tree):
    """Two drivers' static dup_mmap(): one is also called as an mmap
    function (it gets a twin), the other is only named by its fops; each
    file ends with one dup_mmap_proto(), and the twin's original stays."""
    add_driver(sample_tree, "drivers/char/dupa.c", SAME_NAME.replace("{extra}", "").replace("{name}", "dupa"))
    add_driver(sample_tree, "drivers/char/dupb.c", SAME_NAME.replace("{extra}", """
int dupb_fd_mmap(struct file *file, struct vm_area_struct *vma)
{
	return dup_mmap(file, vma);
}
""").replace("{name}", "dupb"))
    convert(sample_tree, "--only", "drivers/char/dupa.c", "--only", "drivers/char/dupb.c")
    a, b = read(sample_tree, "drivers/char/dupa.c"), read(sample_tree, "drivers/char/dupb.c")
    assert a.count("dup_mmap_proto(struct vma_proto *desc)") == 1 and "dup_mmap(" not in a
    assert b.count("dup_mmap_proto(struct vma_proto *desc)") == 1
    assert "static int dup_mmap(struct file *file, struct vm_area_struct *vma)\n" in b
    r = subprocess.run(["make", "-s", "drivers/char/dupa.o", "drivers/char/dupb.o"],
                       cwd=sample_tree, capture_output=True, text=True)
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
