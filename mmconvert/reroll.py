"""Rerolls: version N of a series finds version N-1 and says what changed.

Every series mmconvert writes is recorded under the repository's git
directory (`mmconvert/versions/<campaign>.json`): its version, base, tip,
branch, change-id and, per patch, the subsystem and handlers.  `-v N` looks
for version N-1 of the same campaign (same generation, same `--only`)
whatever its base: `--previous REF` first, then that record, then the most
recent `mmconvert/<generation>-*` branch of version N-1.  What the commits
say (subjects, patch-ids, trailers a reviewer added) is always read from
git, so a branch amended after review counts as it is now.

The range-diff is `<old base>..<old tip>` against the new series, as b4's
`prep --compare-to` does.  Trailers given on version N-1 are carried to
the same patch when its diff is unchanged (git patch-id), and dropped
with a note when it changed.  The words are in templates/changes.j2.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .gitrepo import GitTree

log = logging.getLogger("mmconvert")

# Trailers that reviewers give, carried to an unchanged patch.
CARRIED = ("Reviewed-by", "Acked-by", "Tested-by")
_TRAILER = re.compile(r"^[A-Za-z0-9-]+: \S")
# A handler's line in a struct file_operations that a conversion removes.
_MMAP_INIT = re.compile(r"^-\s*\.mmap\s*=\s*&?(\w+)", re.MULTILINE)


@dataclass(frozen=True)
class PatchInfo:
    """One patch of an earlier version, as recorded and as git has it now."""

    key: str                       # stage:subsystem ("" when only git knows it)
    subject: str
    handlers: tuple[str, ...]
    commit: str = ""
    patch_id: str = ""
    body: str = ""                 # the message without its trailer block
    trailers: tuple[str, ...] = ()  # the CARRIED ones


@dataclass(frozen=True)
class Previous:
    """Version N-1 of the campaign."""

    version: int
    base: str
    tip: str
    change_id: str
    found: str                     # how: "--previous", "record", "branch"
    patches: tuple[PatchInfo, ...]
    exact: bool = True             # handlers from the record, not read off the diffs

    @property
    def identity(self) -> str:
        """What a series written against it depends on."""
        return f"{self.version}:{self.base}..{self.tip}:{self.change_id}"


@dataclass(frozen=True)
class NewPatch:
    """A patch of the version being written, as the changes compare it."""

    subject: str
    key: str
    handlers: tuple[str, ...]
    patch_id: str
    body: str


@dataclass(frozen=True)
class Dropped:
    handler: str
    klass: str                     # "" when the new version does not skip it
    where: str = ""
    expression: str = ""
    gone: bool = False             # no longer named anywhere in the tree


@dataclass(frozen=True)
class Delta:
    """What happened to one patch between the two versions."""

    subject: str
    state: str                     # new | dropped | code | changelog | same
    old_subject: str = ""
    added: tuple[str, ...] = ()
    moved_in: tuple[tuple[str, str], ...] = ()   # (handler, subject it was in)
    moved_out: tuple[tuple[str, str], ...] = ()  # (handler, subject it is in now)
    dropped: tuple[Dropped, ...] = ()
    carried: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()     # trailers not carried: the code changed


# -- the campaign record ------------------------------------------------------

def campaign(generation: str, only: tuple[str, ...]) -> str:
    if not only:
        return generation
    return f"{generation}-only-{hashlib.sha256(chr(0).join(sorted(only)).encode()).hexdigest()[:8]}"


def change_id(gt: GitTree, campaign_name: str, base: str) -> str:
    """b4's form, YYYYMMDD-topic-hash, made from the first version's base so
    that the same inputs give the same id."""
    day = gt.run("log", "-1", "--format=%cd", "--date=format:%Y%m%d", base).strip()
    digest = hashlib.sha256(f"{campaign_name}\0{base}".encode()).hexdigest()[:12]
    return f"{day}-mmconvert-{campaign_name}-{digest}"


class Records:
    def __init__(self, gt: GitTree):
        common = gt.run("rev-parse", "--path-format=absolute", "--git-common-dir").strip()
        self.root = Path(common) / "mmconvert" / "versions"

    def _path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def load(self, name: str) -> list[dict]:
        try:
            raw = json.loads(self._path(name).read_text())
        except (OSError, ValueError):
            return []
        return [r for r in raw if isinstance(r, dict) and {"version", "base", "tip"} <= r.keys()] \
            if isinstance(raw, list) else []

    def put(self, name: str, record: dict) -> None:
        """Version N replaces an earlier record of version N (the latest
        series of a version is the one sent); an older version that named
        the same branch no longer does (the branch holds this one now)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(self.root / f"{name}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                rows = [dict(r, branch=None) if r.get("branch") == record["branch"] else r
                        for r in self.load(name) if r["version"] != record["version"]]
                rows.append(record)
                rows.sort(key=lambda r: r["version"])
                tmp = self._path(name).with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
                tmp.replace(self._path(name))
        except OSError as e:  # only the next -v loses its lookup
            log.warning("series: cannot record this version for a later -v: %s", e)


