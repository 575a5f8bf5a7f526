"""`mmconvert verify --boot`: boot the base and the series in qemu and
compare what userspace sees when it mmaps everything it can reach.

Stages, each handing a frozen record to the next:

1. `Plan`: the converted handlers (old and new names, from the patches'
   `.mmap = old` / `.mmap_prepare = new` lines), the objects the series
   touches and the Kconfig symbols that build them in (from the
   `obj-$(CONFIG_X)` lines along each object's directory chain).
2. `BootBuild`: one configuration (x86_64 tinyconfig + kvm_guest.config +
   what the probe needs + those symbols, each checked in `.config`), built
   once at the base in a cached `O=` directory and again, incrementally,
   with the series' files; both bzImages are cached (key: base commit +
   the configuration's inputs), one `flock` per cache directory.
3. `Boot`: a static C probe (`probe/probe.c`) as the initramfs' `/init`
   mmaps a fixed matrix per path and prints JSON lines on the serial
   console; ftrace's function tracer records which converted functions
   ran while each path was probed.
4. `BootReport`: base vs series per (path, case), per handler.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import selectors
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import runner, scratch
from .build import (
    BuildSetupError,
    _first_error,
    _make_env,
    cache_root,
    evict_lru,
    is_kbuild,
    populate_src,
    put_base,
)
from .errors import MmconvertError, ToolMissing, UsageError
from .gitrepo import GitTree

log = logging.getLogger("mmconvert")

# What the probe needs, on top of tinyconfig + kvm_guest.config.  Bump
# CONFIG_VERSION when this list or the way it is applied changes: it is
# part of the cache key.
CONFIG_VERSION = 1
PROBE_SYMBOLS = (
    "64BIT", "PRINTK", "TTY", "SERIAL_8250", "SERIAL_8250_CONSOLE", "BINFMT_ELF",
    "BLK_DEV_INITRD", "DEVTMPFS", "PROC_FS", "PROC_PAGE_MONITOR", "SYSFS", "SHMEM", "TMPFS",
    "MEMFD_CREATE", "DEBUG_FS", "KALLSYMS", "FTRACE", "FUNCTION_TRACER", "DYNAMIC_FTRACE",
    "MULTIUSER",
)
ARCH = "x86_64"
KEEP_BOOT_BUILDS = 2
QEMU_TIMEOUT = 240          # seconds for one boot under TCG, probe included
KVM_PROBE_TIMEOUT = 15      # a KVM guest that hangs in firmware shows nothing by then
START, END = "MMCONVERT-PROBE-BEGIN", "MMCONVERT-PROBE-END"
PROBE_SOURCE = Path(__file__).with_name("probe") / "probe.c"
QEMU_PACKAGE = "qemu-system-x86"
APT_TIMEOUT = 600


class BootSetupError(MmconvertError):
    """A boot kernel or the probe could not be built."""

    exit_code = 1


# -- stage 1: what the series converts and what has to be built in ----------------
@dataclass(frozen=True)
class Handler:
    """A converted handler: its name at the base and in the series."""

    old: str
    new: str
    file: str


@dataclass(frozen=True)
class ObjectNeed:
    """An object the series touches and the symbols that build it in."""

    object: str
    symbols: tuple[str, ...]
    reason: str = ""    # why it cannot be boot-checked, when it cannot


_MMAP_OLD = re.compile(r"^-\s*\.mmap\s*=\s*(\w+)", re.MULTILINE)
_MMAP_NEW = re.compile(r"^\+\s*\.mmap_(?:prepare|proto)\s*=\s*(\w+)", re.MULTILINE)


def handlers_of(diff_by_file: dict[str, str]) -> list[Handler]:
    """The handlers a series converts, paired in the order each file's
    diff names them in its initialisers."""
    out: list[Handler] = []
    for f, diff in diff_by_file.items():
        old, new = _MMAP_OLD.findall(diff), _MMAP_NEW.findall(diff)
        for o, n in zip(old, new, strict=False):
            h = Handler(o, n, f)
            if h not in out:
                out.append(h)
    return out


def _makefile_lines(path: Path) -> list[str]:
    """A Makefile's lines with backslash continuations joined."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return re.sub(r"\\\n", " ", text).splitlines()


