"""`mmconvert report`: the campaign's state as one HTML page and as markdown."""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import ROOT, run_mmconvert, tree_state

from mmconvert.maintainers import Maintainers
from mmconvert.report import diff_lines

ARTIFACTS = ROOT / "test-artifacts"
CLASSES = ("fields", "action", "library", "forwarder", "dispatcher", "needs-vma", "unclear")
CONVERTIBLE = ("fields", "action", "library")


# -- helpers -------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Dom(HTMLParser):
    """Every element of a page with its attributes and its text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self._open: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "text": []}
        self.elements.append(el)
        if tag not in VOID:
            self._open.append(el)

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i]["tag"] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        for el in self._open:
            el["text"].append(data)

    def find(self, **attrs) -> list[dict]:
        return [e for e in self.elements
                if all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def by_id(self, id_: str) -> dict:
        found = self.find(id=id_)
        assert found, f"no element with id {id_}"
        return found[0]

    @staticmethod
    def text(el: dict) -> str:
        return " ".join("".join(el["text"]).split())


def scan_json(tree: Path) -> dict:
    p = run_mmconvert("scan", tree, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def name_of(h: dict) -> str:
    """The field names `scan --json` documents (tests/test_scan.py pins them all)."""
    return h["handler"]


def class_of(h: dict) -> str:
    return h["class"]


def class_counts(scan: dict) -> dict[str, int]:
    c = collections.Counter(class_of(h) for h in scan["handlers"])
    return {k: c[k] for k in CLASSES}


def make_report(tree: Path, out: Path, *extra) -> subprocess.CompletedProcess:
    p = run_mmconvert("report", tree, "-o", out / "report.html", "--markdown",
                      out / "report.md", *extra)
    assert p.returncode == 0, p.stderr
    return p


def assert_summary_matches_scan(dom: Dom, scan: dict) -> None:
    counts = class_counts(scan)
    total = len(scan["handlers"])
    convertible = sum(counts[k] for k in CONVERTIBLE)
    assert Dom.text(dom.by_id("summary-total")) == str(total)
    assert Dom.text(dom.by_id("summary-convertible")) == str(convertible)
    assert Dom.text(dom.by_id("summary-waiting")) == str(total - convertible)
    assert Dom.text(dom.by_id("summary-entries")) == str(len(scan["entries"]))
    legend = dom.by_id("summary-classes")
    shown = {e["attrs"]["data-class"]: Dom.text(e) for e in dom.elements
             if "data-class" in e["attrs"] and e["attrs"].get("class") == "num"}
    assert legend and shown == {k: str(n) for k, n in counts.items()}
    # One handler row per scanned handler, with the class scan gave it (two
    # drivers' static afu_mmap() are two rows, and may differ in class).
    rows = collections.Counter((Dom.text(e).split("()")[0], e["attrs"]["data-class"])
                               for e in dom.elements
                               if e["tag"] == "tbody" and e["attrs"].get("class") == "h")
    assert rows == collections.Counter((name_of(h), class_of(h)) for h in scan["handlers"])


# -- MAINTAINERS ---------------------------------------------------------

MAINTAINERS = """\
List of maintainers
===================

	F: *Files* and directories wildcard patterns.

FILESYSTEMS (VFS)
M:	Victor Sandoval <victor@example.org>
S:	Maintained
F:	fs/

EXEC/BINFMT
M:	Elif Brandt <elif.brandt@example.org>
S:	Supported
F:	fs/binfmt_*

SAMPLEFS
M:	Sam Pleasance <sam@example.com>
F:	fs/samplefs/
X:	fs/samplefs/legacy/

