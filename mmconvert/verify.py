"""`mmconvert verify`: does a patch series apply, read well, pass checkpatch
and build at every step?

Works on any `git format-patch` series (ours, hand-edited, rebased).  The
patches are applied with `git am` (no 3-way) in a temporary worktree of the
tree, which goes away on every exit path: the user's checkout is never
touched.  Objects are built by `build.py`.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import logging
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from . import boot as bootmod
from . import build as buildmod
from . import runner
from .errors import ToolMissing, TreeError, UsageError
from .gitrepo import GitTree
from .model import to_json

log = logging.getLogger("mmconvert")

MAX_SUMMARY = 75  # Documentation/process/submitting-patches.rst: "about 75"
_SUBJECT = re.compile(r"^\[(?P<tags>[^\]]*?)(?:\s*(?P<k>\d+)/(?P<n>\d+))?\]\s*(?P<summary>.*)$")
_BASE = re.compile(r"^base-commit:\s*([0-9a-fA-F]{7,40})\s*$", re.MULTILINE)
_AM_FAILED = re.compile(r"error: patch failed: (.+):(\d+)$", re.MULTILINE)
_AM_ERROR = re.compile(r"^error: (.*)$", re.MULTILINE)
_CP_LINE = re.compile(r"^(?:\S*: )?(?P<kind>ERROR|WARNING|CHECK): (?P<msg>.*)$")
COMMITTER = {"GIT_COMMITTER_NAME": "mmconvert verify",
             "GIT_COMMITTER_EMAIL": "verify@mmconvert.invalid"}


# -- the series ---------------------------------------------------------------------
@dataclass
class PatchFile:
    path: Path
    subject: str
    summary: str
    number: int | None
    total: int | None
    body: str

    @property
    def label(self) -> str:
        return f"{self.number}/{self.total}" if self.number else self.path.name


@dataclass
class Series:
    directory: Path
    cover: PatchFile | None
    patches: list[PatchFile]

    def base_commit(self) -> str | None:
        """The `base-commit:` line format-patch --base writes (cover letter,
        or the first patch when there is none)."""
        for p in ([self.cover] if self.cover else []) + self.patches[:1]:
            m = _BASE.search(p.body)
            if m:
                return m.group(1)
        return None


def _read_mail(path: Path) -> PatchFile:
    raw = path.read_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    subject = " ".join(str(msg.get("Subject", "")).split())
    m = _SUBJECT.match(subject)
    number = total = None
    summary = subject
    if m:
        summary = m.group("summary")
        if m.group("k"):
            number, total = int(m.group("k")), int(m.group("n"))
    return PatchFile(path, subject, summary, number, total, raw.decode("utf-8", "replace"))


def load_series(directory: Path) -> Series:
    """The cover letter and patches of a format-patch output directory."""
    if not directory.is_dir():
        raise UsageError(f"{directory}: not a directory")
    files = sorted(directory.glob("*.patch"))
    if not files:
        raise UsageError(f"{directory}: no *.patch files (expected git format-patch output)")
    cover = None
    patches = []
    for f in files:
        p = _read_mail(f)
        if p.number == 0 or f.name.startswith("0000-cover-letter"):
            cover = p
        else:
            patches.append(p)
    if not patches:
        raise UsageError(f"{directory}: only a cover letter, no patches")
    return Series(directory, cover, patches)


# -- results --------------------------------------------------------------------------
@dataclass
class PatchResult:
    file: str
    label: str
    subject: str
    format_errors: list[str] = field(default_factory=list)
    apply: str = "not reached"  # "applied" | "failed" | "not reached"
    apply_error: str = ""
    checkpatch_errors: list[str] | None = None  # None: not run
    checkpatch_warnings: list[str] | None = None
    objects: list[buildmod.ObjectResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.format_errors or self.apply == "failed" or self.checkpatch_errors
                    or any(o.status == "failed" for o in self.objects))

    @property
    def status(self) -> str:
        if self.failed:
            return "FAIL"
        return "ok" if self.apply == "applied" else "not reached"


@dataclass
class Report:
    series: str
    tree: str
    base: str
    base_source: str
    checkpatch: bool
    build: bool
    series_errors: list[str] = field(default_factory=list)
    patches: list[PatchResult] = field(default_factory=list)
    build_note: str = ""
    header_objects: dict[str, list[str]] = field(default_factory=dict)
    objects_built: int = 0
    build_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.series_errors and all(
            not p.failed and p.apply == "applied" for p in self.patches)

    def to_json(self) -> dict:
        out = to_json(self)
        out["passed"] = self.passed
        for p, j in zip(self.patches, out["patches"], strict=False):
            j["status"] = p.status
        return out


# -- well-formedness ------------------------------------------------------------------------
def _diff_text(body: str) -> str:
    """The diff part of a format-patch mail (without the signature)."""
    start = body.find("\ndiff --git ")
    if start < 0:
        start = body.find("\n--- ")
    if start < 0:
        return ""
    text = body[start + 1:]
    sig = re.search(r"^-- $", text, re.MULTILINE)
    return text[:sig.start()] if sig else text


def check_patch_format(p: PatchFile) -> tuple[list[str], PatchSet | None]:
    """Problems unidiff finds in one patch, and the parsed patch."""
    errors = []
    if not p.summary.strip():
        errors.append("no subject")
    elif len(p.summary) > MAX_SUMMARY:
        errors.append(f"subject is {len(p.summary)} characters after the [PATCH] prefix "
                      f"(at most {MAX_SUMMARY})")
    diff = _diff_text(p.body)
    if not diff.strip():
        errors.append("empty patch: no diff")
        return errors, None
    try:
        ps = PatchSet(diff)
    except UnidiffParseError as e:
        errors.append(f"malformed diff: {e}")
        return errors, None
    if not len(ps):
        errors.append("empty patch: no file changes")
    for pf in ps:
        if not len(pf) and not (pf.is_binary_file or pf.is_rename or pf.is_added_file
                                or pf.is_removed_file or "old mode" in str(pf.patch_info)):
            errors.append(f"{pf.path}: no hunks")
        for h in pf:
            if (h.source_length != sum(1 for ln in h if not ln.is_added)
                    or h.target_length != sum(1 for ln in h if not ln.is_removed)):
                errors.append(f"{pf.path}: hunk @@ -{h.source_start},{h.source_length} "
                              f"+{h.target_start},{h.target_length} @@ line counts do not "
                              "match its lines")
            for ln in h:
                if ln.is_added and ln.value.rstrip("\n") != ln.value.rstrip("\n").rstrip(" \t"):
                    errors.append(f"{pf.path}:{ln.target_line_no}: added line has trailing "
                                  "whitespace")
    return errors, ps


def check_numbering(series: Series) -> list[str]:
    """1/N .. N/N complete, one N, cover letter when N > 1."""
    errors: list[str] = []
    n = len(series.patches)
    numbers = [p.number for p in series.patches]
    if n == 1 and numbers == [None]:
        return errors
    totals = {p.total for p in series.patches}
    if None in numbers:
        errors.append("some patches have no k/N number in the subject: "
                      + ", ".join(p.path.name for p in series.patches if p.number is None))
        return errors
    ks = [k for k in numbers if k is not None]          # all of them, from here on
    if totals != {n}:
        errors.append(f"subjects say N = {', '.join(str(t) for t in sorted(t for t in totals if t))}, "
                      f"but the directory has {n} patches")
    if sorted(ks) != list(range(1, n + 1)):
        errors.append(f"numbering is not 1/{n}..{n}/{n}: "
                      + ", ".join(f"{k}" for k in ks))
    elif ks != sorted(ks):
        errors.append("file order does not match patch numbers")
    if n > 1 and series.cover is None:
        errors.append(f"no cover letter (0/{n}) for a series of {n} patches")
    return errors


# -- checkpatch -----------------------------------------------------------------------
def run_checkpatch(tree: Path, patch: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings) of the tree's own scripts/checkpatch.pl."""
    script = tree / "scripts" / "checkpatch.pl"
    cmd = ["perl", str(script), "--terse", "--no-summary", "--showfile", str(patch.resolve())]
    try:
        p = runner.run(cmd, cwd=tree, errors="replace", no_stdin=True, check=False)
    except FileNotFoundError:
        raise ToolMissing("perl is not installed (checkpatch.pl needs it)") from None
    if p.returncode not in (0, 1):
        raise TreeError(f"checkpatch.pl failed (status {p.returncode}): "
                        f"{(p.stderr or p.stdout).strip().splitlines()[:1]}")
    errors: list[str] = []
    warnings: list[str] = []
    for line in p.stdout.splitlines():
        m = _CP_LINE.match(line)
        if not m:
            continue
        (errors if m.group("kind") == "ERROR" else warnings).append(line.strip())
    if p.returncode == 1 and not errors and not warnings:
        errors.append(p.stdout.strip().splitlines()[0] if p.stdout.strip() else
                      "checkpatch.pl exited 1 without a message")
    return errors, warnings


