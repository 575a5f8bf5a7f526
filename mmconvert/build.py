"""Building single objects of a tree, for `mmconvert verify --build`.

Two contracts:

* A kernel tree (its top Makefile is Kbuild's): `allmodconfig` in an `O=`
  directory cached per base commit and architecture, so only the first run
  pays for `allmodconfig` + `prepare`.  Each object is built on the first
  architecture whose allmodconfig selects it, as Kbuild itself says: x86,
  else the architecture it lives under, else arm64, arm, powerpc, riscv,
  s390, sparc and any other installed cross compiler in turn (`MultiBuilder`); a
  cross compiler missing is installed from Debian's packages when
  mmconvert runs as root, else named.  Kbuild writes the absolute source
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
import dataclasses
import fcntl
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import runner
from .errors import MmconvertError, ToolMissing
from .gitrepo import GitTree

log = logging.getLogger("mmconvert")

ARCH = "x86"
CONFIG = "allmodconfig"
# Kbuild ARCH -> (CROSS_COMPILE, the Debian package that provides it).
# powerpc: allmodconfig is big-endian (Cell's spufs is BE only).
ARCHES = {
    "x86": ("", ""),
    "arm64": ("aarch64-linux-gnu-", "gcc-aarch64-linux-gnu"),
    "arm": ("arm-linux-gnueabi-", "gcc-arm-linux-gnueabi"),
    "powerpc": ("powerpc64-linux-gnu-", "gcc-powerpc64-linux-gnu"),
    "riscv": ("riscv64-linux-gnu-", "gcc-riscv64-linux-gnu"),
    "s390": ("s390x-linux-gnu-", "gcc-s390x-linux-gnu"),
    "sparc": ("sparc64-linux-gnu-", "gcc-sparc64-linux-gnu"),
    "mips": ("mips-linux-gnu-", "gcc-mips-linux-gnu"),
    "m68k": ("m68k-linux-gnu-", "gcc-m68k-linux-gnu"),
    "arc": ("arc-linux-gnu-", "gcc-arc-linux-gnu"),
    "loongarch": ("loongarch64-linux-gnu-", "gcc-loongarch64-linux-gnu"),
}
def _make_env() -> dict[str, str]:
    """The compiler's messages untranslated and in ASCII quotes: mmconvert
    reads "error:" out of them, and reports quote them.  (The kernel's
    Makefile unexports LC_ALL, so the categories themselves are set.)"""
    env = dict(os.environ, LANG="C", LC_MESSAGES="C", LC_CTYPE="C")
    env.pop("LC_ALL", None)
    return env


# Tried in this order for a file x86 does not build and no arch/ holds
# (installed on demand), then every other architecture whose cross
# compiler is already installed.
FALLBACK = ("arm64", "arm", "powerpc", "riscv", "s390", "sparc")
APT_TIMEOUT = 600
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
    arch: str = ""  # the architecture it was built on


@dataclass(frozen=True)
class Target:
    """An object to build, and why it was chosen."""

    object: str
    via: str = ""
    arch: str = ""     # the one architecture that can build it (a file under arch/)


def _tag(arch: str) -> str:
    """The architecture in a build directory's name."""
    return "x86_64" if arch == "x86" else arch


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
        if f.endswith(".c"):
            if f[:-2] + ".o" not in targets:
                targets[f[:-2] + ".o"] = Target(f[:-2] + ".o", "", arch or "")
            continue
        if arch:
            skipped.append(ObjectResult(f, "skipped", f"a header of arch/{arch}: mmconvert "
                                        "picks includers of headers on x86 only"))
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


