"""The inventory: every struct file_operations .mmap entry, its handler,
the handler's definitions and references, and its class.

Coccinelle finds the entries and the definitions (cocci/find_*.cocci.j2);
git grep finds the candidate files first and the references of the
handlers; `classify` decides each handler's class.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
from dataclasses import dataclass

from . import follow, spatch
from .classify import Body, classify_body, function_span
from .gitrepo import GitTree
from .model import ApiFacts, Definition, FileWarning, FopsEntry, Handler, Inventory, Klass, Reference, Site

_MMAP_INIT = re.compile(r"\.mmap\s*=")


_FOPS_WORD = re.compile(r"\bfile_operations\b")
_TAG = re.compile(r"\b(?:struct|union|enum)\s+\w+")


def _searched_lines(gt: GitTree) -> list[tuple[str, int, str]]:
    """The one search of the tree the stages share (a series worktree makes
    it once): lines that say "mmap" or "file_operations".  On 7.3 both
    patterns take git grep 0.69 s, one 0.66 s, two searches 1.25 s."""
    return gt.grep_lines(["mmap", "file_operations"], fixed=True, checkout=False)


def mmap_lines(gt: GitTree, lines: list[tuple[str, int, str]] | None = None
               ) -> list[tuple[str, int, str]]:
    """Every line of C that says "mmap": the .mmap initialisers, the
    forwarders and most handler names are all among them."""
    return [h for h in (_searched_lines(gt) if lines is None else lines) if "mmap" in h[2]]


def fops_files(lines: list[tuple[str, int, str]]) -> set[str]:
    """The files that name struct file_operations."""
    return {f for f, _, text in lines if _FOPS_WORD.search(text)}


def _named(names: list[str]) -> re.Pattern:
    """Any of `names` as a word."""
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, names)) + r")(?!\w)")


def grep_names(gt: GitTree, names: list[str],
               lines: list[tuple[str, int, str]] | None = None) -> list[tuple[str, int, str]]:
    """Lines that name any of `names` (as a word).  git grep slows down with
    every pattern (101 handler names: 7 s on 7.3, against 1 s for one), and
    nearly every mmap handler's name contains "mmap": those are looked for
    in the lines that say "mmap" (`lines`: the caller's search, if made)."""
    common = [n for n in names if "mmap" in n]
    rest = [n for n in names if "mmap" not in n]
    hits = set(gt.grep_lines(rest, fixed=True, words=True))
    if common:
        word = _named(common)
        found = [h for h in mmap_lines(gt, lines) if word.search(h[2])]
        gt.ensure([f for f, _, _ in found])
        hits.update(found)
    return sorted(hits)


def grep_mmap_inits(gt: GitTree, lines: list[tuple[str, int, str]] | None = None
                    ) -> list[tuple[str, int, str]]:
    """Lines that set `.mmap =`."""
    return [h for h in mmap_lines(gt, lines) if _MMAP_INIT.search(h[2])]


@dataclass(frozen=True)
class FopsMacro:
    """A macro that puts `.mmap = handler` into a struct file_operations."""

    name: str
    file: str
    line: int
    handler: str | None
    declarer: bool      # DEFINE_X(name) declares the struct; else a field list


def _macro_at(lines: list[str], line: int) -> tuple[str, int, str] | None:
    """The #define whose continuation lines hold line `line` (1-based)."""
    i = line - 1
    while i > 0 and lines[i - 1].rstrip().endswith("\\") and not lines[i].lstrip().startswith("#define"):
        i -= 1
    m = re.match(r"\s*#\s*define\s+(\w+)", lines[i])
    if not m:
        return None
    body, j = [], i
    while j < len(lines):
        body.append(lines[j])
        if not lines[j].rstrip().endswith("\\"):
            break
        j += 1
    return m.group(1), i + 1, "\n".join(body)


def find_fops_macros(gt: GitTree, inits: list[tuple[str, int, str]] | None = None
                     ) -> tuple[list[FopsMacro], list[tuple[str, int, str]]]:
    """Macros whose expansion sets a file_operations .mmap, directly or
    through another such macro (DEFINE_DRM_GEM_FOPS -> DRM_GEM_FOPS), and the
    lines that name them.  `inits` is the caller's list of `.mmap =` lines
    (one walk of a kernel tree is seconds; it is not done twice)."""
    found: dict[str, FopsMacro] = {}
    texts: dict[str, list[str]] = {}

    def lines_of(f: str) -> list[str]:
        if f not in texts:
            texts[f] = gt.read_text(f).splitlines()
        return texts[f]

    # A `.mmap =` line belongs to a macro when it or the line before it
    # continues a #define (the last line of a macro has no backslash).
    frontier = [(f, n) for f, n, _ in (grep_mmap_inits(gt) if inits is None else inits)
                if _continued(lines_of(f), n)]
    uses: list[tuple[str, int, str]] = []
    tried: set[tuple[str, int]] = set()   # the #defines looked at
    names_done: set[str] = set()
    while frontier:
        for f, n in frontier:
            m = _macro_at(lines_of(f), n)
            if not m or (f, m[1]) in tried:
                continue
            tried.add((f, m[1]))
            name, line, body = m
            if name in found:
                continue
            structs = re.findall(r"struct\s+(\w+)\s+\w+\s*(?:\[[^]]*\])?\s*=", body)
            if structs and structs != ["file_operations"]:
                continue  # a bin_attribute or other ops table
            h = re.search(r"\.mmap\s*=\s*(\w+)", body)
            handler = h.group(1) if h else None
            if handler is None:
                inner = [found[x].handler for x in found if re.search(rf"\b{x}\b", body)]
                handler = inner[0] if inner else None
            found[name] = FopsMacro(name, f, line, handler,
                                    declarer="file_operations" in body)
        new = [x for x in found if x not in names_done]
        # A macro wrapping one just found is mostly defined beside it
        # (DEFINE_DRM_GEM_FOPS after DRM_GEM_FOPS): the files that define
        # the new ones are looked at first, so the tree is searched once for
        # the names of all levels they hold, not once per level.
        if not new:
            break
        word = _named(new)
        homes = sorted({found[x].file for x in new})
        frontier = [(f, n) for f in homes for n, text in enumerate(texts[f], 1)
                    if word.search(text) and _continued(texts[f], n)
                    and (f, (_macro_at(texts[f], n) or ("", 0))[1]) not in tried]
        if frontier:
            continue
        names_done.update(new)
        if new:
            hits = gt.grep_lines(new, fixed=True, words=True)
            uses += hits
            frontier = [(f, n) for f, n, _ in hits if _continued(lines_of(f), n)]
    return sorted(found.values(), key=lambda m: m.name), sorted(uses)


def _continued(lines: list[str], n: int) -> bool:
    """Whether line `n` (1-based) is part of a #define's continuation."""
    return lines[n - 1].rstrip().endswith("\\") or (n > 1 and lines[n - 2].rstrip().endswith("\\"))


def _declared_fops(uses: list[tuple[str, int, str]], macros: list[FopsMacro],
                   spatched: set[str]) -> tuple[list[FopsEntry], set[str]]:
    """The fops of files that only say `DEFINE_DRM_GEM_FOPS(name);` (80 DRM
    drivers on 7.3), read from that line: spatch would parse each whole
    driver for it.  Returns those entries and the macro-using files that
    still need spatch (a field macro, or a use the line does not settle)."""
    declarers = {m.name: m for m in macros if m.declarer}
    use = re.compile(r"^\s*(?:static\s+)?(\w+)\s*\(\s*(\w+)\s*\)\s*;\s*$")
    by_file: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
    for f, n, text in uses:
        by_file[f].append((n, text))
    entries, rest = [], set()
    for f, lines in by_file.items():
        if f in spatched:
            continue
        found = [(n, m) for n, text in lines if (m := use.match(text))]
        if len(found) == len(lines) and all(m.group(1) in declarers for _, m in found):
            entries += [FopsEntry(f, n, m.group(2), declarers[m.group(1)].handler, "macro",
                                  m.group(1)) for n, m in found]
        else:
            rest.add(f)
    return entries, rest


def _definition(gt: GitTree, rec: dict, cache: dict[str, list[str]]) -> Definition:
    f = rec["file"]
    if f not in cache:
        cache[f] = gt.read_text(f).splitlines()
    lines = cache[f]
    _, end = function_span(lines, rec["line"])
    head = " ".join(lines[max(0, rec["line"] - 2):rec["line"]])
    cur = lines[rec["line"] - 1]
    static = bool(re.search(r"\bstatic\b", cur) or
                  (not re.search(r"[;{}]\s*$", lines[rec["line"] - 2] if rec["line"] > 1 else ";")
                   and re.search(r"\bstatic\b", head)))
    return Definition(f, rec["line"], end, rec["file_param"], rec["vma_param"], static,
                      _condition(lines, rec["line"]))


def _condition(lines: list[str], line: int) -> str:
    """The innermost open #if/#ifdef/#else at `line`, as written."""
    stack: list[str] = []
    for text in lines[:line - 1]:
        s = text.strip()
        if re.match(r"#\s*if", s):
            stack.append(s)
        elif re.match(r"#\s*el", s) and stack:
            stack[-1] = f"{stack[-1]} / {s}"
        elif re.match(r"#\s*endif", s) and stack:
            stack.pop()
    # The include guard is not a condition a reader cares about.
    stack = [c for c in stack if not re.match(r"#\s*ifndef\s+_\w*_H_*$", c)]
    return stack[-1] if stack else ""


def _ref_kind(text: str, name: str) -> str:
    s = text.strip()
    if re.match(rf"EXPORT_SYMBOL\w*\(\s*{name}\s*\)", s):
        return "export"
    if re.match(r"#\s*define\b", s):
        return "define"
    if s.startswith("*") or s.startswith("/*"):
        # `* name - summary`, or the name alone on a kernel-doc's first line.
        return "kernel-doc" if re.match(rf"\*+\s*{name}(\(\))?(\s+-|\s*$)", s) else "comment"
    if re.search(rf"\.\w+\s*=\s*{name}\b", s):
        return "initialiser"
    if re.search(rf"\b{name}\s*\(", s):
        return "call"
    return "use"


def scan(gt: GitTree, api: ApiFacts, *, jobs: int | None = None,
         timeout: int = spatch.DEFAULT_TIMEOUT, cache: spatch.Cache | None = None,
         progress=None) -> Inventory:
    root = gt.path
    searched = _searched_lines(gt)
    inits = grep_mmap_inits(gt, searched)
    macros, macro_uses = find_fops_macros(gt, inits)
    by_macro = {m.name: m for m in macros}
    # A `.mmap =` in a file that never names struct file_operations sets
    # some other ops table (dma_buf_ops, fb_ops, ...): spatch need not read
    # those 190 files of 7.3.
    typed = fops_files(searched)
    literal = {f for f, _, _ in inits if f in typed}
    declared, macro_files = _declared_fops(macro_uses, macros, literal)
    cand = sorted(literal | macro_files)
    blobs = gt.blob_ids(cand)
    rule = spatch.render("find_fops",
                         field_macros=[m.name for m in macros if not m.declarer],
                         declarer_macros=[m.name for m in macros if m.declarer])
    res = spatch.run(root, rule, cand, blob_ids=blobs, jobs=jobs, timeout=timeout,
                     cache=cache, progress=progress, label="inventory: entries")
    warnings = list(res.warnings)

    entries: dict[tuple[str, int], FopsEntry] = {(e.file, e.line): e for e in declared}
    for r in res.records:
        if r["kind"] == "entry":
            h = None if r["handler"] == "NULL" else r["handler"]
            e = FopsEntry(r["file"], r["line"], r["fops"], h, r["form"])
        elif r["kind"] == "macro-use":
            m = by_macro[r["macro"]]
            e = FopsEntry(r["file"], r["line"], r["fops"], m.handler, "macro", m.name)
        else:
            continue
        entries[(e.file, e.line)] = e
    in_macro = {(m.file, n) for m in macros for n in range(m.line, m.line + 60)}
    for f, n, text in inits:
        if (f, n) in entries or ((f, n) in in_macro and text.rstrip().endswith("\\")):
            continue
        regions = [r for r in res.bad_regions.get(f, []) if r[0] <= n <= r[1]]
        if regions and not any(m.file == f and m.line <= n <= m.line + 60 for m in macros):
            lo, hi = min(r[0] for r in regions), max(r[1] for r in regions)
            warnings.append(FileWarning(f, "parse", f"spatch could not parse lines "
                                        f"{lo}-{hi}: the .mmap at line {n} was not checked"))
    entry_list = sorted(entries.values(), key=lambda e: (e.file, e.line))

    names = sorted({e.handler for e in entry_list if e.handler})
    handlers: list[Handler] = []
    if names:
        ref_lines = grep_names(gt, names, searched)
        hfiles = sorted({f for f, _, _ in ref_lines})
        # The entries pass found the definitions and prototypes in its files;
        # a file that names a handler only as a type (`struct privcmd_mmap`,
        # tools/perf's `struct perf_mmap`) has none.
        read = set(cand)
        named = _named(names)
        rest = sorted({f for f, _, text in ref_lines if f not in read
                       and named.search(_TAG.sub("", text))})
        hres = spatch.run(root, spatch.render("find_handlers", handlers=names), rest,
                          blob_ids=gt.blob_ids(rest), jobs=jobs, timeout=timeout,
                          cache=cache, progress=progress, label="inventory: handlers")
        warnings.extend(hres.warnings)
        wanted, seen = set(names), read.intersection(hfiles)
        hres.records += [r for r in res.records if r["kind"] in ("definition", "prototype")
                         and r["handler"] in wanted and r["file"] in seen]
        hres.bad_regions.update((f, res.bad_regions[f]) for f in seen if f in res.bad_regions)
        handlers = _handlers(gt, api, names, entry_list, macros, ref_lines, hres, warnings)
        handlers = hold_helper_callers(gt, hold_swapped(gt, handlers, entry_list))
    return Inventory(str(root), api, tuple(entry_list), tuple(handlers),
                     tuple(sorted(set(warnings), key=lambda w: (w.file, w.detail))))


_SWAP = (r"f_op\s*=\s*&\s*\w+\s*;", r"replace_fops\s*\([^,;]+,\s*&\s*\w+\s*\)")


def hold_swapped(gt: GitTree, handlers: list[Handler], entries: list[FopsEntry]) -> list[Handler]:
    """A fops put in a live file's place at run time (`file->f_op = &x;`,
    `replace_fops(file, &x)`: ALSA's disconnect, a tty hangup) must have the
    same hook as the fops it stands in for, or a mapping racing with the
    swap calls a hook the file no longer has.  Its handler and the handlers
    of every fops under the swapping code's directory convert together or
    not at all: when one of them cannot, the others are held back too."""
    by_fops = collections.defaultdict(list)
    for e in entries:
        by_fops[e.fops].append(e)
    by_name = {h.name: h for h in handlers}
    held: dict[str, tuple[Site, str]] = {}
    for f, n, text in gt.grep_lines(list(_SWAP), pathspecs=("*.c",), checkout=False):
        stand_in = re.search(r"&\s*(\w+)\s*(?:;|\))\s*$", re.sub(r"/\*.*?\*/|//.*", "", text))
        if not stand_in:
            continue
        x = stand_in.group(1)
        mine = [by_name[e.handler] for e in by_fops.get(x, ()) if e.handler in by_name]
        if not mine:
            continue
        where = f.rsplit("/", 1)[0] + "/"
        group = {h.name: h for h in handlers
                 if any(e.file.startswith(where) for e in h.fops)} | {h.name: h for h in mine}
        stuck = sorted(h.name for h in group.values() if not h.klass.convertible)
        if not stuck:
            continue
        site = Site(f, n, text.strip())
        for h in group.values():
            if h.klass.convertible and h.name not in held:
                held[h.name] = (site, f"{x} is swapped in for the f_op of live files under "
                                      f"{where}: their handlers convert together, and "
                                      f"{', '.join(s + '()' for s in stuck)} cannot")
    return [dataclasses.replace(h, klass=Klass.NEEDS_VMA, reason=held[h.name][0],
                                notes=(held[h.name][1],)) if h.name in held else h
            for h in handlers]


def hold_helper_callers(gt: GitTree, handlers: list[Handler]) -> list[Handler]:
    """A helper that takes the descriptor with its handlers must have no
    user keeping a vma: every line of the tree naming it is its definition,
    a prototype, a comment or a call inside a function converted with it.
    Otherwise the handlers that need it keep the vma, named at that line
    (a descriptor twin beside the helper is not made yet)."""
    names = sorted({x.name for h in handlers if h.klass.convertible for x in h.helpers})
    if not names:
        return handlers
    hits = gt.grep_lines(names, fixed=True, words=True, checkout=False)
    lines = {f: gt.read_text(f).splitlines() for f in {f for f, _, _ in hits}}
    spans = {}
    for h in handlers:
        for x in h.helpers:
            if (x.file, x.line) not in spans:
                lines.setdefault(x.file, gt.read_text(x.file).splitlines())
                spans[(x.file, x.line)] = function_span(lines[x.file], x.line)[1]
    held: dict[str, tuple[Site, str]] = {}
    while True:
        # Functions that take the descriptor: converting handlers (not
        # those whose original stays beside a twin) and their helpers.
        taking = [h for h in handlers if h.klass in (Klass.FIELDS, Klass.ACTION)
                  and not h.needs_twin and h.key not in held]
        inside = [(d.file, d.line, d.end_line) for h in taking for d in h.definitions] + [
            (x.file, x.line, spans[(x.file, x.line)]) for h in taking for x in h.helpers]
        before = len(held)
        for h in handlers:
            if not h.helpers or not h.klass.convertible or h.key in held:
                continue
            for x in h.helpers:
                why = None
                if h not in taking:
                    why = (Site(h.subsystem_file, h.definitions[0].line, h.name),
                           f"{x.name}() ({x.file}:{x.line}) takes its vma, and {h.name}() "
                           "itself stays as it is for its other users")
                static = x.file.endswith(".c") and follow.is_static(lines[x.file], x.line)
                for f, n, text in hits if why is None else ():
                    code = text.strip()
                    if (static and f != x.file) or not re.search(rf"\b{re.escape(x.name)}\b", text) or \
                            any(f == a and lo <= n <= hi for a, lo, hi in inside) or \
                            code.startswith(("*", "/*", "//")) or \
                            _declares(lines[f], n, x.name):
                        continue
                    why = (Site(f, n, code), f"{x.name}() ({x.file}:{x.line}) is also used "
                           "here, with a vma: converting it with a twin is not done yet")
                    break
                if why is not None:
                    held[h.key] = why
                    break
        if len(held) == before:
            break
    out = []
    for h in handlers:
        if h.key in held:
            out.append(dataclasses.replace(h, klass=Klass.NEEDS_VMA, reason=held[h.key][0],
                                           notes=(held[h.key][1],), helpers=()))
        elif h.helpers:
            out.append(dataclasses.replace(h, helpers=tuple(dataclasses.replace(
                x, end_line=spans[(x.file, x.line)],
                prototypes=tuple(sorted({f for f, n, _ in hits if f in lines
                                         and _declares(lines[f], n, x.name)}))) for x in h.helpers)))
        else:
            out.append(h)
    return out


def _declares(lines: list[str], n: int, name: str) -> bool:
    """Whether line n (1-based) starts a prototype of `name`: a type and
    the name at the start of a line, and no body (function_span finds `;`
    before any `{`)."""
    if not re.match(rf"^(?:[A-Za-z_][\w\s\*]*?[\s\*])?{re.escape(name)}\s*\(", lines[n - 1]):
        return False
    try:
        function_span(lines, n)
    except ValueError:
        return True
    return False


def _handlers(gt, api, names, entries, macros, ref_lines, hres, warnings) -> list[Handler]:
    texts: dict[str, list[str]] = {}
    defs: dict[str, list[Definition]] = collections.defaultdict(list)
    protos: set[tuple[str, int]] = set()
    for r in hres.records:
        if r["kind"] == "definition":
            try:
                defs[r["handler"]].append(_definition(gt, r, texts))
            except ValueError:
                warnings.append(FileWarning(r["file"], "parse",
                                            f"no body found for {r['handler']} at line {r['line']}"))
        elif r["kind"] == "prototype":
            protos.add((r["file"], r["line"]))
    entry_at = {(e.file, e.line) for e in entries}
    bad_lines = {(f, n) for f, n, _ in ref_lines
                 for lo, hi in hres.bad_regions.get(f, []) if lo <= n <= hi}
    macro_at = {(m.file, m.line) for m in macros}
    lookup = follow.Tree(gt)
    out = []
    for name in names:
        ds = tuple(sorted(set(defs.get(name, [])), key=lambda d: (d.file, d.line)))
        fops = tuple(e for e in entries if e.handler == name)
        def_at = {(d.file, d.line) for d in ds}
        refs = []
        for f, n, text in ref_lines:
            # `struct privcmd_mmap` is a type that shares the name; a message
            # that prints the name ("orangefs_file_mmap: called") is no use.
            bare = re.sub(rf"\b(?:struct|union|enum)\s+{re.escape(name)}\b", "",
                          re.sub(r'"(?:\\.|[^"\\])*"', '""', text))
            if not re.search(rf"\b{re.escape(name)}\b", bare) or (f, n) in def_at \
                    or (f, n) in entry_at:
                continue
            if (f, n) in protos:
                kind = "prototype"
            elif any(mf == f and ml <= n <= ml + 40 for mf, ml in macro_at) and text.rstrip().endswith("\\"):
                kind = "fops-macro"
            else:
                kind = _ref_kind(text, name)
            if kind == "comment" and not re.search(rf"\b{re.escape(name)}\(\)", text):
                continue
            refs.append(Reference(f, n, kind, text.strip()))
        for ds_, fops_, refs_ in _split_statics(ds, fops, refs):
            h = _classify(gt, api, name, ds_, fops_, tuple(refs_), texts, bad_lines, lookup)
            if "spatch could not parse its definition" in h.notes:
                warnings.append(FileWarning(h.reason.file, "parse", f"spatch could not parse "
                                            f"the definition of {name} at line {h.reason.line}"))
            out.append(h)
    return out


def _split_statics(ds, fops, refs):
    """Functions of one name defined in different files (afu_mmap in
    dfl-afu, cxl, ocxl and cxlflash) are different handlers: each keeps the
    fops and references nearest to it."""
    files = sorted({d.file for d in ds})
    if len(files) < 2 or any(f.endswith(".h") for f in files):
        return [(ds, fops, refs)]

    def home(path: str) -> str:
        # The definition file sharing the longest directory prefix.
        return max(files, key=lambda f: len(os.path.commonpath([f, path])))
    return [(tuple(d for d in ds if d.file == f),
             tuple(e for e in fops if home(e.file) == f),
             [r for r in refs if home(r.file) == f]) for f in files]


def _classify(gt, api, name, ds, fops, refs, texts, bad_lines, lookup) -> Handler:
    exported = any(r.kind == "export" for r in refs)
    linkage = "exported" if exported else ("static" if ds and all(d.static for d in ds) else "global")
    if not ds:
        where = fops[0]
        why = "no definition with (struct file *, struct vm_area_struct *) found"
        unparsed = [r for r in refs if r.kind == "call" and (r.file, r.line) in bad_lines]
        if unparsed:
            where = unparsed[0]
            why = "spatch could not parse its definition"
        return Handler(name, Klass.UNCLEAR, Site(where.file, where.line, f".mmap = {name}"
                                                 if not unparsed else where.text),
                       ds, fops, refs, linkage, (why,))
    verdicts = []
    for d in ds:
        lines = texts.get(d.file) or gt.read_text(d.file).splitlines()
        texts[d.file] = lines
        open_line, end = function_span(lines, d.line)
        src = "\n".join(lines[open_line - 1:end])
        body = Body(src[src.index("{"):], open_line, d.vma_param, d.file_param,
                    "\n".join(lines[d.line - 1:open_line]))
        verdicts.append((classify_body(body, d.file, api, lookup), body))
    order = [Klass.FORWARDER, Klass.DISPATCHER, Klass.NEEDS_VMA, Klass.UNCLEAR, Klass.ACTION,
             Klass.FIELDS]
    verdict, body = min(verdicts, key=lambda vb: order.index(vb[0].klass))
    klass, site, notes = verdict.klass, verdict.site, list(verdict.notes)
    only_wraps = None
    if klass in (Klass.FIELDS, Klass.ACTION):
        only_wraps = _only_wraps_library(body)
        other_files = sorted({e.file for e in fops} - {d.file for d in ds})
        if only_wraps:
            klass, site = Klass.LIBRARY, Site(ds[0].file, ds[0].line, only_wraps)
            notes.append("only wraps a library helper")
        elif exported or other_files:
            klass = Klass.LIBRARY
            notes.append("shared helper: " + ("exported" if exported else
                                               f"used by fops in {', '.join(other_files)}"))
    needs_twin = any(r.kind in ("call", "initialiser", "use") for r in refs)
    if needs_twin:
        notes.append("still used as an mmap function elsewhere: needs a twin")
    return Handler(name, klass, site, ds, fops, refs, linkage, tuple(notes), verdict.via,
                   needs_twin=needs_twin,
                   wraps_library=only_wraps.split()[1].split("(")[0]
                   if klass == Klass.LIBRARY and only_wraps else "",
                   mapping_checked=klass == Klass.ACTION and verdict.mapping_ends == "if",
                   helpers=tuple(dict.fromkeys(x for v, _ in verdicts for x in v.helpers))
                   if klass.convertible else (),
                   opens=verdict.opens if klass in (Klass.FIELDS, Klass.ACTION) else None)


def _only_wraps_library(body: Body) -> str | None:
    """`return generic_file_mmap(file, vma);` as the whole body."""
    t = [x.text for x in body.toks]
    if len(t) == 10 and t[:2] == ["{", "return"] and t[2] in ("generic_file_mmap",
                                                            "generic_file_readonly_mmap") \
            and t[3:] == ["(", body.file, ",", body.vma, ")", ";", "}"]:
        return body.text(1, 8)
    return None


def locate(gt: GitTree, names: list[str], *, jobs=None, timeout=spatch.DEFAULT_TIMEOUT,
           cache=None, progress=None) -> tuple[dict[str, list[Definition]], list[Reference]]:
    """Definitions and prototypes of functions no fops names (the library
    helpers that get twins)."""
    if not names:
        return {}, []
    ref_lines = grep_names(gt, names)
    files = sorted({f for f, _, _ in ref_lines})
    res = spatch.run(gt.path, spatch.render("find_handlers", handlers=names), files,
                     blob_ids=gt.blob_ids(files), jobs=jobs, timeout=timeout, cache=cache,
                     progress=progress, label="convert: library helpers")
    texts: dict[str, list[str]] = {}
    defs: dict[str, list[Definition]] = collections.defaultdict(list)
    refs = []
    for r in res.records:
        if r["kind"] == "definition":
            defs[r["handler"]].append(_definition(gt, r, texts))
        elif r["kind"] == "prototype":
            refs.append(Reference(r["file"], r["line"], "prototype", r["handler"]))
    for f, n, text in ref_lines:
        for name in names:
            if re.match(rf"\s*EXPORT_SYMBOL\w*\(\s*{name}\s*\)", text):
                refs.append(Reference(f, n, "export", name))
    return dict(defs), refs


def classify_named(gt: GitTree, api: ApiFacts, names: list[str], entries: list[FopsEntry],
                   ref_lines: list[tuple[str, int, str]], res: spatch.Result
                   ) -> tuple[list[Handler], list[FileWarning]]:
    """Scan's handlers and classes for `names`, from a pass over part of
    the tree (`mmconvert check` reads only the files a patch touched and
    the files that name its handlers): `entries` are the fops found there,
    `ref_lines` every line of the tree naming one of `names`, `res` the
    find_fops records (definitions, prototypes) and unparsed regions."""
    wanted = set(names)
    hres = spatch.Result(records=[r for r in res.records
                                  if r["kind"] in ("definition", "prototype")
                                  and r["handler"] in wanted],
                         bad_regions=dict(res.bad_regions))
    warnings: list[FileWarning] = []
    handlers = _handlers(gt, api, sorted(wanted), entries, [], ref_lines, hres, warnings)
    return hold_helper_callers(gt, hold_swapped(gt, handlers, entries)), warnings
