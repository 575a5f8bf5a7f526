"""`mmconvert report`: the state of a tree-wide conversion on one page.

The report reads the inventory (`scan`), the forwarders and presence checks
(`forwarders`) and the diffs `convert` would make, groups handlers by
MAINTAINERS section (mmconvert.maintainers, as the series does) and
renders templates/report.html.j2 (one self-contained file: inline CSS,
inline JavaScript that only adds filtering and sorting) and
templates/report.md.j2 (the same content for a mailing-list post or a
tracking issue).  Nothing here writes to the tree.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from . import __version__, convert, forwarders, pipeline, prose, spatch
from .errors import MmconvertError, SpatchError, UsageError
from .gitrepo import GitTree
from .maintainers import Maintainers, Section
from .model import ApiFacts, Change, FileWarning, ForwarderSite, Handler, Inventory, Site
from .pipeline import ApplyError
from .runner import ToolFailed
from .textout import CLASS_ORDER, subsystem_of
from .ui import check_output_file, progress, run

log = logging.getLogger("mmconvert")

TEMPLATE_DIR = prose.TEMPLATES

# How far below its line the report looks for the end of a deciding expression.
MAX_CODE_LINES = 6

# Forwarder states in the order a reviewer reads them: what still needs work first.
FORWARDER_STATES = ("needs-bailout", "rewrite", "listed", "handled", "safe", "core")


# -- the report's data ---------------------------------------------------

@dataclass(frozen=True)
class DiffLine:
    kind: str        # meta | hunk | add | del | ctx
    text: str


@dataclass(frozen=True)
class Code:
    """The line holding the deciding expression, split around it."""

    line: int
    before: str = ""
    match: str = ""
    after: str = ""
    found: bool = False


@dataclass(frozen=True)
class Row:
    """One handler as the report shows it."""

    handler: Handler
    klass: str
    subsystem: str
    location: Site                 # the definition (or the first fops)
    code: Code
    status: str                    # ready | skipped | forwarder | needs-vma | unclear
    diff: tuple[DiffLine, ...] = ()
    diff_text: str = ""
    diff_with: tuple[str, ...] = ()   # other handlers in the same change
    changes: tuple[str, ...] = ()     # titles of the changes in `diff`

    @property
    def name(self) -> str:
        return self.handler.name

    @property
    def convertible(self) -> bool:
        return self.handler.klass.convertible


@dataclass(frozen=True)
class SubsystemRow:
    name: str
    section: Section | None
    counts: dict[str, int]
    total: int
    convertible: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class ForwarderRow:
    site: ForwarderSite
    code: Code
    subsystem: str
    diff: tuple[DiffLine, ...] = ()
    diff_text: str = ""


@dataclass
class Report:
    """Everything the templates show; they decide no numbers themselves."""

    tree: str
    tree_name: str
    commit: str
    api: ApiFacts
    version: str
    inventory: Inventory
    classes: list[str]
    convertible_classes: list[str]
    counts: dict[str, int]
    total: int
    convertible: int
    waiting: int
    entries: int
    null_entries: int
    macro_entries: int
    rows: list[Row]
    subsystems: list[SubsystemRow]
    maintainers_source: str          # maintainers.py | report.py | none
    forwarders: list[ForwarderRow] | None   # None: not computed
    forwarder_counts: dict[str, int]
    forwarders_problem: str          # why forwarders were not computed
    fixes_problem: str               # why forwarder fixes were not computed ("" if they were)
    diffs_computed: bool
    diffs_problem: str
    diff_count: int
    warnings: list[FileWarning] = field(default_factory=list)
    other_changes: list[Change] = field(default_factory=list)  # library stage without a row
    inventory_problem: str = ""      # why no handler could be listed ("" if they were)


def diff_lines(diff: str) -> tuple[DiffLine, ...]:
    """A unified diff's lines with their kind; hunk lengths decide where a
    hunk ends, so a removed line starting with "--" stays a removal."""
    out = []
    old = new = 0
    for line in diff.splitlines():
        if old > 0 or new > 0:
            if line.startswith("+"):
                kind, new = "add", new - 1
            elif line.startswith("-"):
                kind, old = "del", old - 1
            elif line.startswith("\\"):
                kind = "meta"
            else:
                kind, old, new = "ctx", old - 1, new - 1
            out.append(DiffLine(kind, line))
            continue
        m = re.match(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@", line)
        if m:
            old = int(m.group(1)) if m.group(1) is not None else 1
            new = int(m.group(2)) if m.group(2) is not None else 1
            out.append(DiffLine("hunk", line))
        else:
            out.append(DiffLine("meta", line))
    return tuple(out)


class _Sources:
    """Lines of the tree's files, read once."""

    def __init__(self, root: Path):
        self.root = root
        self._files: dict[str, list[str]] = {}

    def line(self, path: str, n: int) -> str:
        if path not in self._files:
            try:
                self._files[path] = (self.root / path).read_text(errors="replace").splitlines()
            except OSError:
                self._files[path] = []
        lines = self._files[path]
        return lines[n - 1] if 0 < n <= len(lines) else ""

    def code(self, site: Site | ForwarderSite) -> Code:
        """The source from the site's line to the end of its expression
        (at most a few lines), split around the expression."""
        expr = (site.expression or "").strip()
        lines = [self.line(site.file, site.line).rstrip().expandtabs(8)]
        found = None
        if expr:
            rx = re.compile(r"\s*".join(re.escape(c) for c in re.sub(r"\s+", "", expr)))
            for extra in range(MAX_CODE_LINES):
                if extra:
                    nxt = self.line(site.file, site.line + extra)
                    if not nxt and not lines[-1]:
                        break
                    lines.append(nxt.rstrip().expandtabs(8))
                found = rx.search("\n".join(lines))
                if found:
                    break
        if not found:
            lines = lines[:1]
        # One logical line: a table cell wraps it better than the source did.
        text = " ".join(x.strip() for x in lines if x.strip())
        m = rx.search(text) if found else None
        if m is not None:
            return Code(site.line, text[:m.start()], m.group(), text[m.end():], True)
        return Code(site.line, text, "", "", False)