def record(version: int, change: str, base: str, tip: str, branch: str,
           patches: list[PatchInfo]) -> dict:
    return {"version": version, "change_id": change, "base": base, "tip": tip,
            "branch": branch,
            "patches": [{"key": p.key, "subject": p.subject, "handlers": list(p.handlers)}
                        for p in patches]}


# -- finding version N-1 ------------------------------------------------------

def find(gt: GitTree, generation: str, only: tuple[str, ...], version: int, new_base: str,
         ref: str | None) -> Previous | None:
    """Version `version - 1`, or None (said in one line by the caller)."""
    name = campaign(generation, only)
    rows = {r["version"]: r for r in Records(gt).load(name)}
    first = rows[min(rows)] if rows else None
    old = version - 1
    if ref:
        base, tip = _range(gt, ref)
        row = next((r for r in rows.values() if r["tip"] == tip
                    or (r.get("branch") and gt.branch_exists(r["branch"])
                        and gt.resolve(r["branch"]) == tip)), None)
        start = base
        if start is None:
            start = row["base"] if row and _is_ancestor(gt, row["base"], tip) else \
                _merge_base(gt, ref, tip, new_base)
        cid = first["change_id"] if first else change_id(gt, name, start)
        return _read(gt, old, start, tip, cid, "--previous", row)
    row = rows.get(old)
    if row is not None:
        current = _current_tip(gt, row)
        if current and first is not None:
            return _read(gt, old, row["base"], current, first["change_id"], "record", row)
    if only:
        return None      # a branch name does not say which files a campaign covered
    branch = _latest_branch(gt, generation, old)
    if branch is None:
        return None
    tip = gt.resolve(branch)
    m = re.fullmatch(rf"mmconvert/{re.escape(generation)}-([0-9a-f]+)(?:-v\d+)?", branch)
    base = _commit(gt, m.group(1)) if m else None
    if base is None or not _is_ancestor(gt, base, tip):
        base = gt.run("merge-base", tip, new_base).strip()
    cid = first["change_id"] if first else change_id(gt, name, base)
    return _read(gt, old, base, tip, cid, "branch", None)


_RANGE = re.compile(r"^([^.]+)\.\.([^.]+)$")


def check_ref(gt: GitTree, ref: str) -> None:
    """--previous is a revision or OLD_BASE..OLD_TIP that git has (one line
    if not)."""
    m = _RANGE.match(ref)
    if ".." in ref and not m:
        raise UsageError(f"--previous {ref}: give a revision or OLD_BASE..OLD_TIP")
    for part in m.groups() if m else (ref,):
        if _commit(gt, part) is None:
            raise UsageError(f"--previous {ref}: unknown revision {part}")


def _range(gt: GitTree, ref: str) -> tuple[str | None, str]:
    """(base or None when only a tip is named, tip)."""
    m = _RANGE.match(ref)
    if m:
        return gt.resolve(m.group(1)), gt.resolve(m.group(2))
    return None, gt.resolve(ref)


def _merge_base(gt: GitTree, ref: str, tip: str, new_base: str) -> str:
    status, out, _ = gt.run_rc("merge-base", tip, new_base)
    if status != 0:
        raise UsageError(f"--previous {ref}: no common history with the base; give "
                         "OLD_BASE..OLD_TIP")
    return out.strip()


