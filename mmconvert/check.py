"""`mmconvert check`: does a patch add a new user of the deprecated `.mmap`?

For a subsystem maintainer's CI.  The patches are applied in order, with
`git apply --index`, in a temporary sparse worktree at the tree's HEAD (the
user's checkout never changes).  Only the files a patch touches are read by
spatch, before and after it applies, with the inventory's own rule
(cocci/find_fops.cocci.j2), so a patch is judged by the same entries and
definitions `scan` finds.  A flagged handler is classified as `scan`
classifies it, from the files of the tree that name it.

What is flagged, per patch:

- an `entry`: a `struct file_operations` entry setting `.mmap` whose line
  the patch adds, unless the same fops already set `.mmap` to the same
  handler in a file the patch touches (moved or re-aligned code is not a
  new user);
- a `handler`: an entry the patch does not add whose handler's definition
  it adds (a new function with the `.mmap` signature used as one);
- an `unchecked` line: an added `.mmap =` line spatch could not parse, so
  it is never passed silently.

`.mmap = NULL` sets no handler and is never flagged.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from . import inventory, scratch, spatch
from .errors import UsageError
from .gitrepo import GitTree
from .model import ApiFacts, FopsEntry, Handler, Klass, Site, to_json
from .tree import ACTIONS_C, HEADERS, open_tree, resolve
from .ui import progress, run
from .vmafacts import MAPPING_CALLS

log = logging.getLogger("mmconvert")

# What `resolve` reads in the sparse worktree: the hook's declarations.
SPARSE_SEED = (*HEADERS, ACTIONS_C)
SOURCES = (".c", ".h")
_MMAP_INIT = re.compile(r"\.mmap\s*=")
# The entries pass without fops macros: a driver's one-line
# DEFINE_DRM_GEM_FOPS() adds no `.mmap =` of its own (the macro's handler is
# its subsystem's to convert), so only literal initialisers are judged.
_RULE_ARGS: dict[str, list[str]] = {"field_macros": [], "declarer_macros": []}


# -- the patches ------------------------------------------------------------

@dataclass(frozen=True)
class Patch:
    """One patch, as far as `check` needs it."""

    name: str                                  # as given, with (i/n) for one of an mbox's
    path: Path                                 # what `git apply` reads
    sources: tuple[str, ...]                   # pre-image paths that exist before it
    added: dict[str, frozenset[int]]           # post-image path -> lines it adds


# The line git format-patch starts every message with.
_MBOX_FROM = re.compile(rb"^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001$", re.MULTILINE)


def _strip(path: str) -> str | None:
    """A diff's file name as `git apply` (-p1) takes it; None for /dev/null."""
    if path == "/dev/null":
        return None
    return path.split("/", 1)[1] if "/" in path else path


def _parse(name: str, path: Path, raw: bytes) -> Patch:
    """The files one patch touches and the post-image lines it adds."""
    try:
        ps = PatchSet(raw.decode("utf-8", errors="replace"))
    except UnidiffParseError as e:
        raise UsageError(f"{name}: not a patch unidiff can read ({e})") from None
    if not len(ps):
        raise UsageError(f"{name}: no diff in it (give git format-patch output or a unified diff)")
    sources: list[str] = []
    added: dict[str, set[int]] = {}
    for pf in ps:
        src, dst = _strip(pf.source_file), _strip(pf.target_file)
        if src is not None:
            sources.append(src)
        if dst is not None:
            lines = added.setdefault(dst, set())
            lines.update(ln.target_line_no for h in pf for ln in h
                         if ln.is_added and ln.target_line_no is not None)
    return Patch(name, path, tuple(dict.fromkeys(sources)),
                 {f: frozenset(n) for f, n in added.items()})


