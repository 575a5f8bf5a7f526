"""The forwarders stage: code that forwards mmap to another file, tests
whether a file can be mapped by looking at .mmap, or prints the hook.

Once a file moves to the new hook its .mmap is NULL, so every such place has
to know about the new hook before any conversion lands.  Coccinelle finds
the places (cocci/forwarders_find.cocci.j2) and rewrites the ones that need
it (cocci/forwarders_patch.cocci.j2); this module picks the candidate files,
decides each place's state for the API generation, and groups the rewrites
into one Change per file.

What "needs it" means by generation:
- `call_mmap()` does not route (G1 proto): a forward that no check on every
  path protects gets a bailout for files with the new hook; a check that
  means "can this file be mapped" accepts either hook.
- `vfs_mmap()` routes (later G2, G3): call_mmap() and direct
  `X->f_op->mmap(X, ...)` calls become vfs_mmap(); "can be mapped" checks
  become can_mmap_file(); a call through a file_operations pointer that is
  not the file's own (drm_prime) still needs the bailout.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import logging
import re
from pathlib import Path

import jinja2

from . import prose, spatch
from .errors import UsageError
from .gitrepo import GitTree, pathspec_match
from .inventory import mmap_lines
from .model import ApiFacts, Change, FileWarning, ForwarderChange, ForwarderSite

log = logging.getLogger("mmconvert")

STAGE = "forwarders"
# What plan() can do to a site (ForwarderChange.action).
ACTIONS = ("bailout", "vfs_mmap", "can_mmap_file", "either")

# Functions whose job is to forward a mapping to the file they are given.
# Their callers forward too; whether that is safe is decided inside them.
VFS_HELPERS = ("call_mmap", "vfs_mmap")
HELPERS = (*VFS_HELPERS, "backing_file_mmap", "mmap_file")
# Where a helper's callers are: mmap_file() is mm/internal.h's, and
# userspace tools have functions of that name too.
HELPER_SCOPE = {"mmap_file": "mm/"}
# The hook's own plumbing in the headers: listed, never rewritten.
API_FUNCTIONS = frozenset({"call_mmap", "vfs_mmap", "can_mmap_file", "compat_vma_mmap",
                           "__compat_vma_mmap", "file_has_valid_mmap_hooks"})
# Where `#include <...>` is looked up when spatch needs the types of a member
# chain (x86 is the architecture the build checks use).
INCLUDE_ROOTS = ("include", "arch/x86/include", "include/uapi", "arch/x86/include/uapi")

# Candidate lines: among the lines that say "mmap" (one search for all the
# stages), the ones that match this.
CANDIDATE = re.compile(r"\b(?:can_mmap_file|" + "|".join(HELPERS) + r")\s*\(|->\s*mmap\b")
# Kernel code only: tools/ and scripts/ are userspace.
PATHSPECS = ("*.c", "*.h", ":(exclude)tools/*", ":(exclude)scripts/*",
             ":(exclude)Documentation/*", ":(exclude)samples/*")


# -- finding ---------------------------------------------------------------

def find(gt: GitTree, api: ApiFacts, *, jobs=None, timeout=spatch.DEFAULT_TIMEOUT, cache=None,
         progress=None) -> tuple[ForwarderSite, ...]:
    """Every forward, presence check and diagnostic in the tree, with the
    state it is in for `api`."""
    if not api.has_hook:
        raise UsageError("forwarders: the API has no new hook; choose one with --api")
    records, warnings = _find_records(gt, api, {"jobs": jobs, "timeout": timeout, "cache": cache,
                                                    "progress": progress})
    for w in warnings:
        log.warning("forwarders: %s: %s: %s", w.file, w.problem, w.detail)
    return tuple(_sites(gt, records, api))


def _find_rule(api: ApiFacts, type_headers: list[str] | tuple[str, ...] = ()) -> str:
    return spatch.render("forwarders_find", hook=api.hook, helpers=HELPERS,
                         type_headers=list(type_headers))


def _find_records(gt: GitTree, api: ApiFacts, kw: dict) -> tuple[list[dict], list[FileWarning]]:
    """The records of forwarders_find over the candidate files, typed where
    a member's type decides whether a ->mmap is a file_operations one."""
    hits = [h for h in mmap_lines(gt)
            if CANDIDATE.search(h[2]) and pathspec_match(h[0], PATHSPECS)]
    files = sorted({f for f, _, _ in hits})
    ids = gt.blob_ids(files)
    res = spatch.run(gt.path, _find_rule(api), files, blob_ids=ids, label="forwarders: find",
                     **kw)
    warnings = list(res.warnings)
    by_file: dict[str, list[dict]] = collections.defaultdict(list)
    for r in res.records:
        by_file[r["file"]].append(r)

    # A ->mmap() call or test through a member whose type spatch could not
    # see: if a header the file includes declares that member as a
    # file_operations pointer, ask spatch again with those headers' types.
    includes = _Includes(gt)
    typed_runs: list[tuple[str, str, str]] = []
    for f in sorted(by_file):
        by_file[f] = [r for r in by_file[f] if r["kind"] != "forward"
                      or f.startswith(HELPER_SCOPE.get(r["via"], ""))]
        unknown = _unknown(by_file[f])
        if not unknown:
            continue
        members = {r["member"] for r in unknown}
        if not any("file_operations" in includes.member_types(f, m) for m in members):
            by_file[f] = [r for r in by_file[f] if r["kind"] != "unknown"]
            continue
        chain = set()
        for r in unknown:
            chain |= set(re.findall(r"(?:->|\.)(\w+)", r["ops"]))
        declaring = includes.declaring(f, chain)
        rule = _find_rule(api, [str(gt.path / h) for h in declaring])
        # The rule names the headers in this worktree: it is cached by their
        # paths in the tree and their contents instead.
        rule_id = rule.replace(f"{gt.path}/", "") + "".join(
            f"\n{h} {i}" for h, i in sorted(gt.blob_ids(declaring).items()))
        typed_runs.append((f, rule, rule_id))

    def typed(run: tuple[str, str, str]) -> spatch.Result:
        f, rule, rule_id = run
        return spatch.run(gt.path, rule, [f], blob_ids={f: ids[f]}, rule_id=rule_id,
                          **{**kw, "progress": None, "jobs": 1}, label="forwarders: types")

    # One file each, with different headers: side by side, not one after another.
    workers = max(1, min(len(typed_runs), kw.get("jobs") or spatch.default_jobs()))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for (f, _, _), tres in zip(typed_runs, pool.map(typed, typed_runs), strict=False):
            warnings.extend(tres.warnings)
            by_file[f] = tres.records
            for r in _unknown(tres.records):
                if "file_operations" in includes.member_types(f, r["member"]):
                    warnings.append(FileWarning(f, "parse", f"line {r['line']}: could not tell "
                                                f"the type of {r['ops']}; not checked"))
    records = [r for f in sorted(by_file) for r in by_file[f] if r["kind"] != "unknown"]
    found = {(r["file"], r["line"]) for r in records}
    for f, n, _ in hits:
        for lo, hi in res.bad_regions.get(f, []):
            if lo <= n <= hi and (f, n) not in found:
                warnings.append(FileWarning(f, "parse", f"spatch could not parse lines "
                                            f"{lo}-{hi}: line {n} was not checked"))
                break
    return records, warnings