# -- applying -------------------------------------------------------------------------
def _apply_failure(out: str, ps: PatchSet | None) -> str:
    """Name the file and hunk git am could not apply."""
    m = _AM_FAILED.search(out)
    if m:
        path, line = m.group(1), int(m.group(2))
        hunk = ""
        if ps is not None:
            for pf in ps:
                if pf.path != path:
                    continue
                for i, h in enumerate(pf, 1):
                    if h.source_start == line:
                        hunk = (f"hunk #{i} (@@ -{h.source_start},{h.source_length} "
                                f"+{h.target_start},{h.target_length} @@)")
        return f"{path}: {hunk or f'hunk at line {line}'} does not apply"
    errs = [e for e in _AM_ERROR.findall(out) if "could not build fake ancestor" not in e]
    return errs[0] if errs else (out.strip().splitlines() or ["git am failed"])[0]


def _touched(wt: GitTree) -> list[str]:
    out = wt.run("diff", "--name-only", "--no-renames", "-z", "HEAD~1", "HEAD")
    return [p for p in out.split("\0") if p]


def verify(series_dir: Path, tree: Path, base: str | None = None, checkpatch: bool = False,
           build: bool = False, jobs: int | None = None) -> Report:
    """Check the series in `series_dir` against `tree`; never touches the tree."""
    started = time.monotonic()
    series = load_series(series_dir)
    gt = GitTree(tree)
    if base:
        try:
            base_id = gt.resolve(base)
        except UsageError:
            raise UsageError(f"--base {base}: not a commit in {tree}") from None
        source = f"--base {base}"
    else:
        named = series.base_commit()
        if not named:
            raise UsageError(f"{series_dir}: no base-commit: line in the cover letter; "
                             "pass --base REF")
        try:
            base_id = gt.resolve(named)
        except UsageError:
            raise UsageError(f"base commit {named} (from the cover letter) is not in {tree}; "
                             "fetch it or pass --base REF") from None
        source = "the cover letter's base-commit"
    if checkpatch and not (gt.path / "scripts" / "checkpatch.pl").is_file():
        raise UsageError(f"{tree}: no scripts/checkpatch.pl, cannot run --checkpatch")
    report = Report(str(series_dir), str(gt.path), base_id, source, checkpatch, build)
    report.series_errors = check_numbering(series)
    named_base = series.base_commit()

    parsed = {}
    for p in series.patches:
        r = PatchResult(p.path.name, p.label, p.summary)
        r.format_errors, parsed[p.path] = check_patch_format(p)
        report.patches.append(r)

    with gt.worktree(base_id) as wt:
        if checkpatch:
            for p, r in zip(series.patches, report.patches, strict=False):
                log.info("checkpatch %s", p.label)
                r.checkpatch_errors, r.checkpatch_warnings = run_checkpatch(wt.path, p.path)
        ctx = buildmod.builder_for(wt, base_id, jobs) if build else contextlib.nullcontext()
        with ctx as builder:
            for p, r in zip(series.patches, report.patches, strict=False):
                log.info("applying %s %s", p.label, p.summary)
                status, out, err = wt.run_rc("am", "--no-3way", "--quiet", str(p.path.resolve()),
                                             env=COMMITTER)
                if status != 0:
                    r.apply = "failed"
                    r.apply_error = _apply_failure(out + "\n" + err, parsed[p.path])
                    if p is series.patches[0] and named_base and not base_id.startswith(
                            named_base.lower()):
                        r.apply_error += (f" (the series says base-commit {named_base[:12]}, "
                                          f"it was applied to {base_id[:12]})")
                    wt.run_rc("am", "--abort")
                    break
                r.apply = "applied"
                if builder is not None:
                    touched = _touched(wt)
                    builder.sync(touched)
                    present = [f for f in touched if (wt.path / f).is_file()]
                    targets, skipped = buildmod.targets_for(wt, present, builder.kind == "kbuild",
                                                             builder.unselected)
                    for t in targets:
                        if t.via:
                            report.header_objects.setdefault(t.via, [])
                            if t.object not in report.header_objects[t.via]:
                                report.header_objects[t.via].append(t.object)
                    log.info("building %s: %d objects", p.label, len(targets))
                    r.objects = skipped + builder.build(targets)
            if builder is not None:
                report.build_note = builder.setup_note   # with the architectures it used
                report.objects_built = builder.objects_built
                report.build_seconds = round(builder.seconds, 1)
    report.seconds = round(time.monotonic() - started, 1)
    return report


