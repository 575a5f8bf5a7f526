"""`mmconvert api` and `mmconvert scan`: what a maintainer checks first."""

from __future__ import annotations

import collections
import json
import re
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
        "remaperr_mmap": "needs-vma", "drm_gem_mmap": "dispatcher",
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


def test_scan_json_has_the_fields_the_readme_documents(sample_tree):
    """The names a script reading `scan --json` relies on, exactly."""
    inv = scan_json(sample_tree)
    assert set(inv) == {"tree", "api", "handlers", "entries", "warnings", "forwarders"}
    assert inv["handlers"] and inv["entries"] and inv["forwarders"]
    for h in inv["handlers"]:
        optional = {"needs_twin", "wraps_library", "mapping_checked", "helpers", "opens"}
        assert set(h) - optional == {"handler", "class", "reason", "definitions", "fops",
                                     "references", "linkage", "notes", "via"}, h
        assert all(h[k] for k in optional & set(h)), h
        assert set(h["reason"]) == {"file", "line", "expression"}
    # drm_gem_mmap() is the sample's one handler with a caller of its own.
    assert [h["handler"] for h in inv["handlers"] if h.get("needs_twin")] == ["drm_gem_mmap"]
    assert {h["class"] for h in inv["handlers"]} <= {
        "fields", "action", "library", "forwarder", "dispatcher", "needs-vma", "unclear"}


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


# Ops tables other than struct file_operations that set .mmap in both trees:
# dma-buf exporters, vb2 memory allocators, sysfs's kernfs_ops, V4L2 and
# socket fops, bin_attribute.  (uio_info's .mmap is set at run time there,
# never in an initialiser.)
OTHER_TABLES = {"dma_buf_ops", "vb2_mem_ops", "kernfs_ops", "v4l2_file_operations",
                "proto_ops", "bin_attribute"}
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_OPENER = re.compile(r"(?:\bstruct\s+(\w+)\b[^;{}()=]*=|\(\s*(?:const\s+)?struct\s+(\w+)\s*\))\s*$")
_INNER = re.compile(r"(?:[{,]|(?:\[[^]]*\]|\.\w+)\s*=)\s*$")


def _initialiser_type(text: str, pos: int) -> str | None:
    """The struct type of the initialiser around offset `pos` of C text
    without comments (`struct X name = {`, `struct X name[] = { {`,
    `(struct X){`), or None outside one."""
    depth = 0
    for i in range(pos - 1, -1, -1):
        c = text[i]
        if c == "}":
            depth += 1
        elif c == ";" and not depth:
            return None
        elif c == "{":
            if depth:
                depth -= 1
                continue
            before = text[max(0, i - 400):i]
            m = _OPENER.search(before)
            if m:
                return m.group(1) or m.group(2)
            if not _INNER.search(before):      # a function body or a block
                return None
    return None


class Source:
    """The tree's C files, read as the compiler's tokens see them."""

    def __init__(self, tree):
        self.tree = tree
        self._texts: dict[str, str] = {}

    def text(self, f: str) -> str:
        if f not in self._texts:
            raw = (self.tree / f).read_text(errors="replace")
            self._texts[f] = _COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), raw)
        return self._texts[f]

    def line(self, f: str, n: int) -> tuple[int, str]:
        lines = self.text(f).splitlines(keepends=True)
        return sum(map(len, lines[:n - 1])), lines[n - 1]

    def type_at(self, f: str, n: int, word: str) -> str | None:
        start, line = self.line(f, n)
        col = line.find(word) if word else len(line) - len(line.lstrip())
        return None if col < 0 else _initialiser_type(self.text(f), start + col)

    def in_define(self, f: str, n: int) -> bool:
        lines = self.text(f).splitlines()
        return lines[n - 1].rstrip().endswith("\\") or lines[n - 2].rstrip().endswith("\\")


def mmap_initialisers(tree, src: Source) -> dict[tuple[str, int], str | None]:
    """Every `.mmap =` line of the tree's C, with the struct type of the
    initialiser it is in."""
    hits = git(tree, "grep", "-n", "-E", r"\.mmap\s*=", "--", "*.c", "*.h").splitlines()
    found = {}
    for hit in hits:
        f, n, _ = hit.split(":", 2)
        if src.line(f, int(n))[1].find(".mmap") >= 0:     # not in a comment
            found[(f, int(n))] = src.type_at(f, int(n), ".mmap")
    return found


def macro_body(tree, src: Source, name: str) -> str:
    """The text of `#define name`, continuation lines included."""
    for hit in git(tree, "grep", "-n", "-w", "-F", name, "--", "*.h", "*.c").splitlines():
        f, n, text = hit.split(":", 2)
        if re.match(rf"\s*#\s*define\s+{name}\b", text):
            lines = src.text(f).splitlines()[int(n) - 1:]
            end = next(i for i, ln in enumerate(lines) if not ln.rstrip().endswith("\\"))
            return "\n".join(lines[:end + 1])
    return ""