def read_patches(path: Path, scratch_dir: Path) -> list[Patch]:
    """The patches in one file.  An mbox of several (`format-patch
    --stdout`) is split into its messages, each written to `scratch_dir`:
    applied together, a later one's lines would be counted against the
    file before it."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"{path}: cannot read the patch ({e.strerror or e})") from None
    starts = [m.start() for m in _MBOX_FROM.finditer(raw)]
    if len(starts) < 2:
        return [_parse(str(path), path.resolve(), raw)]
    out = []
    for i, (a, b) in enumerate(zip(starts, [*starts[1:], len(raw)], strict=False), 1):
        part = scratch_dir / f"{sum(1 for _ in scratch_dir.glob('*.patch')):04d}.patch"
        part.write_bytes(raw[a:b])
        out.append(_parse(f"{path} ({i}/{len(starts)})", part, raw[a:b]))
    return out


# -- the records ------------------------------------------------------------

@dataclass(frozen=True)
class Flag:
    """One new `.mmap` user a patch adds, at a line the patch adds."""

    patch: str
    file: str
    line: int
    kind: str                       # entry | handler | unchecked
    fops: str                       # the initialiser, "(compound literal)" for those
    handler: str | None
    entry: Site                     # the `.mmap =` line in the post-image
    klass: Klass | None = field(metadata={"json": "class"})
    reason: Site | None             # what decided the class, as scan gives it
    notes: tuple[str, ...]
    hook: str                       # ".mmap_prepare", ".mmap_proto"
    suggestion: str


@dataclass(frozen=True)
class _Found:
    """What one pass over some files found."""

    files: tuple[str, ...]          # what spatch read
    entries: tuple[FopsEntry, ...]
    definitions: frozenset[str]     # names defined with a handler's parameters
    result: spatch.Result


def _find(wt: GitTree, files: list[str], label: str, **run_kw) -> _Found:
    """The inventory's entries pass over `files` (those that exist)."""
    files = sorted(f for f in files if f.endswith(SOURCES) and wt.has_file(f))
    if not files:
        return _Found((), (), frozenset(), spatch.Result())
    res = spatch.run(wt.path, spatch.render("find_fops", **_RULE_ARGS), files,
                     blob_ids=wt.blob_ids(files), progress=progress, label=label, **run_kw)
    entries = tuple(FopsEntry(r["file"], r["line"], r["fops"],
                              None if r["handler"] == "NULL" else r["handler"], r["form"])
                    for r in res.records if r["kind"] == "entry")
    defs = frozenset(r["handler"] for r in res.records if r["kind"] == "definition")
    return _Found(tuple(files), entries, defs, res)


def _apply(wt: GitTree, p: Patch, tree: Path, base: str) -> None:
    """Apply one patch in the worktree, or say in one line why it does not."""
    wt.ensure(list(p.sources))
    status, _out, err = wt.run_rc("apply", "--index", "--whitespace=nowarn", str(p.path))
    if status == 0:
        return
    failed = re.search(r"error: patch failed: (.+):(\d+)$", err, flags=re.MULTILINE)
    if failed:
        why = f"{failed.group(1)}: the hunk at line {failed.group(2)} does not apply"
    else:
        errors = [e.strip() for e in re.findall(r"^error: (.*)$", err, flags=re.MULTILINE)]
        why = errors[-1] if errors else (err.strip().splitlines() or ["git apply failed"])[-1]
    raise UsageError(f"{p.name}: does not apply to {tree} at {base[:12]}: {why}")


# -- judging one patch ------------------------------------------------------

@dataclass(frozen=True)
class _Candidate:
    kind: str
    at: Site                        # where the flag points: a line the patch adds
    entry: FopsEntry | None


def _candidates(p: Patch, before: _Found, after: _Found) -> list[_Candidate]:
    """The post-image entries that are new uses of `.mmap`."""
    old_pairs = {(e.fops, e.handler) for e in before.entries}
    new_defs: dict[str, Site] = {}
    for r in after.result.records:
        if r["kind"] == "definition" and r["handler"] not in before.definitions \
                and r["line"] in p.added.get(r["file"], ()):
            new_defs.setdefault(r["handler"], Site(r["file"], r["line"], r["handler"]))
    out = []
    for e in after.entries:
        if e.handler is None:
            continue
        if e.line in p.added.get(e.file, ()) and (e.fops, e.handler) not in old_pairs:
            out.append(_Candidate("entry", Site(e.file, e.line), e))
        elif e.handler in new_defs:
            out.append(_Candidate("handler", new_defs[e.handler], e))
    return out