# -- output -----------------------------------------------------------------------------
def summary_text(rep: Report) -> str:
    lines = [(f"series {rep.series}: {len(rep.patches)} patches on {rep.base[:12]} "
              f"({rep.base_source}), tree {rep.tree}")]
    for e in rep.series_errors:
        lines.append(f"  series: FAIL {e}")
    stopped = next((p for p in rep.patches if p.apply == "failed"), None)
    for p in rep.patches:
        lines.append(f"  [{p.label}] {p.status:<4} {p.subject}")
        for e in p.format_errors:
            lines.append(f"      format: {e}")
        if p.apply == "failed":
            lines.append(f"      apply: {p.apply_error}; the run stops here")
        elif p.apply == "not reached":
            lines.append(f"      not applied: the series stopped at {stopped.label}"
                         if stopped else "      not applied")
        if p.checkpatch_errors is not None:
            lines.append(f"      checkpatch: {len(p.checkpatch_errors)} errors, "
                         f"{len(p.checkpatch_warnings or [])} warnings")
            lines += [f"        {x}" for x in p.checkpatch_errors + (p.checkpatch_warnings or [])]
        if rep.build and p.apply == "applied":
            built = [o for o in p.objects if o.status in ("passed", "failed")]
            ok = sum(o.status == "passed" for o in built)
            lines.append(f"      build: {ok}/{len(built)} objects passed"
                         + (f" ({', '.join(_on(o) for o in built)})" if built else ""))
            for o in p.objects:
                if o.status == "failed":
                    lines.append(f"        {_on(o)}: FAILED: {o.reason}")
                elif o.status == "fails-at-base":
                    lines.append(f"        {_on(o)}: does not build at the base either "
                                 f"(not the series' doing): {o.reason}")
                elif o.status == "skipped":
                    lines.append(f"        {o.object}: not build-checked: {o.reason}")
    if rep.build:
        lines.append(f"build: {rep.objects_built} objects built in {rep.build_seconds} s; "
                     f"{rep.build_note}")
        if rep.header_objects:
            lines.append("  touched headers: for a shared header, the first "
                         f"{buildmod.HEADER_USERS} files (path order) that #include it and "
                         "x86 allmodconfig builds; for "
                         f"a local header, up to {buildmod.DIR_OBJECTS} .c files of its "
                         "directory, those naming it first:")
            lines += [f"    {h}: built {', '.join(objs)}"
                      for h, objs in rep.header_objects.items()]
        skipped = [o for p in rep.patches for o in p.objects if o.status == "skipped"]
        if skipped:
            lines.append(f"  not build-checked (not counted as passed): {len(skipped)}")
    nok = sum(p.status == "ok" for p in rep.patches)
    verdict = "PASS" if rep.passed else "FAIL"
    lines.append(f"result: {verdict}: {nok} of {len(rep.patches)} patches "
                 f"passed{', series checks failed' if rep.series_errors else ''} "
                 f"({rep.seconds} s)")
    return "\n".join(lines) + "\n"