def files_given_to_spatch(tree, api: str, monkeypatch) -> dict[str, int]:
    """How many files each spatch pass of a scan is given (the scan run
    in-process, with the result cache the command uses)."""
    from mmconvert import spatch
    from mmconvert.inventory import scan
    from mmconvert.tree import open_tree, resolve

    given: dict[str, int] = {}
    real = spatch.run

    def counting(root, cocci, files, **kw):
        given[kw["label"]] = len(files)
        return real(root, cocci, files, **kw)
    monkeypatch.setattr(spatch, "run", counting)
    scan(open_tree(tree), resolve(tree, api), timeout=spatch.DEFAULT_TIMEOUT,
         cache=spatch.Cache(), progress=None)
    return given


@pytest.mark.realtree
@pytest.mark.parametrize("version,entries,literal,macro,nulls,handlers,names,classes,reads", [
    ("7.3", 205, 120, 85, 4, 102, 101,
     {"fields": 24, "action": 14, "library": 0, "forwarder": 4, "dispatcher": 20, "needs-vma": 40,
      "unclear": 0},
     (458, 120, 80, 127, 174, 61)),
    ("6.12", 250, 176, 74, 4, 136, 133,
     {"fields": 41, "action": 0, "library": 7, "forwarder": 4, "dispatcher": 20, "needs-vma": 64,
      "unclear": 0},
     (492, 168, 70, 172, 233, 71)),
])
def test_scan_counts_on_debian_trees(cached_kernel, monkeypatch, version, entries, literal,
                                     macro, nulls, handlers, names, classes, reads):
    """The figures the README gives for each tree (6.12 with --api proto),
    in "scan" and in "Speed" (what spatch is given to read)."""
    tree = cached_kernel(version)
    api = "proto" if version == "6.12" else "auto"
    inv = scan_json(tree, "--api", api)
    es = inv["entries"]
    assert len(es) == entries
    assert sum(e["form"] != "macro" for e in es) == literal
    assert sum(e["form"] == "macro" for e in es) == macro
    assert sum(e["handler"] is None for e in es) == nulls
    # Distinct handlers: static functions that share a name in several
    # files (afu_mmap: two on 7.3, four on 6.12) are several handlers.
    assert len(inv["handlers"]) == handlers
    assert len({(h["handler"], h["reason"]["file"]) for h in inv["handlers"]}) == handlers
    assert len({h["handler"] for h in inv["handlers"]}) == names
    assert len({e["handler"] for e in es} - {None}) == names
    got = collections.Counter(h["class"] for h in inv["handlers"])
    print(f"\n{version}: {dict(got)}; warnings: {len(inv['warnings'])}")
    assert {k: got[k] for k in classes} == classes and sum(classes.values()) == handlers
    assert inv["warnings"] == []
    # Every handler has a reason that points into the tree.
    for h in inv["handlers"]:
        assert h["reason"]["file"] and h["reason"]["line"] > 0, h["handler"]

    # No other ops table: the tree's other initialisers that set .mmap are
    # found, and not one of their lines is an entry ...
    src = Source(tree)
    inits = mmap_initialisers(tree, src)
    others = {at: t for at, t in inits.items() if t not in (None, "file_operations")}
    assert set(others.values()) >= OTHER_TABLES
    listed = {(e["file"], e["line"]) for e in es}
    assert sorted((at, others[at]) for at in listed if at in others) == []
    # ... while every struct file_operations line outside a #define is one,
    assert {(e["file"], e["line"]) for e in es if e["form"] != "macro"} == {
        at for at, t in inits.items() if t == "file_operations" and not src.in_define(*at)}
    # and every macro entry is a field macro inside a struct file_operations
    # or a macro whose definition declares one.
    declares = {m: bool(re.search(r"\bstruct\s+file_operations\b", macro_body(tree, src, m)))
                for m in {e["macro"] for e in es if e["form"] == "macro"}}
    one_line = collections.Counter()
    for e in es:
        if e["form"] == "macro":
            at = src.type_at(e["file"], e["line"], "")
            assert at == "file_operations" or (at is None and declares[e["macro"]]), e
            one_line[e["file"]] += at is None
    one_line_only = {f for f, n in one_line.items()
                     if n == sum(e["file"] == f for e in es)}

    # What spatch reads: the `.mmap =` files that name struct
    # file_operations (and the files of field macros) in the entries pass,
    # not the files whose only fops is a one-line DEFINE_*_FOPS(name); then
    # only the files the entries pass has not read that name a handler.
    from mmconvert import inventory
    from mmconvert.gitrepo import GitTree

    mmap_files = set(git(tree, "grep", "-l", "-E", r"\.mmap\s*=", "--", "*.c", "*.h").split())
    typed = set(git(tree, "grep", "-l", "-w", "-F", "file_operations", "--",
                    *sorted(mmap_files)).split())
    naming = {f for f, _, _ in inventory.grep_names(GitTree(tree), sorted(
        {e["handler"] for e in es} - {None}))}
    given = files_given_to_spatch(tree, api, monkeypatch)
    assert (len(mmap_files), len(typed), len(one_line_only), given["inventory: entries"],
            len(naming), given["inventory: handlers"]) == reads
