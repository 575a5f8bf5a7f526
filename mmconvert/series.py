"""`mmconvert series`: the planned changes as a `git format-patch` series.

Everything happens in a temporary worktree at the base: the forwarder
changes, then the library twins and conversions, are grouped one patch per
subsystem (the most specific MAINTAINERS section of the file that decides:
a handler's definition, a forwarder's function, a twin's file), committed
with the base commit's date so reruns give the same commits, and written by
`git format-patch` into a temporary directory next to DIR.  Only when all of
that worked is the branch set and the directory renamed into place.  A
rerun with the same inputs reuses the recorded series (seriescache.py).

Code decides here; every sentence of a changelog or cover letter lives in
templates/ (changelog-*.j2, series-*.j2, cover-letter.j2).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import logging
import os
import re
import shutil
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, pipeline, prose, scratch
from . import reroll as rr
from .errors import MmconvertError, UsageError
from .gitrepo import GitTree
from .maintainers import Maintainers, recipients, subject_prefix
from .model import ApiFacts, Change, ChangeDetail, FileWarning, Handler, HandlerChange, Klass
from .seriescache import Entry, SeriesCache
from .tree import ACTIONS_C, HEADERS

log = logging.getLogger("mmconvert")

STAGES = ("forwarders", "library", "conversion")
SUBJECT_MAX = 75
WRAP = 75
NEUTRAL_NAME = "mmconvert"
NEUTRAL_EMAIL = "mmconvert@localhost"
# What the series worktree needs on disk before any search: API detection's
# headers and get_maintainer.pl (the top-level files always come too).  The
# rest is checked out as the stages find it.
SPARSE_SEED = (*HEADERS, ACTIONS_C, "scripts/get_maintainer.pl")


class SeriesError(MmconvertError):
    exit_code = 1


@dataclass
class Patch:
    """One patch of the series: the changes of one stage in one subsystem."""

    stage: str
    subsystem: str
    changes: list[Change]
    key_files: list[str]             # the files that decided the subsystem
    prefix: str = ""
    subject: str = ""
    body: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        out: list[str] = []
        for ch in self.changes:
            for f in ch.files:
                if f not in out:
                    out.append(f)
        return out

    @property
    def details(self) -> list[ChangeDetail]:
        return [d for ch in self.changes for d in ch.details]


@dataclass(frozen=True)
class SeriesResult:
    out_dir: Path
    cover_letter: Path
    patches: tuple[Path, ...]
    branch: str
    base: str
    census: dict


# -- grouping -------------------------------------------------------------

def key_file(ch: Change) -> str:
    """The file that decides which subsystem a change belongs to: a
    handler's definition (not its fops or headers), a twin's file, the
    forwarder's own file."""
    for d in ch.details:
        if d.file:
            return d.file
    return min(ch.files) if ch.files else ""


def group(changes: list[Change], maint: Maintainers) -> list[Patch]:
    """One patch per (stage, subsystem): forwarders first, then library
    twins, then conversions, each group's patches sorted by path."""
    buckets: dict[tuple[str, str], Patch] = {}
    for ch in changes:
        if ch.stage not in STAGES:
            raise SeriesError(f"internal error: unknown change stage {ch.stage!r}")
        kf = key_file(ch)
        sub = maint.subsystem(kf)
        p = buckets.setdefault((ch.stage, sub), Patch(ch.stage, sub, [], []))
        p.changes.append(ch)
        if kf not in p.key_files:
            p.key_files.append(kf)
    patches = list(buckets.values())
    for p in patches:
        p.key_files.sort()
        # Plan order inside a patch (the diffs apply in that order), but a
        # plan that came in another order still gives the same patch.
        p.changes.sort(key=lambda c: (key_file(c), c.handlers, c.title))
    patches.sort(key=lambda p: (STAGES.index(p.stage), p.key_files[0], p.subsystem))
    return patches


# -- prose ------------------------------------------------------------------