def _on(o) -> str:
    """An object and the architecture it was built on, when not x86."""
    return f"{o.object} [{o.arch}]" if o.arch and o.arch != buildmod.ARCH else o.object


def junit_xml(rep: Report, booted: bootmod.BootReport | None = None) -> str:
    """One testcase per patch and check (and with `booted`, per converted
    handler as the boot comparison found it), for CI test reports."""
    suite = ET.Element("testsuite", name="mmconvert verify")
    cases = []

    def case(classname: str, name: str, failure: str | None = None, skipped: str | None = None,
             out: str = ""):
        c = ET.SubElement(suite, "testcase", classname=classname, name=name)
        if failure is not None:
            ET.SubElement(c, "failure", message=failure.splitlines()[0] if failure else
                          "failed").text = failure
        elif skipped is not None:
            ET.SubElement(c, "skipped", message=skipped)
        if out:
            ET.SubElement(c, "system-out").text = out
        cases.append((failure, skipped))

    case("series", "numbering", "\n".join(rep.series_errors) or None)
    for p in rep.patches:
        cls = f"patch {p.label} {p.subject}"
        case(cls, "format", "\n".join(p.format_errors) or None)
        if p.apply == "failed":
            case(cls, "apply", p.apply_error)
        elif p.apply == "not reached":
            case(cls, "apply", skipped="not reached: an earlier patch failed to apply")
        else:
            case(cls, "apply")
        if p.checkpatch_errors is not None:
            case(cls, "checkpatch", "\n".join(p.checkpatch_errors) or None,
                 out="\n".join(p.checkpatch_warnings or []))
        if rep.build and p.apply == "applied":
            for o in p.objects:
                if o.status == "failed":
                    case(cls, f"build {o.object}", f"{o.object}: {o.reason}")
                elif o.status == "skipped":
                    case(cls, f"build {o.object}", skipped=f"not build-checked: {o.reason}")
                elif o.status == "fails-at-base":
                    case(cls, f"build {o.object}",
                         skipped=f"does not build at the base either: {o.reason}")
                else:
                    case(cls, f"build {o.object}")
    if booted is not None:
        case("boot", "base and series kernels", booted.error or None)
        for h in booted.handlers:
            where = f"boot {h.file}"
            if h.status == "differs":
                diffs = [f"{d.path} {d.case}: {d.base} -> {d.series}"
                         for d in booted.differences if h.handler.split(" -> ")[0] in d.handlers]
                case(where, h.handler, "\n".join(diffs) or "differs")
            elif h.status == "same":
                case(where, h.handler, out="\n".join(h.paths))
            else:
                case(where, h.handler, skipped=f"{h.status}: {h.detail}" if h.detail else h.status)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(f is not None for f, _ in cases)))
    suite.set("skipped", str(sum(s is not None for _, s in cases)))
    suite.set("time", str(rep.seconds))
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def run_verify(series: Path, *, tree: Path, base: str | None, checkpatch: bool, build: bool,
               json_file: Path | None, junit_file: Path | None, jobs: int | None,
               boot: bool = False) -> bool:
    """`mmconvert verify`: check the series (and with `boot`, what mmap gives
    in a VM before and after it), write the results asked for and print the
    summary; True if everything passed."""
    from .ui import check_output_file, run

    def go():
        check_output_file(json_file, "--json")
        check_output_file(junit_file, "--junit")
        rep = verify(series, tree, base, checkpatch, build, jobs)
        booted = bootmod.boot_check(series, tree, rep.base, jobs) if boot else None
        out = rep.to_json() | ({"boot": booted.to_json(),
                                "passed": rep.passed and booted.passed} if booted else {})
        try:
            for path, text in ((json_file, lambda: json.dumps(out, indent=1) + "\n"),
                               (junit_file, lambda: junit_xml(rep, booted))):
                if path:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text())
        except OSError as e:
            raise UsageError(f"cannot write results: {e}") from None
        return rep, booted

    rep, booted = run(go)
    print(summary_text(rep) + (bootmod.summary_text(booted) if booted else ""), end="")
    return rep.passed and (booted is None or booted.passed)

