"""Building single objects of a tree, for `mmconvert verify --build`.

Two contracts:

* A kernel tree (its top Makefile is Kbuild's): x86 `allmodconfig` in an
  `O=` directory cached per base commit and config, so only the first run
  pays for `allmodconfig` + `prepare`.  Kbuild writes the absolute source
  path into every command it records, so the build does not read the
  throwaway worktree (a new path each run would rebuild everything): it
  reads a source tree of its own next to the `O=` directory, hard-linked
  from the first worktree and kept equal to the worktree by `sync()` (new
  inodes only, so a hard link is never written through).  Paths a run
  changes are listed in a manifest before they are touched and put back
  to the base at the start of the next run, so an interrupted run cannot
  leave the cache patched.  One `flock` on `<key>.lock` guards the whole
  session.
* Any other tree (the sample tree): `make path/file.o` in the worktree.

`make -k -j<n> obj...` builds a patch's objects at once; an object that
fails is rebuilt alone to report the compiler's first error.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import MmconvertError, ToolMissing
from .gitrepo import GitTree

log = logging.getLogger("mmconvert")

ARCH = "x86"
CONFIG = "allmodconfig"
# Objects built for a touched header that is shared tree-wide (include/...).
HEADER_USERS = 3
# Objects built for a header that lives beside its .c files.
DIR_OBJECTS = 4
# Prepared build directories kept (least recently used go first): each holds
# a full source tree, ~1.8 GB once its first worktree is gone.
KEEP_BUILDS = 3
# Top-level directories whose .c files are host tools or not code at all.
NOT_KERNEL_TOP = ("tools", "scripts", "Documentation")


class BuildSetupError(MmconvertError):
    """The build directory could not be prepared (allmodconfig/prepare failed)."""

    exit_code = 1


@dataclass(frozen=True)
class ObjectResult:
    """One object a patch asked for: passed, failed or not build-checked."""

    object: str
    status: str  # "passed" | "failed" | "skipped"
    reason: str = ""  # first compiler error, or why it was not build-checked
    via: str = ""  # the touched header that chose this object, if any


@dataclass(frozen=True)
class Target:
    """An object to build, and why it was chosen."""

    object: str
    via: str = ""


def cache_root() -> Path:
    from .spatch import cache_home

    return cache_home() / "build"


def is_kbuild(root: Path) -> bool:
    """True for a tree whose top Makefile is the kernel's."""
    mk = root / "Makefile"
    if not mk.is_file() or not (root / "scripts" / "Kbuild.include").is_file():
        return False
    head = mk.read_text(errors="replace")[:2000]
    return re.search(r"^VERSION\s*=", head, re.MULTILINE) is not None


# -- which objects a patch's files ask for -------------------------------------
def _other_arch(path: str) -> str | None:
    parts = PurePosixPath(path).parts
    if len(parts) > 2 and parts[0] == "arch" and parts[1] != ARCH:
        return parts[1]
    return None


def _include_name(path: str) -> str | None:
    """`<linux/x.h>` for include/linux/x.h, include/uapi/linux/x.h, arch/x86/include/asm/x.h."""
    for prefix in ("include/uapi/", "include/", f"arch/{ARCH}/include/uapi/",
                   f"arch/{ARCH}/include/"):
        if path.startswith(prefix):
            return path[len(prefix):]
    return None


def targets_for(gt: GitTree, files: list[str], kbuild: bool, unselected=None
                ) -> tuple[list[Target], list[ObjectResult]]:
    """The objects to build for the C files a patch leaves in the tree
    (deleted files are not passed in), and those that cannot be checked.
    `unselected(obj)` (a builder's) says why the config does not build an
    object; header users are only picked among objects it builds."""
    targets: dict[str, Target] = {}
    skipped: list[ObjectResult] = []

    def add(obj: str, via: str = "") -> None:
        if obj not in targets:
            targets[obj] = Target(obj, via)

    for f in files:
        if not f.endswith((".c", ".h")):
            continue
        arch = _other_arch(f) if kbuild else None
        if arch:
            skipped.append(ObjectResult(f, "skipped", f"only built for arch/{arch}"))
            continue
        if f.endswith(".c"):
            add(f[:-2] + ".o")
            continue
        chosen = _header_users(gt, f, kbuild, unselected)
        if not chosen:
            skipped.append(ObjectResult(f, "skipped", "no x86-buildable .c file includes it"))
        for c in chosen:
            add(c[:-2] + ".o", via=f)
    return list(targets.values()), skipped


