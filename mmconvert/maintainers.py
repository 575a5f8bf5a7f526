"""Who looks after which file: MAINTAINERS sections, the kernel's own
scripts/get_maintainer.pl, and the subject prefix a subsystem uses.

Matching follows scripts/get_maintainer.pl: `F:`/`X:` are globs anchored at
the start of the path (a trailing `/` covers everything below, otherwise
the number of `/` must match), `N:` is a regular expression, and the most
specific section is the one whose matching pattern is deepest.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import runner
from .errors import ToolMissing
from .gitrepo import GitTree

log = logging.getLogger("mmconvert")

_ENTRY = re.compile(r"^([A-Z]):\s*(.*\S)\s*$")
_ADDR = re.compile(r"<([^>]+)>")


class Glob:
    """An F:/X: pattern as get_maintainer.pl reads it.  Compiled on first
    use: a path that does not start with the pattern's literal head cannot
    match, and most of MAINTAINERS' 10,000 patterns never meet one."""

    def __init__(self, value: str, root: Path | None):
        self.raw = value
        if root is not None and not value.endswith("/") and (root / value).is_dir():
            value += "/"
        self.depth = value.count("/") + (0 if value.endswith("/") else 1)
        if value.startswith("*"):
            self.depth = -1
        self.head = re.split(r"[*?]", value, maxsplit=1)[0]
        self.source = re.escape(value).replace(r"\*\*", "\x00").replace(r"\*", ".*") \
            .replace(r"\?", ".").replace("\x00", "(?:.*)").replace(r"\/", "/")
        self._rx: re.Pattern | None = None

    def covers(self, path: str) -> bool:
        if not path.startswith(self.head):
            return False
        if self._rx is None:
            self._rx = re.compile(self.source)
        if not self._rx.match(path):
            return False
        # A file pattern covers its own directory level only.
        return (self.source.endswith("/") or "(?:" in self.source
                or path.count("/") == self.source.count("/"))


@dataclass
class Section:
    name: str
    maintainers: list[str] = field(default_factory=list)   # M:
    reviewers: list[str] = field(default_factory=list)     # R:
    lists: list[str] = field(default_factory=list)         # L:
    status: str = ""                                       # S:
    files: list[Glob] = field(default_factory=list)        # F:
    excludes: list[Glob] = field(default_factory=list)     # X:
    regexes: list[re.Pattern] = field(default_factory=list)  # N:

    @property
    def catch_all(self) -> bool:
        """THE REST and the like: a section that covers every file."""
        return any(g.raw in ("*", "*/") for g in self.files)

    def depth(self, path: str) -> int | None:
        """How specifically this section covers `path` (None: it does not)."""
        if any(x.covers(path) for x in self.excludes):
            return None
        best = None
        for g in self.files:
            if g.covers(path):
                best = g.depth if best is None else max(best, g.depth)
        if best is None and any(r.search(path) for r in self.regexes):
            best = 0
        return best


def parse(text: str, root: Path | None = None) -> list[Section]:
    """The sections of a MAINTAINERS file (the preamble is skipped)."""
    sections: list[Section] = []
    cur: Section | None = None
    prev_blank = True
    for line in text.splitlines():
        if not line.strip():
            prev_blank = True
            continue
        m = _ENTRY.match(line)
        if m and cur is not None:
            kind, value = m.groups()
            if kind == "M":
                cur.maintainers.append(value)
            elif kind == "R":
                cur.reviewers.append(value)
            elif kind == "L":
                cur.lists.append(value.split()[0])
            elif kind == "S":
                cur.status = cur.status or value
            elif kind in ("F", "X"):
                (cur.files if kind == "F" else cur.excludes).append(Glob(value, root))
            elif kind == "N":
                try:
                    cur.regexes.append(re.compile(value))
                except re.error:
                    log.debug("MAINTAINERS: unusable N: %s", value)
        elif prev_blank and not m and not line.startswith((" ", "\t")):
            cur = Section(line.strip())
            sections.append(cur)
        prev_blank = False
    return [s for s in sections if s.files or s.regexes]


