"""`make bench`: how long `mmconvert series` takes on Debian's 7.3, next to
the least any spatch-based tool could take.

Three runs, on a throwaway clone of the cached tree (the cache is never
touched):

  (a) baseline: bare spatch, one rule that finds `struct file_operations`
      initialisers with `.mmap`, `--dir <tree> --use-gitgrep --jobs <nproc>`;
  (b) cold: `mmconvert series` with an empty result cache;
  (c) warm: the same `series` again, nothing changed, the cache of (b)
      (the series itself is reused: see mmconvert/seriescache.py);
  (d) moved: `series` after a one-line commit on the base, the way a
      maintainer reruns during a campaign: planned again, with the spatch
      results of every unchanged file taken from the cache;
  (e) `verify --build` of (b)'s series with no build directory yet (every
      architecture it needs prepared from scratch), and (f) the same again
      with the build directories of (e).

For each it prints wall time and memory, then the ratio (b)/(a) and the
time of each stage of (b), and writes everything to out/bench.json.  It
prints figures; it never fails because a machine is slow.

Memory: `max_rss_mb` is the peak resident set of the largest single process
of the run (its own rusage from wait4(), which covers every descendant it
waited for); `peak_tree_rss_mb` is the largest sum of resident sets of the
whole process tree at once, sampled every 0.2 s from /proc.

Stage times of (b) are measured by running the series in a child Python
that wraps the stage functions with timers (outermost call only, so a
stage called from inside another is not counted twice).  A stage whose
function this mmconvert does not have is reported as not available, never
guessed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = "7.3"
GOAL_RATIO = 1.5
GOAL_WARM_S = 5.0
GOAL_BUILD_COLD_S = 600.0
GOAL_BUILD_WARM_S = 180.0
TIMINGS_ENV = "MMCONVERT_BENCH_TIMINGS"

BASELINE_RULE = """\
// The find-only baseline: every struct file_operations initialiser that
// sets .mmap, printed, nothing else.
@r@
identifier I, H;
position p;
@@
struct file_operations I = { ..., .mmap = H@p, ... };