def _header_users(gt: GitTree, header: str, kbuild: bool, unselected=None) -> list[str]:
    """A small fixed set of .c files that see `header`.

    Shared headers (include/...): the first HEADER_USERS .c files, in path
    order, that `#include <name>` it and are not under another arch.  A
    header beside its sources: the .c files of its directory, those that
    include it by name first, at most DIR_OBJECTS.
    """
    name = _include_name(header)
    if name is not None:
        users = gt.grep_files([f"#include <{name}>"], fixed=True, pathspecs=("*.c",))
        users = [u for u in users if not (kbuild and _other_arch(u))]
        return _first_built(users, HEADER_USERS, unselected)
    d = str(PurePosixPath(header).parent)
    local = [p for p in gt.run("ls-files", "--", f"{d}/*.c").split()
             if str(PurePosixPath(p).parent) == d]
    base = PurePosixPath(header).name
    naming = (set(gt.grep_files([f'"{base}"'], fixed=True, pathspecs=tuple(local)))
              if local else set())
    ordered = sorted(local, key=lambda p: (p not in naming, p))
    return _first_built(ordered, DIR_OBJECTS, unselected)


def _first_built(sources: list[str], n: int, unselected, look: int = 40) -> list[str]:
    """The first `n` of `sources` the config builds (among the first `look`);
    the first `n` as they are when nothing is built or no check is given."""
    if unselected is None:
        return sources[:n]
    built = [c for c in sources[:look] if unselected(c[:-2] + ".o") is None]
    return built[:n] or sources[:n]


# -- running make ----------------------------------------------------------------
_ERROR_TARGET = re.compile(r"\*\*\* \[[^\]]*?:\d+: ([^\]\s]+)\] Error")
_BAD_CMD = re.compile(r"(\S+/\.[^/\s]+\.o\.cmd):\d+: \*\*\* missing separator")
_NO_RULE = re.compile(r"No rule to make target '([^']+)'")
_COMPILER_ERROR = re.compile(r"^(\S+?):(\d+):(?:(\d+):)? (?:fatal )?error: (.*)$", re.MULTILINE)


def _first_error(output: str, strip: str) -> str:
    m = _COMPILER_ERROR.search(output)
    if m:
        path = m.group(1)
        if strip and path.startswith(strip):
            path = path[len(strip):]
        return f"{path}:{m.group(2)}: error: {m.group(4)}"
    lines = [ln for ln in output.splitlines() if "***" in ln or "error" in ln.lower()]
    return lines[0].strip() if lines else "make failed (no compiler message)"