def _errors(output: str, strip: str) -> frozenset[str]:
    """Every compiler error, without its line and column (a patch moves
    lines): what tells a new error from one the base already has."""
    return frozenset(f"{m.group(1).removeprefix(strip)}: {m.group(4)}"
                     for m in _COMPILER_ERROR.finditer(output))


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
    arch = ""

    def __init__(self, wt: GitTree, jobs: int | None = None):
        self.wt = wt
        self.jobs = jobs or os.cpu_count() or 1
        self.objects_built = 0
        self.seconds = 0.0
        self.errors: dict[str, frozenset[str]] = {}   # object -> its last build's errors
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
        try:
            p = runner.run(cmd, errors="replace", no_stdin=True, env=_make_env(), check=False)
        except FileNotFoundError:
            raise ToolMissing("make is not installed") from None
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
                    self.errors[o] = _errors(alone, f"{self.src}/")
                    results[o] = ObjectResult(o, "failed", _first_error(alone, f"{self.src}/"),
                                              t.via, self.arch)
                else:
                    results[o] = ObjectResult(o, "passed", "", t.via, self.arch)
                self.objects_built += 1
            self.seconds += time.monotonic() - start
        return [results[t.object] for t in targets]


def evict_builds(keep: int, current: Path, arch: str = ARCH) -> list[Path]:
    """Remove all but the `keep` most recently used build directories of
    `arch` (never `current`, nor one another run holds); return those removed."""
    removed = evict_lru(f"*-{_tag(arch)}-{CONFIG}", "prepared", keep, current)
    for d in removed:
        log.info("removed the least recently used build directory %s", d)
    return removed