@script:python@
I << r.I;
H << r.H;
p << r.p;
@@
print("%s:%s: %s .mmap = %s" % (p[0].file, p[0].line, I, H))
"""

# (stage, module, attribute) wrapped in the child; several functions may
# make up one stage.
STAGE_FUNCS = (
    ("inventory", "mmconvert.inventory", "scan"),
    ("forwarders", "mmconvert.forwarders", "find"),
    ("forwarders", "mmconvert.forwarders", "plan"),
    ("conversion", "mmconvert.convert", "plan"),
    ("commits", "mmconvert.series", "_apply"),
    ("commits", "mmconvert.series", "render_patch_text"),
    ("commits", "mmconvert.series", "commit"),
    ("format-patch", "mmconvert.series", "_format_patch"),
    ("recipients", "mmconvert.series", "_recipients_all"),
    ("cover-letter", "mmconvert.series", "render_cover"),
)
STAGES = ("inventory", "conversion", "forwarders", "commits", "format-patch")


# -- measuring one command ------------------------------------------------

def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_rss_kb(root: int) -> int:
    kids = _children()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _rss_kb(pid)
        todo.extend(kids.get(pid, ()))
    return total


def measure(name: str, cmd: list[str], *, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> dict:
    """Run `cmd`, return wall time, memory, exit status and output tails."""
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        print(f"bench: {name}: {' '.join(cmd)}", flush=True)
        start = time.monotonic()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             env=env, cwd=cwd)
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.wait(0.2):
                peak[0] = max(peak[0], _tree_rss_kb(p.pid))

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.monotonic() - start
        p.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        t.join()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return {
        "command": cmd,
        "exit_status": p.returncode,
        "wall_s": round(wall, 2),
        "user_s": round(usage.ru_utime, 2),
        "sys_s": round(usage.ru_stime, 2),
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "peak_tree_rss_mb": round(peak[0] / 1024, 1),
        "stdout_tail": stdout.splitlines()[-3:],
        "stderr_tail": [ln for ln in stderr.splitlines() if ln.strip()][-5:],
        "_stdout": stdout,
    }


# -- the child that times series' stages ----------------------------------

def _timed_child(argv: list[str]) -> None:
    """Run `mmconvert argv` in this process with the stage functions timed;
    write {stage: seconds} and the unavailable stages to $MMCONVERT_BENCH_TIMINGS."""
    import importlib

    totals: dict[str, float] = {}
    calls: dict[str, int] = {}
    missing: list[str] = []
    depth = [0]

    def wrap(stage, fn):
        def timed(*a, **kw):
            if depth[0]:
                return fn(*a, **kw)
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                depth[0] -= 1
                totals[stage] = totals.get(stage, 0.0) + time.perf_counter() - t0
                calls[stage] = calls.get(stage, 0) + 1
        return timed

    for stage, modname, attr in STAGE_FUNCS:
        try:
            mod = importlib.import_module(modname)
            fn = getattr(mod, attr)
        except (ImportError, AttributeError):
            missing.append(f"{modname}.{attr}")
            continue
        setattr(mod, attr, wrap(stage, fn))

    # Inside the stages: time in spatch (and how many files it really ran
    # on) and time in git, by subcommand, wherever they are called from.
    inner: dict = {"spatch_s": 0.0, "spatch_runs": 0, "spatch_files_run": 0,
                   "spatch_files_cached": 0, "git_s": {}, "git_calls": {}}
    try:
        from mmconvert import spatch as spatch_mod

        spatch_run = spatch_mod.run

        def timed_spatch(*a, **kw):
            t0 = time.perf_counter()
            res = spatch_run(*a, **kw)
            inner["spatch_s"] += time.perf_counter() - t0
            inner["spatch_runs"] += 1
            inner["spatch_files_run"] += getattr(res, "processed", 0)
            inner["spatch_files_cached"] += getattr(res, "cached", 0)
            return res
        spatch_mod.run = timed_spatch
    except (ImportError, AttributeError):
        missing.append("mmconvert.spatch.run")
    try:
        from mmconvert.gitrepo import GitTree

        git_run_rc = GitTree.run_rc

        def timed_git(self, *a, **kw):
            words = [w for i, w in enumerate(a) if not w.startswith("-")
                     and not (i and a[i - 1] == "-c")]
            sub = words[0] if words else "?"
            if sub == "worktree" and len(words) > 1:
                sub = f"worktree {words[1]}"
            t0 = time.perf_counter()
            try:
                return git_run_rc(self, *a, **kw)
            finally:
                inner["git_s"][sub] = inner["git_s"].get(sub, 0.0) + time.perf_counter() - t0
                inner["git_calls"][sub] = inner["git_calls"].get(sub, 0) + 1
        GitTree.run_rc = timed_git  # type: ignore[method-assign]   # timed for the bench only
    except (ImportError, AttributeError):
        missing.append("mmconvert.gitrepo.GitTree.run_rc")

    from mmconvert.cli import app

    t0 = time.perf_counter()
    status = 0
    try:
        app(argv, prog_name="mmconvert")
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        Path(os.environ[TIMINGS_ENV]).write_text(json.dumps({
            "total_s": time.perf_counter() - t0, "stages": totals, "calls": calls,
            "missing": missing, "inner": inner}))
    sys.exit(status)


# -- the benchmark ---------------------------------------------------------

def kernel_tree(version: str) -> Path:
    out = subprocess.run([str(ROOT / "scripts" / "get-kernel"), version], check=True,
                         capture_output=True, text=True).stdout
    return Path(out.strip().splitlines()[-1])


def clone(src: Path, dst: Path) -> None:
    """A throwaway clone that shares the cached tree's objects."""
    subprocess.run(["git", "clone", "--quiet", "--shared", str(src), str(dst)], check=True)
    subprocess.run(["git", "-C", str(dst), "fetch", "--quiet", "--tags", str(src)], check=True)
    for k, v in (("user.name", "mmconvert bench"), ("user.email", "bench@mmconvert.invalid")):
        subprocess.run(["git", "-C", str(dst), "config", k, v], check=True)


