"""The forwarders stage: code that forwards mmap to another file or tests
for .mmap must know about the new hook before any file moves to it.

The sample-tree tests run in seconds; the real-tree tests run Coccinelle
over Debian's 6.12 (with the G1 declarations of tests/data) and 7.3 and
build every touched x86 object in the shared O= cache of mmconvert.build.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest
from conftest import commit_g1

from mmconvert import build as buildmod
from mmconvert import forwarders, spatch
from mmconvert.model import ForwarderSite
from mmconvert.pipeline import apply_changes
from mmconvert.tree import NAMED, open_tree, resolve


def by_place(sites) -> dict[tuple[str, str, str], ForwarderSite]:
    return {(s.file, s.function, s.kind): s for s in sites}


def applies_alone(tree, change) -> None:
    """The change's diff applies to the tree as it is."""
    p = subprocess.run(["git", "apply", "--check", "-"], cwd=tree, input=change.diff,
                       text=True, capture_output=True)
    assert p.returncode == 0, (change.title, p.stderr)


def build_changes(gt, changes) -> dict[str, buildmod.ObjectResult]:
    """Apply the changes and build every object they touch (x86 allmodconfig
    in mmconvert.build's cache for a kernel, `make file.o` for the sample)."""
    base = gt.head()
    files = sorted({f for c in changes for f in c.files})
    with gt.worktree(base) as wt, buildmod.builder_for(wt, base) as b:
        apply_changes(wt, changes)
        b.sync(files)
        kbuild = buildmod.is_kbuild(wt.path)
        targets, skipped = buildmod.targets_for(wt, files, kbuild, b.unselected)
        results = b.build(targets) + skipped
    return {r.object: r for r in results}


# -- the sample tree ---------------------------------------------------------------

@pytest.fixture
def sample(sample_tree):
    gt = open_tree(sample_tree)
    api = resolve(sample_tree, "auto")
    return gt, api, forwarders.find(gt, api)


def test_the_sample_tree_declares_the_proto_hook(sample):
    _, api, _ = sample
    assert api.generation == "proto" and api.source == "tree" and not api.has_vfs_mmap


def test_an_unguarded_forwarder_needs_a_bailout(sample):
    _, _, sites = sample
    s = by_place(sites)[("ipc/shmlike.c", "shmlike_mmap", "forward")]
    assert s.state == "needs-bailout" and not s.core
    assert s.expression == "call_mmap(sfd->file, vma)"
    assert "no check" in s.note


def test_a_guarded_forwarder_is_safe_and_names_its_guard(sample):
    _, _, sites = sample
    places = by_place(sites)
    fwd = places[("fs/backing-file.c", "backing_file_mmap", "forward")]
    guard = places[("fs/backing-file.c", "backing_file_mmap", "presence-guard")]
    assert fwd.state == "safe" and guard.state == "safe"
    assert guard.expression == "!file->f_op->mmap"
    assert f"!file->f_op->mmap at line {guard.line}" in fwd.note
    assert f"forward at line {fwd.line}" in guard.note


def test_a_can_this_file_be_mapped_check_must_accept_either_hook(sample):
    _, _, sites = sample
    s = by_place(sites)[("fs/binfmt_sample.c", "load_sample_binary", "presence-can-map")]
    assert s.state == "rewrite" and s.expression == "!file->f_op->mmap"


def test_dma_buf_and_vb2_mmap_members_are_left_alone(sample):
    _, _, sites = sample
    assert not [s for s in sites if s.file.startswith(("drivers/dma-buf", "drivers/media"))]


def test_the_hooks_own_helper_is_listed_as_core_and_never_touched(sample):
    gt, api, sites = sample
    s = by_place(sites)[("include/linux/fs.h", "call_mmap", "forward")]
    assert s.state == "core" and s.core
    changes, _, _ = forwarders.plan(gt, api, sites, include_core=True)
    assert "include/linux/fs.h" not in {f for c in changes for f in c.files}