_ASSIGN = re.compile(r"^\s*([\w.-]+?)-(y|objs|\$\(CONFIG_(\w+)\))\s*[:+]?=\s*(.*)$")


def _line_naming(root: Path, d: str, name: str) -> tuple[str, str | None] | None:
    """(target, CONFIG symbol or None) of the first assignment in `d`'s
    Makefile or Kbuild whose value lists `name`."""
    for mk in ("Makefile", "Kbuild"):
        for line in _makefile_lines(root / d / mk):
            m = _ASSIGN.match(line)
            if m and name in m.group(4).split():
                return m.group(1), m.group(3)
    return None


def _dir_line(root: Path, d: str, sub: str) -> tuple[str, str | None] | None:
    """The obj- line of `d` that descends into `sub` (with its symbol)."""
    hit = _line_naming(root, d, sub)
    return hit if hit and hit[0] == "obj" else None


def symbols_for(root: Path, obj: str) -> ObjectNeed:
    """The CONFIG_ symbols Kbuild needs `=y` to build `obj` into vmlinux:
    its own `obj-$(CONFIG_X)` line (through composite objects), then the
    line of each parent directory that descends into it."""
    syms: list[str] = []
    d = PurePosixPath(obj).parent
    name = PurePosixPath(obj).name
    seen: set[str] = set()
    while True:   # obj-$(X) += name, or comp-$(Y) += name and then comp.o's own line
        hit = _line_naming(root, str(d), name)
        if hit is None:
            return ObjectNeed(obj, tuple(syms), f"no line of {d}/Makefile builds {name}")
        target, sym = hit
        if sym:
            syms.append(sym)
        if target in ("obj", "lib"):
            break
        name = f"{target}.o"
        if name in seen:
            return ObjectNeed(obj, tuple(syms), f"{d}/Makefile: {name} names itself")
        seen.add(name)
    # The directory chain: a parent's obj-$(X) += sub/ (or a grandparent's sub/dir/);
    # the top Makefile and arch/x86/Kbuild list the top directories unconditionally.
    child = d
    while len(child.parts) > 1:
        up = next(((p, h) for p in child.parents if str(p) != "."
                   if (h := _dir_line(root, str(p), str(child.relative_to(p)) + "/"))), None)
        if up is None:
            break
        child, (_, sym) = up[0], up[1]
        if sym:
            syms.append(sym)
    return ObjectNeed(obj, tuple(dict.fromkeys(syms)))


# -- Kconfig ----------------------------------------------------------------------
_DEPENDS = re.compile(r"^\s*depends on\s+(.*)$")
_IDENT = re.compile(r"(!?)\b([A-Z0-9_]+)\b")


def kconfig_depends(gt: GitTree, sym: str) -> list[str]:
    """Symbols `sym`'s `depends on` lines need (not negated): what
    `scripts/config --enable` has to be told too, as olddefconfig drops a
    symbol whose dependencies are unmet."""
    _, out, _ = gt.run_rc("grep", "-n", "-E", f"^\\s*(menu)?config {sym}\\s*$",
                               "--", "*Kconfig*")
    deps: list[str] = []
    for hit in out.splitlines():
        f, line_no = hit.split(":")[:2]
        lines = (gt.path / f).read_text(errors="replace").splitlines()
        for line in lines[int(line_no):]:
            if re.match(r"^\s*(config|menuconfig|menu|endmenu|choice|endchoice|if|endif|"
                        r"source|comment)\b", line):
                break
            m = _DEPENDS.match(line)
            if m and "||" not in m.group(1):
                deps += [s for neg, s in _IDENT.findall(m.group(1))
                         if not neg and s not in ("y", "m", "n") and not s.isdigit()]
    return deps


def _config_values(config: Path) -> dict[str, str]:
    vals: dict[str, str] = {}
    for line in config.read_text(errors="replace").splitlines():
        m = re.match(r"^CONFIG_(\w+)=(.*)$", line)
        if m:
            vals[m.group(1)] = m.group(2)
    return vals