def spatch_prog() -> str:
    return shutil.which(os.environ.get("MMCONVERT_SPATCH", "spatch")) or "spatch"


def _stage_table(timing: dict | None, wall: float) -> dict:
    """Seconds per stage of (b), with what could not be measured said so."""
    if not timing:
        return {"available": False, "why": "the timed child wrote no timings"}
    st = timing["stages"]
    missing = timing["missing"]
    out: dict = {}
    for s in (*STAGES, "recipients", "cover-letter"):
        funcs = [f"{m}.{a}" for stage, m, a in STAGE_FUNCS if stage == s]
        gone = [f for f in funcs if f in missing]
        if gone and len(gone) == len(funcs):
            out[s] = {"s": None, "why": f"not available: this mmconvert has no {', '.join(gone)}"}
        else:
            out[s] = {"s": round(st.get(s, 0.0), 2), "calls": timing["calls"].get(s, 0)}
            if gone:
                out[s]["partial"] = f"not measured: {', '.join(gone)}"
    measured = sum(v["s"] or 0 for v in out.values())
    out["other"] = {
        "s": round(timing["total_s"] - measured, 2),
        "what": "worktree add/remove, API detection, MAINTAINERS, grouping, branch, "
                "interpreter start-up is in wall but not in total",
    }
    out["total_in_process_s"] = round(timing["total_s"], 2)
    inner = timing.get("inner") or {}
    if inner:
        git_s = inner["git_s"]
        out["inside"] = {
            "spatch_s": round(inner["spatch_s"], 2),
            "spatch_runs": inner["spatch_runs"],
            "spatch_files_run": inner["spatch_files_run"],
            "spatch_files_cached": inner["spatch_files_cached"],
            "git_s": round(sum(git_s.values()), 2),
            "git_by_subcommand": {k: {"s": round(v, 2), "calls": inner["git_calls"][k]}
                                  for k, v in sorted(git_s.items(), key=lambda kv: -kv[1])},
        }
    out["wall_s"] = wall
    return out