def test_the_bailout_fails_through_the_forwards_own_error_path(sample):
    gt, api, sites = sample
    changes, warnings, cocci = forwarders.plan(gt, api, sites)
    assert warnings == []
    shm = next(c for c in changes if c.files == ("ipc/shmlike.c",))
    assert shm.stage == "forwarders" and shm.handlers == ("shmlike_mmap",)
    assert shm.title == "bail out of shmlike_mmap() for .mmap_proto files"
    assert "\n".join(line for line in shm.diff.splitlines() if line[:1] in "+-") == "\n".join([
        "--- a/ipc/shmlike.c",
        "+++ b/ipc/shmlike.c",
        "-\tret = call_mmap(sfd->file, vma);",
        "+\t/* shmlike_mmap() does not support .mmap_proto yet. */",
        "+\tif (sfd->file->f_op->mmap_proto)",
        "+\t\tret = -ENODEV;",
        "+\telse",
        "+\t\tret = call_mmap(sfd->file, vma);",
    ])
    (d,) = shm.details
    assert d.action == "bailout" and d.kind == "forward" and not d.already_guarded
    assert d.file == "ipc/shmlike.c" and d.function == "shmlike_mmap"
    names = [name for name, _ in cocci]
    assert names == ["forwarders_find", "forwarders_patch"]
    assert all("virtual" in text for _, text in cocci)


def test_the_can_map_check_accepts_either_hook_and_nothing_else_changes(sample):
    gt, api, sites = sample
    changes, _, _ = forwarders.plan(gt, api, sites)
    assert sorted(f for c in changes for f in c.files) == ["fs/binfmt_sample.c", "ipc/shmlike.c"]
    binfmt = next(c for c in changes if c.files == ("fs/binfmt_sample.c",))
    assert "-\tif (!file->f_op->mmap)\n+\tif (!file->f_op->mmap && !file->f_op->mmap_proto)\n" \
        in binfmt.diff
    assert [d.action for d in binfmt.details] == ["either"]


def test_the_changes_apply_alone_and_every_touched_object_builds(sample):
    gt, api, sites = sample
    changes, _, _ = forwarders.plan(gt, api, sites)
    for c in changes:
        applies_alone(gt.path, c)
    results = build_changes(gt, changes)
    assert {o: r.status for o, r in results.items()} == {
        "fs/binfmt_sample.o": "passed", "ipc/shmlike.o": "passed"}


def test_where_vfs_mmap_routes_both_hooks_forwards_and_checks_use_the_helpers(sample):
    gt, _, _ = sample
    api = NAMED["prepare-7"]       # has vfs_mmap() and can_mmap_file()
    sites = forwarders.find(gt, api)
    places = by_place(sites)
    assert places[("ipc/shmlike.c", "shmlike_mmap", "forward")].state == "rewrite"
    assert places[("fs/backing-file.c", "backing_file_mmap", "presence-guard")].state == \
        "rewrite"
    changes, warnings, _ = forwarders.plan(gt, api, sites)
    assert warnings == []
    diff = "".join(c.diff for c in changes)
    assert "+\tret = vfs_mmap(sfd->file, vma);" in diff
    assert "+\tret = vfs_mmap(file, vma);" in diff          # after the guard's rewrite
    assert diff.count("+\tif (!can_mmap_file(file))") == 2
    assert "mmap_prepare" not in diff


def test_without_vfs_mmap_the_later_hook_still_needs_bailouts(sample):
    gt, _, _ = sample
    api = replace(NAMED["prepare-6.16"], has_vfs_mmap=False)
    changes, _, _ = forwarders.plan(gt, api, forwarders.find(gt, api))
    shm = next(c for c in changes if c.files == ("ipc/shmlike.c",))
    assert "+\tif (sfd->file->f_op->mmap_prepare)" in shm.diff
    assert "does not support .mmap_prepare yet" in shm.diff


def test_the_scan_section_names_each_place_its_state_and_the_guards(sample):
    _, _, sites = sample
    text = forwarders.sites_text(sites)
    lines = text.splitlines()
    assert lines[0].startswith("forwarders and .mmap checks: 5 places (1 needs-bailout, "
                               "1 rewrite, 2 safe, 1 core)")
    shm = next(i for i, ln in enumerate(lines) if "ipc/shmlike.c" in ln)
    assert lines[shm].split()[1:4] == ["shmlike_mmap", "forward", "needs-bailout"]
    assert "guarded on every path by !file->f_op->mmap at line 22" in text