def _unknown(recs: list[dict]) -> list[dict]:
    """->mmap through a member of a type spatch did not know."""
    known = {(r["line"], r["col"]) for r in recs if r["kind"] == "typed"}
    return [r for r in recs if r["kind"] == "unknown" and (r["line"], r["col"]) not in known]


class _Includes:
    """The headers a file includes, recursively, as far as the source tree
    has them (generated headers are not there), and the members they
    declare."""

    def __init__(self, gt: GitTree):
        self.gt = gt
        self._direct: dict[str, tuple[str, ...]] = {}
        self._text: dict[str, str] = {}
        self._types: dict[tuple[str, str], list[str]] = {}

    def text(self, f: str) -> str:
        if f not in self._text:
            try:
                self._text[f] = self.gt.read_text(f)
            except OSError:
                self._text[f] = ""
        return self._text[f]

    def direct(self, f: str) -> tuple[str, ...]:
        if f not in self._direct:
            out = []
            for quote, name in re.findall(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', self.text(f),
                                          re.M):
                dirs = ([str(Path(f).parent)] if quote == '"' else []) + list(INCLUDE_ROOTS)
                for d in dirs:
                    p = str(Path(d, name))
                    p = re.sub(r"[^/]+/\.\./", "", p)
                    if self.gt.has_file(p):
                        out.append(p)
                        break
            self._direct[f] = tuple(out)
        return self._direct[f]

    def closure(self, f: str) -> list[str]:
        seen: dict[str, None] = {}
        todo = [f]
        while todo:
            for h in self.direct(todo.pop()):
                if h not in seen:
                    seen[h] = None
                    todo.append(h)
        return list(seen)

    _TYPE = re.compile(r"^\s*(?:const\s+)?(struct\s+\w+|\w+)(?:\s+const)?[\s*]*"
                       r"(?:(?:const|__rcu)\s+)*$")

    def _declared(self, h: str, member: str) -> list[str]:
        """Types of the members named `member` declared in h (asked again
        for every header of every candidate file: kept)."""
        if (h, member) in self._types:
            return self._types[h, member]
        text = self.text(h)
        out = []
        if member in text:
            for m in re.finditer(r"\b" + re.escape(member) + r"\s*(?:\[[^\]]*\])?\s*;", text):
                line = text[text.rfind("\n", 0, m.start()) + 1:m.start()]
                t = self._TYPE.match(line)
                if t:
                    out.append(" ".join(t.group(1).split()).removeprefix("struct "))
        self._types[h, member] = out
        return out

    def member_types(self, f: str, member: str) -> set[str]:
        """The types `member` is declared with in f and what it includes."""
        return {t for h in [f, *self.closure(f)] for t in self._declared(h, member)}

    def declaring(self, f: str, members: set[str]) -> list[str]:
        """The headers f includes that declare any of `members`."""
        return [h for h in self.closure(f) if any(self._declared(h, m) for m in members)]