def _status(h: Handler, skipped: set[str]) -> str:
    if h.klass.convertible:
        return "skipped" if h.name in skipped else "ready"
    return h.klass.value


def _guarded(stage: str, call):
    """(result, "") or (None, "failed: ..."): a stage's failure must not cost
    the rest of the report; a missing tool, a bad tree or Ctrl-C still stop it."""
    try:
        return call(), ""
    except (SpatchError, ApplyError, ToolFailed) as e:
        log.warning("mmconvert: %s failed, the report goes without it: %s", stage,
                    str(e).splitlines()[0] if str(e) else type(e).__name__)
        return None, f"failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    except MmconvertError:
        raise
    except Exception as e:
        log.warning("mmconvert: %s failed, the report goes without it: %s", stage, e)
        return None, f"failed: {e}"


def build(gt: GitTree, api: ApiFacts, inv: Inventory, *,
          forwarders: tuple[ForwarderSite, ...] | None = None, forwarders_problem: str = "",
          forwarder_changes: list[Change] | None = None,
          fixes_problem: str = "",
          changes: list[Change] | None = None, skipped: tuple[Handler, ...] = (),
          diffs_problem: str = "", warnings: tuple[FileWarning, ...] = ()) -> Report:
    """The report's data from what the stages computed (None: not computed)."""
    root = gt.path
    src = _Sources(root)
    maint = Maintainers(root)

    def section_of(path: str) -> tuple[str, Section | None]:
        s = maint.section(path)
        return (s.name, s) if s else (subsystem_of(path), None)

    # Every change a handler's row shows: its conversion, and the library
    # twin (`foo_mmap_prepare` for `foo_mmap`) or fops switches that name it.
    known = {h.name for h in inv.handlers}
    change_of: dict[str, list[Change]] = collections.defaultdict(list)
    for ch in changes or ():
        if not ch.diff:
            continue
        names = set()
        for name in ch.handlers:
            if api.suffix and name.endswith(api.suffix) and name[:-len(api.suffix)] in known:
                name = name[:-len(api.suffix)]
            if name in known:
                names.add(name)
        for name in sorted(names):
            change_of[name].append(ch)
    skipped_names = {h.name for h in skipped}
    rows: list[Row] = []
    sections: dict[str, Section | None] = {}
    for h in inv.handlers:
        loc_src = h.definitions[0] if h.definitions else h.fops[0]
        sub, sec = section_of(h.subsystem_file)
        sections[sub] = sec
        chs = change_of.get(h.name, [])
        text = "".join(ch.diff if ch.diff.endswith("\n") else ch.diff + "\n" for ch in chs)
        rows.append(Row(
            handler=h, klass=h.klass.value, subsystem=sub,
            location=Site(loc_src.file, loc_src.line), code=src.code(h.reason),
            status=_status(h, skipped_names),
            diff=diff_lines(text), diff_text=text,
            diff_with=tuple(dict.fromkeys(n for ch in chs for n in ch.handlers
                                          if n in known and n != h.name)),
            changes=tuple(ch.title for ch in chs)))
    order = {k.value: i for i, k in enumerate(CLASS_ORDER)}
    rows.sort(key=lambda r: (order[r.klass], r.subsystem, r.location.file, r.name))

    counts = {k.value: 0 for k in CLASS_ORDER}
    for r in rows:
        counts[r.klass] += 1
    by_sub: dict[str, list[Row]] = collections.defaultdict(list)
    for r in rows:
        by_sub[r.subsystem].append(r)
    subsystems = []
    for name, rs in by_sub.items():
        c = {k.value: 0 for k in CLASS_ORDER}
        for r in rs:
            c[r.klass] += 1
        subsystems.append(SubsystemRow(
            name=name, section=sections.get(name), counts=c, total=len(rs),
            convertible=sum(1 for r in rs if r.convertible),
            files=tuple(sorted({r.location.file for r in rs}))))
    subsystems.sort(key=lambda s: (-s.total, s.name))

    fix_of: dict[tuple[str, str], Change] = {}
    for ch in forwarder_changes or ():
        for name in ch.handlers:
            for f in ch.files:
                fix_of.setdefault((f, name), ch)
    fwd_rows: list[ForwarderRow] | None = None
    fwd_counts: dict[str, int] = {}
    if forwarders is not None:
        fwd_rows = []
        for site in forwarders:
            fix = fix_of.get((site.file, site.function))
            fwd_rows.append(ForwarderRow(
                site=site, code=src.code(site), subsystem=section_of(site.file)[0],
                diff=diff_lines(fix.diff) if fix and fix.diff else (),
                diff_text=fix.diff if fix else ""))
        state_order = {s: i for i, s in enumerate(FORWARDER_STATES)}
        fwd_rows.sort(key=lambda fr: (state_order.get(fr.site.state, 99), fr.site.file,
                                      fr.site.line))
        for s in FORWARDER_STATES:
            fwd_counts[s] = sum(1 for fr in fwd_rows if fr.site.state == s)
        for fr in fwd_rows:
            if fr.site.state not in fwd_counts:
                fwd_counts[fr.site.state] = sum(1 for x in fwd_rows if x.site.state == fr.site.state)

    shown = {id(ch) for r in rows for ch in change_of.get(r.name, [])} | \
            {id(fix_of[(fr.site.file, fr.site.function)]) for fr in (fwd_rows or []) if fr.diff}
    other = [ch for ch in [*(forwarder_changes or ()), *(changes or ())]
             if ch.diff and id(ch) not in shown]

    convertible = sum(1 for r in rows if r.convertible)
    return Report(
        tree=inv.tree, tree_name=root.name, commit=gt.short(gt.head()), api=api,
        version=__version__, inventory=inv,
        classes=[k.value for k in CLASS_ORDER],
        convertible_classes=[k.value for k in CLASS_ORDER if k.convertible],
        counts=counts, total=len(rows), convertible=convertible,
        waiting=len(rows) - convertible,
        entries=len(inv.entries),
        null_entries=sum(1 for e in inv.entries if e.handler is None),
        macro_entries=sum(1 for e in inv.entries if e.form == "macro"),
        rows=rows, subsystems=subsystems,
        maintainers_source="MAINTAINERS" if maint.sections else "none",
        forwarders=fwd_rows, forwarder_counts=fwd_counts, forwarders_problem=forwarders_problem,
        fixes_problem="" if forwarder_changes is not None else (fixes_problem or "not-computed"),
        diffs_computed=changes is not None, diffs_problem=diffs_problem,
        diff_count=sum(1 for r in rows if r.diff),
        warnings=list(inv.warnings) + [w for w in warnings if w not in inv.warnings],
        other_changes=other)