def evict_lru(pattern: str, stamp: str, keep: int, current: Path) -> list[Path]:
    """Of the cache's directories matching `pattern`, remove all but the
    `keep` whose `stamp` file was touched last (never `current`, nor one
    another run holds the lock of); return those removed."""
    root = cache_root()
    dirs = [d for d in root.glob(pattern) if d != current and d.is_dir()]
    dirs.sort(key=lambda d: (d / stamp).stat().st_mtime if (d / stamp).is_file()
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
    return removed


def _drop_bad_cmd(objdir: Path, out: str) -> bool:
    """A .cmd file left half-written (a killed run) stops every make in
    its directory: drop it and its object so they are built again."""
    bad = set(_BAD_CMD.findall(out))
    for f in bad:
        cmd = objdir / f
        (cmd.parent / cmd.name[1:].removesuffix(".cmd")).unlink(missing_ok=True)
        cmd.unlink(missing_ok=True)
    return bool(bad)


class BuildCache:
    """The cached O= directory of one base commit and architecture, and the
    source tree of its own beside it: prepared once, kept equal to the
    worktree by `sync`, put back to the base by the next session (see the
    module docstring).  `make` runs make with the builder's arguments."""

    def __init__(self, wt: GitTree, base: str, arch: str,
                 make: Callable[..., tuple[int, str]], jobs: int):
        self.wt, self.base, self.arch, self._make, self.jobs = wt, base, arch, make, jobs
        self.key = f"{base[:12]}-{_tag(arch)}-{CONFIG}"
        self.dir = cache_root() / self.key
        self.lockfile = cache_root() / f"{self.key}.lock"

    @property
    def src(self) -> Path:
        return self.dir / "src"

    @property
    def objdir(self) -> Path:
        return self.dir / "o"

    @property
    def _manifest(self) -> Path:
        return self.dir / "changed-paths"

    @property
    def _stamp(self) -> Path:
        return self.dir / "prepared"

    @contextlib.contextmanager
    def session(self, changed: Sequence[str] = ()) -> Iterator[str]:
        """Hold the cache for this run: prepare it once, restore what an
        earlier run changed, and release it on every exit path; yields what
        the report says of the setup.  `changed`: paths the worktree already
        differs from the base in (a builder made after some patches were
        applied); they are put to the base too."""
        cache_root().mkdir(parents=True, exist_ok=True)
        with open(self.lockfile, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if self._stamp.is_file():
                    note = f"reused {self.objdir} ({self.arch}, prepared earlier)"
                    self._stamp.touch()
                    self._restore(changed)
                else:
                    note = self._prepare(changed)
                    evict_builds(keep=KEEP_BUILDS, current=self.dir, arch=self.arch)
                yield note
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _prepare(self, changed: Sequence[str] = ()) -> str:
        start = time.monotonic()
        if self.dir.exists():
            shutil.rmtree(self.dir)  # an interrupted first run
        self.dir.mkdir(parents=True)
        self._populate()
        # Prepared at the base, whatever the worktree holds by now.
        self.put_base(list(changed))
        for args in ([CONFIG], [f"-j{self.jobs}", "prepare"]):
            status, out = self._make(*args)
            if status != 0:
                raise BuildSetupError(f"make {' '.join(args)} failed in {self.objdir}: "
                                      f"{_first_error(out, f'{self.src}/')}")
        secs = time.monotonic() - start
        self._stamp.write_text(f"{secs:.0f}\n")
        return f"prepared {self.objdir} ({self.arch} {CONFIG} + prepare: {secs:.0f} s)"

    def _populate(self) -> None:
        populate_src(self.wt, self.src)

    def _restore(self, changed: Sequence[str] = ()) -> None:
        """Put paths an earlier run changed back to the base, from the base
        commit itself (the worktree may hold patches by now); the manifest
        goes only once they are."""
        if self._manifest.is_file():
            paths = sorted(set(self._manifest.read_text().split("\n")) - {""} | set(changed))
            self.put_base(paths)
            self._manifest.unlink()
        elif changed:
            self.put_base(list(changed))

    def sync(self, paths: list[str]) -> None:
        """The sources for `paths` as the worktree has them, listed in the
        manifest first so that an interrupted run is undone."""
        with open(self._manifest, "a") as m:
            m.write("".join(f"{p}\n" for p in paths))
            m.flush()
            os.fsync(m.fileno())
        self._copy(paths)

    def put_base(self, paths: list[str]) -> None:
        """The build's sources for `paths` as they are at the base (they are
        in the manifest already: `sync` put them there)."""
        put_base(self.wt, self.base, self.src, paths)

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


class KbuildConfig:
    """Which objects one architecture's allmodconfig builds, as Kbuild's
    own Makefiles say in a prepared build directory, and which directories
    Kbuild enters twice (no parallel make there)."""

    def __init__(self, cache: BuildCache):
        self.cache = cache
        self.arch = cache.arch
        self._dirs: dict[str, tuple[set[str], set[str]] | None] = {}
        self._racy: set[str] = set()

    def _dir_lists(self, d: str) -> tuple[set[str], set[str]] | None:
        """(objects, subdirectories) Kbuild builds in directory `d` under the
        config: Makefile.build's own real-obj-y/m and subdir-ym, printed."""
        if d in self._dirs:
            return self._dirs[d]
        src = str(self.cache.src)
        cmd = ["make", "-s", "-C", str(self.cache.objdir), "-f", f"{src}/scripts/Makefile.build",
               f"obj={d}", f"srctree={src}", f"srcroot={src}", "objtree=.",
               f"ARCH={self.arch}", f"SRCARCH={self.arch}", f"BITS={self._bits()}",
               "--eval", ("mmconvert-print: ; @echo 'Y: $(real-obj-y) $(real-obj-m)'; "
                          "echo 'S: $(subdir-ym)'"), "mmconvert-print"]
        p = runner.run(cmd, errors="replace", no_stdin=True, env=_make_env(), check=False)
        if p.returncode != 0 and _drop_bad_cmd(self.cache.objdir, p.stderr):
            p = runner.run(cmd, errors="replace", no_stdin=True, env=_make_env(), check=False)
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

    def _bits(self) -> int:
        """arch/*/Makefile's BITS, which Makefiles use in object names
        (setup_$(BITS).o) and Makefile.build alone does not define."""
        try:
            config = (self.cache.objdir / ".config").read_text()
        except OSError:
            return 64
        return 64 if re.search(r"^CONFIG_64BIT=y$", config, re.MULTILINE) else 32

    def unselected(self, obj: str) -> str | None:
        """Why the config does not build `obj`, or None."""
        parts = PurePosixPath(obj).parts
        if parts[0] in NOT_KERNEL_TOP:
            return f"{parts[0]}/ is not built by Kbuild's kernel build"
        if len(parts) > 2 and parts[0] == "arch" and parts[1] != self.arch:
            return f"under arch/{parts[1]}, not built for {self.arch}"
        d = str(PurePosixPath(obj).parent)
        if d == ".":
            return f"not built by {self.arch} {CONFIG} (no obj-y/obj-m selects it)"
        lists = self._dir_lists(d)
        if lists is None:
            return None
        if obj not in lists[0]:
            return f"not built by {self.arch} {CONFIG} (no obj-y/obj-m selects it)"
        objdir = d
        # Walk up to a top-level directory (or arch/x86) through the
        # directories that descend into each other; a Makefile may name a
        # grandchild (drivers/Makefile: obj-$(CONFIG_IPMI_HANDLER) += char/ipmi/).
        while len(PurePosixPath(d).parts) > 1 and d != f"arch/{self.arch}":
            for parent in PurePosixPath(d).parents:
                p = str(parent)
                pl = self._dir_lists(p) if p != "." else None
                if p == "." or pl is None or d in pl[1]:
                    break
            else:
                p = "."
            if p == "." or self._dir_lists(p) is None:
                return (None if p != "." else
                        f"not built by {self.arch} {CONFIG} ({d}/ is not descended into)")
            if p != str(PurePosixPath(d).parent):
                # Kbuild descends into every listed subdir that prefixes a goal:
                # reached from a grandparent, the directory is entered twice
                # and two makes would write the same object and .cmd at once.
                self._racy.add(objdir)
            d = p
        return None

    def racy(self, objs: list[str]) -> bool:
        """Whether one of `objs` lies in a directory Kbuild enters twice
        (known once `unselected` has walked up from it)."""
        return any(str(PurePosixPath(o).parent) in self._racy for o in objs)


class KbuildBuilder(Builder):
    """allmodconfig of one architecture in a cached O= directory (see the
    module docstring): the directory is a BuildCache, what it builds a
    KbuildConfig; this class runs make there."""

    kind = "kbuild"

    def __init__(self, wt: GitTree, base: str, jobs: int | None = None, arch: str = ARCH):
        super().__init__(wt, jobs)
        self.arch = arch
        self.base = base
        self.cache = BuildCache(wt, base, arch, self._make, self.jobs)
        self.config = KbuildConfig(self.cache)

    @property
    def src(self) -> Path:
        return self.cache.src

    @property
    def objdir(self) -> Path:
        return self.cache.objdir

    def make_args(self) -> list[str]:
        cross = ARCHES[self.arch][0]
        return ["make", "-C", str(self.src), f"O={self.objdir}", f"ARCH={self.arch}",
                *([f"CROSS_COMPILE={cross}"] if cross else [])]

    def unselected(self, obj: str) -> str | None:
        return self.config.unselected(obj)

    def jobs_for(self, objs: list[str]) -> int:
        return 1 if self.config.racy(objs) else self.jobs

    def _make_objects(self, objs: list[str]) -> tuple[int, str]:
        status, out = super()._make_objects(objs)
        if status != 0 and _drop_bad_cmd(self.objdir, out):
            status, out = super()._make_objects(objs)
        return status, out

    @contextlib.contextmanager
    def session(self, changed: Sequence[str] = ()) -> Iterator[KbuildBuilder]:
        """The builder, with its cache held for this run (BuildCache.session)."""
        with self.cache.session(changed) as note:
            self.setup_note = note
            yield self

    def sync(self, paths: list[str]) -> None:
        self.cache.sync(paths)

    def put_base(self, paths: list[str]) -> None:
        self.cache.put_base(paths)


def populate_src(wt: GitTree, src: Path) -> None:
    """A build's own source tree at `src`: hard links to the worktree at the
    base (a copy where links cannot be made)."""
    tmp = src.with_name(src.name + ".tmp")
    p = runner.run(["cp", "-al", f"{wt.path}/.", str(tmp)], check=False)
    if p.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        p = runner.run(["cp", "-a", f"{wt.path}/.", str(tmp)], check=False)
        if p.returncode != 0:
            raise BuildSetupError(f"cannot copy the tree to {tmp}: {p.stderr.strip()}")
    (tmp / ".git").unlink(missing_ok=True)
    tmp.rename(src)


def put_base(wt: GitTree, base: str, src: Path, paths: list[str]) -> None:
    """A build source tree's `paths` as they are at `base` (a path the base
    does not have goes), each replaced in one rename."""
    for p in paths:
        dst = src / p
        ok, data = _git_blob(wt, base, p)
        if ok:
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.name + ".mmconvert-tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dst)
        elif dst.is_file() or dst.is_symlink():
            dst.unlink()


def _git_blob(wt: GitTree, rev: str, path: str) -> tuple[bool, bytes]:
    p = runner.run(["git", "cat-file", "blob", f"{rev}:{path}"], cwd=wt.path, text=False,
                   check=False)
    return p.returncode == 0, p.stdout


def installed_cross() -> tuple[str, ...]:
    return tuple(a for a, (cross, _) in ARCHES.items()
                 if cross and a not in FALLBACK and shutil.which(cross + "gcc"))


def ensure_compiler(arch: str) -> str | None:
    """None when `arch`'s cross compiler is there (installed now if need
    be, as `make setup` installs spatch), else why it is not."""
    if arch not in ARCHES:
        return f"no cross compiler mmconvert knows for arch/{arch}"
    cross, package = ARCHES[arch]
    if not cross or shutil.which(cross + "gcc"):
        return None
    if os.environ.get("MMCONVERT_NO_INSTALL") or os.geteuid() != 0 \
            or not shutil.which("apt-get"):
        return f"no {cross}gcc for {arch} (Debian package {package})"
    log.warning("build: installing %s for %s", package, arch)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", package]
    try:
        p = runner.run(cmd, env=env, no_stdin=True, timeout=APT_TIMEOUT, check=False)
        if p.returncode != 0:   # package lists too old, or none yet
            runner.run(["apt-get", "update", "-qq"], env=env, no_stdin=True, text=False,
                       timeout=APT_TIMEOUT, check=False)
            p = runner.run(cmd, env=env, no_stdin=True, timeout=APT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return f"{package} for {arch} could not be installed: apt-get took over {APT_TIMEOUT} s"
    if p.returncode != 0 or not shutil.which(cross + "gcc"):
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        return f"{package} for {arch} could not be installed: {last}"
    return None


class MultiBuilder:
    """Builds each object on the first architecture whose allmodconfig
    selects it; the builders of other architectures are made (prepared,
    or taken from the cache) only when an object needs them."""

    kind = "kbuild"

    def __init__(self, wt: GitTree, base: str, jobs: int | None, stack: contextlib.ExitStack):
        self.wt, self.base, self.jobs, self.stack = wt, base, jobs, stack
        self._builders: dict[str, KbuildBuilder | str] = {}
        self._synced: list[str] = []
        primary = self._get(ARCH)
        if primary is None:
            raise BuildSetupError(str(self._builders[ARCH]))
        self.primary: KbuildBuilder = primary

    @property
    def builders(self) -> list[KbuildBuilder]:
        return [b for b in self._builders.values() if isinstance(b, KbuildBuilder)]

    @property
    def setup_note(self) -> str:
        notes = [b.setup_note for b in self.builders]
        notes += [why for why in self._builders.values() if isinstance(why, str)]
        return "; ".join(notes)

    @property
    def objects_built(self) -> int:
        return sum(b.objects_built for b in self.builders)

    @property
    def seconds(self) -> float:
        return sum(b.seconds for b in self.builders)

    def _get(self, arch: str) -> KbuildBuilder | None:
        if arch not in self._builders:
            why = ensure_compiler(arch)
            if why is None:
                new = KbuildBuilder(self.wt, self.base, self.jobs, arch)
                try:
                    self.stack.enter_context(new.session(self._synced))
                    new.sync(self._synced)     # the patches applied so far
                    self._builders[arch] = new
                except BuildSetupError as e:
                    self._builders[arch] = f"{arch}: {e}"
            else:
                self._builders[arch] = why
        b = self._builders[arch]
        return b if isinstance(b, KbuildBuilder) else None

    def _made(self, arch: str) -> KbuildBuilder:
        """The builder of an architecture `_get` has made."""
        b = self._builders[arch]
        assert isinstance(b, KbuildBuilder), b
        return b

    def sync(self, paths: list[str]) -> None:
        self._synced.extend(p for p in paths if p not in self._synced)
        for b in self.builders:
            b.sync(paths)

    def unselected(self, obj: str) -> str | None:
        """The x86 answer: header users are chosen among what x86 builds."""
        return self.primary.unselected(obj)

    def _choose(self, t: Target, exclude: set[str]) -> tuple[KbuildBuilder | None, str]:
        parts = PurePosixPath(t.object).parts
        if parts[0] in NOT_KERNEL_TOP or len(parts) == 1:
            # No architecture changes that: ask x86 only, for its reason.
            return None, (self.primary.unselected(t.object)
                          or f"{parts[0]} is not built by Kbuild's kernel build")
        own = parts[1] if parts[0] == "arch" and len(parts) > 2 else ""
        order = [a for a in ((own,) if own else (ARCH, *FALLBACK, *installed_cross()))
                 if a not in exclude]
        whys: list[str] = []
        for arch in order:
            b = self._get(arch)
            if b is None:
                whys.append(str(self._builders[arch]))
                continue
            why = b.unselected(t.object)
            if why is None:
                return b, ""
            whys.append(why)
        if not whys:
            return None, ""
        if own or len(whys) == 1:
            return None, whys[0]
        tried = [a for a in order if isinstance(self._builders.get(a), KbuildBuilder)]
        broken = [str(self._builders[a]) for a in order
                  if not isinstance(self._builders.get(a), KbuildBuilder)]
        return None, (f"no {CONFIG} selects it on {', '.join(tried)}"
                      + (f"; {'; '.join(broken)}" if broken else ""))

    def build(self, targets: list[Target]) -> list[ObjectResult]:
        """Each target on the first architecture that selects it.  One that
        fails there is built again at the base: failing there too, it is
        tried on the next architecture that selects it, and when none is
        left it is reported as failing at the base (the first error seen),
        never as the series' failure."""
        results: dict[str, ObjectResult] = {}
        tried: dict[str, set[str]] = {}
        at_base: dict[str, ObjectResult] = {}
        pending = list(targets)
        while pending:
            by_arch: dict[str, list[Target]] = {}
            for t in pending:
                b, why = self._choose(t, tried.get(t.object, set()))
                if b is not None:
                    by_arch.setdefault(b.arch, []).append(t)
                elif t.object in at_base:
                    results[t.object] = at_base[t.object]
                else:
                    results[t.object] = ObjectResult(t.object, "skipped", why, t.via)
            pending = []
            for arch, ts in by_arch.items():
                out = self._made(arch).build(ts)
                failed = [r for r in out if r.status == "failed"]
                base_errors = self._at_base(arch, failed) if failed else {}
                for t, r in zip(ts, out, strict=True):
                    if r.object in base_errors:
                        tried.setdefault(r.object, set()).add(arch)
                        at_base.setdefault(r.object, dataclasses.replace(
                            r, status="fails-at-base", reason=base_errors[r.object]))
                        pending.append(t)
                    else:
                        results[r.object] = r
        return [results[t.object] for t in targets]

    def _at_base(self, arch: str, failed: list[ObjectResult]) -> dict[str, str]:
        """Of objects that failed on `arch`, those that fail there at the
        base with every error they have after the patches (none new), with
        the base's first error."""
        b = self._made(arch)
        after = {r.object: b.errors.get(r.object, frozenset()) for r in failed}
        out: dict[str, str] = {}
        b.put_base(self._synced)
        built = b.objects_built    # a second look, not another object
        try:
            for r in b.build([Target(r.object) for r in failed]):
                if r.status == "failed" and after[r.object] <= b.errors.get(r.object,
                                                                            frozenset()):
                    out[r.object] = r.reason
        finally:
            b.objects_built = built
            b.sync(self._synced)
        return out


@contextlib.contextmanager
def builder_for(wt: GitTree, base: str, jobs: int | None = None):
    """The builder that fits the tree in `wt` (a worktree at `base`)."""
    if is_kbuild(wt.path):
        with contextlib.ExitStack() as stack:
            yield MultiBuilder(wt, base, jobs, stack)
    else:
        yield Builder(wt, jobs)