def _unchecked(wt: GitTree, p: Patch, after: _Found) -> list[_Candidate]:
    """Added `.mmap =` lines of a fops file that spatch could not read."""
    seen = {(e.file, e.line) for e in after.entries}
    failed = {w.file for w in after.result.warnings}
    out = []
    for f, lines in sorted(p.added.items()):
        if not f.endswith(SOURCES) or not wt.has_file(f):
            continue
        bad = after.result.bad_regions.get(f, [])
        text = wt.read_text(f).splitlines()
        if not any("file_operations" in t for t in text):
            continue   # another ops table (dma_buf_ops, ...)
        for n in sorted(lines):
            if n <= len(text) and _MMAP_INIT.search(text[n - 1]) and (f, n) not in seen \
                    and (f in failed or any(lo <= n <= hi for lo, hi in bad)):
                out.append(_Candidate("unchecked", Site(f, n, text[n - 1].strip()), None))
    return out


def _handlers(wt: GitTree, api: ApiFacts, names: list[str], after: _Found,
              **run_kw) -> list[Handler]:
    """Scan's handlers for `names`: the files the patch touched were read;
    the rest of the tree's files that name them are read now."""
    if not names:
        return []
    ref_lines = inventory.grep_names(wt, names)
    read = set(after.files)
    word = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, names)) + r")(?!\w)")
    tag = re.compile(r"\b(?:struct|union|enum)\s+\w+")
    # A file that names a handler only as a type (`struct privcmd_mmap`) has
    # no definition or fops of it.
    rest = sorted({f for f, _, text in ref_lines if f not in read
                   and word.search(tag.sub("", text))})
    more = _find(wt, rest, "check: handlers", **run_kw)
    res = spatch.Result(records=after.result.records + more.result.records,
                        bad_regions={**more.result.bad_regions, **after.result.bad_regions})
    entries = [e for e in after.entries + more.entries if e.handler in set(names)]
    handlers, _ = inventory.classify_named(wt, api, names, entries, ref_lines, res)
    return handlers


def _handler_of(handlers: list[Handler], e: FopsEntry) -> Handler | None:
    """The handler an entry names (two static ones may share a name)."""
    named = [h for h in handlers if h.name == e.handler]
    return next((h for h in named if any((f.file, f.line) == (e.file, e.line) for f in h.fops)),
                named[0] if named else None)


def check_patch(wt: GitTree, api: ApiFacts, p: Patch, tree: Path, base: str,
                **run_kw) -> list[Flag]:
    """Apply `p` in `wt` (after the patches before it) and flag what it adds."""
    before = _find(wt, list(p.sources), "check: before", **run_kw)
    _apply(wt, p, tree, base)
    after = _find(wt, list(p.added), "check: after", **run_kw)
    cands = _candidates(p, before, after)
    entries = [c.entry for c in cands if c.entry is not None]     # all of them
    handlers = _handlers(wt, api, sorted({e.handler for e in entries if e.handler}), after,
                         **run_kw)
    flags = [_flag(p, api, c, _handler_of(handlers, e)) for c, e in zip(cands, entries, strict=True)]
    flags += [_flag(p, api, c, None) for c in _unchecked(wt, p, after)]
    return sorted(flags, key=lambda f: (f.file, f.line, f.fops))


def _flag(p: Patch, api: ApiFacts, c: _Candidate, h: Handler | None) -> Flag:
    hook = f".{api.hook}"
    if c.entry is None:
        return Flag(p.name, c.at.file, c.at.line, c.kind, "", None, c.at, None, None, (),
                    hook, f"spatch could not parse this line: check by hand that it sets "
                          f"no struct file_operations .mmap, or use {hook} instead")
    e = c.entry
    return Flag(p.name, c.at.file, c.at.line, c.kind, e.fops, e.handler,
                Site(e.file, e.line, f".mmap = {e.handler}"),
                h.klass if h else Klass.UNCLEAR, h.reason if h else None,
                h.notes if h else ("not classified",), hook, _suggestion(api, h))


