"""`mmconvert api` and `mmconvert scan`: what a maintainer checks first."""

from __future__ import annotations

import collections
import json
import subprocess

import pytest

from conftest import git, run_mmconvert


def scan_json(tree, *args):
    r = run_mmconvert("scan", tree, "--json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# -- the sample tree -------------------------------------------------------

def test_api_reads_the_proto_hook_from_the_sample_tree(sample_tree):
    r = run_mmconvert("api", sample_tree, "--json")
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout)
    assert facts["generation"] == "proto" and facts["source"] == "tree"
    assert facts["hook"] == "mmap_proto" and facts["desc_type"] == "struct vma_proto"
    assert facts["fields"]["flags"] == "flags" and facts["flag_style"] == "word"
    assert facts["has_call_mmap"] and not facts["has_vfs_mmap"]


def test_scan_classifies_every_sample_case(sample_tree):
    inv = scan_json(sample_tree)
    by_name = {h["handler"]: h for h in inv["handlers"]}
    expect = {
        "fieldsdev_mmap": "fields", "nofile_mmap": "fields", "ifdefdev_mmap": "fields",
        "samplefs_file_mmap": "fields", "sharedfb_mmap": "library",
        "generic_file_readonly_mmap": "library", "shmlike_mmap": "forwarder",
        "insertdev_mmap": "needs-vma", "remapdev_mmap": "needs-vma",
        "remaperr_mmap": "needs-vma", "drm_gem_mmap": "needs-vma",
    }
    assert {n: h["class"] for n, h in by_name.items()} == expect
    # The deciding expression is the code that decided, with its place.
    r = by_name["insertdev_mmap"]["reason"]
    assert r["file"] == "drivers/misc/insertdev.c" and "vm_insert_page(vma" in r["expression"]
    # Both #ifdef variants are definitions of one handler.
    assert len(by_name["ifdefdev_mmap"]["definitions"]) == 2
    # A shared handler: two fops in two files, a header prototype, an export.
    shared = by_name["sharedfb_mmap"]
    assert {f["file"] for f in shared["fops"]} == {"drivers/video/sharedfb/core.c",
                                                   "drivers/video/sharedfb/alt.c"}
    kinds = {r["kind"] for r in shared["references"]}
    assert {"prototype", "export", "kernel-doc"} <= kinds


def test_other_ops_tables_never_appear(sample_tree):
    inv = scan_json(sample_tree)
    names = {e["handler"] for e in inv["entries"]}
    assert "sample_heap_mmap" not in names      # struct dma_buf_ops
    assert "sample_vb2_mmap" not in names       # vb2 mem ops
    files = {e["file"] for e in inv["entries"]}
    assert not any("dma-buf" in f or "media" in f for f in files)


def test_null_and_macro_entries_are_listed(sample_tree):
    inv = scan_json(sample_tree)
    nulls = [e for e in inv["entries"] if e["handler"] is None]
    assert [e["fops"] for e in nulls] == ["nullmmap_fops"]
    macro = [e for e in inv["entries"] if e["form"] == "macro"]
    assert [(e["fops"], e["macro"], e["handler"]) for e in macro] == [
        ("sampledrm_fops", "DEFINE_DRM_GEM_FOPS", "drm_gem_mmap")]


def test_every_form_of_macro_fops_is_listed(sample_tree):
    """A one-line DEFINE_DRM_GEM_FOPS(name); is read from its line; a
    comment naming the macro, or the field macro inside an initialiser,
    sends the file to spatch: each use is listed once, at its line."""
    drm = sample_tree / "drivers/gpu/drm"
    (drm / "commentdrm").mkdir()
    (drm / "commentdrm/commentdrm_drv.c").write_text(
        '#include <drm/drm_gem.h>\n\n'
        '/* Not DEFINE_DRM_GEM_FOPS(): this driver once had its own mmap. */\n'
        'DEFINE_DRM_GEM_FOPS(commentdrm_fops);\n')
    (drm / "fielddrm").mkdir()
    (drm / "fielddrm/fielddrm_drv.c").write_text(
        '#include <linux/fs.h>\n#include <drm/drm_gem.h>\n\n'
        'static const struct file_operations fielddrm_fops = {\n'
        '\t.owner = THIS_MODULE,\n'
        '\tDRM_GEM_FOPS,\n'
        '};\n')
    git(sample_tree, "add", "-A")
    git(sample_tree, "commit", "--quiet", "-m", "two more drm drivers")
    inv = scan_json(sample_tree)
    macro = sorted((e["file"].split("/")[-1], e["line"], e["fops"], e["macro"], e["handler"])
                   for e in inv["entries"] if e["form"] == "macro")
    assert macro == [
        ("commentdrm_drv.c", 4, "commentdrm_fops", "DEFINE_DRM_GEM_FOPS", "drm_gem_mmap"),
        ("fielddrm_drv.c", 6, "fielddrm_fops", "DRM_GEM_FOPS", "drm_gem_mmap"),
        ("sampledrm_drv.c", 13, "sampledrm_fops", "DEFINE_DRM_GEM_FOPS", "drm_gem_mmap")]


def test_scan_text_gives_counts_then_the_list(sample_tree):
    r = run_mmconvert("scan", sample_tree)
    assert r.returncode == 0, r.stderr
    head = r.stdout.splitlines()
    assert "13 struct file_operations .mmap entries" in head[1]
    assert "by class:" in r.stdout and "handlers:" in r.stdout
    assert r.stdout.index("by class:") < r.stdout.index("handlers:")