def _commit_one_line(tree: Path) -> None:
    """A new base for (d): one comment line in a file with a handler."""
    path = tree / "drivers" / "char" / "uv_mmtimer.c"
    path.write_text(path.read_text() + "/* bench: a new commit on the base */\n")
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit",
                    "--quiet", "-am", "char: uv_mmtimer: a comment"], cwd=tree, check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmconvert.bench", description=__doc__.split(
        "\n\n")[0])
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "out" / "bench.json")
    ap.add_argument("--tree", type=Path, help="kernel tree to clone (default: Debian "
                    f"{VERSION} from scripts/get-kernel)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args(argv)

    src = (args.tree or kernel_tree(VERSION)).resolve()
    scratch = Path(tempfile.mkdtemp(prefix="mmconvert-bench-"))
    tree = scratch / "linux"
    mmconvert = [sys.executable, "-m", "mmconvert.bench", "--timed-child"]
    results: dict = {
        "tree": str(src), "version": VERSION if args.tree is None else str(args.tree),
        "jobs": args.jobs, "cpus": os.cpu_count(),
        "machine": platform.platform(), "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        print(f"bench: cloning {src} (not timed)", flush=True)
        clone(src, tree)
        prog = spatch_prog()
        results["spatch"] = subprocess.run([prog, "--version"], capture_output=True,
                                           text=True).stdout.splitlines()[0:1]

        # (a) the bare find-only baseline.
        rule = scratch / "find_mmap_fops.cocci"
        rule.write_text(BASELINE_RULE)
        a = measure("(a) baseline", [prog, "--cocci-file", str(rule), "--dir", str(tree),
                                     "--use-gitgrep", "--jobs", str(args.jobs),
                                     "--chunksize", "1", "--no-includes", "--very-quiet"],
                    cwd=scratch)
        a["hits"] = sum(1 for ln in a.pop("_stdout").splitlines() if ".mmap = " in ln)

        # (b) cold series, (c) the same again on the warm cache.
        env = dict(os.environ, MMCONVERT_CACHE=str(scratch / "cache"))
        runs = {}
        for key, label in (("b", "(b) series, cold"), ("c", "(c) series, warm"),
                           ("d", "(d) series, new base")):
            if key == "d":
                _commit_one_line(tree)
            timings = scratch / f"timings-{key}.json"
            runs[key] = measure(label, [*mmconvert, "series", str(tree), "-o",
                                        str(scratch / f"series-{key}"), "--branch",
                                        f"bench/{key}", "--jobs", str(args.jobs)],
                                env=dict(env, **{TIMINGS_ENV: str(timings)}), cwd=scratch)
            runs[key].pop("_stdout")
            runs[key]["patches"] = len(list((scratch / f"series-{key}").glob("*.patch")))
            try:
                runs[key]["_timing"] = json.loads(timings.read_text())
            except (OSError, ValueError):
                runs[key]["_timing"] = None
        for key, label in (("e", "(e) verify --build, cold"), ("f", "(f) verify --build, warm")):
            runs[key] = measure(label, [sys.executable, "-m", "mmconvert", "verify",
                                        str(scratch / "series-b"),
                                        "--tree", str(tree), "--build", "--jobs", str(args.jobs),
                                        "--json", str(scratch / f"verify-{key}.json")],
                                env=env, cwd=scratch)
            runs[key].pop("_stdout")
            try:
                rep = json.loads((scratch / f"verify-{key}.json").read_text())
                objs = [o for p in rep["patches"] for o in p["objects"]]
                runs[key]["objects"] = {st: sum(o["status"] == st for o in objs)
                                        for st in sorted({o["status"] for o in objs})}
                runs[key]["arches"] = sorted({o["arch"] for o in objs if o["arch"]})
            except (OSError, ValueError, KeyError):
                runs[key]["objects"], runs[key]["arches"] = {}, []
        b, c, d = runs["b"], runs["c"], runs["d"]
        results["verify_build_cold"] = runs["e"]
        results["verify_build_warm"] = runs["f"]
        # Determinism: the warm rerun must write the very same patches.
        pb = {f.name: f.read_bytes() for f in (scratch / "series-b").glob("*.patch")}
        pc = {f.name: f.read_bytes() for f in (scratch / "series-c").glob("*.patch")}
        c["same_patches_as_cold"] = bool(pb) and pb == pc
        results["baseline"] = a
        results["series_cold"] = b
        results["series_warm"] = c
        results["series_new_base"] = d
        results["stages_cold"] = _stage_table(b.pop("_timing"), b["wall_s"])
        results["stages_warm"] = _stage_table(c.pop("_timing"), c["wall_s"])
        results["stages_new_base"] = _stage_table(d.pop("_timing"), d["wall_s"])
        ok = a["exit_status"] == 0 and b["exit_status"] == 0
        results["ratio_cold_to_baseline"] = round(b["wall_s"] / a["wall_s"], 2) if ok else None
        results["goals"] = {
            "ratio_at_most": GOAL_RATIO,
            "ratio_met": ok and results["ratio_cold_to_baseline"] <= GOAL_RATIO,
            "warm_s_at_most": GOAL_WARM_S,
            "warm_met": c["exit_status"] == 0 and c["wall_s"] <= GOAL_WARM_S,
            "build_cold_s_at_most": GOAL_BUILD_COLD_S,
            "build_cold_met": runs["e"]["exit_status"] == 0
            and runs["e"]["wall_s"] <= GOAL_BUILD_COLD_S,
            "build_warm_s_at_most": GOAL_BUILD_WARM_S,
            "build_warm_met": runs["f"]["exit_status"] == 0
            and runs["f"]["wall_s"] <= GOAL_BUILD_WARM_S,
        }
        results["load_average_at_end"] = os.getloadavg()
    finally:
        if args.keep:
            print(f"bench: scratch kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(summary(results))
    print(f"bench: wrote {args.output}")
    return 0


def _inside(ins: dict) -> str:
    """Where a run's stage time went: spatch, and git by its top subcommands."""
    top = ", ".join(f"{k} {v['s']:.1f} s ({v['calls']}x)"
                    for k, v in list(ins["git_by_subcommand"].items())[:4])
    return (f"  inside them and around them: spatch {ins['spatch_s']:.1f} s "
            f"({ins['spatch_files_run']} files run, {ins['spatch_files_cached']} cached), "
            f"git {ins['git_s']:.1f} s: {top}")


def summary(r: dict) -> str:
    rows = [("(a) baseline spatch", r["baseline"]), ("(b) series, cold", r["series_cold"]),
            ("(c) series, warm", r["series_warm"]), ("(d) series, new base", r["series_new_base"]),
            ("(e) verify --build", r["verify_build_cold"]),
            ("(f) verify --build", r["verify_build_warm"])]
    out = [f"\n{r['tree']}, {r['jobs']} jobs on {r['cpus']} cpus "
           f"(load average {r['load_average_at_start'][0]:.1f} at start)",
           f"{'run':22} {'wall s':>8} {'user s':>8} {'max RSS MB':>11} {'tree RSS MB':>12}  exit"]
    for name, m in rows:
        out.append(f"{name:22} {m['wall_s']:8.1f} {m['user_s']:8.1f} {m['max_rss_mb']:11.0f} "
                   f"{m['peak_tree_rss_mb']:12.0f}  {m['exit_status']}")
        if m["exit_status"] != 0:
            out.extend(f"    {ln}" for ln in m["stderr_tail"])
    ratio = r["ratio_cold_to_baseline"]
    g = r["goals"]
    same = "identical to" if r["series_warm"].get("same_patches_as_cold") else "DIFFER from"
    out.append(f"(b)/(a) = {ratio if ratio is not None else 'n/a'} (goal <= {g['ratio_at_most']}: "
               f"{'met' if g['ratio_met'] else 'not met'}); (c) = {r['series_warm']['wall_s']} s "
               f"(goal <= {g['warm_s_at_most']} s: {'met' if g['warm_met'] else 'not met'}); "
               f"warm patches {same} cold")
    e, f = r["verify_build_cold"], r["verify_build_warm"]
    out.append(f"verify --build: cold {e['wall_s']} s (goal <= {g['build_cold_s_at_most']:.0f} s: "
               f"{'met' if g['build_cold_met'] else 'not met'}), warm {f['wall_s']} s (goal <= "
               f"{g['build_warm_s_at_most']:.0f} s: {'met' if g['build_warm_met'] else 'not met'}); "
               f"objects {f.get('objects')}, on {', '.join(f.get('arches') or []) or '?'}")
    out.append("stages of (b):")
    st = r["stages_cold"]
    if not st.get("available", True):
        out.append(f"  not available: {st['why']}")
    else:
        for s in (*STAGES, "recipients", "cover-letter", "other"):
            v = st[s]
            out.append(f"  {s:14} " + (f"{v['s']:7.1f} s" if v["s"] is not None
                                       else f"    n/a  ({v['why']})"))
        if st.get("inside"):
            out.append(_inside(st["inside"]))
    for run, key in (("(c)", "stages_warm"), ("(d)", "stages_new_base")):
        w = r[key]
        if not w.get("available", True):
            continue
        parts = ", ".join(f"{k} {w[k]['s']:.1f}" for k in (*STAGES, "recipients", "other")
                          if w[k]["s"] is not None)
        out.append(f"stages of {run}, s: {parts}")
        if w.get("inside"):
            out.append(_inside(w["inside"]))
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--timed-child"]:
        _timed_child(sys.argv[2:])
    sys.exit(main())