def wrap(text: str, width: int = WRAP) -> str:
    """Reflow prose paragraphs to `width`; bullets get a hanging indent and
    indented lines (code, semantic patches, lists of names), `---` and
    b4's "- Link to" lines stay as they are."""
    out: list[str] = []
    para: list[str] = []

    def flush():
        if para:
            joined = " ".join(s.strip() for s in para)
            if joined.startswith("- "):
                out.extend(textwrap.wrap(joined, width, initial_indent="",
                                         subsequent_indent="  ", break_long_words=False,
                                         break_on_hyphens=False))
            else:
                out.extend(textwrap.wrap(joined, width, break_long_words=False,
                                         break_on_hyphens=False))
            para.clear()

    for line in text.splitlines():
        if not line.strip():
            flush()
            out.append("")
        elif line.startswith((" ", "\t", "- Link to ")) or line == "---":
            flush()
            out.append(line.rstrip())
        elif line.startswith("- "):
            flush()
            para.append(line)
        else:
            para.append(line)
    flush()
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def _context(api: ApiFacts) -> dict:
    return {"api": api, "hook": api.hook or "mmap_prepare", "version": __version__}


# The facts of a conversion that its changelog states once for every
# handler they hold, in this order (HandlerChange fields).
_SHARED_FACTS = ("helpers", "renamed", "mapped", "action", "page_prot_from_local",
                 "error_override", "helper")


@dataclass(frozen=True)
class SharedFact:
    """A fact several conversions of one patch share, said once."""

    fact: str                        # one of _SHARED_FACTS
    value: str | bool
    call: str | None                 # the mapping call it concerns
    fs_file: bool                    # an error override in fs/ or mm/
    handlers: list[str]


def shared_facts(details: Sequence[ChangeDetail]) -> list[SharedFact]:
    """One record per fact a patch's conversions share: which handlers it
    holds for and what it is, so a changelog says each thing once."""
    out: list[SharedFact] = []
    convs = [d for d in details if isinstance(d, HandlerChange) and not d.replaced_by_helper]
    for fact in _SHARED_FACTS:
        groups: dict[tuple[str | bool, str | None, bool], list[HandlerChange]] = {}
        for d in convs:
            value = getattr(d, fact)
            if not value:
                continue
            key = (value, d.mapping_call, fact == "error_override"
                   and d.file.startswith(("fs/", "mm/")))
            groups.setdefault(key, []).append(d)
        for (value, call, fs_file), ds in groups.items():
            out.append(SharedFact(fact, value, call, fs_file, [d.handler for d in ds]))
    return out


def render_patch_text(p: Patch, api: ApiFacts, gt: GitTree | None,
                      maint: Maintainers | None = None) -> None:
    """Fill in prefix, subject and body of a patch from the templates."""
    env = prose.env()
    ctx = _context(api)
    ctx.update(stage=p.stage, details=p.details, changes=p.changes,
               handlers=[h for ch in p.changes for h in ch.handlers],
               shared=shared_facts(p.details) if p.stage == "conversion" else [],
               can_merge=can_merge(p.details),
               declares=any(re.search(rf"^\+{api.desc_type};$", ch.diff, re.M)
                            for ch in p.changes))
    p.prefix = subject_prefix(gt, p.key_files, maint) if gt is not None else ""
    subj_t = env.get_template("series-subject.j2")
    subject = ""
    for level in range(4):
        summary = " ".join(subj_t.render(level=level, **ctx).split())
        subject = f"{p.prefix}: {summary}" if p.prefix else summary
        if len(subject) <= SUBJECT_MAX:
            break
    if len(subject) > SUBJECT_MAX:
        # A prefix too long for any summary: shorten the prefix to its head.
        p.prefix = p.prefix.split(": ")[0].split("/")[0]
        subject = f"{p.prefix}: {summary}"[:SUBJECT_MAX].rstrip()
    p.subject = subject
    p.body = wrap(env.get_template(f"changelog-{p.stage}.j2").render(**ctx))


def can_merge(details: Sequence[ChangeDetail]) -> bool:
    """Whether a mapping of one of these files can be merged into a
    neighbour (no VM_SPECIAL flag set, no mapping action): only then does
    the hook's running before the merge attempt change anything."""
    convs = [d for d in details if isinstance(d, HandlerChange)]
    return not convs or any(not d.special for d in convs)


def techniques(d: HandlerChange) -> list[str]:
    """How a handler moved, as the cover letter counts them: one handler
    may have its helpers converted and end in a mapping action."""
    if d.replaced_by_helper:
        return ["library"]
    used = [k for k, on in (("action", d.klass == Klass.ACTION), ("helpers", bool(d.helpers)),
                            ("mapped", d.mapped is not None)) if on]
    return used or ["fields"]


