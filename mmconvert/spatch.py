"""Generating and running semantic patches.

Templates in cocci/ are rendered with Jinja from the API facts.  spatch runs
once per stage over exactly the candidate files: they are linked into a
scratch directory that is given to `--dir`, so one process with `--jobs`
handles them in parallel (passing files on the command line would make
spatch treat them as one group).  Results are cached per file, keyed by the
file's content id, the rendered rule and the spatch version.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from . import prose, runner, scratch
from .errors import SpatchError, ToolMissing
from .model import FileWarning

log = logging.getLogger("mmconvert")

COCCI_DIR = Path(str(resources.files("mmconvert") / "cocci"))
RECORD = "MMCONVERT "
DEFAULT_TIMEOUT = 200  # the kernel's .cocciconfig
# Part of every cache key: results depend on them as much as on the rule.
FLAGS = ("--no-includes", "--include-headers", "--quiet", "--verbose-parsing")
# Part of every cache key too: bumped when what is stored for a file changes.
RESULT_FORMAT = 2


def spatch_program() -> str:
    prog = os.environ.get("MMCONVERT_SPATCH", "spatch")
    found = shutil.which(prog)
    if not found:
        raise ToolMissing(f"spatch not found ({prog}): install Debian's coccinelle package "
                          "(apt-get install coccinelle) or set MMCONVERT_SPATCH")
    return found


@functools.cache
def spatch_version(prog: str) -> str:
    out = runner.run([prog, "--version"], check=False).stdout
    return out.splitlines()[0].strip() if out else "unknown"


@functools.cache
def macro_hints(prog: str) -> tuple[str, str]:
    """(option, text): spatch's own standard.h with cocci/kernel-macros.h
    taking precedence, for --macro-file-builtins.

    Given with --macro-file, a hint cannot replace a standard.h definition
    (the first one wins), and standard.h's DEFINE_PER_CPU() does not parse:
    every `static DEFINE_PER_CPU(...)` then costs three parsing passes
    (kernel/events/core.c: 1.7 s instead of 0.8 s, in each stage).  Where
    spatch does not say where its standard.h is, the hints go alone."""
    ours = (COCCI_DIR / "kernel-macros.h").read_text()
    try:
        p = runner.run([prog, "--parse-c", os.devnull], timeout=60, check=False)
        where = re.search(r"^init_defs_builtins: (.+)$", p.stdout + p.stderr, flags=re.MULTILINE)
        standard = Path(where.group(1).strip()).read_text(errors="replace") if where else None
    except (OSError, subprocess.TimeoutExpired):
        standard = None
    if standard is None:
        return "--macro-file", ours
    names = set(re.findall(r"^#define\s+(\w+)", ours, flags=re.MULTILINE))
    kept: list[str] = []
    skipping = False
    for line in standard.splitlines():
        if not skipping:
            define = re.match(r"\s*#\s*define\s+(\w+)", line)
            skipping = bool(define and define.group(1) in names)
        if not skipping:
            kept.append(line)
        elif not line.rstrip().endswith("\\"):
            skipping = False
    return "--macro-file-builtins", "\n".join(kept) + "\n\n" + ours


def render(template: str, **ctx) -> str:
    """A semantic patch from cocci/<template>.cocci.j2."""
    env = prose.jinja_env(COCCI_DIR, keep_trailing_newline=True)
    return env.get_template(f"{template}.cocci.j2").render(**ctx)


def default_jobs() -> int:
    return os.cpu_count() or 1


@dataclass
class Result:
    """What one spatch pass found: per-file records and diffs, and the files
    (or line ranges of files) it could not process."""

    records: list[dict] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)
    bad_regions: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    warnings: list[FileWarning] = field(default_factory=list)
    cached: int = 0
    processed: int = 0


class Cache:
    """Per-file spatch results under the user's cache directory (never in
    the work tree): one JSON file per (rule, spatch version, content)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root or cache_home()) / "results"
        self.usable = True
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._give_up(e)

    def _give_up(self, e: OSError) -> None:
        """A cache that cannot be used costs time, not the run: one line."""
        if self.usable:
            self.usable = False
            log.warning("mmconvert: warning: the result cache %s cannot be used (%s); "
                        "running without it", self.root, e.strerror or e)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """A stored result, or None: a missing, unreadable or malformed
        entry is a miss (and is rewritten by the run)."""
        if not self.usable:
            return None
        try:
            value = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        return value if _well_formed(value) else None

    def put(self, key: str, value: dict) -> None:
        if not self.usable:
            return
        p = self._path(key)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(value))
            tmp.replace(p)
        except OSError as e:
            self._give_up(e)