# -- deciding ------------------------------------------------------------------

def _routes(api: ApiFacts) -> bool:
    """Does the tree's forwarding helper handle both hooks?"""
    return api.has_vfs_mmap


def _is_api_own(file: str, function: str) -> bool:
    return file.startswith("include/") and function in API_FUNCTIONS


def _is_core(file: str, function: str) -> bool:
    return file.startswith("mm/") or _is_api_own(file, function)


def _form(expression: str) -> tuple[str, bool]:
    """(via, same_file) of a forward as mmconvert quotes it: via is a helper
    name, "f_op" (X->f_op->mmap(...)) or "fops" (a file_operations pointer);
    same_file when an f_op call passes the file the f_op belongs to."""
    m = re.match(r"\s*(\w+)\s*\(", expression)
    if m and m.group(1) in HELPERS:
        return m.group(1), False
    m = re.match(r"(?s)(.*?)->\s*f_op\s*->\s*mmap\s*\(\s*([^,]*),", expression)
    if m:
        return "f_op", " ".join(m.group(1).split()) == " ".join(m.group(2).split())
    return "fops", False


def _forward_action(expression: str, guarded: bool, api: ApiFacts) -> str | None:
    via, same = _form(expression)
    if via in HELPERS[2:]:
        return None                      # decided inside the helper
    if _routes(api) and (via in VFS_HELPERS or same):
        return None if via == "vfs_mmap" else "vfs_mmap"
    if guarded:
        return None
    return "bailout"


def _check_action(expression: str, api: ApiFacts) -> str:
    if api.has_can_mmap_file and "->f_op->mmap" in expression.replace(" ", ""):
        return "can_mmap_file"
    return "either"


def _action(site: ForwarderSite, api: ApiFacts, include_core: bool) -> str | None:
    """What plan() does to a site, or None."""
    if site.state in ("safe", "handled", "listed"):
        return None
    if site.state == "core" and (not include_core or _is_api_own(site.file, site.function)):
        return None
    if site.kind == "forward":
        # A site in state core or needs-bailout is not guarded.
        return _forward_action(site.expression, False, api)
    if site.kind in ("presence-can-map", "presence-guard"):
        return _check_action(site.expression, api)
    return None                          # diagnostics are only listed


def _text(gt_root: Path, cache: dict, f: str, span) -> str:
    if f not in cache:
        cache[f] = (gt_root / f).read_text(errors="replace").splitlines()
    lines = cache[f]
    l0, c0, l1, c1 = span
    if l0 == l1:
        return lines[l0 - 1][c0:c1]
    parts = [lines[l0 - 1][c0:], *lines[l0:l1 - 1], lines[l1 - 1][:c1]]
    return " ".join(" ".join(p.split()) for p in parts)