def census(changes: list[Change], skipped: list[Handler]) -> dict:
    conv = [d for ch in changes if ch.stage == "conversion" for d in ch.details]
    return {
        "techniques": dict(sorted(collections.Counter(
            k for d in conv if isinstance(d, HandlerChange) for k in techniques(d)).items())),
        "converted": len(conv) or sum(len(ch.handlers) for ch in changes
                                      if ch.stage == "conversion"),
        "library": sum(max(1, len(ch.details)) for ch in changes if ch.stage == "library"),
        "forwarders": sum(max(1, len(ch.details)) for ch in changes
                          if ch.stage == "forwarders"),
        "skipped": dict(sorted(collections.Counter(h.klass.value for h in skipped).items())),
        "skipped_total": len(skipped),
    }


def _build_each(tmp: Path, gt: GitTree, base: str, jobs: int | None) -> dict:
    """What the cover letter says of testing: every touched object built
    after each patch (verify --build), on a worktree of the user's repo."""
    from .verify import verify

    rep = verify(tmp, gt.path, base=base, build=True, jobs=jobs)
    objs = [o for p in rep.patches for o in p.objects]
    failed = [o for o in objs if o.status == "failed"]
    if failed or not rep.passed:
        log.warning("series: the build check failed (%s); the cover letter says so",
                    ", ".join(o.object for o in failed) or "see mmconvert verify")
    from .build import ARCH

    built = [o for o in objs if o.status in ("passed", "failed")]
    cross: dict[str, set[str]] = {}
    for o in built:
        if o.arch and o.arch != ARCH:
            cross.setdefault(o.arch, set()).add(o.object)
    on_x86 = ["x86_64"] if any(o.arch in ("", ARCH) for o in built) else []
    arch = "allmodconfig, " + "; ".join(on_x86 + [f"{a} for {', '.join(sorted(os_))}"
                                                  for a, os_ in sorted(cross.items())])
    return {"passed": sorted({o.object for o in objs if o.status == "passed"}),
            "failed": sorted({(o.object, o.reason) for o in failed}),
            "skipped": sorted({(o.object, o.reason) for o in objs if o.status == "skipped"}),
            "at_base": sorted({(o.object, o.reason) for o in objs
                               if o.status == "fails-at-base"}),
            "applied": all(p.apply == "applied" for p in rep.patches),
            "arch": arch}


def render_cover(api: ApiFacts, patches: list[Patch], counts: dict, skipped: list[Handler],
                 warnings: list[FileWarning], cocci: list[tuple[str, str]],
                 base: str, listed: Sequence = (), testing: dict | None = None
                 ) -> tuple[str, str]:
    """(subject, blurb) of the cover letter."""
    from .build import HEADER_USERS

    env = prose.env()
    ctx = _context(api)
    ctx.update(patches=patches, census=counts,
               skipped=sorted(skipped, key=lambda h: (h.klass.value, h.reason.file, h.name)),
               warnings=sorted(warnings, key=lambda w: (w.file, w.problem)),
               cocci=cocci, changing=("convert", "forwarders_patch"), base=base,
               listed=list(listed), testing=testing,
               can_merge=can_merge([d for p in patches for d in p.details]),
               headers=any(f.endswith(".h") for p in patches for ch in p.changes for f in ch.files),
               header_users=HEADER_USERS,
               prefixes=sorted({p.prefix for p in patches if p.prefix}),
               touches_mm=any(f.startswith("mm/") for p in patches for f in p.files))
    subject = " ".join(env.get_template("series-cover-subject.j2").render(**ctx).split())
    text = env.get_template("cover-letter.j2").render(**ctx)
    return subject, wrap(text)


# -- git work -------------------------------------------------------------

def identity(gt: GitTree) -> tuple[str, str] | None:
    name = gt.run("config", "user.name", check=False).strip()
    email = gt.run("config", "user.email", check=False).strip()
    return (name, email) if name and email else None


def commit_env(gt: GitTree, base: str, ident: tuple[str, str] | None) -> dict[str, str]:
    date = gt.run("log", "-1", "--date=raw", "--format=%cd", base).strip()
    env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    name, email = ident or (NEUTRAL_NAME, NEUTRAL_EMAIL)
    env.update(GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email,
               GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email)
    return env