def test_a_tree_without_the_hook_is_refused(sample):
    gt, _, _ = sample
    with pytest.raises(Exception, match="no new hook"):
        forwarders.find(gt, replace(NAMED["proto"], hook=""))


def test_the_bailout_comment_comes_from_the_template():
    assert forwarders.bailout_comment("shm_mmap", "mmap_proto") == \
        "/* shm_mmap() does not support .mmap_proto yet. */"


# -- real trees ------------------------------------------------------------------

EXPECTED_612 = {
    # (file, function, kind): state
    ("fs/backing-file.c", "backing_file_mmap", "forward"): "safe",
    ("fs/backing-file.c", "backing_file_mmap", "presence-guard"): "safe",
    ("fs/fuse/passthrough.c", "fuse_passthrough_mmap", "forward"): "safe",
    ("fs/overlayfs/file.c", "ovl_mmap", "forward"): "safe",
    ("fs/coda/file.c", "coda_file_mmap", "forward"): "safe",
    ("fs/coda/file.c", "coda_file_mmap", "presence-guard"): "safe",
    ("ipc/shm.c", "shm_mmap", "forward"): "needs-bailout",
    ("drivers/gpu/drm/i915/gem/i915_gem_dmabuf.c", "i915_gem_dmabuf_mmap", "forward"):
        "needs-bailout",
    ("drivers/gpu/drm/drm_prime.c", "drm_gem_prime_mmap", "forward"): "needs-bailout",
    ("fs/binfmt_elf.c", "load_elf_interp", "presence-can-map"): "rewrite",
    ("fs/binfmt_elf.c", "load_elf_binary", "presence-can-map"): "rewrite",
    ("fs/binfmt_elf.c", "load_elf_library", "presence-can-map"): "rewrite",
    ("fs/binfmt_elf_fdpic.c", "is_elf", "presence-can-map"): "rewrite",
    ("fs/debugfs/file.c", "debugfs_locked_down", "presence-can-map"): "rewrite",
    ("fs/ecryptfs/file.c", "ecryptfs_mmap", "presence-can-map"): "rewrite",
    ("mm/internal.h", "mmap_file", "forward"): "core",
    ("mm/mmap.c", "do_mmap", "presence-can-map"): "core",
    ("mm/nommu.c", "validate_mmap_request", "presence-can-map"): "core",
    ("mm/memory.c", "print_bad_pte", "diagnostic"): "core",
}
TOUCHED_612 = ["drivers/gpu/drm/drm_prime.c", "drivers/gpu/drm/i915/gem/i915_gem_dmabuf.c",
               "fs/binfmt_elf.c", "fs/binfmt_elf_fdpic.c", "fs/debugfs/file.c",
               "fs/ecryptfs/file.c", "ipc/shm.c"]
CORE_612 = ["mm/internal.h", "mm/mmap.c", "mm/nommu.c"]


