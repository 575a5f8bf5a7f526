"""The stages in order, in one place.  `survey` reads a tree as it is (the
handlers inventoried, the forwarders found) for `scan` and `report`;
`plan` goes on: forwarders found and fixed, the handlers inventoried on the
fixed tree, the convertible ones converted.  `series` and `convert` both
plan here, in a worktree of their own, so what `convert` writes into the
user's tree is exactly what `series` commits."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import signals, spatch
from .errors import MmconvertError, SpatchError, ToolMissing, UsageError
from .gitrepo import GitTree
from .model import ApiFacts, Change, ForwarderSite, Handler, Inventory, Klass, Plan, Site
from .tree import open_tree, resolve

# progress(label, done, total), as ui.progress draws it.
Progress = Callable[[str, int, int], None]
# guard(stage, call): (call(), "") or (None, why it failed), for a caller
# that goes on without a stage that failed.
Guard = Callable[[str, Callable[[], Any]], tuple[Any, str]]


@dataclasses.dataclass(frozen=True)
class Survey:
    """A tree read as it is, nothing planned.  `cache` is the spatch result
    cache the survey used, for the stages that follow it."""

    tree: GitTree
    api: ApiFacts
    cache: spatch.Cache
    inventory: Inventory | None             # None: inventory_failed says why
    forwarders: tuple[ForwarderSite, ...] | None   # None: forwarders_problem says why
    inventory_failed: MmconvertError | None = None
    forwarders_problem: str = ""


def survey(tree: Path | str, api_name: str = "auto", *, jobs: int | None = None,
           timeout: int = spatch.DEFAULT_TIMEOUT, progress: Progress | None = None,
           guard: Guard | None = None) -> Survey:
    """Open `tree`, resolve its API, inventory its handlers and find its
    forwarders.  Without `guard` any failure is raised.  With it, the
    forwarders are found through `guard`, and an inventory that spatch
    could not run is returned as `inventory_failed` (every later stage needs
    spatch too, so the forwarders are not looked for)."""
    from . import forwarders, inventory

    gt = open_tree(tree)
    api = resolve(tree, api_name)
    cache = spatch.Cache()
    kw: dict[str, Any] = {"jobs": jobs, "timeout": timeout, "cache": cache,
                          "progress": progress}
    try:
        inv = inventory.scan(gt, api, **kw)
    except (ToolMissing, SpatchError) as e:
        if guard is None:
            raise
        return Survey(gt, api, cache, None, None, inventory_failed=e)
    if guard is None:
        return Survey(gt, api, cache, inv, tuple(forwarders.find(gt, api, **kw)))
    sites, problem = guard("forwarders", lambda: tuple(forwarders.find(gt, api, **kw)))
    return Survey(gt, api, cache, inv, sites, forwarders_problem=problem)


class ApplyError(MmconvertError):
    exit_code = 1


def apply_changes(gt: GitTree, changes: list[Change] | tuple[Change, ...], *,
                  index: bool = False) -> None:
    """`git apply` each change's diff in order, all or nothing per change
    (`index`: into the index too, so a commit needs no `git add`)."""
    opts = ["--index"] if index else []
    for ch in changes:
        if not ch.diff:
            continue
        gt.ensure(list(ch.files))
        status, _, err = gt.run_rc("apply", *opts, "--whitespace=nowarn", "-", input=ch.diff)
        if status == 0:
            continue
        # Changes planned against the same file by other patches may have
        # moved the context a little; allow less context before giving up.
        status, _, err2 = gt.run_rc("apply", *opts, "--whitespace=nowarn", "-C1", "--recount",
                                    "-", input=ch.diff)
        if status != 0:
            first = (err.strip() or err2.strip() or "git apply failed").splitlines()[0]
            raise ApplyError(f"internal error: the change '{ch.title}' does not apply: {first}")


def write_files(gt: GitTree, texts: dict[str, bytes]) -> None:
    """Write planned file contents into a checkout, all or nothing: each
    file is replaced in one rename, and a failure or a signal part-way puts
    back every file already written."""
    done: list[tuple[Path, bytes | None]] = []
    try:
        for rel, data in sorted(texts.items()):
            path = gt.path / rel
            old = path.read_bytes() if path.exists() else None
            if old == data:
                continue
            _replace(path, data)
            done.append((path, old))
    except BaseException:
        with signals.shield():
            for path, old in reversed(done):
                if old is None:
                    path.unlink(missing_ok=True)
                else:
                    _replace(path, old)
        raise


def _replace(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        mode = path.stat().st_mode if path.exists() else 0o666 & ~_umask()
        os.chmod(tmp, stat.S_IMODE(mode))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_only(only: tuple[str, ...], inv: Inventory) -> None:
    """Each --only PATH must hold at least one handler's definition: a
    mistyped path is an error, not a series of forwarder changes alone."""
    for o in only:
        if not any(h.subsystem_file.startswith(o.rstrip("/")) for h in inv.handlers):
            raise UsageError(f"--only {o}: no .mmap handler is defined there")


def plan(wt: GitTree, api: ApiFacts, *, only: tuple[str, ...] = (), include_core: bool = False,
         jobs: int | None = None, timeout: int | None = None, cache: spatch.Cache | None = None,
         progress: Progress | None = None,
         after_forwarders: Callable[[list[Change]], None] | None = None) -> Plan:
    """Plan every change in the worktree `wt`.  The forwarder changes are
    applied to `wt` before the handlers are read (`after_forwarders(changes)`
    does it, committing them for a series), so the conversions are planned on
    the text they will apply to."""
    from . import convert, forwarders, inventory

    kw: dict[str, Any] = {"jobs": jobs, "timeout": timeout if timeout is not None
                          else spatch.DEFAULT_TIMEOUT, "cache": cache, "progress": progress}
    sites = forwarders.find(wt, api, **kw)
    fchanges, fwarn, fcocci = forwarders.plan(wt, api, sites, include_core=include_core, **kw)
    if after_forwarders is None:
        apply_changes(wt, fchanges)
    else:
        after_forwarders(list(fchanges))
    inv = inventory.scan(wt, api, **kw)
    check_only(only, inv)
    cchanges, skipped, cwarn, ccocci = convert.plan(wt, api, inv, only=only, **kw)
    cchanges, skipped = hold_behind_listed(sites, inv, list(cchanges), list(skipped))
    return Plan(api, inv, tuple(sites), (*fchanges, *cchanges), tuple(skipped),
                (*fwarn, *inv.warnings, *cwarn), (*fcocci, *ccocci))


def hold_behind_listed(sites: list[ForwarderSite] | tuple[ForwarderSite, ...], inv: Inventory,
                       changes: list[Change], skipped: list[Handler]
                       ) -> tuple[list[Change], list[Handler]]:
    """A forwarder left alone because no file it reaches has the new hook
    (state "listed") stops being safe the moment one does: a conversion
    under its directory waits for that forwarder instead."""
    listed = [s for s in sites if s.state == "listed"]
    if not listed:
        return changes, skipped
    by_name = {h.name: h for h in inv.handlers}
    keep = []
    for ch in changes:
        fwd = next((s for s in listed if ch.stage == "conversion" and any(
            f.startswith(s.file.rsplit("/", 1)[0] + "/") for f in ch.files)), None)
        if fwd is None:
            keep.append(ch)
            continue
        for name in ch.handlers:
            if name in by_name:
                skipped.append(dataclasses.replace(
                    by_name[name], klass=Klass.NEEDS_VMA,
                    reason=Site(fwd.file, fwd.line, fwd.expression),
                    notes=(f"{fwd.function}() calls ->mmap() of these file_operations directly "
                           "and has to move to the compat layer first",)))
    return keep, skipped