def commit(wt: GitTree, p: Patch, env: dict[str, str], signoff: bool,
           carried: tuple[str, ...] = ()) -> str:
    """Commit what pipeline.apply_changes() put in the index: the changelog, then the
    Signed-off-by of `--signoff`, then the trailers carried from version
    N-1 (written here, not by git, whose trailer settings vary by machine)."""
    args = ["-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify",
            "--allow-empty-message", "--cleanup=verbatim", "-F", "-"]
    trailers = [f"Signed-off-by: {env['GIT_COMMITTER_NAME']} <{env['GIT_COMMITTER_EMAIL']}>"
                ] if signoff else []
    trailers += [t for t in carried if t not in trailers]
    block = "\n\n" + "\n".join(trailers) if trailers else ""
    status, _, err = wt.run_rc(*args, input=f"{p.subject}\n\n{p.body}{block}\n", env=env)
    if status != 0:
        raise SeriesError(f"git commit failed for '{p.subject}': "
                          f"{(err.strip().splitlines() or ['?'])[0]}")
    return wt.head()


def default_branch(generation: str, short_base: str, reroll: int) -> str:
    name = f"mmconvert/{generation}-{short_base}"
    return name if reroll <= 1 else f"{name}-v{reroll}"


def _add_headers(path: Path, to: list[str], cc: list[str]) -> None:
    """To:/Cc: into a format-patch file's header block."""
    text = path.read_text()
    head, sep, rest = text.partition("\n\n")
    lines = []
    for name, addrs in (("To", to), ("Cc", cc)):
        if addrs:
            lines.append(f"{name}: " + ",\n    ".join(addrs))
    if lines:
        path.write_text(head + "\n" + "\n".join(lines) + sep + rest)


def _fill_cover(path: Path, subject: str, blurb: str, date_from: Path, change: str) -> None:
    """Subject and blurb into format-patch's cover letter, dated like the
    patches (format-patch dates it now, which would differ on every run),
    and b4's change-id under base-commit."""
    text = path.read_text()
    text = re.sub(r"^(base-commit: .*)$", lambda m: f"{m.group(1)}\nchange-id: {change}", text,
                  count=1, flags=re.MULTILINE)
    date = re.search(r"^Date: .*$", date_from.read_text(), flags=re.MULTILINE)
    if date:
        text = re.sub(r"^Date: .*$", lambda _: date.group(0), text, count=1,
                      flags=re.MULTILINE)
    text = text.replace("*** SUBJECT HERE ***", subject, 1)
    text = text.replace("*** BLURB HERE ***", blurb, 1)
    path.write_text(text)


def _format_patch(wt: GitTree, base: str, out: Path, reroll: int,
                  previous: rr.Previous | None, env: dict[str, str]) -> list[Path]:
    # A fixed abbreviation: git's default grows with the object count, so the
    # index lines would change when the repository is repacked.
    args = ["-c", "diff.noprefix=false", "-c", "diff.mnemonicPrefix=false", "-c", "core.abbrev=12",
            "-c", "format.signOff=false", "-c", "format.coverLetter=false",
            "format-patch", "--quiet", "--cover-letter", f"--base={base}", "--no-signature",
            "--no-thread", "--no-to", "--no-cc", "--no-add-header", "--no-signoff",
            "--no-attach", "--no-renames", "-o", str(out)]
    if reroll > 1:
        args.append(f"-v{reroll}")
    if previous:
        args.append(f"--range-diff={previous.base}..{previous.tip}")
    args.append(f"{base}..HEAD")
    status, _, err = wt.run_rc(*args, env=env)
    if status != 0:
        raise SeriesError(f"git format-patch failed: {(err.strip().splitlines() or ['?'])[0]}")
    return sorted(out.glob("*.patch"))