# -- stage 2: the two kernels -------------------------------------------------------
class BootBuild:
    """A cached O= directory per base commit + configuration inputs; its
    own source tree hard-linked from the first worktree (Kbuild records
    absolute paths, so a new worktree each run would rebuild everything).
    The series' files are copied in for the second build and put back to
    the base from the base commit afterwards (a manifest says which, so an
    interrupted run is repaired by the next)."""

    def __init__(self, wt: GitTree, base: str, wanted: tuple[str, ...], jobs: int):
        self.wt, self.base, self.jobs = wt, base, jobs
        self.wanted = wanted
        inputs = json.dumps([CONFIG_VERSION, ARCH, sorted(wanted)])
        digest = hashlib.sha256(inputs.encode()).hexdigest()[:12]
        self.key = f"{base[:12]}-{ARCH}-boot-{digest}"
        self.dir = cache_root() / self.key
        self.lockfile = cache_root() / f"{self.key}.lock"
        self.src, self.objdir = self.dir / "src", self.dir / "o"
        self.images = self.dir / "images"
        self.seconds = 0.0

    @property
    def _manifest(self) -> Path:
        return self.dir / "changed-paths"

    def make(self, *args: str, timeout: int | None = None) -> tuple[int, str]:
        cmd = ["make", "-C", str(self.src), f"O={self.objdir}", f"ARCH={ARCH}", *args]
        try:
            p = runner.run(cmd, check=False, errors="replace", no_stdin=True, env=_make_env(),
                           timeout=timeout)
        except FileNotFoundError:
            raise ToolMissing("make is not installed") from None
        return p.returncode, p.stdout + p.stderr

    @contextlib.contextmanager
    def session(self):
        cache_root().mkdir(parents=True, exist_ok=True)
        with open(self.lockfile, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not (self.dir / "configured").is_file():
                    self._populate()
                else:
                    (self.dir / "configured").touch()
                    self._restore()
                yield self
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        evict_boot_builds(KEEP_BOOT_BUILDS, self.dir)

    def _populate(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)   # an interrupted first run
        self.dir.mkdir(parents=True)
        try:
            populate_src(self.wt, self.src)
        except BuildSetupError as e:
            raise BootSetupError(str(e)) from None
        self.images.mkdir()

    def _restore(self) -> None:
        if self._manifest.is_file():
            self._put_base(sorted(set(self._manifest.read_text().split("\n")) - {""}))
            self._manifest.unlink()

    def _put_base(self, paths: list[str]) -> None:
        put_base(self.wt, self.base, self.src, paths)

    def configure(self, gt: GitTree) -> tuple[str, tuple[str, ...]]:
        """tinyconfig + kvm_guest.config + the wanted symbols (and the plain
        `depends on` symbols they need), olddefconfig; the wanted symbols
        that are not =y afterwards."""
        stamp = self.dir / "configured"
        if stamp.is_file():
            kept = tuple(stamp.read_text().split())
            return f"reused {self.objdir}/.config", kept
        start = time.monotonic()
        for args in (["tinyconfig"], ["kvm_guest.config"]):
            status, out = self.make(*args)
            if status != 0:
                raise BootSetupError(f"make {args[0]} failed: {_first_error(out, '')}")
        config = self.objdir / ".config"
        enable = list(self.wanted)
        missing: tuple[str, ...] = ()
        for _ in range(4):   # each round adds the dependencies of what was dropped
            cmd = [str(self.src / "scripts" / "config"), "--file", str(config)]
            for s in enable:
                cmd += ["--enable", s]
            runner.run(cmd)
            status, out = self.make("olddefconfig")
            if status != 0:
                raise BootSetupError(f"make olddefconfig failed: {_first_error(out, '')}")
            vals = _config_values(config)
            missing = tuple(s for s in self.wanted if vals.get(s) != "y")
            dropped = [s for s in enable if vals.get(s) != "y"]
            more = [d for s in dropped for d in kconfig_depends(gt, s)
                    if d not in enable and vals.get(d) != "y"]
            if not missing or not more:
                break
            enable += list(dict.fromkeys(more))
        stamp.write_text(" ".join(missing) + "\n")
        self.seconds += time.monotonic() - start
        return (f"configured {self.objdir}/.config (tinyconfig + kvm_guest.config + "
                f"{len(self.wanted)} symbols)"), missing

    def image(self, name: str) -> tuple[Path, bool]:
        """Build bzImage and keep a copy as images/<name>; (path, from cache)."""
        kept = self.images / f"{name}.bzImage"
        if kept.is_file():
            return kept, True
        start = time.monotonic()
        status, out = self.make(f"-j{self.jobs}", "bzImage")
        self.seconds += time.monotonic() - start
        if status != 0:
            raise BootSetupError(f"make bzImage failed ({name}): {_first_error(out, f'{self.src}/')}")
        tmp = kept.with_suffix(".tmp")
        shutil.copy2(self.objdir / "arch" / "x86" / "boot" / "bzImage", tmp)
        os.replace(tmp, kept)
        return kept, False

    def built(self, obj: str) -> bool:
        return (self.objdir / obj).is_file()

    def with_series(self, series_wt: GitTree, paths: list[str]):
        """The build's sources for `paths` as the series has them, until the
        context ends (then back to the base)."""
        @contextlib.contextmanager
        def ctx():
            with open(self._manifest, "a") as m:
                m.write("".join(f"{p}\n" for p in paths))
                m.flush()
                os.fsync(m.fileno())
            try:
                for p in paths:
                    src, dst = series_wt.path / p, self.src / p
                    if src.is_file():
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        tmp = dst.with_name(dst.name + ".mmconvert-tmp")
                        shutil.copy2(src, tmp)
                        os.utime(tmp)   # newer than the base's objects
                        os.replace(tmp, dst)
                    elif dst.is_file():
                        dst.unlink()
                yield
            finally:
                self._put_base(paths)
                # Newer than the series' objects: the next base build redoes them.
                for p in paths:
                    if (self.src / p).is_file():
                        os.utime(self.src / p)
                self._manifest.unlink(missing_ok=True)
        return ctx()


def evict_boot_builds(keep: int, current: Path) -> list[Path]:
    """Remove all but the `keep` most recently used boot build directories
    (never `current`, nor one another run holds)."""
    return evict_lru(f"*-{ARCH}-boot-*", "configured", keep, current)


# -- stage 3: the probe and the boot ---------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What one mmap case gave: an errno name, or ok with the mapping's
    VmFlags and the first page's checksum (empty where not read)."""

    result: str
    mode: str = ""
    vmflags: str = ""
    sum: str = ""

    def text(self) -> str:
        if self.result != "ok":
            return self.result
        return f"ok [{self.vmflags}]" + (f" sum {self.sum}" if self.sum else "")


@dataclass(frozen=True)
class Boot:
    """One kernel's boot: the probe's outcomes per (path, case), the
    converted functions that ran while each path was probed."""

    kernel: str                                  # "base" | "series"
    ok: bool
    error: str                                   # why not, with the console's tail
    outcomes: dict[tuple[str, str], Outcome] = field(default_factory=dict)
    called: dict[str, tuple[str, ...]] = field(default_factory=dict)
    trace_filter: dict[str, str] = field(default_factory=dict)
    paths: int = 0
    seconds: float = 0.0                         # qemu's whole run
    accel: str = ""
    probe_seconds: float = 0.0                   # begin to end marker


def ensure_qemu() -> str:
    """qemu-system-x86_64's path, installed from Debian's packages when
    missing and mmconvert runs as root (as build.ensure_compiler does)."""
    found = shutil.which("qemu-system-x86_64")
    if found:
        return found
    if os.environ.get("MMCONVERT_NO_INSTALL") or os.geteuid() != 0 \
            or not shutil.which("apt-get"):
        raise ToolMissing(f"qemu-system-x86_64 is not installed (Debian package {QEMU_PACKAGE})")
    log.warning("boot: installing %s", QEMU_PACKAGE)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", QEMU_PACKAGE]
    try:
        p = runner.run(cmd, check=False, env=env, no_stdin=True, timeout=APT_TIMEOUT)
        if p.returncode != 0:   # package lists too old, or none yet
            runner.run(["apt-get", "update", "-qq"], check=False, env=env, no_stdin=True,
                       timeout=APT_TIMEOUT)
            runner.run(cmd, check=False, env=env, no_stdin=True, timeout=APT_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass
    found = shutil.which("qemu-system-x86_64")
    if not found:
        raise ToolMissing(f"qemu-system-x86_64 is not installed and {QEMU_PACKAGE} could "
                          "not be installed")
    return found


def build_probe(out_dir: Path) -> Path:
    exe = out_dir / "init"
    cmd = ["gcc", "-static", "-O2", "-Wall", "-o", str(exe), str(PROBE_SOURCE)]
    try:
        p = runner.run(cmd, check=False, no_stdin=True)
    except FileNotFoundError:
        raise ToolMissing("gcc is not installed (the boot probe is built with it)") from None
    if p.returncode != 0:
        first = (p.stderr.strip().splitlines() or ["?"])[0]
        raise BootSetupError(f"cannot build the boot probe (gcc -static; Debian's libc6-dev "
                             f"has the static libc): {first}")
    return exe


def make_initramfs(gen_init_cpio: Path, probe: Path, functions: list[str], out: Path) -> Path:
    """A newc archive with /init, /dev/console (the kernel opens it for
    init's stdout before devtmpfs is mounted) and the functions to trace."""
    funcs = out.with_suffix(".functions")
    funcs.write_text("\n".join(functions) + "\n")
    spec = out.with_suffix(".list")
    spec.write_text("\n".join([
        "dir /dev 0755 0 0", "nod /dev/console 0600 0 0 c 5 1", "dir /proc 0755 0 0",
        "dir /sys 0755 0 0", "dir /tmp 0755 0 0",
        f"file /init {probe} 0755 0 0", f"file /trace-functions {funcs} 0644 0 0", ""]))
    p = runner.run([str(gen_init_cpio), str(spec)], check=False, text=False)
    if p.returncode != 0:
        raise BootSetupError(f"gen_init_cpio failed: {runner.last_line(p.stderr)[:200]}")
    out.write_bytes(p.stdout)
    return out


_KVM_WORKS: bool | None = None


def _qemu(qemu: str, kernel: Path, initrd: Path, accel: str, timeout: int
          ) -> tuple[str, bool, float]:
    """(console output, finished before the timeout, seconds from the
    probe's begin marker to its end marker as they arrived).  qemu is stopped as
    soon as the probe's end marker is out: tinyconfig has no ACPI to power
    off with, nor ioperm() for qemu's debug-exit port."""
    cmd = [qemu, "-accel", accel, "-m", "256M", "-smp", "1", "-nographic", "-no-reboot",
           "-nodefaults", "-serial", "stdio", "-kernel", str(kernel), "-initrd", str(initrd),
           "-append", "console=ttyS0 panic=-1 loglevel=1 lsm=selinux"]
    if accel.startswith("tcg"):
        cmd[1:3] = ["-accel", "tcg", "-cpu", "max"]
    log.debug("%s", " ".join(cmd))
    deadline = time.monotonic() + timeout
    out = bytearray()
    began = ended = 0.0
    runner.log_command(cmd)
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as p:
        assert p.stdout is not None
        fd = p.stdout.fileno()
        os.set_blocking(fd, False)
        finished = False
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if not sel.select(min(left, 1.0)):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    finished = True      # qemu exited (panic=-1 with -no-reboot)
                    break
                out += chunk
                if not began and START.encode() in out:
                    began = time.monotonic()
                if END.encode() + b"\r\n" in out[-4096:] or END.encode() + b"\n" in out[-4096:]:
                    finished, ended = True, time.monotonic()
                    break
        p.kill()
        p.wait()
    return out.decode(errors="replace"), finished, round(ended - began, 1) if ended else 0.0


def _accel(qemu: str, kernel: Path, initrd: Path) -> str:
    """kvm when a KVM guest gets as far as the probe in a short time, else
    tcg: /dev/kvm may open on a machine without nested virtualisation and
    the guest then hangs in its firmware."""
    global _KVM_WORKS
    if _KVM_WORKS is None:
        _KVM_WORKS = False
        if os.access("/dev/kvm", os.R_OK | os.W_OK):
            text, _, _ = _qemu(qemu, kernel, initrd, "kvm", KVM_PROBE_TIMEOUT)
            _KVM_WORKS = START in text
    return "kvm" if _KVM_WORKS else (
        "tcg" if not os.access("/dev/kvm", os.R_OK | os.W_OK) else
        f"tcg, KVM did not reach the probe in {KVM_PROBE_TIMEOUT} s")


def boot(qemu: str, name: str, kernel: Path, initrd: Path, timeout: int = QEMU_TIMEOUT) -> Boot:
    accel = _accel(qemu, kernel, initrd)
    start = time.monotonic()     # the KVM check apart: it is paid once a run
    text, finished, probe_secs = _qemu(qemu, kernel, initrd, accel, timeout)
    secs = round(time.monotonic() - start, 1)
    return parse_console(name, text, finished, timeout, dataclasses.replace(
        Boot(name, False, ""), seconds=secs, accel=accel, probe_seconds=probe_secs))


def parse_console(name: str, text: str, finished: bool, timeout: int, run: Boot) -> Boot:
    """The probe's records out of one boot's console; `run` carries the
    times.  No begin marker, or no end marker, is a failed boot with the
    console's tail."""
    secs, accel = run.seconds, run.accel
    lines = [ln.rstrip("\r") for ln in text.splitlines()]
    # The firmware's escape codes may precede a marker on its line.
    lines = [START if ln.endswith(START) else END if ln.endswith(END) else ln for ln in lines]
    tail = "\n".join(lines[-15:])
    if START not in lines:
        why = "timed out" if not finished else "no probe output"
        return Boot(name, False, f"{name} kernel: {why} after {secs} s (the probe never "
                    f"started); console tail:\n{tail}", seconds=secs, accel=accel)
    if END not in lines:
        why = f"timed out after {timeout} s" if not finished else "the probe crashed"
        return Boot(name, False, f"{name} kernel: {why} before the probe's end marker; "
                    f"console tail:\n{tail}", seconds=secs, accel=accel)
    outcomes: dict[tuple[str, str], Outcome] = {}
    called: dict[str, tuple[str, ...]] = {}
    filt: dict[str, str] = {}
    paths = 0
    for ln in lines[lines.index(START) + 1:lines.index(END)]:
        try:
            j = json.loads(ln)
        except ValueError:
            continue   # a kernel message on the console
        if not isinstance(j, dict):
            continue
        if "case" in j:
            outcomes[(j["path"], j["case"])] = Outcome(j["result"], j.get("mode", ""),
                                                       j.get("vmflags", ""), j.get("sum", ""))
        elif "open" in j:
            outcomes[(j["path"], "open")] = Outcome(j["open"])
        elif "called" in j:
            called[j["path"]] = tuple(j["called"])
        elif "trace_filter" in j:
            filt[j["trace_filter"]] = j["result"]
        elif "trace" in j:
            filt["(tracer)"] = f"{j['trace']} ({j.get('errno', '')})"
        elif "paths" in j:
            paths = j["paths"]
    return dataclasses.replace(run, ok=True, outcomes=outcomes, called=called,
                               trace_filter=filt, paths=paths)


# -- stage 4: the comparison ------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    path: str
    case: str
    base: str
    series: str
    handlers: tuple[str, ...]       # the converted handlers that ran for this path


@dataclass(frozen=True)
class HandlerResult:
    handler: str                    # old name -> new name
    file: str
    status: str                     # "same" | "differs" | "not reached" | "not boot-checked"
    paths: tuple[str, ...] = ()     # where it ran
    detail: str = ""


@dataclass(frozen=True)
class BootReport:
    ran: bool
    error: str = ""
    handlers: tuple[HandlerResult, ...] = ()
    differences: tuple[Difference, ...] = ()
    not_boot_checked: tuple[ObjectNeed, ...] = ()
    compared: int = 0
    config_note: str = ""
    build_seconds: float = 0.0
    boot_seconds: dict[str, float] = field(default_factory=dict)
    probe_seconds: dict[str, float] = field(default_factory=dict)
    accel: str = ""
    cached_kernels: bool = False
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.ran and not self.error and not self.differences

    def to_json(self) -> dict:
        from .model import to_json
        out = to_json(self)
        out["passed"] = self.passed
        return out


def compare(base: Boot, series: Boot, handlers: list[Handler]
            ) -> tuple[list[Difference], list[HandlerResult]]:
    """Per (path, case) base vs series; per handler, where it ran (either
    name, on either kernel) and whether anything there differed."""
    old_of = {h.new: h.old for h in handlers}
    ran_at: dict[str, set[str]] = {}
    for b in (base, series):
        for path, names in b.called.items():
            for n in names:
                ran_at.setdefault(old_of.get(n, n), set()).add(path)
    diffs: list[Difference] = []
    for key in sorted(set(base.outcomes) | set(series.outcomes)):
        a, s = base.outcomes.get(key), series.outcomes.get(key)
        if a == s:
            continue
        path = key[0]
        who = tuple(h.old for h in handlers if path in ran_at.get(h.old, set()))
        diffs.append(Difference(path, key[1], a.text() if a else "not probed",
                                s.text() if s else "not probed", who))
    results = []
    for h in handlers:
        where = tuple(sorted(ran_at.get(h.old, set())))
        mine = [d for d in diffs if h.old in d.handlers]
        if mine:
            status = "differs"
        elif where:
            status = "same"
        else:
            status = "not reached"
        detail = ""
        tracer = base.trace_filter.get("(tracer)") or series.trace_filter.get("(tracer)")
        if not where and tracer:
            results.append(HandlerResult(f"{h.old} -> {h.new}", h.file, "not reached", (),
                                         f"ftrace did not run: {tracer}"))
            continue
        if not where:
            filt = [f"{n}: {series.trace_filter.get(n) or base.trace_filter.get(n)}"
                    for n in (h.old, h.new)
                    if (series.trace_filter.get(n) or base.trace_filter.get(n, "ok")) != "ok"]
            detail = ("no probed path ran it" if not filt else
                      "cannot be traced (" + "; ".join(filt) + ")")
        results.append(HandlerResult(f"{h.old} -> {h.new}", h.file, status, where, detail))
    return diffs, results


# -- the whole check --------------------------------------------------------------------
def _diffs_by_file(series) -> dict[str, str]:
    from .verify import _diff_text

    out: dict[str, str] = {}
    for p in series.patches:
        for chunk in re.split(r"^(?=diff --git )", _diff_text(p.body), flags=re.MULTILINE):
            m = re.match(r"diff --git a/(\S+) b/(\S+)", chunk)
            if m:
                out[m.group(2)] = out.get(m.group(2), "") + chunk
    return out


def boot_check(series_dir: Path, tree: Path, base_id: str, jobs: int | None = None,
               timeout: int = QEMU_TIMEOUT) -> BootReport:
    """Build, boot and probe the base and the series; see the module docstring."""
    from .verify import COMMITTER, load_series

    started = time.monotonic()
    series = load_series(series_dir)
    gt = GitTree(tree)
    if not is_kbuild(gt.path) or not (gt.path / "arch" / "x86").is_dir():
        raise UsageError(f"{tree}: --boot needs a Linux kernel tree with arch/x86 "
                         "(it boots x86_64 kernels)")
    diffs = _diffs_by_file(series)
    handlers = handlers_of(diffs)
    if not handlers:
        return BootReport(False, "the series converts no .mmap handler (no `.mmap = f` line "
                          "it turns into `.mmap_prepare = g`): nothing to boot-check")
    qemu = ensure_qemu()
    sources = [f for f in diffs if f.endswith(".c")]
    with gt.worktree(base_id) as wt:
        needs = [symbols_for(wt.path, f[:-2] + ".o") for f in sources]
        wanted = tuple(dict.fromkeys([*PROBE_SYMBOLS, *(s for n in needs for s in n.symbols)]))
        bb = BootBuild(wt, base_id, wanted, jobs or os.cpu_count() or 1)
        with bb.session():
            # The build has its own copy of the base by now: the worktree can move on.
            for p in series.patches:
                status, out, err = wt.run_rc("am", "--no-3way", "--quiet",
                                             str(p.path.resolve()), env=COMMITTER)
                if status != 0:
                    wt.run_rc("am", "--abort")
                    first = ((err or out).strip().splitlines() or ["git am failed"])[0]
                    return BootReport(False, f"{p.path.name} does not apply, not booted: "
                                      f"{first}")
            note, missing = bb.configure(wt)
            lost = [s for s in missing if s in PROBE_SYMBOLS]
            if lost:
                raise BootSetupError(f"the probe's kernel lacks CONFIG_{', CONFIG_'.join(lost)} "
                                     "after olddefconfig")
            base_img, cached_base = bb.image("base")
            skipped: list[ObjectNeed] = []
            for n in needs:
                gone = [s for s in n.symbols if s in missing]
                if n.reason:
                    skipped.append(n)
                elif gone:
                    skipped.append(dataclasses.replace(
                        n, reason=f"CONFIG_{', CONFIG_'.join(gone)} could not be enabled "
                        "(unmet dependencies after olddefconfig)"))
                elif not bb.built(n.object):
                    skipped.append(dataclasses.replace(
                        n, reason=f"not built by the boot configuration ({bb.objdir} has no "
                        "such object)"))
            touched = [f for f in wt.run("diff", "--name-only", "--no-renames", "-z",
                                         base_id, "HEAD").split("\0") if f]
            digest = hashlib.sha256()
            for f in sorted(touched):
                digest.update(f.encode() + b"\0")
                if (wt.path / f).is_file():
                    digest.update((wt.path / f).read_bytes())
            with bb.with_series(wt, touched):
                series_img, cached_series = bb.image(f"series-{digest.hexdigest()[:12]}")
            gen = bb.objdir / "usr" / "gen_init_cpio"
            if not gen.is_file():
                raise BootSetupError(f"{gen}: not built (CONFIG_BLK_DEV_INITRD)")
            build_seconds = round(bb.seconds, 1)
            with scratch.directory("mmconvert-boot-") as tmp:
                probe = build_probe(tmp)
                base_rd = make_initramfs(gen, probe, [h.old for h in handlers],
                                         tmp / "base.cpio")
                series_rd = make_initramfs(gen, probe, [h.new for h in handlers],
                                           tmp / "series.cpio")
                log.info("booting the base kernel")
                b0 = boot(qemu, "base", base_img, base_rd, timeout)
                log.info("booting the series kernel")
                b1 = boot(qemu, "series", series_img, series_rd, timeout) if b0.ok else None
    times = {"base": b0.seconds, **({"series": b1.seconds} if b1 else {})}
    probing = {"base": b0.probe_seconds, **({"series": b1.probe_seconds} if b1 else {})}
    common = BootReport(True, config_note=note, build_seconds=build_seconds,
                        boot_seconds=times, probe_seconds=probing, accel=b0.accel,
                        cached_kernels=cached_base and cached_series,
                        not_boot_checked=tuple(skipped))
    if b1 is None or not b0.ok or not b1.ok:
        return dataclasses.replace(common, error=b0.error or (b1.error if b1 else ""),
                                   seconds=round(time.monotonic() - started, 1))
    found, results = compare(b0, b1, handlers)
    unchecked = {n.object[:-2] + ".c": n.reason for n in skipped}
    results = [dataclasses.replace(r, status="not boot-checked", detail=unchecked[r.file])
               if r.file in unchecked else r for r in results]
    return dataclasses.replace(common, handlers=tuple(results), differences=tuple(found),
                               compared=len(set(b0.outcomes) | set(b1.outcomes)),
                               seconds=round(time.monotonic() - started, 1))


def summary_text(rep: BootReport) -> str:
    lines = ["boot: base vs series kernel, x86_64 tinyconfig in qemu "
             f"({rep.accel or 'not booted'}), {rep.compared} (path, case) outcomes compared"]
    if rep.config_note:
        lines.append(f"  kernels: {rep.config_note}; "
                     + ("both bzImages from the cache" if rep.cached_kernels else
                        f"built in {rep.build_seconds} s")
                     + "; qemu (boot + probe) " + ", ".join(
                         f"{k} {v} s (probe {rep.probe_seconds.get(k, 0.0)} s)"
                         for k, v in rep.boot_seconds.items()))
    for h in rep.handlers:
        where = f" (ran for {', '.join(h.paths)})" if h.paths else ""
        lines.append(f"  {h.handler}: {h.status}{where}" + (f": {h.detail}" if h.detail else ""))
    for d in rep.differences:
        who = ", ".join(d.handlers) or "no converted handler ran there"
        lines.append(f"  DIFFERS {d.path} {d.case} [{who}]: base {d.base}, series {d.series}")
    for n in rep.not_boot_checked:
        lines.append(f"  {n.object}: not boot-checked: {n.reason}")
    if rep.error:
        lines.append(f"  FAIL {rep.error}")
    lines.append(f"boot result: {'PASS' if rep.passed else 'FAIL'}: "
                 f"{len(rep.differences)} differences ({rep.seconds} s)")
    return "\n".join(lines) + "\n"