def _dedupe(recs: list[dict], order: tuple[str, ...]) -> list[dict]:
    """One record per position: the same call or test matched by several
    rules (an f_op that spatch typed as file_operations too)."""
    best: dict[tuple[int, int], dict] = {}
    for r in recs:
        k = (r["line"], r["col"])
        if k not in best or order.index(r["via"]) < order.index(best[k]["via"]):
            best[k] = r
    return sorted(best.values(), key=lambda r: (r["line"], r["col"]))


def _dir(f: str) -> str:
    return f.rsplit("/", 1)[0] + "/"


def _reachable_hook(gt: GitTree, f: str, hook: str) -> bool:
    """Whether a file_operations the code beside `f` can reach (those under
    its directory) sets the new hook."""
    return bool(gt.grep_files([rf"\.{hook}\s*="], pathspecs=(_dir(f),), checkout=False))


def _has_bailout(root: Path, cache: dict, f: str, line: int, hook: str) -> bool:
    """Whether an `if (...->f_op-><hook>)` test stands just before the
    forward at `line`, in the same function."""
    if not hook:
        return False
    if f not in cache:
        cache[f] = (root / f).read_text(errors="replace").splitlines()
    lines = cache[f]
    for ln in reversed(lines[max(0, line - 12):line - 1]):
        if ln.startswith("{") or ln.startswith("}"):
            break
        if re.search(rf"\bif\s*\(.*->{re.escape(hook)}\b", ln):
            return True
    return False


def _sites(gt: GitTree, records: list[dict], api: ApiFacts) -> list[ForwarderSite]:
    by_file: dict[str, list[dict]] = collections.defaultdict(list)
    for r in records:
        by_file[r["file"]].append(r)
    texts: dict[str, list[str]] = {}
    pending: list[tuple[dict, str]] = []   # helper users, decided after the helpers
    out: list[ForwarderSite] = []
    helper_state: dict[str, list[ForwarderSite]] = collections.defaultdict(list)
    order_f = (*HELPERS, "f_op", "fops")
    order_p = ("f_op", "fops", "can_mmap_file")

    for f in sorted(by_file):
        recs = by_file[f]
        unguarded = {(r["line"], r["col"]) for r in recs if r["kind"] == "unguarded"}
        accepts = {(r["line"], r["col"]) for r in recs if r["kind"] == "accepts"}
        forwards = _dedupe([r for r in recs if r["kind"] == "forward"], order_f)
        checks = _dedupe([r for r in recs if r["kind"] == "presence"], order_p)
        fwd_fns = collections.defaultdict(list)
        for r in forwards:
            r["expression"] = _text(gt.path, texts, f, r["span"])
            fwd_fns[r["fn"]].append(r)
        for r in checks:
            if "span" in r:
                r["expression"] = _text(gt.path, texts, f, r["span"])

        for r in forwards:
            fn = r["fn"]
            guards = [c for c in checks if c["fn"] == fn and c["line"] <= r["line"]]
            if r["via"] in HELPERS[2:]:
                pending.append((r, f))
                continue
            guarded = (r["line"], r["col"]) not in unguarded
            action = _forward_action(r["expression"], guarded, api)
            state = {None: "safe", "bailout": "needs-bailout", "vfs_mmap": "rewrite"}[action]
            note = _forward_note(r, guards, guarded, action, api)
            if action == "bailout" and _routes(api) and _form(r["expression"])[0] == "fops" \
                    and not _reachable_hook(gt, f, api.hook):
                # A bailout no file could trigger is dead code, and a wrong
                # one would make mapping fail silently.
                state, note = "listed", (
                    f"calls ->mmap() through a file_operations pointer, and no "
                    f"file_operations under {_dir(f)} has .{api.hook}: nothing to change "
                    f"until one does")
            if action == "bailout" and _has_bailout(gt.path, texts, f, r["line"], api.hook):
                # mmconvert's own earlier run (or a person) put it there.
                state, note = "safe", f"already bails out for .{api.hook} files"
            site = _site(f, r, "forward", state, note)
            out.append(site)
            helper_state[fn].append(site)

        for c in checks:
            fn = c["fn"]
            key = (c["line"], c["col"])
            fwds = fwd_fns.get(fn, [])
            if c["via"] == "can_mmap_file":
                kind = "presence-guard" if fwds else "presence-can-map"
                out.append(_site(f, c, kind, "safe", "already uses can_mmap_file()"))
                continue
            if key in accepts:
                kind = "presence-guard" if fwds else "presence-can-map"
                out.append(_site(f, c, kind, "safe", f"already accepts .{api.hook}"))
                continue
            if fwds:
                routed = _routes(api) and all(
                    _forward_action(x["expression"], True, api) == "vfs_mmap" for x in fwds)
                lines = ", ".join(str(x["line"]) for x in fwds)
                if routed:
                    note = (f"the forward at line {lines} moves to vfs_mmap(), which handles "
                            f"both hooks: refuse only files that have neither")
                    out.append(_site(f, c, "presence-guard", "rewrite", note))
                else:
                    note = (f"guards the forward at line {lines}: keeps refusing files "
                            f"without .mmap")
                    out.append(_site(f, c, "presence-guard", "safe", note))
                continue
            note = (f"{fn}() does not pass the mapping on to this file; the check asks "
                    "whether it can be mapped at all, so either hook will do")
            out.append(_site(f, c, "presence-can-map", "rewrite", note))

        for d in (r for r in recs if r["kind"] == "diagnostic"):
            if (d["line"], d["col"]) in accepts:
                out.append(_site(f, d, "diagnostic", "safe", f"also prints .{api.hook}"))
            else:
                # A converted file's .mmap prints as NULL: less to read, no bug.
                state = "core" if _is_core(f, d["fn"]) else "safe"
                out.append(_site(f, d, "diagnostic", state,
                                 f"prints .mmap only (NULL for a file with .{api.hook}); "
                                 "listed, not rewritten"))

    # Callers of forwarding helpers (fuse passthrough and overlayfs through
    # backing_file_mmap(), the mm core through mmap_file()).
    for r, f in pending:
        inner = helper_state.get(r["via"], [])
        where = ", ".join(f"{s.file}:{s.line}" for s in inner) or "not found"
        if not inner:
            state, how = "safe", "whose forward mmconvert did not find"
        elif all(s.state == "safe" for s in inner):
            state, how = "safe", "which is safe"
        elif any(s.state == "core" for s in inner):
            state, how = "core", "which is left to the API patch [handled with --include-core]"
        else:
            state, how = "handled", "which mmconvert fixes there"
        out.append(_site(f, r, "forward", state, f"forwards through {r['via']}() ({where}), {how}"))
    return sorted(out, key=lambda s: (s.file, s.line, s.kind))