def cache_home() -> Path:
    """mmconvert's cache directory (spatch results, build directories)."""
    return Path(os.environ.get("MMCONVERT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mmconvert"))


def _well_formed(v) -> bool:
    """What `run` stores for one file, as `_merge` reads it."""
    return (isinstance(v, dict) and isinstance(v.get("records"), list)
            and all(isinstance(r, dict) and isinstance(r.get("file"), str)
                    and isinstance(r.get("kind"), str)
                    and (r["kind"] == "applied" or isinstance(r.get("line"), int))
                    for r in v["records"])
            and isinstance(v.get("diff"), str) and isinstance(v.get("bad"), list)
            and all(isinstance(r, list) and len(r) == 2 and all(isinstance(n, int) for n in r)
                    for r in v["bad"])
            and isinstance(v.get("timeout", ""), str) and isinstance(v.get("failed", ""), str))


_FILE_ERR = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+), column')
_BADCOUNT = re.compile(r"^badcount: (\d+)")
# An OCaml exception spatch caught for one file: it gave up on all of it.
_EXN = re.compile(r"^EXN: (?P<exn>.+?) in (?P<path>\S.*)$")


def run(root: Path, cocci: str, files: list[str], *, blob_ids: dict[str, str] | None = None,
        patch: bool = False, jobs: int | None = None, timeout: int = DEFAULT_TIMEOUT,
        cache: Cache | None = None, progress=None, label: str = "spatch",
        overrides: dict[str, str] | None = None, rule_id: str | None = None) -> Result:
    """Apply `cocci` to `files` (relative to `root`).

    Report-mode rules print `MMCONVERT {json}` lines from their python
    scripts; patch-mode runs also return a unified diff per changed file.
    `overrides` gives the text spatch sees for some files instead of the
    tree's (the twins mmconvert inserts before converting them).  `rule_id`
    stands for the rule in cache keys when its text names paths that change
    from run to run (headers in a temporary worktree)."""
    overrides = overrides or {}
    prog = spatch_program()
    result = Result()
    macro_option, macros = macro_hints(prog)
    rule_key = hashlib.sha256(
        f"{RESULT_FORMAT}\0{spatch_version(prog)}\0{' '.join(FLAGS)}\0{patch}\0{macros}\0{rule_id or cocci}"
        .encode()
    ).hexdigest()
    todo: list[str] = []
    keys: dict[str, str] = {}
    for f in files:
        content_id = (hashlib.sha256(overrides[f].encode()).hexdigest() if f in overrides
                      else (blob_ids or {}).get(f))
        if cache is not None and content_id:
            keys[f] = hashlib.sha256(f"{rule_key}\0{f}\0{content_id}".encode()).hexdigest()
            hit = cache.get(keys[f])
            if hit is not None:
                _merge(result, f, hit)
                result.cached += 1
                continue
        todo.append(f)
    if not todo:
        return result

    with scratch.directory("mmconvert-spatch-") as tmp:
        farm = Path(tmp) / "tree"
        # spatch runs diff through a shell and mangles non-ASCII names: a
        # path it cannot take is linked under a plain alias instead.
        alias = {f: _farm_name(i, f) for i, f in enumerate(todo)}
        for f in todo:
            link = farm / alias[f]
            link.parent.mkdir(parents=True, exist_ok=True)
            if f in overrides:
                link.write_text(overrides[f])
            else:
                link.symlink_to(root / f)
        sp = Path(tmp) / "rule.cocci"
        sp.write_text(cocci)
        hints = Path(tmp) / "macros.h"
        hints.write_text(macros)
        cmd = [prog, "--cocci-file", str(sp), *FLAGS, "--dir", str(farm),
               "--jobs", str(jobs or default_jobs()), "--chunksize", "1",
               # --quiet after --verbose-parsing would silence the parse errors.
               "--timeout", str(timeout), "--quiet", "--verbose-parsing",
               macro_option, str(hints)]
        if not patch:
            cmd += ["-D", "report"]
        runner.log_command(cmd, f"{label}: {' '.join(cmd)} ({len(todo)} files)")
        # A rule that asks which file it converts (cocci.files()) learns the
        # real name of an aliased one from here.
        aliases = {alias[f]: f for f in todo if alias[f] != f}
        # spatch's own temporary files (cocci-output-*) go under the scratch
        # directory, so they go with it even when spatch is killed.
        env = dict(os.environ, TMPDIR=tmp)
        if aliases:
            env["MMCONVERT_ALIASES"] = json.dumps(aliases)
        p = _run_streaming(cmd, tmp, label, len(todo), jobs or default_jobs(), progress, env)
        if p.returncode == -signal.SIGINT:   # Ctrl-C reached spatch first
            raise KeyboardInterrupt
        if p.returncode < 0:
            raise SpatchError(f"spatch was killed ({_signal_name(-p.returncode)}) in {label}")
        if p.returncode != 0 and not p.stdout:
            first = _first_error(p.stderr)
            broken = _cannot_start(prog)
            if broken is not None:
                raise SpatchError(f"spatch cannot start ({prog}): {broken[:200]}"
                                  + ("; HOME is not set, and spatch needs it"
                                     if not os.environ.get("HOME") else ""))
            raise SpatchError(f"spatch failed on the rendered rule: {first[:200]}")
        prefix = str(farm) + "/"
        per_alias: dict[str, dict] = {alias[f]: {"records": [], "diff": "", "bad": [],
                                                 "timeout": "", "failed": ""} for f in todo}
        _parse_stdout(p.stdout, prefix, per_alias)
        _parse_stderr(p.stderr, prefix, per_alias)
        per_file = {f: _unalias(per_alias[alias[f]], alias[f], f) for f in todo}
        result.processed = len(todo)
        # Only what a run that finished found is kept: a file's result from
        # a run stopped part-way may lack what spatch had still to say.
        keep = cache is not None and p.returncode == 0
        for f in todo:
            _merge(result, f, per_file[f])
            if keep and cache is not None and f in keys and not per_file[f]["timeout"] \
                    and not per_file[f]["failed"]:
                cache.put(keys[f], per_file[f])
    return result