def compute(tree: Path | str, api_name: str = "auto", *, jobs=None,
            timeout: int = spatch.DEFAULT_TIMEOUT, diffs: bool = True,
            progress=None) -> Report:
    """Run the stages the report needs on the tree (read only) and build it.
    Each stage plans against the unmodified tree, so a conversion's diff is
    shown as if the forwarder fixes were not there (they touch other code)."""
    s = pipeline.survey(tree, api_name, jobs=jobs, timeout=timeout, progress=progress,
                        guard=_guarded)
    gt, api = s.tree, s.api
    if s.inventory is None:
        # Every later stage needs spatch too: the page says why it is empty.
        log.warning("mmconvert: %s; the report is written without the spatch stages",
                    s.inventory_failed)
        problem = f"failed: {s.inventory_failed}"
        rep = build(gt, api, Inventory(str(gt.path), api, (), (), ()), forwarders_problem=problem,
                    fixes_problem=problem, diffs_problem=problem)
        return dataclasses.replace(rep, inventory_problem=problem)
    inv = s.inventory
    kw = {"jobs": jobs, "timeout": timeout, "cache": s.cache, "progress": progress}
    warnings: list[FileWarning] = []

    fwd, fwd_problem = s.forwarders, s.forwarders_problem
    fchanges, fixes_problem = None, "disabled" if not diffs else fwd_problem
    if fwd is not None and diffs:
        planned, fixes_problem = _guarded("forwarders",
                                          lambda: forwarders.plan(gt, api, fwd, **kw))
        if planned is not None:
            fchanges = list(planned[0])
            warnings += planned[1]

    changes = None
    skipped: tuple[Handler, ...] = ()
    diffs_problem = "disabled"
    if diffs:
        planned, diffs_problem = _guarded("convert", lambda: convert.plan(gt, api, inv, **kw))
        if planned is not None:
            changes, skipped = list(planned[0]), tuple(planned[1])
            warnings += planned[2]
    return build(gt, api, inv, forwarders=fwd, forwarders_problem=fwd_problem,
                 forwarder_changes=fchanges, fixes_problem=fixes_problem, changes=changes,
                 skipped=skipped, diffs_problem=diffs_problem, warnings=tuple(warnings))