class _Recipients:
    """get_maintainer.pl for each patch as soon as it is committed, on the
    patch's diff, two at a time by default, while the next ones are made."""

    def __init__(self, root: Path, maint: Maintainers, jobs: int | None):
        self.root, self.maint = root, maint
        self.tmp = scratch.mkdtemp(scratch.PREFIX + "recipients-")
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, jobs or min(2, os.cpu_count() or 1)))
        self.pending: list[concurrent.futures.Future] = []

    def submit(self, p: Patch) -> None:
        diff = self.tmp / f"{len(self.pending):04d}.diff"
        diff.write_text("".join(ch.diff for ch in p.changes))
        self.pending.append(self.pool.submit(recipients, self.root, self.maint, diff, p.files))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _recipients_all(rcpt: _Recipients, patches: list[Patch]) -> None:
    """To and Cc of every patch, once get_maintainer.pl has answered."""
    for p, fut in zip(patches, rcpt.pending, strict=True):
        p.to, p.cc = fut.result()


def _api_recipients(wt: GitTree, maint: Maintainers, api: ApiFacts
                    ) -> tuple[list[str], list[str]]:
    """(everyone for the hook's own files, the lists of include/linux/fs.h):
    the owners of the API being migrated see the cover letter, and the VFS
    list every file-system patch."""
    hook_users = wt.grep_files([f"->{api.hook}"], fixed=True, pathspecs=("mm/*.c",))
    files = [f for f in (*HEADERS, *hook_users) if (wt.path / f).is_file()]
    if not files:
        return [], []
    to, cc = recipients(wt.path, maint, None, files)
    fs_h = "include/linux/fs.h"
    lists = [a for part in recipients(wt.path, maint, None, [fs_h]) for a in part
             if "<" not in a] if (wt.path / fs_h).is_file() else []
    return _union([to, cc]), lists


def _person(address: str) -> str:
    """Who an address is: the name when it has one (MAINTAINERS lists some
    people under two addresses, in two sections), else the address."""
    name = address.split("<", 1)[0].strip().strip('"') if "<" in address else ""
    return (name or address).lower()


def _union(lists: list[list[str]], exclude: Sequence[str] = ()) -> list[str]:
    """The addresses of `lists` in order, each person once."""
    seen = {_person(a) for a in exclude}
    out = []
    for lst in lists:
        for a in lst:
            if _person(a) not in seen:
                seen.add(_person(a))
                out.append(a)
    return out