_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./+-]+")


def _farm_name(i: int, path: str) -> str:
    """Where spatch sees `path`: the path itself when spatch can take it."""
    if _PLAIN_PATH.fullmatch(path):
        return path
    stem, dot, ext = path.rpartition("/")[2].rpartition(".")
    plain = re.sub(r"[^A-Za-z0-9_.+-]", "_", stem if dot else ext)
    return f".mmconvert-alias/{i}/{plain}{dot}{ext if dot else ''}"


def _unalias(data: dict, name: str, path: str) -> dict:
    """A file's results under its own path again."""
    if name == path:
        return data
    out = json.loads(json.dumps(data).replace(json.dumps(name)[1:-1], json.dumps(path)[1:-1]))
    for rec in out["records"]:
        rec["file"] = path
    return out


def _first_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()
             and not ln.startswith(("init_defs", "Warning:", "HANDLING"))]
    return next((ln for ln in lines if "rror" in ln), lines[0] if lines else "no output")


_PROBE_RULE = "@@\nexpression E;\n@@\n- E\n+ E\n"


@functools.cache
def _cannot_start(prog: str) -> str | None:
    """Why spatch fails on a rule that cannot fail, or None when it runs:
    tells a spatch that does not start from a rule it rejects."""
    with scratch.directory(scratch.PREFIX + "probe-") as tmp:
        (tmp / "rule.cocci").write_text(_PROBE_RULE)
        (tmp / "src").mkdir()
        p = runner.run([prog, "--cocci-file", str(tmp / "rule.cocci"), "--very-quiet",
                        "--dir", str(tmp / "src")], cwd=tmp, no_stdin=True, check=False)
    return None if p.returncode == 0 else _first_error(p.stderr)


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def _run_streaming(cmd: list[str], cwd: str, label: str, total: int, jobs: int,
                   progress, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run spatch, counting the files it takes up (a `HANDLING:` line on
    stderr each) for `progress`.  With --chunksize 1 a worker starting its
    n-th file has finished the ones before, so started - jobs are done."""
    # Its own process group: spatch forks its --jobs workers, and all of
    # them must be gone before the scratch directory they work in is removed.
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True, errors="replace", env=env,
                         process_group=0)
    assert p.stdout is not None and p.stderr is not None     # both are pipes
    stdout, stderr = p.stdout, p.stderr
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(stdout.read()), daemon=True)
    reader.start()
    err: list[str] = []
    started, shown = 0, 0
    try:
        if progress:
            progress(label, 0, total)
        for line in stderr:
            err.append(line)
            if progress and line.startswith("HANDLING:"):
                started += 1
                done = max(0, min(started - jobs, total - 1))
                if done != shown:
                    shown = done
                    progress(label, done, total)
        p.wait()
        reader.join()
    except BaseException:
        _kill_group(p)
        raise
    if progress:
        progress(label, total, total)
    return subprocess.CompletedProcess(cmd, p.returncode, "".join(out), "".join(err))


def _kill_group(p: subprocess.Popen) -> None:
    """SIGKILL spatch and its workers, and wait (briefly) until none of
    them runs (a killed worker may stay a zombie of whoever adopts it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 5
    while _group_runs(p.pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _group_runs(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in "ZX":
            return True
    return False


def _parse_stdout(out: str, prefix: str, per_file: dict[str, dict]) -> None:
    diff_lines: list[str] = []
    for line in out.splitlines(keepends=True):
        if line.startswith(RECORD):
            rec = json.loads(line[len(RECORD):])
            rec["file"] = rec["file"].removeprefix(prefix)
            if rec["file"] in per_file:
                per_file[rec["file"]]["records"].append(rec)
        elif line.startswith("diff = "):
            continue
        else:
            diff_lines.append(line)
    # Split the diff by file: spatch names them a/<path> and b/<path>
    # relative to --dir.
    current = None
    for line in diff_lines:
        if line.startswith("diff -u -p "):
            current = None
            continue
        m = re.match(r"^--- a/(.+?)\t?$", line.rstrip("\n"))
        if m and m.group(1) in per_file:
            current = m.group(1)
            per_file[current]["diff"] += f"--- a/{current}\n"
            continue
        if current is None:
            continue
        if line.startswith("+++ "):
            per_file[current]["diff"] += f"+++ b/{current}\n"
        else:
            per_file[current]["diff"] += line


def _parse_stderr(err: str, prefix: str, per_file: dict[str, dict]) -> None:
    last = None
    for line in err.splitlines():
        m = _FILE_ERR.search(line)
        if m:
            last = (m.group("path").removeprefix(prefix), int(m.group("line")))
            continue
        m = _BADCOUNT.match(line)
        if m and last and last[0] in per_file:
            n = int(m.group(1))
            per_file[last[0]]["bad"].append((max(1, last[1] - n), last[1] + n))
            last = None
            continue
        m = _EXN.match(line)
        if m and "Timeout" not in m.group("exn") \
                and m.group("path").removeprefix(prefix) in per_file:
            per_file[m.group("path").removeprefix(prefix)]["failed"] = f"EXN: {m.group('exn')}"
            continue
        if "imeout" in line:
            for f in per_file:
                if prefix + f in line or f" {f}" in line:
                    per_file[f]["timeout"] = line.strip().replace(prefix, "")


def _merge(result: Result, f: str, data: dict) -> None:
    result.records.extend(data["records"])
    if data["diff"]:
        result.diffs[f] = data["diff"]
    if data["bad"]:
        result.bad_regions[f] = [tuple(r) for r in data["bad"]]
    if data.get("timeout"):
        result.warnings.append(FileWarning(f, "timeout", data["timeout"]))
    if data.get("failed"):
        result.warnings.append(FileWarning(f, "parse", f"spatch gave up on the file: "
                                           f"{data['failed']}"))