class Maintainers:
    """The MAINTAINERS file of one tree (empty when it has none)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        path = self.root / "MAINTAINERS"
        self.sections = parse(path.read_text(errors="replace"), self.root) if path.is_file() else []
        self._cache: dict[str, Section | None] = {}

    def section(self, path: str) -> Section | None:
        """The most specific section covering `path` (catch-alls excluded)."""
        if path not in self._cache:
            best, best_depth = None, None
            for s in self.sections:
                if s.catch_all:
                    continue
                d = s.depth(path)
                if d is not None and (best_depth is None or d > best_depth):
                    best, best_depth = s, d
            self._cache[path] = best
        return self._cache[path]

    def subsystem(self, path: str) -> str:
        """The name a series groups `path` under: its section, else its directory."""
        s = self.section(path)
        if s is not None:
            return s.name
        return "dir:" + str(PurePosixPath(path).parent)

    def matching(self, files: list[str]) -> list[Section]:
        """Every section covering any of `files`, as get_maintainer.pl lists them."""
        out = []
        for s in self.sections:
            if any(s.depth(f) is not None for f in files):
                out.append(s)
        return out

    def addresses(self, files: list[str]) -> tuple[list[str], list[str]]:
        """(To, Cc) straight from MAINTAINERS: maintainers; lists and reviewers."""
        to: list[str] = []
        cc: list[str] = []
        secs = self.matching(files)
        # Most specific sections first, like get_maintainer.pl.
        secs.sort(key=lambda s: -max((s.depth(f) or -2) for f in files))
        for s in secs:
            for a in s.maintainers:
                if a not in to:
                    to.append(a)
        for s in secs:
            for a in s.reviewers + s.lists:
                if a not in to and a not in cc:
                    cc.append(a)
        return to, cc

    def role_of(self, address: str, files: list[str]) -> str:
        """'maintainer' when `address` is an M: of a section covering `files`."""
        email = _email(address)
        for s in self.matching(files):
            if any(_email(a) == email for a in s.maintainers):
                return "maintainer"
        return "other"


def _email(address: str) -> str:
    m = _ADDR.search(address)
    return (m.group(1) if m else address).strip().lower()


def get_maintainer_script(root: Path) -> Path | None:
    script = Path(root) / "scripts" / "get_maintainer.pl"
    return script if script.is_file() else None


def recipients(root: Path, maint: Maintainers, patch: Path | None, files: list[str]
               ) -> tuple[list[str], list[str]]:
    """(To, Cc) of one patch file: get_maintainer.pl when the tree has it
    (one run per patch), else MAINTAINERS read directly.  With no patch,
    of the files themselves (`get_maintainer.pl -f`)."""
    script = get_maintainer_script(root)
    if script is None:
        return maint.addresses(files)
    perl = shutil.which("perl")
    if not perl:
        raise ToolMissing("perl not found: scripts/get_maintainer.pl needs it")
    cmd = [perl, str(script), "--nogit", "--nogit-fallback", "--norolestats", "--nokeywords",
           "--no-tree" if not (Path(root) / "MAINTAINERS").is_file() else "--tree",
           *(["-f", *files] if patch is None else [str(patch)])]
    # get_maintainer.pl orders people who share a section by Perl hash order,
    # which is random per process: fix the seed so reruns write the same headers.
    env = {**os.environ, "PERL_HASH_SEED": "0", "PERL_PERTURB_KEYS": "0"}
    p = runner.run(cmd, cwd=root, env=env, check=False)
    if p.returncode != 0:
        log.info("get_maintainer.pl failed on %s (%s); reading MAINTAINERS directly",
                 patch.name if patch else " ".join(files), (p.stderr.strip().splitlines() or ["?"])[0])
        return maint.addresses(files)
    to: list[str] = []
    cc: list[str] = []
    if patch is None:
        log.debug("get_maintainer.pl -f %s", " ".join(files))
    for line in p.stdout.splitlines():
        addr = line.strip()
        if not addr or "@" not in addr:
            continue
        if "<" in addr and maint.role_of(addr, files) == "maintainer":
            to.append(addr)
        else:
            cc.append(addr)
    if not to and cc:
        # Files nobody maintains: the lists get it.
        to, cc = cc[:1], cc[1:]
    return to, cc


# -- subject prefixes -----------------------------------------------------

_PREFIX = re.compile(r"^((?:[\w./+\-]+(?: [\w./+\-]+)?: )+)")


def history_prefix(gt: GitTree, files: list[str], depth: int = 200) -> str | None:
    """The most common `prefix:` of recent commits touching `files`."""
    if not gt.has_history():
        return None
    out = gt.run("log", f"-n{depth}", "--no-merges", "--format=%s", "--", *files, check=False)
    # Spellings of one prefix count together ("ALSA: pcm", "alsa: pcm");
    # the subsystem's most common spelling of the most common one wins.
    forms: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for subj in out.splitlines():
        if subj.startswith(("Revert ", "Merge ")):
            continue
        m = _PREFIX.match(subj)
        if m:
            forms[m.group(1)[:-2].lower()][m.group(1)[:-2]] += 1
    if not forms:
        return None
    best = max(sum(c.values()) for c in forms.values())
    key = min(k for k, c in forms.items() if sum(c.values()) == best)
    top = max(forms[key].values())
    return min(p for p, n in forms[key].items() if n == top)


def path_prefix(paths: list[str]) -> str:
    """A prefix derived from where the files live: `fs/ext4/file.c` ->
    `ext4`, `drivers/char/hpet.c` -> `char: hpet`, `drivers/gpu/drm/i915/x.c`
    -> `drm/i915`."""
    common = _common_path(paths)
    parts = common.split("/") if common else []
    single_file = len(paths) == 1 or len(set(paths)) == 1
    if single_file and parts:
        stem = PurePosixPath(parts[-1]).stem
        dirs = parts[:-1]
    else:
        stem = None
        dirs = parts
    if not dirs:
        return stem or "treewide"
    top = dirs[0]
    if top == "drivers" and len(dirs) >= 3 and dirs[1] == "gpu" and dirs[2] == "drm":
        return "drm/" + dirs[3] if len(dirs) >= 4 else ("drm: " + stem if stem else "drm")
    if top == "arch" and len(dirs) >= 2:
        leaf = dirs[-1] if len(dirs) >= 3 else stem
        return f"{dirs[1]}/{leaf}" if leaf and leaf != dirs[1] else dirs[1]
    if top == "security" and len(dirs) >= 2:
        return dirs[1]
    if top in ("drivers", "sound") and len(dirs) >= 2:
        head = {"sound": "ALSA"}.get(top, dirs[1])
        if top == "sound":
            leaf = dirs[-1] if len(dirs) >= 2 else stem
        elif len(dirs) >= 3:
            leaf = dirs[-1]
        else:
            leaf = stem
        return f"{head}: {leaf}" if leaf and leaf != head else head
    if top == "fs" and len(dirs) >= 3:
        return f"{dirs[1]}: {dirs[2]}"      # fs/smb/client -> smb: client
    if top in ("fs", "net") and len(dirs) >= 2:
        return dirs[1]
    if top == "fs" and stem:
        return stem          # fs/binfmt_elf.c -> binfmt_elf
    if top in ("fs", "mm", "ipc", "block", "security", "crypto", "net", "lib"):
        return top
    if top == "kernel":
        return dirs[1] if len(dirs) >= 2 else "kernel"
    return dirs[-1]


def _common_path(paths: list[str]) -> str:
    split = [p.split("/") for p in sorted(set(paths))]
    if not split:
        return ""
    out = []
    for bits in zip(*split, strict=False):
        if len(set(bits)) != 1:
            break
        out.append(bits[0])
    if len(split) > 1 or not out:
        # Several files: the common directory (never a partial file name).
        n = min(len(s) for s in split)
        if len(out) == n:
            out = out[:-1]
    return "/".join(out)


def section_prefix(maint: Maintainers, files: list[str]) -> str | None:
    """The component a MAINTAINERS section names by a file pattern, when
    it alone decides every file, after the path's head: `F: drivers/hv/mshv*`
    makes `hv: mshv`, where the path alone would say `hv`."""
    words = set()
    for f in files:
        sec = maint.section(f)
        if sec is None:
            return None
        deciding = max((g for g in sec.files if g.covers(f)), key=lambda g: g.depth, default=None)
        # A directory pattern says no more than the path does.
        if deciding is None or deciding.raw.endswith("/") or "*" not in deciding.raw:
            return None
        m = re.fullmatch(r"(?:[\w.+-]+/)*([A-Za-z][A-Za-z0-9]+)[_-]?\*[\w.*]*", deciding.raw)
        if m is None:
            return None
        words.add(m.group(1))
    if len(words) != 1:
        return None
    word = words.pop()
    head = path_prefix(files).split(": ")[0]
    return word if head.lower() == word.lower() else f"{head}: {word}"


def subject_prefix(gt: GitTree, files: list[str], maint: Maintainers | None = None) -> str:
    """The subsystem's own prefix from its history; without history the
    component a MAINTAINERS file pattern names; else one from the path."""
    return (history_prefix(gt, files)
            or (section_prefix(maint, files) if maint is not None else None)
            or path_prefix(files))