def build(tree: Path, out_dir: Path | str, *, api: str = "auto", base: str = "HEAD",
          branch: str | None = None, signoff: bool = False, reroll: int = 1,
          only: tuple[str, ...] = (), force: bool = False, jobs: int | None = None,
          timeout: int | None = None, cache=None, progress=None,
          planner=None, reuse: bool = True, build_check: bool = False,
          previous_ref: str | None = None, previous_link: str | None = None) -> SeriesResult:
    """Make the series.  `planner(wt, api, after_forwarders)` replaces the
    planning stages (tests give it changes made from real diffs).  With
    `reuse`, an identical earlier series and cached spatch results are used.
    From `reroll` 2 on, version N-1 is looked up (reroll.py; `previous_ref`
    names it) for the range-diff, the changes and the carried trailers."""
    from . import spatch
    from .tree import open_tree, resolve

    gt = open_tree(tree)
    if reroll < 1:
        raise UsageError("-v must be 1 or more")
    if (previous_ref or previous_link) and reroll < 2:
        raise UsageError("--previous and --previous-link need -v 2 or more")
    out_dir = check_output_dir(gt, out_dir, force)
    base_sha = gt.resolve(base)
    if previous_ref:
        rr.check_ref(gt, previous_ref)
    ident = identity(gt)
    if signoff and ident is None:
        raise UsageError("--signoff needs your git identity (git config user.name and "
                         "user.email)")
    timeout = timeout or spatch.DEFAULT_TIMEOUT
    cache = cache if cache is not None else spatch.Cache()
    if not reuse:
        cache = None
    records = SeriesCache(gt) if reuse and planner is None else None
    key = SeriesCache.key(base=base_sha, api=api, signoff=signoff, ident=ident, reroll=reroll,
                          only=sorted(only), build=build_check,
                          link=previous_link) if records else ""
    entry = records.get(key) if records else None
    if entry is not None:
        name, existed = _branch_for(gt, entry.generation, base_sha, branch, reroll, force)
        prev = _previous(gt, entry.generation, only, reroll, base_sha, previous_ref, quiet=True)
        if (prev.identity if prev else None) == entry.previous:
            log.info("series: same inputs as an earlier run; reusing its commits %s",
                     gt.short(entry.head))
            tmp = _tmp_dir(out_dir)
            try:
                for fname, text in entry.files:
                    (tmp / fname).write_text(text)
                _publish(gt, tmp, out_dir, name, existed, entry.head)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            if entry.record:
                rr.Records(gt).put(rr.campaign(entry.generation, only),
                                   dict(entry.record, branch=name))
            names = [out_dir / fname for fname, _ in entry.files]
            return SeriesResult(out_dir=out_dir, cover_letter=names[0],
                                patches=tuple(names[1:]), branch=name, base=base_sha,
                                census=entry.census)

    with gt.worktree(base_sha, sparse=SPARSE_SEED) as wt, contextlib.ExitStack() as stack:
        facts = resolve(wt.path, api, name=tree)
        if not facts.has_hook:
            raise UsageError("no API generation to convert to")
        name, existed = _branch_for(gt, facts.generation, base_sha, branch, reroll, force)
        prev = _previous(gt, facts.generation, only, reroll, base_sha, previous_ref)
        if previous_link and prev is None:
            log.warning("series: --previous-link is not used: without v%d there is no "
                        "'Changes in v%d' to put it in", reroll - 1, reroll)
        campaign = rr.campaign(facts.generation, only)
        change = prev.change_id if prev else rr.change_id(gt, campaign, base_sha)
        matcher = rr.Matcher(prev) if prev else None
        pairs: list[rr.PatchInfo | None] = []
        maint = Maintainers(wt.path)
        env = commit_env(gt, base_sha, ident)
        patches: list[Patch] = []
        rcpt = _Recipients(wt.path, maint, jobs)
        stack.callback(rcpt.close)

        def commit_stage(changes: list[Change]) -> None:
            for p in group(changes, maint):
                pipeline.apply_changes(wt, p.changes, index=True)
                render_patch_text(p, facts, wt, maint)
                carried: tuple[str, ...] = ()
                if matcher is not None:
                    old = matcher.match(_key(p), p.subject)
                    pairs.append(old)
                    if old and old.trailers and _staged_patch_id(wt) == old.patch_id:
                        carried = old.trailers
                commit(wt, p, env, signoff, carried)
                patches.append(p)
                rcpt.submit(p)
                log.debug("series: %s", p.subject)

        listed: list = []
        if planner is not None:
            fch, cch, skipped, warnings, cocci = planner(wt, facts, commit_stage)
        else:
            plan = pipeline.plan(wt, facts, only=tuple(only), jobs=jobs, timeout=timeout,
                                 cache=cache, progress=progress, after_forwarders=commit_stage)
            fch = [c for c in plan.changes if c.stage == "forwarders"]
            cch = [c for c in plan.changes if c.stage != "forwarders"]
            skipped, warnings, cocci = list(plan.skipped), list(plan.warnings), list(plan.cocci)
            listed = [s for s in plan.forwarders if s.state == "listed"]
        commit_stage(cch)
        if not patches:
            raise SeriesError("nothing to convert: no patches to write")
        counts = census(fch + cch, skipped)
        head = wt.head()
        ids = rr.patch_ids(wt, f"{base_sha}..{head}")
        commits = wt.run("rev-list", "--reverse", f"{base_sha}..{head}").split()
        new = [rr.NewPatch(p.subject, _key(p), _handlers(p) if not prev or prev.exact
                           else rr.handlers_in_diff(wt.run("show", "--format=", c)),
                           ids.get(c, ""), rr.strip_trailers(wt.run("log", "-1", "--format=%B", c)))
               for p, c in zip(patches, commits, strict=True)]
        if matcher is not None:
            pairs = matcher.finish(new, pairs)
        changes = _changes_text(facts, reroll, prev, new, pairs, skipped, previous_link,
                                gt, wt, base_sha) if prev else ""

        tmp = _tmp_dir(out_dir)
        try:
            files = _format_patch(wt, base_sha, tmp, reroll, prev, env)
            cover, files = files[0], files[1:]
            if len(files) != len(patches):
                raise SeriesError(f"internal error: {len(patches)} commits but "
                                  f"{len(files)} patches written")
            _recipients_all(rcpt, patches)
            api_people, vfs_lists = _api_recipients(wt, maint, facts)
            # The lists where the hook's owners read, so they can review
            # each patch, not only the cover letter.
            api_lists = [a for a in api_people if "<" not in a]
            for f, p in zip(files, patches, strict=False):
                extra = vfs_lists if any(x.startswith("fs/") for x in p.files) else []
                p.cc = _union([p.cc, extra, api_lists], exclude=p.to)
                _add_headers(f, p.to, p.cc)
            testing = _build_each(tmp, gt, base_sha, jobs) if build_check else None
            subject, blurb = render_cover(facts, patches, counts, skipped, warnings, cocci,
                                          base_sha, listed, testing)
            _fill_cover(cover, subject, blurb + changes, files[0], change)
            to = _union([p.to for p in patches])
            _add_headers(cover, to, _union([*(p.cc for p in patches), api_people], exclude=to))
            version = rr.record(reroll, change, base_sha, head, name,
                                [rr.PatchInfo(n.key, n.subject, n.handlers) for n in new])
            if records and not any(w.problem == "timeout" for w in warnings):
                records.put(key, Entry(
                    facts.generation, head, prev.identity if prev else None,
                    [(f.name, f.read_text()) for f in [cover, *files]], counts, version))
            _publish(gt, tmp, out_dir, name, existed, head)
            rr.Records(gt).put(campaign, version)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    names = [out_dir / f.name for f in files]
    return SeriesResult(out_dir=out_dir, cover_letter=out_dir / cover.name,
                        patches=tuple(names), branch=name, base=base_sha, census=counts)