@pytest.mark.realtree
def test_612_proto_bails_out_where_unguarded_accepts_either_hook_and_builds(kernel_tree):
    tree = kernel_tree("6.12")
    commit_g1(tree)
    gt = open_tree(tree)
    api = resolve(tree, "proto")
    assert api.source == "tree" and api.desc_type == "struct vma_proto"
    cache = spatch.Cache()
    sites = forwarders.find(gt, api, cache=cache)
    places = by_place(sites)
    assert {k: places[k].state for k in EXPECTED_612 if k in places} == EXPECTED_612
    assert all(s.core for s in sites if s.file.startswith("mm/"))
    # Only struct file_operations: dma_buf_ops, v4l2, kernfs, vfio, ... are not sites.
    assert not {s.file for s in sites} & {"drivers/dma-buf/dma-buf.c",
                                            "drivers/media/v4l2-core/v4l2-dev.c",
                                            "fs/kernfs/file.c", "drivers/vfio/vfio_main.c"}
    assert "guarded on every path by !host_file->f_op->mmap" in \
        places[("fs/coda/file.c", "coda_file_mmap", "forward")].note

    changes, warnings, _ = forwarders.plan(gt, api, sites, cache=cache)
    assert [w for w in warnings if w.problem == "unsupported"] == []
    assert sorted(f for c in changes for f in c.files) == TOUCHED_612
    for c in changes:
        applies_alone(tree, c)
    elf = next(c for c in changes if c.files == ("fs/binfmt_elf.c",))
    assert len(elf.details) == 3
    assert "|| (!file->f_op->mmap && !file->f_op->mmap_proto))" in elf.diff
    prime = next(c for c in changes if c.files == ("drivers/gpu/drm/drm_prime.c",))
    assert "+\tif (obj->dev->driver->fops->mmap_proto)" in prime.diff
    assert "+\t    !real_fops->mmap && !real_fops->mmap_proto)" in \
        next(c for c in changes if c.files == ("fs/debugfs/file.c",)).diff

    with_core, _, _ = forwarders.plan(gt, api, sites, include_core=True, cache=cache)
    assert sorted(f for c in with_core for f in c.files) == sorted(TOUCHED_612 + CORE_612)
    results = build_changes(gt, with_core)
    # binfmt_elf_fdpic (ARM or !MMU) and nommu (!MMU) are not x86 objects: x86
    # allmodconfig does not select them, and built anyway they fail on their
    # own (mm_context_t has no exec_fdpic_loadmap), with or without the change.
    not_x86 = {"fs/binfmt_elf_fdpic.o", "mm/nommu.o"}
    assert not_x86 | {"ipc/shm.o", "fs/binfmt_elf.o", "fs/debugfs/file.o", "fs/ecryptfs/file.o",
                      "drivers/gpu/drm/drm_prime.o", "drivers/gpu/drm/i915/gem/i915_gem_dmabuf.o",
                      "mm/mmap.o"} <= set(results)
    assert any(r.via == "mm/internal.h" for r in results.values())
    assert [r for o, r in results.items() if o not in not_x86 and r.status != "passed"] == []


@pytest.mark.realtree
def test_73_reports_what_is_already_safe_and_lists_the_drm_prime_call(kernel_tree):
    """On 7.3 every forward is safe but drm_prime's call through the driver's
    fops pointer, and no DRM fops has .mmap_prepare: a bailout there could
    never fire (and would make PRIME mmap fail if it did), so the call is
    listed, not changed."""
    tree = kernel_tree("7.3")
    gt = open_tree(tree)
    api = resolve(tree, "auto")
    sites = forwarders.find(gt, api, cache=spatch.Cache())
    places = by_place(sites)
    assert not [s for s in sites if s.state in ("needs-bailout", "rewrite")]
    listed = [s for s in sites if s.state == "listed"]
    assert [(s.file, s.function, s.expression) for s in listed] == [
        ("drivers/gpu/drm/drm_prime.c", "drm_gem_prime_mmap",
         "obj->dev->driver->fops->mmap(fil, vma)")]
    assert listed[0].note == ("calls ->mmap() through a file_operations pointer, and no "
                              "file_operations under drivers/gpu/drm/ has .mmap_prepare: nothing "
                              "to change until one does")
    for key, note in [
        (("ipc/shm.c", "shm_mmap", "forward"), "vfs_mmap() handles both hooks"),
        (("fs/backing-file.c", "backing_file_mmap", "forward"), "vfs_mmap() handles both"),
        (("fs/fuse/passthrough.c", "fuse_passthrough_mmap", "forward"), "which is safe"),
        (("fs/binfmt_elf.c", "load_elf_binary", "presence-can-map"), "can_mmap_file()"),
        (("fs/debugfs/file.c", "debugfs_locked_down", "presence-can-map"),
         "already accepts .mmap_prepare"),
        (("mm/memory.c", "print_bad_page_map", "diagnostic"), "also prints .mmap_prepare"),
    ]:
        assert places[key].state == "safe" and note in places[key].note, places[key]

    changes, warnings, _ = forwarders.plan(gt, api, sites)
    assert changes == [] and warnings == []