def _site(f: str, r: dict, kind: str, state: str, note: str) -> ForwarderSite:
    """A site; the mm core and the hook's own helpers are listed, and left
    alone unless --include-core (the API patch owns them)."""
    fn = r["fn"]
    core = _is_core(f, fn)
    if _is_api_own(f, fn):
        state, note = "core", "the hook's own helper (the API patch owns it)"
    elif core and state in ("needs-bailout", "rewrite"):
        state, note = "core", f"{note} [{state} with --include-core]"
    return ForwarderSite(f, r["line"], fn, kind, r.get("expression", ""), state, core, note)


def _forward_note(r: dict, guards: list[dict], guarded: bool, action: str | None,
                  api: ApiFacts) -> str:
    seen = "; ".join(f"{g['expression']} at line {g['line']}" for g in guards)
    if action == "vfs_mmap":
        return "vfs_mmap() handles both hooks"
    if r["via"] == "vfs_mmap" and _routes(api):
        return "vfs_mmap() handles both hooks"
    if guarded:
        return f"guarded on every path by {seen}" if seen else "guarded on every path"
    if seen:
        return f"{seen} does not cover every path to it"
    return "no check refuses a file without .mmap before it"


# -- planning ------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return prose.env()


def _prose(name: str, **ctx) -> str:
    return _templates().get_template(name).render(**ctx).strip()


def bailout_comment(function: str, hook: str) -> str:
    """The comment above a bailout (templates/bailout-comment.j2)."""
    return _prose("bailout-comment.j2", function=function, hook=hook)