def _key(p: Patch) -> str:
    return f"{p.stage}:{p.subsystem}"


def _handlers(p: Patch) -> tuple[str, ...]:
    return tuple(dict.fromkeys(h for ch in p.changes for h in ch.handlers))


def _staged_patch_id(wt: GitTree) -> str:
    """`git patch-id --stable` of what is about to be committed."""
    diff = wt.run("diff", "--cached", "--no-color", "--no-textconv", "--no-ext-diff",
                  "--no-renames")
    return (wt.run("patch-id", "--stable", input=diff).split() or [""])[0]


def _previous(gt: GitTree, generation: str, only: tuple[str, ...], reroll: int, base: str,
              ref: str | None, quiet: bool = False) -> rr.Previous | None:
    if reroll < 2:
        return None
    prev = rr.find(gt, generation, only, reroll, base, ref)
    if prev is not None and not quiet:
        log.info("series: v%d is %s..%s (found by %s)", prev.version, gt.short(prev.base),
                 gt.short(prev.tip), prev.found)
    if prev is None and not quiet:
        log.warning("series: no v%d of this series found (no record of it, no branch "
                    "mmconvert/%s-*%s; --previous REF names it): v%d has no range-diff",
                    reroll - 1, generation, f"-v{reroll - 1}" if reroll > 2 else "", reroll)
    return prev


def _changes_text(api: ApiFacts, reroll: int, prev: rr.Previous, new: list[rr.NewPatch],
                  pairs: list[rr.PatchInfo | None], skipped: list[Handler],
                  link: str | None, gt: GitTree, wt: GitTree, base: str) -> str:
    """The "Changes in vN" section, below the cover letter's ---."""
    why = {h.name: (h.klass.value, f"{h.reason.file}:{h.reason.line}",
                    " ".join(h.reason.expression.split())) for h in skipped}
    old = {h for p in prev.patches for h in p.handlers} - {h for n in new for h in n.handlers}
    hits = wt.grep_lines(sorted(old), fixed=True, words=True, checkout=False)
    gone = {h for h in old - why.keys()
            if not any(re.search(rf"\b{re.escape(h)}\b", text) for _, _, text in hits)}
    ds = rr.deltas(prev, new, pairs, why, gone)
    text = prose.render("changes.j2", version=reroll, previous=prev.version, deltas=ds,
                        rebased=(gt.short(prev.base), gt.short(base)) if prev.base != base
                        else None, link=rr.lore_link(link) if link else None,
                        hook=api.hook or "mmap_prepare")
    return "\n\n" + wrap(text) + "\n\n---"


# What `git format-patch` names its files, with or without -v N.
_PATCH_NAME = re.compile(r"(?:v\d+-)?\d{4}-[^/]*\.patch")