def _commit(gt: GitTree, rev: str) -> str | None:
    status, out, _ = gt.run_rc("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    return out.strip() if status == 0 else None


def _is_ancestor(gt: GitTree, a: str, b: str) -> bool:
    return gt.run_rc("merge-base", "--is-ancestor", a, b)[0] == 0


def _current_tip(gt: GitTree, row: dict) -> str | None:
    """The recorded branch as it is now (a reviewer's trailers may have
    been added to it) while it still holds that version (as many patches,
    on the same base), else the recorded tip while git still has it."""
    branch = row.get("branch")
    if branch and gt.branch_exists(branch):
        tip = gt.resolve(branch)
        if _is_ancestor(gt, row["base"], tip) and \
                len(_commits(gt, row["base"], tip)) == len(row.get("patches", ())):
            return tip
    return _commit(gt, row["tip"])


def _commits(gt: GitTree, base: str, tip: str) -> list[str]:
    """The patches of base..tip: first parents only (a merge brings other
    people's commits), none without a diff (b4's cover letter commit)."""
    out = gt.run("log", "--reverse", "--first-parent", "--no-merges", "--format=%H %T %P",
                 f"{base}..{tip}")
    commits = []
    for line in out.splitlines():
        c, tree, *parents = line.split()
        if parents and gt.run("rev-parse", f"{parents[0]}^{{tree}}").strip() != tree:
            commits.append(c)
    return commits


def _latest_branch(gt: GitTree, generation: str, version: int) -> str | None:
    suffix = "" if version == 1 else rf"-v{version}"
    pattern = re.compile(rf"mmconvert/{re.escape(generation)}-[0-9a-f]+{suffix}")
    out = gt.run("for-each-ref", "--sort=-committerdate", "--format=%(refname:short)",
                 f"refs/heads/mmconvert/{generation}-*")
    return next((b for b in out.split() if pattern.fullmatch(b)), None)


def _read(gt: GitTree, version: int, base: str, tip: str, cid: str, found: str,
          row: dict | None) -> Previous:
    commits = _commits(gt, base, tip)
    ids = patch_ids(gt, f"{base}..{tip}")
    recorded = (row or {}).get("patches", [])
    patches = []
    for i, c in enumerate(commits):
        message = gt.run("log", "-1", "--format=%B", c)
        subject, _, _ = message.partition("\n")
        rec = recorded[i] if i < len(recorded) and recorded[i]["subject"] == subject else \
            next((r for r in recorded if r["subject"] == subject), None)
        handlers = tuple(rec["handlers"]) if rec else \
            handlers_in_diff(gt.run("show", "--format=", c))
        patches.append(PatchInfo(key=rec["key"] if rec else "", subject=subject,
                                 handlers=handlers, commit=c, patch_id=ids.get(c, ""),
                                 body=strip_trailers(message),
                                 trailers=carried_trailers(gt, message)))
    return Previous(version, base, tip, cid, found, tuple(patches),
                    exact=bool(recorded) and all(p.key for p in patches))


def handlers_in_diff(diff: str) -> tuple[str, ...]:
    """Without a record, a patch's handlers are the .mmap initialisers it
    removes (the new version is then compared the same way)."""
    return tuple(dict.fromkeys(_MMAP_INIT.findall(diff)))


def patch_ids(gt: GitTree, rev_range: str) -> dict[str, str]:
    """commit -> `git patch-id --stable` of its diff."""
    diff = gt.run("log", "-p", "--no-renames", "--no-color", "--no-textconv", "--no-ext-diff",
                  "--format=commit %H", rev_range)
    out = gt.run("patch-id", "--stable", input=diff)
    return {c: pid for pid, c in (line.split() for line in out.splitlines() if line.strip())}


def strip_trailers(message: str) -> str:
    paras = message.strip().split("\n\n")
    if len(paras) > 1 and all(_TRAILER.match(s) for s in paras[-1].splitlines()):
        paras = paras[:-1]
    return "\n\n".join(paras).strip()


def carried_trailers(gt: GitTree, message: str) -> tuple[str, ...]:
    out = gt.run("interpret-trailers", "--parse", input=message)
    return tuple(line for line in out.splitlines()
                 if line.split(":", 1)[0] in CARRIED)


# -- matching and the changes --------------------------------------------------

class Matcher:
    """Pairs each new patch with the patch of version N-1 it continues: the
    same stage and subsystem, else the same subject (as each is committed:
    the trailers depend on it), then, once all are, the most handlers in
    common among those left."""

    def __init__(self, prev: Previous):
        self.prev = prev
        self.free = list(prev.patches)

    def match(self, key: str, subject: str) -> PatchInfo | None:
        old = next((p for p in self.free if p.key and p.key == key), None) \
            or next((p for p in self.free if p.subject == subject), None)
        if old is not None:
            self.free.remove(old)
        return old

    def finish(self, new: list[NewPatch], pairs: list[PatchInfo | None]) -> list[PatchInfo | None]:
        out = list(pairs)
        for i, n in enumerate(new):
            if out[i] is not None:
                continue
            scored = [(len(set(p.handlers) & set(n.handlers)), -j, p)
                      for j, p in enumerate(self.free)]
            best = max(scored, default=None, key=lambda s: s[:2])
            if best and best[0] > 0:
                out[i] = best[2]
                self.free.remove(best[2])
        return out


def deltas(prev: Previous, new: list[NewPatch], pairs: list[PatchInfo | None],
           skipped: dict[str, tuple[str, str, str]], gone: AbstractSet[str] = frozenset()
           ) -> list[Delta]:
    """`pairs`: the matched old patch of each new one; `skipped`: handler ->
    (class, file:line, expression) in the new version; `gone`: names the
    new tree no longer has."""
    where_old = {h: p.subject for p in prev.patches for h in p.handlers}
    where_new = {h: n.subject for n in new for h in n.handlers}
    in_new = where_new.keys()
    out = []
    for n, old in zip(new, pairs, strict=True):
        subject, handlers, pid, body = n.subject, n.handlers, n.patch_id, n.body
        if old is None:
            moved = tuple((h, where_old[h]) for h in handlers if h in where_old)
            out.append(Delta(subject, "new", added=tuple(h for h in handlers
                                                          if h not in where_old),
                             moved_in=moved))
            continue
        added = tuple(h for h in handlers if h not in where_old)
        moved = tuple((h, where_old[h]) for h in handlers
                      if h in where_old and where_old[h] != old.subject)
        dropped = tuple(_dropped(h, skipped, gone) for h in old.handlers
                        if h not in handlers and h not in in_new)
        moved_out = tuple((h, where_new[h]) for h in old.handlers
                          if h not in handlers and h in in_new)
        same_code = bool(pid) and pid == old.patch_id
        state = "same" if same_code and body == old.body else \
            "changelog" if same_code else "code"
        out.append(Delta(subject, state, old_subject=old.subject, added=added, moved_in=moved,
                         moved_out=moved_out, dropped=dropped, carried=old.trailers if same_code else (),
                         lost=() if same_code else old.trailers))
    matched = {p.commit for p in pairs if p is not None}
    for old in prev.patches:
        if old.commit not in matched:
            out.append(Delta(old.subject, "dropped", old_subject=old.subject,
                             dropped=tuple(_dropped(h, skipped, gone) for h in old.handlers
                                           if h not in in_new),
                             moved_out=tuple((h, where_new[h]) for h in old.handlers
                                             if h in in_new),
                             lost=old.trailers))
    return out


def _dropped(handler: str, skipped: dict[str, tuple[str, str, str]], gone: AbstractSet[str]
             ) -> Dropped:
    klass, where, expression = skipped.get(handler, ("", "", ""))
    return Dropped(handler, klass, where, expression, handler in gone)


def lore_link(link: str) -> str:
    """A message-id becomes the lore link kernel changelogs use."""
    link = link.strip()
    if re.match(r"^[a-z]+://", link):
        return link
    return f"https://lore.kernel.org/r/{link.strip('<>')}"