def plan(gt: GitTree, api: ApiFacts, sites, *, include_core: bool = False, jobs=None,
         timeout=spatch.DEFAULT_TIMEOUT, cache=None, progress=None
         ) -> tuple[list[Change], list[FileWarning], list[tuple[str, str]]]:
    """The rewrites the sites need: one Change per file, the files spatch
    could not handle, and the semantic patches used."""
    if not api.has_hook:
        raise UsageError("forwarders: the API has no new hook; choose one with --api")
    todo = [(s, a) for s in sites if (a := _action(s, api, include_core))]
    cocci = [("forwarders_find", _find_rule(api))]
    if not todo:
        return [], [], cocci
    rows = []
    for i, (s, a) in enumerate(todo):
        via, _ = _form(s.expression) if s.kind == "forward" else ("", False)
        rows.append({"i": i, "file": s.file, "line": s.line, "function": s.function, "action": a, "via": via,
                         "expression": " ".join(s.expression.split()),
                         "site": repr((s.file, s.function, "".join(s.expression.split()))),
                         "comment": bailout_comment(s.function, api.hook)})
    actions = {a: any(r["action"] == a for r in rows) for a in ACTIONS}
    rule = spatch.render("forwarders_patch", hook=api.hook, sites=rows, actions=actions)
    cocci.append(("forwarders_patch", rule))
    files = sorted({s.file for s, _ in todo})
    res = spatch.run(gt.path, rule, files, blob_ids=gt.blob_ids(files), patch=True, jobs=jobs,
                     timeout=timeout, cache=cache, progress=progress,
                     label="forwarders: rewrite")
    warnings = list(res.warnings)
    applied = {r["site"] for r in res.records if r["kind"] == "applied"}
    changes = []
    for f in files:
        done = [(rows[i], s) for i, (s, _) in enumerate(todo) if s.file == f and i in applied]
        for i, (s, a) in enumerate(todo):
            if s.file == f and i not in applied:
                warnings.append(FileWarning(f, "unsupported", f"{s.function}() line {s.line}: "
                                            f"{s.expression}: no {a} rule matched this form; "
                                            "left unchanged"))
        if not done or f not in res.diffs:
            continue
        fns = tuple(dict.fromkeys(r["function"] for r, _ in done))
        details = tuple(_detail(r, s, sites) for r, s in done)
        changes.append(Change(STAGE, _title(done, api), fns, (f,), res.diffs[f], details))
    return changes, warnings, cocci


def _detail(row: dict, s: ForwarderSite, sites) -> ForwarderChange:
    guards = [g for g in sites if g.file == s.file and g.function == s.function
              and g.kind == "presence-guard"]
    return ForwarderChange(
        kind=s.kind, file=s.file, function=s.function, line=s.line,
        expression=" ".join(s.expression.split()), action=row["action"],
        state=s.state, core=s.core, note=s.note,
        already_guarded=s.kind == "forward" and row["action"] != "bailout",
        guards=tuple(f"{g.expression} (line {g.line})" for g in guards),
        comment=row["comment"] if row["action"] == "bailout" else "")


def _title(done: list[tuple[dict, ForwarderSite]], api: ApiFacts) -> str:
    by_action: dict[str, list[str]] = {a: [] for a in ACTIONS}
    for r, s in done:
        if s.function not in by_action[r["action"]]:
            by_action[r["action"]].append(s.function)
    return _prose("title-forwarders.j2", by_action=by_action, hook=api.hook,
                  file=Path(done[0][1].file).name)


# -- text ----------------------------------------------------------------------

STATE_ORDER = ("needs-bailout", "rewrite", "listed", "handled", "safe", "core")


def sites_text(sites) -> str:
    """The forwarders section of `mmconvert scan`: one line per site, the
    guards that were already there under it."""
    sites = list(sites)
    counts = collections.Counter(s.state for s in sites)
    head = ", ".join(f"{counts[s]} {s}" for s in STATE_ORDER if counts[s])
    out = [f"forwarders and .mmap checks: {len(sites)} places" + (f" ({head})" if head else "")]
    if not sites:
        return out[0]
    width = max(len(f"{s.file}:{s.line}") for s in sites)
    fw = max(len(s.function) for s in sites)
    for s in sorted(sites, key=lambda s: (STATE_ORDER.index(s.state)
                                          if s.state in STATE_ORDER else 99, s.file, s.line)):
        out.append(f"  {s.file + ':' + str(s.line):{width}}  {s.function:{fw}}  "
                   f"{s.kind:16} {s.state:13} {' '.join(s.expression.split())}")
        if s.note:
            out.append(f"  {'':{width}}  {'':{fw}}  {s.note}")
    return "\n".join(out)