# -- rendering -----------------------------------------------------------

def _md_cell(value) -> str:
    """Text that stays inside one markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_code(value) -> str:
    """An inline code span that survives backticks and table pipes."""
    text = str(value).replace("|", "\\|").replace("\n", " ")
    if not text:
        return ""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _person(value: str) -> dict[str, str]:
    """'Name <addr>' as its parts (a bare address is its own name)."""
    m = re.match(r"^\s*(.*?)\s*<([^>]+)>", str(value))  # a "(role)" after it is dropped
    if m:
        return {"name": m.group(1).strip('"') or m.group(2), "email": m.group(2)}
    text = str(value).strip()
    return {"name": text, "email": text if "@" in text and " " not in text else ""}


def _path_breaks(value: str) -> Markup:
    """A path that may wrap after its slashes rather than inside a name."""
    return Markup("/<wbr>").join(escape(part) for part in str(value).split("/"))


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(value).lower()).strip("-") or "x"


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        trim_blocks=True, lstrip_blocks=True)
    env.filters["md_cell"] = _md_cell
    env.filters["md_code"] = _md_code
    env.filters["slug"] = _slug
    env.filters["person"] = _person
    env.filters["path_breaks"] = _path_breaks
    env.filters["difflines"] = diff_lines
    return env


def render_html(report: Report) -> str:
    return _env().get_template("report.html.j2").render(r=report)


def render_markdown(report: Report) -> str:
    text = _env().get_template("report.md.j2").render(r=report)
    # Template blocks leave runs of blank lines; markdown wants at most one.
    # (Diff lines never are empty: context lines start with a space.)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def write_report(report: Report, html: Path | None, markdown: Path | None) -> list[Path]:
    texts = [(path, render(report)) for path, render in
             ((html, render_html), (markdown, render_markdown)) if path is not None]
    written = []
    for path, text in texts:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"{path}: cannot write the report: {e.strerror or e}") from None
        written.append(path)
    return written


# -- the command ---------------------------------------------------------

def run_report(tree: Path, *, output: Path | None, markdown: Path | None, api: str,
               diffs: bool, jobs: int | None, timeout: int) -> None:
    """`mmconvert report`: compute the report and write the files asked for."""
    def go():
        if output is None and markdown is None:
            raise UsageError("say where to write the report: -o FILE.html and/or "
                             "--markdown FILE.md")
        check_output_file(output, "-o")
        check_output_file(markdown, "--markdown")
        rep = compute(tree, api, jobs=jobs, timeout=timeout, diffs=diffs, progress=progress)
        return rep, write_report(rep, output, markdown)

    rep, written = run(go)
    for p in written:
        log.info("%s: %d handlers, %d convertible now", p, rep.total, rep.convertible)