class Builder:
    """Builds objects of one worktree; see the module docstring."""

    kind = "make"

    def __init__(self, wt: GitTree, jobs: int | None = None):
        self.wt = wt
        self.jobs = jobs or os.cpu_count() or 1
        self.objects_built = 0
        self.seconds = 0.0
        self.setup_note = "not a Kbuild tree: make path/file.o in the worktree"

    # The tree make runs in and the directory objects land in.
    @property
    def src(self) -> Path:
        return self.wt.path

    @property
    def objdir(self) -> Path:
        return self.wt.path

    def make_args(self) -> list[str]:
        return ["make", "-C", str(self.src)]

    def sync(self, paths: list[str]) -> None:
        """Make the build's sources equal the worktree for `paths`."""

    def _make(self, *args: str) -> tuple[int, str]:
        cmd = [*self.make_args(), *args]
        log.debug("%s", " ".join(cmd))
        try:
            p = subprocess.run(cmd, check=False, capture_output=True, text=True, errors="replace",
                               stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise ToolMissing("make is not installed")
        return p.returncode, p.stdout + p.stderr

    def unselected(self, obj: str) -> str | None:
        """Why the tree's configuration does not build `obj`, or None."""
        return None

    def jobs_for(self, objs: list[str]) -> int:
        return self.jobs

    def _make_objects(self, objs: list[str]) -> tuple[int, str]:
        return self._make("-k", f"-j{self.jobs_for(objs)}", *objs)

    def build(self, targets: list[Target]) -> list[ObjectResult]:
        """Build `targets` at once; one result per target."""
        results: dict[str, ObjectResult] = {}
        todo = []
        for t in targets:
            why = self.unselected(t.object)
            if why:
                results[t.object] = ObjectResult(t.object, "skipped", why, t.via)
            else:
                todo.append(t)
        if todo:
            start = time.monotonic()
            status, out = self._make_objects([t.object for t in todo])
            failed = set(_ERROR_TARGET.findall(out))
            norule = set(_NO_RULE.findall(out))
            for t in todo:
                o = t.object
                if o in norule:
                    results[o] = ObjectResult(o, "skipped", "the tree's Makefile has no rule "
                                              "for it", t.via)
                    continue
                if o in failed or (status != 0 and not (self.objdir / o).exists()):
                    _, alone = self._make(o)
                    results[o] = ObjectResult(o, "failed", _first_error(alone, f"{self.src}/"),
                                              t.via)
                else:
                    results[o] = ObjectResult(o, "passed", "", t.via)
                self.objects_built += 1
            self.seconds += time.monotonic() - start
        return [results[t.object] for t in targets]


def evict_builds(keep: int, current: Path) -> list[Path]:
    """Remove all but the `keep` most recently used build directories
    (never `current`, nor one another run holds); return those removed."""
    root = cache_root()
    dirs = [d for d in root.glob(f"*-{ARCH}_64-{CONFIG}") if d != current and d.is_dir()]
    dirs.sort(key=lambda d: (d / "prepared").stat().st_mtime if (d / "prepared").is_file()
              else 0, reverse=True)
    removed = []
    for d in dirs[max(keep - 1, 0):]:
        with open(root / f"{d.name}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # in use by another run
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    for d in removed:
        log.info("removed the least recently used build directory %s", d)
    return removed


class KbuildBuilder(Builder):
    """x86 allmodconfig in a cached O= directory (see the module docstring)."""

    kind = "kbuild"

    def __init__(self, wt: GitTree, base: str, jobs: int | None = None):
        super().__init__(wt, jobs)
        self.key = f"{base[:12]}-{ARCH}_64-{CONFIG}"
        self.dir = cache_root() / self.key
        self.lockfile = cache_root() / f"{self.key}.lock"
        self._dirs: dict[str, tuple[set[str], set[str]] | None] = {}
        self._racy: set[str] = set()

    @property
    def src(self) -> Path:
        return self.dir / "src"

    @property
    def objdir(self) -> Path:
        return self.dir / "o"

    def make_args(self) -> list[str]:
        return ["make", "-C", str(self.src), f"O={self.objdir}", f"ARCH={ARCH}"]

    def _dir_lists(self, d: str) -> tuple[set[str], set[str]] | None:
        """(objects, subdirectories) Kbuild builds in directory `d` under the
        config: Makefile.build's own real-obj-y/m and subdir-ym, printed."""
        if d in self._dirs:
            return self._dirs[d]
        src = str(self.src)
        cmd = ["make", "-s", "-C", str(self.objdir), "-f", f"{src}/scripts/Makefile.build",
               f"obj={d}", f"srctree={src}", f"srcroot={src}", "objtree=.", f"ARCH={ARCH}",
               f"SRCARCH={ARCH}",
               "--eval", ("mmconvert-print: ; @echo 'Y: $(real-obj-y) $(real-obj-m)'; "
                          "echo 'S: $(subdir-ym)'"), "mmconvert-print"]
        log.debug("%s", " ".join(cmd))
        p = subprocess.run(cmd, check=False, capture_output=True, text=True, errors="replace",
                           stdin=subprocess.DEVNULL)
        if p.returncode != 0 and self._drop_bad_cmd(p.stderr):
            p = subprocess.run(cmd, check=False, capture_output=True, text=True,
                               errors="replace", stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            # Cannot tell: say nothing rather than call an object unbuilt.
            log.debug("cannot list %s: %s", d, p.stderr.strip()[-300:])
            self._dirs[d] = None
            return None
        objs: set[str] = set()
        subdirs: set[str] = set()
        for line in p.stdout.splitlines():
            if line.startswith("Y: "):
                objs.update(line[3:].split())
            elif line.startswith("S: "):
                subdirs.update(line[3:].split())
        self._dirs[d] = (objs, subdirs)
        return objs, subdirs

    def unselected(self, obj: str) -> str | None:
        parts = PurePosixPath(obj).parts
        if parts[0] in NOT_KERNEL_TOP:
            return f"{parts[0]}/ is not built by Kbuild's kernel build"
        d = str(PurePosixPath(obj).parent)
        if d == ".":
            return f"not built by x86 {CONFIG} (no obj-y/obj-m selects it)"
        lists = self._dir_lists(d)
        if lists is None:
            return None
        if obj not in lists[0]:
            return f"not built by x86 {CONFIG} (no obj-y/obj-m selects it)"
        objdir = d
        # Walk up to a top-level directory (or arch/x86) through the
        # directories that descend into each other; a Makefile may name a
        # grandchild (drivers/Makefile: obj-$(CONFIG_IPMI_HANDLER) += char/ipmi/).
        while len(PurePosixPath(d).parts) > 1 and d != f"arch/{ARCH}":
            for parent in PurePosixPath(d).parents:
                p = str(parent)
                pl = self._dir_lists(p) if p != "." else None
                if p == "." or pl is None or d in pl[1]:
                    break
            else:
                p = "."
            if p == "." or self._dir_lists(p) is None:
                return (None if p != "." else
                        f"not built by x86 {CONFIG} ({d}/ is not descended into)")
            if p != str(PurePosixPath(d).parent):
                # Kbuild descends into every listed subdir that prefixes a goal:
                # reached from a grandparent, the directory is entered twice
                # and two makes would write the same object and .cmd at once.
                self._racy.add(objdir)
            d = p
        return None

    def jobs_for(self, objs: list[str]) -> int:
        racy = any(str(PurePosixPath(o).parent) in self._racy for o in objs)
        return 1 if racy else self.jobs

    def _make_objects(self, objs: list[str]) -> tuple[int, str]:
        status, out = super()._make_objects(objs)
        if status != 0 and self._drop_bad_cmd(out):
            status, out = super()._make_objects(objs)
        return status, out

    def _drop_bad_cmd(self, out: str) -> bool:
        """A .cmd file left half-written (a killed run) stops every make in
        its directory: drop it and its object so they are built again."""
        bad = set(_BAD_CMD.findall(out))
        for f in bad:
            cmd = self.objdir / f
            (cmd.parent / cmd.name[1:].removesuffix(".cmd")).unlink(missing_ok=True)
            cmd.unlink(missing_ok=True)
        return bool(bad)

    @property
    def _manifest(self) -> Path:
        return self.dir / "changed-paths"

    @property
    def _stamp(self) -> Path:
        return self.dir / "prepared"

    @contextlib.contextmanager
    def session(self):
        """Hold the cache for this run: prepare it once, restore what an
        earlier run changed, and release it on every exit path."""
        cache_root().mkdir(parents=True, exist_ok=True)
        with open(self.lockfile, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if self._stamp.is_file():
                    self.setup_note = f"reused {self.objdir} (prepared earlier)"
                    self._stamp.touch()
                    self._restore()
                else:
                    self._prepare()
                    evict_builds(keep=KEEP_BUILDS, current=self.dir)
                yield self
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _prepare(self) -> None:
        start = time.monotonic()
        if self.dir.exists():
            shutil.rmtree(self.dir)  # an interrupted first run
        self.dir.mkdir(parents=True)
        self._populate()
        for args in ([CONFIG], [f"-j{self.jobs}", "prepare"]):
            status, out = self._make(*args)
            if status != 0:
                raise BuildSetupError(f"make {' '.join(args)} failed in {self.objdir}: "
                                      f"{_first_error(out, f'{self.src}/')}")
        secs = time.monotonic() - start
        self._stamp.write_text(f"{secs:.0f}\n")
        self.setup_note = f"prepared {self.objdir} ({CONFIG} + prepare: {secs:.0f} s)"

    def _populate(self) -> None:
        """The build's own source tree: hard links to the worktree at the base
        (a copy where links cannot be made)."""
        tmp = self.dir / "src.tmp"
        p = subprocess.run(["cp", "-al", f"{self.wt.path}/.", str(tmp)], check=False,
                           capture_output=True, text=True)
        if p.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            p = subprocess.run(["cp", "-a", f"{self.wt.path}/.", str(tmp)], check=False,
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise BuildSetupError(f"cannot copy the tree to {tmp}: {p.stderr.strip()}")
        (tmp / ".git").unlink(missing_ok=True)
        tmp.rename(self.src)

    def _restore(self) -> None:
        """Put paths an earlier run changed back to the base (the worktree is
        still at the base when this runs)."""
        if self._manifest.is_file():
            paths = sorted(set(self._manifest.read_text().split("\n")) - {""})
            self._copy(paths)
            self._manifest.unlink()

    def sync(self, paths: list[str]) -> None:
        with open(self._manifest, "a") as m:
            m.write("".join(f"{p}\n" for p in paths))
            m.flush()
            os.fsync(m.fileno())
        self._copy(paths)

    def _copy(self, paths: list[str]) -> None:
        for p in paths:
            src, dst = self.wt.path / p, self.src / p
            if src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(dst.name + ".mmconvert-tmp")
                shutil.copy2(src, tmp)
                os.utime(tmp)  # newer than every object built from the old text
                os.replace(tmp, dst)
            elif dst.is_file() or dst.is_symlink():
                dst.unlink()


@contextlib.contextmanager
def builder_for(wt: GitTree, base: str, jobs: int | None = None):
    """The builder that fits the tree in `wt` (a worktree at `base`)."""
    if is_kbuild(wt.path):
        b = KbuildBuilder(wt, base, jobs)
        with b.session():
            yield b
    else:
        yield Builder(wt, jobs)