def check_output_dir(gt: GitTree, out_dir: Path | str, force: bool) -> Path:
    """DIR made absolute, refused unless writing the series there can lose
    nothing: never the tree, a directory inside it or one that holds it
    (or its git directory), whatever `--force` says; with `--force`, an
    existing DIR is replaced only when it holds nothing but a series."""
    if not str(out_dir).strip():
        raise UsageError("-o: an output directory is needed")
    out = Path(out_dir).resolve()
    common = Path(gt.run("rev-parse", "--path-format=absolute", "--git-common-dir").strip())
    for what, path in (("the tree", gt.path), ("its git directory", common.resolve())):
        if out == path or out.is_relative_to(path) or path.is_relative_to(out):
            where = ("is" if out == path else "is inside" if out.is_relative_to(path)
                     else "holds")
            raise UsageError(f"{out}: {where} {what} ({path}); write the series somewhere else")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: not a directory")
    if out.is_dir():
        entries = sorted(out.iterdir())
        if entries and not force:
            raise UsageError(f"{out}: not empty (use --force to replace an earlier series)")
        other = [p.name for p in entries if p.is_symlink() or not p.is_file()
                 or not _PATCH_NAME.fullmatch(p.name)]
        if other:
            raise UsageError(f"{out}: holds more than a patch series ({other[0]}); "
                             "--force replaces only an earlier series")
    return out


def _branch_for(gt: GitTree, generation: str, base_sha: str, branch: str | None, reroll: int,
                force: bool) -> tuple[str, bool]:
    """(branch name, whether it exists)."""
    name = branch or default_branch(generation, gt.short(base_sha), reroll)
    if gt.run_rc("check-ref-format", "--branch", name)[0] != 0:
        raise UsageError(f"{name}: not a valid branch name")
    existed = gt.branch_exists(name)
    if existed and not force:
        raise UsageError(f"branch {name} exists (use --force to replace it, or -v N "
                         "for a new version)")
    return name, existed


def _tmp_dir(out_dir: Path) -> Path:
    """Where the series is written before it replaces DIR in one rename
    (and what a killed run left there is removed first)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch.sweep(out_dir.parent, prefix=f".{out_dir.name}.tmp-")
    return scratch.mkdtemp(f".{out_dir.name}.tmp-", dir=out_dir.parent)


def _publish(gt: GitTree, tmp: Path, out_dir: Path, name: str, existed: bool,
             head: str) -> None:
    """Set the branch, then move the finished series into place; undo the
    branch if the move fails."""
    old = gt.resolve(name) if existed else None
    status, _, err = gt.run_rc("branch", "--force" if existed else "--no-track", name, head)
    if status != 0:
        raise SeriesError(f"cannot set branch {name}: {(err.strip().splitlines() or ['?'])[0]}")
    try:
        _replace_dir(tmp, out_dir)
    except BaseException:
        if old:
            gt.run_rc("branch", "--force", name, old)
        else:
            gt.run_rc("branch", "-D", name)
        raise


def _replace_dir(new: Path, dest: Path) -> None:
    """Put `new` where `dest` is, in one rename when `dest` is absent.  The
    finished series no longer needs its scratch mark."""
    (new / scratch.OWNER).unlink(missing_ok=True)
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        old.rmdir()
        dest.rename(old)
        try:
            new.rename(dest)
        except BaseException:
            old.rename(dest)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(dest)


# -- command ----------------------------------------------------------------

def run_series(tree: Path, *, out: str, api: str, base: str, branch: str | None, signoff: bool,
               reroll: int, only: list[str] | None, force: bool, jobs: int | None,
               timeout: int, no_cache: bool, build_check: bool, previous: str | None,
               previous_link: str | None) -> None:
    """`mmconvert series`: build the series, print its census and cover letter."""
    from .ui import progress, run

    res = run(lambda: build(tree, out, api=api, base=base, branch=branch, signoff=signoff,
                            reroll=reroll, only=tuple(only or ()), force=force, jobs=jobs,
                            timeout=timeout, progress=progress, reuse=not no_cache,
                            build_check=build_check, previous_ref=previous,
                            previous_link=previous_link))
    c = res.census
    skipped = ", ".join(f"{k} {v}" for k, v in c["skipped"].items()) or "none"
    print(f"{len(res.patches)} patches on branch {res.branch} "
          f"({c['converted']} converted, {c['forwarders']} forwarder changes, "
          f"{c['library']} library twins; skipped: {skipped})")
    print(res.cover_letter)