# -- bad input: one line, non-zero exit, no traceback -----------------------

@pytest.mark.parametrize("args,needle", [
    (("/nonexistent-mmconvert",), "no such directory"),
    (("/etc/hostname",), "not a directory"),
    (("/tmp",), "not a kernel tree"),
])
def test_bad_tree_gets_one_line(args, needle):
    for cmd in ("api", "scan"):
        r = run_mmconvert(cmd, *args)
        assert r.returncode == 2
        assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert "Traceback" not in r.stderr


def test_unknown_api_name_is_refused(sample_tree):
    r = run_mmconvert("scan", sample_tree, "--api", "mmap-v9")
    assert r.returncode == 2 and "unknown --api 'mmap-v9'" in r.stderr


def test_not_a_git_checkout_is_refused(tmp_path, sample_tree):
    plain = tmp_path / "plain"
    import shutil
    shutil.copytree(sample_tree, plain, ignore=shutil.ignore_patterns(".git"))
    r = run_mmconvert("scan", plain)
    assert r.returncode == 2 and "not a git repository" in r.stderr


def test_missing_spatch_says_how_to_install(sample_tree, monkeypatch):
    monkeypatch.setenv("MMCONVERT_SPATCH", "spatch-not-installed")
    r = run_mmconvert("scan", sample_tree)
    assert r.returncode == 2
    assert "apt-get install coccinelle" in r.stderr and "Traceback" not in r.stderr


def test_a_file_spatch_cannot_parse_is_named(sample_tree):
    bad = sample_tree / "drivers/char/brokendev.c"
    bad.write_text("static const struct file_operations brokendev_fops = {\n"
                   "\t.mmap = brokendev_mmap,\n\t.open = (( ,\n};\n")
    git(sample_tree, "add", "-A")
    git(sample_tree, "commit", "-qm", "broken")
    inv = scan_json(sample_tree)
    warned = [w for w in inv["warnings"] if w["file"] == "drivers/char/brokendev.c"]
    assert warned and warned[0]["problem"] == "parse"
    # The rest is still there.
    assert any(h["handler"] == "fieldsdev_mmap" for h in inv["handlers"])


# -- real trees ------------------------------------------------------------

def test_per_cpu_definitions_parse(tmp_path):
    # standard.h's own DEFINE_PER_CPU() does not parse, and takes the end of
    # the function before it down with it: kernel/events/core.c has eleven,
    # each parsed three times.  mmconvert's hint must win over standard.h.
    from mmconvert import spatch

    prog = spatch.spatch_program()
    option, text = spatch.macro_hints(prog)
    hints = tmp_path / "hints.h"
    hints.write_text(text)
    src = tmp_path / "percpu.c"
    src.write_text("static int pcpu_mmap(struct file *file, struct vm_area_struct *vma)\n"
                   "{\n\treturn 0;\n}\n\n"
                   "static DEFINE_PER_CPU(struct perf_cpu_context, perf_cpu_context);\n")
    p = subprocess.run([prog, "--parse-c", str(src), option, str(hints)], capture_output=True,
                       text=True)
    assert "nb bad = 0 " in p.stdout + p.stderr, p.stdout + p.stderr


@pytest.mark.realtree
def test_api_on_debian_trees(cached_kernel):
    r = run_mmconvert("api", cached_kernel("7.3"), "--json")
    facts = json.loads(r.stdout)
    assert facts["generation"] == "prepare-7" and facts["flag_style"] == "bitmap"
    assert facts["fields"]["flags"] == "vma_flags"
    assert "mmap_action_simple_ioremap" in facts["actions"]
    assert facts["has_vfs_mmap"] and facts["has_can_mmap_file"] and not facts["has_call_mmap"]
    r = run_mmconvert("api", cached_kernel("6.12"))
    assert r.returncode == 2 and "no new hook" in r.stderr and "--api" in r.stderr


@pytest.mark.realtree
@pytest.mark.parametrize("version,entries,literal,macro,nulls,names", [
    ("7.3", 205, 120, 85, 4, 102),
    ("6.12", 250, 176, 74, 4, 136),
])
def test_scan_counts_on_debian_trees(cached_kernel, version, entries, literal, macro, nulls,
                                     names):
    args = ("--api", "proto") if version == "6.12" else ()
    inv = scan_json(cached_kernel(version), *args)
    es = inv["entries"]
    assert len(es) == entries
    assert sum(e["form"] != "macro" for e in es) == literal
    assert sum(e["form"] == "macro" for e in es) == macro
    assert sum(e["handler"] is None for e in es) == nulls
    # Distinct handlers: two static functions that share a name in two
    # files (afu_mmap) are two handlers.
    assert len(inv["handlers"]) == names
    assert len({(h["handler"], h["reason"]["file"]) for h in inv["handlers"]}) == names
    # No other ops table: every entry sits in a struct file_operations.
    assert not any(e["handler"] in ("dma_buf_mmap_internal_x",) for e in es)
    classes = collections.Counter(h["class"] for h in inv["handlers"])
    print(f"\n{version}: {dict(classes)}; warnings: {len(inv['warnings'])}")
    assert classes["needs-vma"] > 0 and classes["fields"] > 0
    # Every handler has a reason that points into the tree.
    for h in inv["handlers"]:
        assert h["reason"]["file"] and h["reason"]["line"] > 0, h["handler"]