def _suggestion(api: ApiFacts, h: Handler | None) -> str:
    """What to write instead, by the handler's class."""
    use = f"use .{api.hook}({api.desc_type} *) instead of .mmap"
    if h is None or h.klass == Klass.UNCLEAR:
        return use
    twin = f"{h.name.removesuffix('_mmap')}_mmap{api.suffix}"
    if h.name.endswith("_mmap") and twin in api.library_helpers:
        return f"use .{api.hook} = {twin} instead"
    if h.klass == Klass.ACTION:
        call = re.match(r"\w+", h.reason.expression)
        action = MAPPING_CALLS.get(call.group()) if call else None
        return f"{use}: {call.group()}() becomes {action}()" if call and action else use
    if h.klass == Klass.NEEDS_VMA:
        return f"{use} where the descriptor can express it; this handler needs the VMA"
    if h.klass == Klass.DISPATCHER:
        return (f"{use} once the ops table this handler hands the VMA to can take the "
                "descriptor; until then it keeps .mmap")
    if h.klass == Klass.FORWARDER:
        how = ("vfs_mmap(), which takes a file with either hook" if api.has_vfs_mmap
               else f"a bailout for files that have .{api.hook}")
        return f"a forwarder needs the VMA and keeps .mmap: forward with {how}"
    return f"{use}: the handler only does what the descriptor can express"


# -- the command ------------------------------------------------------------

def check(patches: list[Path], tree: Path, api: str = "auto", *, jobs: int | None = None,
          timeout: int = spatch.DEFAULT_TIMEOUT) -> list[Flag]:
    """Every new `.mmap` user the patches add, in order; `tree` never changes."""
    with scratch.directory(scratch.PREFIX + "check-") as tmp:
        parsed = [p for path in patches for p in read_patches(path, tmp)]
        gt = open_tree(tree)
        base = gt.resolve("HEAD")
        touched = sorted({f for p in parsed for f in p.sources})
        run_kw = {"jobs": jobs, "timeout": timeout, "cache": spatch.Cache()}
        with gt.worktree(base, sparse=(*SPARSE_SEED, *touched)) as wt:
            facts = resolve(wt.path, api)
            flags: list[Flag] = []
            for p in parsed:
                flags += check_patch(wt, facts, p, tree, base, **run_kw)
    return flags


def flag_text(f: Flag) -> str:
    """One line per flag, as checkpatch writes them."""
    where = f"{f.patch}: {f.file}:{f.line}: WARNING:"
    if f.kind == "unchecked":
        return f"{where} .mmap set here could not be checked: {f.suggestion}"
    if f.kind == "entry":
        what = f"{f.fops} sets .mmap = {f.handler}"
    else:
        what = (f"new .mmap handler {f.handler}, used by {f.fops} at "
                f"{f.entry.file}:{f.entry.line}")
    why = (f.klass or Klass.UNCLEAR).value + "".join(f", {n}" for n in f.notes[:1])
    if f.reason is not None and f.reason.line:
        why += f": {f.reason.file}:{f.reason.line}: {f.reason.expression}"
    return f"{where} {what} ({why}): {f.suggestion}"


def run_check(patches: list[Path], *, tree: Path, api: str, as_json: bool, jobs: int | None,
              timeout: int) -> int:
    """`mmconvert check`: print the flags; how many there are."""
    flags = run(lambda: check(patches, tree, api, jobs=jobs, timeout=timeout))
    if as_json:
        print(json.dumps(to_json(flags), indent=1))
    else:
        for f in flags:
            print(flag_text(f))
    log.info("mmconvert check: %d patch file%s, %d flagged", len(patches),
             "" if len(patches) == 1 else "s", len(flags))
    return len(flags)