CHAR TOP LEVEL
M:	Carla Hart <carla.hart@example.org>
F:	drivers/char/*

DRM DRIVERS
M:	Greta Mendez <greta.mendez@example.com>
N:	drm
"""


def test_maintainers_picks_the_most_specific_section(tmp_path):
    (tmp_path / "MAINTAINERS").write_text(MAINTAINERS)
    index = Maintainers(tmp_path)

    def name(path: str) -> str | None:
        s = index.section(path)
        return s.name if s else None

    assert name("fs/samplefs/file.c") == "SAMPLEFS"
    assert name("fs/binfmt_elf.c") == "EXEC/BINFMT"
    assert name("fs/namei.c") == "FILESYSTEMS (VFS)"
    # X: takes a file out of a section; the next most specific one has it.
    assert name("fs/samplefs/legacy/old.c") == "FILESYSTEMS (VFS)"
    # A file glob covers its own directory level only.
    assert name("drivers/char/mem.c") == "CHAR TOP LEVEL"
    assert name("drivers/char/agp/backend.c") is None
    # N: regexes match anywhere in the path.
    assert name("drivers/gpu/drm/foo/bar.c") == "DRM DRIVERS"
    s = index.section("fs/binfmt_elf.c")
    assert s.maintainers == ["Elif Brandt <elif.brandt@example.org>"] and s.status == "Supported"


def test_a_removed_line_starting_with_dashes_stays_a_removal():
    diff = ("--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,3 @@\n a\n--- b\n+++ c\n d\n")
    assert [d.kind for d in diff_lines(diff)] == ["meta", "meta", "hunk", "ctx", "del", "add",
                                                  "ctx"]


# -- the sample tree -----------------------------------------------------

def test_report_summary_and_rows_match_scan(sample_tree, tmp_path):
    make_report(sample_tree, tmp_path)
    dom = Dom((tmp_path / "report.html").read_text())
    assert_summary_matches_scan(dom, scan_json(sample_tree))


def test_report_groups_handlers_by_maintainers_section_with_maintainers(sample_tree, tmp_path):
    make_report(sample_tree, tmp_path)
    dom = Dom((tmp_path / "report.html").read_text())
    subs = {e["attrs"]["data-subsystem"]: Dom.text(e) for e in dom.elements
            if e["tag"] == "tr" and "data-subsystem" in e["attrs"]}
    assert "SAMPLEFS" in subs and "Sam Pleasance" in subs["SAMPLEFS"]
    assert "CHAR DRIVERS" in subs and "Carla Hart" in subs["CHAR DRIVERS"]
    rows = {Dom.text(e).split("()")[0]: e["attrs"]["data-subsystem"]
            for e in dom.elements if e["tag"] == "tbody" and e["attrs"].get("class") == "h"}
    assert rows["samplefs_file_mmap"] == "SAMPLEFS"
    assert rows["fieldsdev_mmap"] == "CHAR DRIVERS"
    # The per-subsystem totals add up to the handlers.
    totals = [int(e["attrs"]["data-total"]) for e in dom.elements
              if e["tag"] == "tr" and "data-subsystem" in e["attrs"]]
    assert sum(totals) == len(rows)


def test_report_page_is_self_contained(sample_tree, tmp_path):
    make_report(sample_tree, tmp_path)
    html = (tmp_path / "report.html").read_text()
    dom = Dom(html)
    assert not [e for e in dom.elements if e["tag"] in ("link", "img", "iframe")]
    assert not [e for e in dom.elements if e["tag"] == "script" and "src" in e["attrs"]]
    for e in dom.elements:
        for k, v in e["attrs"].items():
            if k in ("href", "src", "action"):
                assert v is None or not re.match(r"^(https?:)?//", v), (e["tag"], k, v)
    assert "@import" not in html and "url(" not in html


def test_report_reads_without_javascript(sample_tree, tmp_path):
    """Everything is in the markup; the filter bar only appears with JavaScript."""
    make_report(sample_tree, tmp_path)
    dom = Dom((tmp_path / "report.html").read_text())
    assert "hidden" in dom.by_id("filters")["attrs"]
    assert not [e for e in dom.elements if e["tag"] == "tbody" and "hidden" in e["attrs"]]


def test_report_shows_the_diff_of_every_convertible_handler(sample_tree, tmp_path):
    make_report(sample_tree, tmp_path)
    scan = scan_json(sample_tree)
    html = (tmp_path / "report.html").read_text()
    dom = Dom(html)
    hook = scan["api"]["hook"]
    for h in scan["handlers"]:
        body = dom.find(id="h-" + re.sub(r"[^a-z0-9]+", "-", name_of(h).lower()).strip("-"))
        assert body, name_of(h)
        i = dom.elements.index(body[0])
        nxt = next(j for j in range(i + 1, len(dom.elements))
                   if dom.elements[j]["tag"] == "tbody"
                   or dom.elements[j]["attrs"].get("id") == "f-none")
        pres = [e for e in dom.elements[i:nxt] if e["tag"] == "pre"]
        if class_of(h) in CONVERTIBLE:
            assert pres, f"{name_of(h)}: no diff"
            assert re.search(r"\+\s*\." + hook + r"\b", Dom.text(pres[0]).replace(" .", "."))
        else:
            assert not pres, f"{name_of(h)}: a diff for a {class_of(h)} handler"


def test_report_lists_forwarders_with_their_state(sample_tree, tmp_path):
    make_report(sample_tree, tmp_path)
    dom = Dom((tmp_path / "report.html").read_text())
    assert not dom.find(id="forwarders-not-computed"), "the forwarders stage is missing"
    states = {e["attrs"]["data-state"] for e in dom.elements
              if e["tag"] == "tbody" and e["attrs"].get("class") == "fw"}
    assert states and states <= {"safe", "needs-bailout", "handled", "rewrite", "core"}
    text = Dom.text(dom.by_id("forwarder-table"))
    assert "shmlike_mmap()" in text and "ipc/shmlike.c" in text


FIX = """\
--- a/ipc/shmlike.c
+++ b/ipc/shmlike.c
@@ -62,2 +62,4 @@
 \tint ret;
+\tif (sfd->file->f_op->mmap_proto)
+\t\treturn -ENODEV;
 \tret = call_mmap(sfd->file, vma);
"""


def test_forwarder_section_shows_each_state_and_the_fix(sample_tree):
    """The section as the forwarders stage fills it (sites given here, so
    this checks the report, not the stage)."""
    from mmconvert import spatch
    from mmconvert.inventory import scan
    from mmconvert.model import Change, ForwarderSite
    from mmconvert.report import build, render_html, render_markdown
    from mmconvert.tree import open_tree, resolve

    gt, api = open_tree(sample_tree), resolve(sample_tree, "auto")
    inv = scan(gt, api, jobs=1, timeout=spatch.DEFAULT_TIMEOUT, cache=None, progress=None)
    sites = (
        ForwarderSite("fs/backing-file.c", 1, "backing_file_mmap", "forward",
                      "call_mmap(file, vma)", "handled"),
        ForwarderSite("ipc/shmlike.c", 63, "shmlike_mmap", "forward",
                      "call_mmap(sfd->file, vma)", "needs-bailout"),
        ForwarderSite("fs/binfmt_sample.c", 1, "load_sample_binary", "presence-can-map",
                      "!file->f_op->mmap", "rewrite"),
        ForwarderSite("mm/filemap.c", 1, "do_mmap", "presence-can-map", "!file->f_op->mmap",
                      "core", core=True),
    )
    fix = Change("forwarders", "shmlike: refuse files with .mmap_proto", ("shmlike_mmap",),
                 ("ipc/shmlike.c",), FIX)
    rep = build(gt, api, inv, forwarders=sites, forwarder_changes=[fix], changes=[])
    dom = Dom(render_html(rep))
    order = [e["attrs"]["data-state"] for e in dom.elements
             if e["tag"] == "tbody" and e["attrs"].get("class") == "fw"]
    assert order == ["needs-bailout", "rewrite", "handled", "core"]  # work left first
    counts = {e["attrs"]["data-state"]: e["attrs"]["data-count"] for e in dom.elements
              if e["tag"] == "span" and "data-count" in e["attrs"] and "data-state" in e["attrs"]}
    assert counts == {"needs-bailout": "1", "rewrite": "1", "handled": "1", "core": "1"}
    table = Dom.text(dom.by_id("forwarder-table"))
    assert "bailout needed" in table and "IPC" in table  # state label, MAINTAINERS section
    pre = [Dom.text(e) for e in dom.elements if e["tag"] == "pre"]
    assert len(pre) == 1 and "return -ENODEV;" in pre[0]
    md = render_markdown(rep)
    assert "| `shmlike_mmap()` | `ipc/shmlike.c:63` | forwards | `call_mmap(sfd->file, vma)` " \
           "| bailout needed |" in md
    assert "### `shmlike_mmap()` (ipc/shmlike.c): bailout needed" in md


def test_report_markdown_has_the_same_content(sample_tree, tmp_path):
    make_report(sample_tree, tmp_path)
    md = (tmp_path / "report.md").read_text()
    scan = scan_json(sample_tree)
    counts = class_counts(scan)
    total = len(scan["handlers"])
    convertible = sum(counts[k] for k in CONVERTIBLE)
    assert f"**{total}** handlers left" in md
    assert f"**{convertible}** convertible now" in md
    for k, n in counts.items():
        assert re.search(rf"^\| {k.replace('-', ' ')} \| {n} \|", md, re.MULTILINE), k
    for h in scan["handlers"]:
        assert f"`{name_of(h)}()`" in md
    assert "| SAMPLEFS | Sam Pleasance |" in md
    assert "## Forwarders and presence checks" in md
    assert md.count("```diff") >= convertible
    # Every table row has its header's columns: pipes in code are escaped.
    header = None
    for line in md.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = len(re.split(r"(?<!\\)\|", line))
        if header is None:
            header = cells
        assert cells == header, line


def test_report_leaves_the_tree_alone(sample_tree, tmp_path):
    before = tree_state(sample_tree)
    make_report(sample_tree, tmp_path)
    assert tree_state(sample_tree) == before


def test_report_without_an_output_says_so(sample_tree):
    p = run_mmconvert("report", sample_tree)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "mmconvert: say where to write the report: -o FILE.html and/or --markdown FILE.md"]


def test_report_on_a_non_kernel_directory_is_one_line(tmp_path):
    p = run_mmconvert("report", tmp_path, "-o", tmp_path / "r.html")
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1 and "not a kernel tree" in p.stderr
    assert not (tmp_path / "r.html").exists()


def test_report_without_diffs_says_not_computed(sample_tree, tmp_path):
    make_report(sample_tree, tmp_path, "--no-diffs")
    html = (tmp_path / "report.html").read_text()
    assert "Not computed: diffs were turned off (--no-diffs)." in html
    assert '<pre class="diff">' not in html.split('id="other-changes"')[0]


# -- in a browser --------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed on a fresh machine if it is missing."""
    found = shutil.which("chromium")
    if found:
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    p = subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=False,
                       capture_output=True, text=True)
    if p.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False,
                       capture_output=True)
        p = subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env,
                           check=False, capture_output=True, text=True)
    found = shutil.which("chromium")
    assert found, f"cannot install chromium: {p.stderr.strip()[-500:]}"
    return found


def browse(chromium: str, page: Path, *, fragment: str = "", screenshot: Path | None = None
           ) -> str:
    """The DOM Chromium renders for the page (after its JavaScript ran)."""
    url = page.resolve().as_uri() + fragment
    with tempfile.TemporaryDirectory(prefix="mmconvert-chromium-") as profile:
        args = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        p = subprocess.run([*args, "--dump-dom", url], check=False, capture_output=True, text=True,
                           timeout=180)
        assert p.returncode == 0 and "</html>" in p.stdout, p.stderr[-2000:]
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.unlink(missing_ok=True)
            s = subprocess.run([*args, f"--screenshot={screenshot}", "--window-size=1400,2000",
                                url], check=False, capture_output=True, text=True, timeout=180)
            assert s.returncode == 0 and screenshot.stat().st_size > 10_000, s.stderr[-2000:]
    return p.stdout


def test_chromium_renders_the_summary_of_scan(chromium, sample_tree, tmp_path):
    make_report(sample_tree, tmp_path)
    dom = Dom(browse(chromium, tmp_path / "report.html",
                     screenshot=ARTIFACTS / "report-minikernel.png"))
    scan = scan_json(sample_tree)
    assert_summary_matches_scan(dom, scan)
    # The script ran: the filter bar is shown and counts every handler.
    assert "hidden" not in dom.by_id("filters")["attrs"]
    n = len(scan["handlers"])
    assert Dom.text(dom.by_id("f-shown")) == f"{n} of {n} handlers"


def test_chromium_filters_by_class_from_a_link(chromium, sample_tree, tmp_path):
    make_report(sample_tree, tmp_path)
    scan = scan_json(sample_tree)
    want = {name_of(h) for h in scan["handlers"] if class_of(h) == "needs-vma"}
    assert want
    dom = Dom(browse(chromium, tmp_path / "report.html", fragment="#handlers?class=needs-vma"))
    visible = {Dom.text(e).split("()")[0] for e in dom.elements
               if e["tag"] == "tbody" and e["attrs"].get("class") == "h"
               and "hidden" not in e["attrs"]}
    assert visible == want
    assert Dom.text(dom.by_id("f-shown")) == f"{len(want)} of {len(scan['handlers'])} handlers"


@pytest.mark.realtree
def test_chromium_renders_the_summary_of_a_7_3_scan(chromium, kernel_tree, tmp_path):
    tree = kernel_tree("7.3")
    before = tree_state(tree)
    out = tmp_path / "out"
    make_report(tree, out)
    assert tree_state(tree) == before
    dom = Dom(browse(chromium, out / "report.html", screenshot=ARTIFACTS / "report-7.3.png"))
    scan = scan_json(tree)
    assert_summary_matches_scan(dom, scan)
    # Real MAINTAINERS sections, with their maintainers.
    subs = {e["attrs"]["data-subsystem"]: Dom.text(e) for e in dom.elements
            if e["tag"] == "tr" and "data-subsystem" in e["attrs"]}
    assert "Maarten Lankhorst" in subs["DRM DRIVERS AND MISC GPU PATCHES"]
    assert "Thierry Reding" in subs["DRM DRIVERS FOR NVIDIA TEGRA"]
    shutil.copy(out / "report.html", ARTIFACTS / "report-7.3.html")
