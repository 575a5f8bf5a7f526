"""The one module that talks to git.

Every git command goes through `GitTree.run()` (runner.run(), logged at
debug level, `cwd` instead of chdir); every worktree mmconvert makes is
created and removed here, so nothing else can leave one behind.  A
`SparseTree` is a worktree with only the files mmconvert reads checked out.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import re
import subprocess
from pathlib import Path

import git

from . import runner, scratch, signals
from .errors import TreeError, UsageError

log = logging.getLogger("mmconvert")

WORKTREE_PREFIX = scratch.PREFIX + "wt-"

# No git command mmconvert runs (the series' commits, verify's git am) may set
# off a background repack of the user's repository, and every path git
# prints is the path as it is (git quotes non-ASCII names by default).
GIT_OPTS = ("--no-pager", "-c", "gc.auto=0", "-c", "maintenance.auto=false",
            "-c", "core.quotePath=false")


class GitTree:
    """A git working tree (the user's checkout or one of our worktrees)."""

    def __init__(self, path: Path | str):
        self.path = Path(path).resolve()
        if not self.path.is_dir():
            raise UsageError(f"{path}: not a directory")
        try:
            self.repo = git.Repo(self.path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            top = runner.run(["git", "rev-parse", "--show-toplevel"], cwd=self.path,
                             check=False)
            if top.returncode == 0 and top.stdout.strip():
                raise TreeError(f"{path}: a subdirectory of the git checkout "
                                f"{top.stdout.strip()}; mmconvert needs the kernel tree at the "
                                "top of a checkout of its own") from None
            raise TreeError(f"{path}: not a git repository (mmconvert works on git checkouts)") from None
        top_dir = self.repo.working_tree_dir
        if self.repo.bare or top_dir is None or Path(top_dir).resolve() != self.path:
            raise TreeError(f"{path}: not the top of a git working tree")

    def run(self, *args: str, input: str | None = None, check: bool = True) -> str:
        """Run `git -C <tree> args...` and return its stdout."""
        status, out, err = self.run_rc(*args, input=input)
        if status != 0 and check:
            raise runner.ToolFailed("git", status, runner.last_line(err))
        return out

    def run_rc(self, *args: str, input: str | None = None,
               env: dict[str, str] | None = None) -> tuple[int, str, str]:
        """Run git, return (status, stdout, stderr) without raising."""
        full_env = None
        if env:
            full_env = dict(os.environ, **env)
        p = runner.run(["git", *GIT_OPTS, *args], cwd=self.path, input=input, env=full_env,
                       check=False, shown=f"git {' '.join(args)}")
        return p.returncode, p.stdout, p.stderr

    # -- state -----------------------------------------------------------
    def head(self) -> str:
        return self.run("rev-parse", "HEAD").strip()

    def resolve(self, ref: str) -> str:
        status, out, _ = self.run_rc("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if status != 0:
            raise UsageError(f"unknown ref: {ref}")
        return out.strip()

    def short(self, rev: str) -> str:
        return self.run("rev-parse", "--short=12", rev).strip()

    def is_dirty(self) -> bool:
        return bool(self.run("status", "--porcelain", "--untracked-files=no").strip())

    def branch_exists(self, name: str) -> bool:
        return self.run_rc("rev-parse", "--verify", "--quiet", f"refs/heads/{name}")[0] == 0

    def has_history(self) -> bool:
        return self.run_rc("rev-parse", "--verify", "--quiet", "HEAD~1")[0] == 0

    # -- files -----------------------------------------------------------
    def _grep(self, mode: str, patterns: list[str], fixed: bool, words: bool,
              pathspecs: tuple[str, ...], checkout: bool = True) -> str:
        """git grep over the tracked files; exit 1 (no match) is no error."""
        args = ["grep", mode, "-I", "--no-color", "-F" if fixed else "-E"]
        if words:
            args.append("-w")
        for p in patterns:
            args += ["-e", p]
        return self._search(mode, args, pathspecs, checkout)

    def _search(self, mode: str, args: list[str], pathspecs: tuple[str, ...],
                checkout: bool) -> str:
        return self._grep_run(args, pathspecs)

    def _grep_run(self, args: list[str], pathspecs: tuple[str, ...]) -> str:
        status, out, err = self.run_rc(*args, "--", *pathspecs)
        if status not in (0, 1):
            raise TreeError(f"git grep failed: {err.strip()}")
        return out

    def grep_files(self, patterns: list[str], *, fixed: bool = False, words: bool = False,
                   pathspecs: tuple[str, ...] = ("*.c", "*.h"),
                   checkout: bool = True) -> list[str]:
        """Tracked files that contain any of `patterns` (git grep -l);
        `checkout=False` when only the names are wanted."""
        if not patterns:
            return []
        return sorted(self._grep("-l", patterns, fixed, words, pathspecs, checkout).split())

    def grep_lines(self, patterns: list[str], *, fixed: bool = False, words: bool = False,
                   pathspecs: tuple[str, ...] = ("*.c", "*.h"),
                   checkout: bool = True) -> list[tuple[str, int, str]]:
        """(file, line, text) of every matching line; `checkout=False` when
        the caller only filters the lines."""
        if not patterns:
            return []
        hits = []
        for row in self._grep("-n", patterns, fixed, words, pathspecs, checkout).splitlines():
            path, line, text = row.split(":", 2)
            hits.append((path, int(line), text))
        return hits

    def blob_ids(self, files: list[str]) -> dict[str, str]:
        """Content ids of working-tree files (what the result cache keys on)."""
        if not files:
            return {}
        self.ensure(files)
        out = self.run("hash-object", "--stdin-paths", input="\n".join(files) + "\n")
        return dict(zip(files, out.split(), strict=False))

    def has_file(self, rel: str) -> bool:
        """Whether the tree has `rel`, checked out or not."""
        return (self.path / rel).is_file()

    def read_text(self, rel: str) -> str:
        return (self.path / rel).read_text(errors="replace")

    def ensure(self, files: list[str]) -> None:
        """Check out `files` in a sparse worktree (a no-op elsewhere)."""

    def _same_as(self, rev: str) -> bool:
        """Whether this checkout holds exactly `rev`'s files: at `rev`, no
        change to a tracked file, not itself sparse.  (No index refresh:
        `--no-optional-locks` keeps git from rewriting the user's index.)"""
        if self.head() != rev or self.run("config", "--bool", "core.sparseCheckout",
                                          check=False).strip() == "true":
            return False
        status, out, _ = self.run_rc("--no-optional-locks", "status", "--porcelain",
                                     "--untracked-files=no")
        return status == 0 and not out.strip()

    # -- worktrees -------------------------------------------------------
    @contextlib.contextmanager
    def worktree(self, rev: str, branch: str | None = None, keep_branch: bool = True,
                 sparse: tuple[str, ...] | None = None):
        """A temporary worktree at `rev`, removed on every exit path.

        With `branch`, the worktree is on that new branch; the branch is
        deleted again if the body does not finish (exception or Ctrl-C), or
        always when `keep_branch` is false.  With `sparse`, only those files
        are checked out at first and the rest as they are found (grep,
        `ensure`, `read_text`): a kernel checkout is 1.5 GB of writes.
        """
        self.sweep()
        tmp = scratch.mkdtemp(WORKTREE_PREFIX)
        wt = tmp / "tree"
        args = ["worktree", "add", "--quiet"]
        args += ["-b", branch] if branch else ["--detach"]
        if sparse is not None:
            args.append("--no-checkout")
        ok = False
        try:
            # Inside the try: Ctrl-C during the checkout must clean up too.
            status, _, err = self.run_rc(*args, str(wt), rev)
            if status != 0:
                raise TreeError(f"cannot create a worktree at {rev}: "
                                f"{err.strip().splitlines()[-1] if err.strip() else 'git failed'}")
            if sparse is None:
                tree = GitTree(wt)
            else:
                commit = self.resolve(rev)
                tree = SparseTree(wt, commit, self if self._same_as(commit) else None, sparse)
            yield tree
            ok = True
        finally:
            with signals.shield():
                self._drop_worktree(tmp, wt)
                if branch and (not ok or not keep_branch):
                    self.run_rc("branch", "-D", branch)

    def sweep(self) -> None:
        """Remove what a killed mmconvert left: its worktrees of this
        repository whose owner is gone (registered, maybe locked by an
        interrupted `worktree add`), and its stale scratch directories."""
        listed = self.run_rc("worktree", "list", "--porcelain")[1]
        for line in listed.splitlines():
            wt = Path(line.removeprefix("worktree ")) if line.startswith("worktree ") else None
            if wt is None or wt.name != "tree" or not wt.parent.name.startswith(WORKTREE_PREFIX):
                continue
            if wt.parent.is_dir() and not scratch.stale(wt.parent):
                continue
            with signals.shield():
                self.run_rc("worktree", "unlock", str(wt))
                self.run_rc("worktree", "remove", "--force", "--force", str(wt))
                log.debug("removed a stale worktree %s", wt)
        self.run_rc("worktree", "prune")
        scratch.sweep()

    def _drop_worktree(self, tmp: Path, wt: Path) -> None:
        """Detach the worktree from git at once and delete its files in the
        background: `git worktree remove` of a kernel tree takes minutes."""
        trash = tmp.with_name(tmp.name + scratch.TRASH)
        try:
            os.rename(tmp, trash)
        except OSError:
            trash = tmp
        self.run_rc("worktree", "prune")
        listed = self.run_rc("worktree", "list", "--porcelain")[1]
        if f"worktree {wt}\n" in listed:
            # Locked by an interrupted `worktree add`.
            self.run_rc("worktree", "remove", "--force", "--force", str(wt))
            self.run_rc("worktree", "prune")
        runner.log_command(["rm", "-rf", str(trash)])
        subprocess.Popen(["rm", "-rf", str(trash)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)


class SparseTree(GitTree):
    """A `--no-checkout` worktree at `base` whose index holds all of it,
    every entry marked skip-worktree (so git sees no file as deleted): files
    are checked out as mmconvert finds them (grep, `ensure`, `read_text`).
    `mirror`: the user's checkout when it holds `base` as it is, where the
    files not checked out here are searched and read instead."""

    def __init__(self, path: Path | str, base: str, mirror: GitTree | None,
                 seed: tuple[str, ...]):
        super().__init__(path)
        self.base = base
        self.mirror = mirror
        self.tracked: set[str] = set()
        self.present: set[str] = set()
        # The base never changes: each search of it is made once per worktree.
        self.greps: dict[tuple[str, ...], list[str]] = {}
        self._go_sparse(seed)

    def _go_sparse(self, seed: tuple[str, ...]) -> None:
        """The top-level files and directories (get_maintainer.pl looks for
        them) and `seed` are checked out, and the directories that
        MAINTAINERS names exist, empty: get_maintainer.pl and MAINTAINERS
        matching ask whether an F: path is a directory."""
        self.run("read-tree", self.base)
        listing = self.run("ls-files", "-z")
        # A split index: each later `update-index`, `apply --index` and commit
        # writes what changed, not the whole 10 MB index of a kernel tree
        # (0.24 s against 0.10 s per commit on 7.3).
        self.run("update-index", "--split-index", "-z", "--skip-worktree", "--stdin",
                 input=listing)
        tracked = self.tracked = set(listing.split("\0")) - {""}
        self.ensure([f for f in tracked if "/" not in f] + list(seed))
        # git keeps no empty directory: the files' directories are all of
        # them.  Creating only the named ones saves 6,000 mkdirs on 7.3.
        dirs = {os.path.dirname(f) for f in tracked} - {""}
        wanted = {d for d in dirs if "/" not in d}
        if (self.path / "MAINTAINERS").is_file():
            named = re.findall(r"^[FX]:\s*(\S+)", (self.path / "MAINTAINERS").read_text(
                errors="replace"), flags=re.MULTILINE)
            wanted |= dirs & set(named)
        for d in sorted(wanted):
            (self.path / d).mkdir(parents=True, exist_ok=True)

    def _search(self, mode: str, args: list[str], pathspecs: tuple[str, ...],
                checkout: bool) -> str:
        """The files mmconvert has not changed are searched where they are
        already on disk (or in the base commit), once per search, and the
        files it changed in the worktree; every file found is checked out
        unless `checkout` is false, since the caller reads it next."""
        def path(row: str) -> str:
            return row if mode == "-l" else row.split(":", 1)[0]

        changed = set(self.run("diff", "--name-only", "-z", "--no-renames", self.base,
                               "--").split("\0")) - {""}
        key = (mode, *args, "--", *pathspecs)
        if key not in self.greps:
            if self.mirror is not None:
                self.greps[key] = self.mirror._grep_run(args, pathspecs).splitlines()
            else:
                prefix = f"{self.base}:"
                self.greps[key] = [r[len(prefix):] for r in
                                   self._grep_run([*args, self.base], pathspecs).splitlines()]
        rows = [r for r in self.greps[key] if path(r) not in changed]
        mine = [f":(literal){f}" for f in sorted(changed) if pathspec_match(f, pathspecs)]
        if mine:
            rows += self._grep_run(args, tuple(mine)).splitlines()
        by_file: dict[str, list[str]] = {}
        for r in rows:
            by_file.setdefault(path(r), []).append(r)
        if checkout:
            self.ensure(list(by_file))
        return "".join(r + "\n" for f in sorted(by_file) for r in by_file[f])

    def has_file(self, rel: str) -> bool:
        return rel in self.tracked or super().has_file(rel)

    def read_text(self, rel: str) -> str:
        """A file not checked out is read where it is unchanged (the user's
        checkout, else the base commit)."""
        if rel in self.present or rel not in self.tracked:
            return super().read_text(rel)
        if self.mirror is not None:
            return (self.mirror.path / rel).read_text(errors="replace")
        p = runner.run(["git", "cat-file", "blob", f"{self.base}:{rel}"], cwd=self.path,
                       text=False, check=False)
        if p.returncode != 0:
            raise OSError(f"{rel}: not in {self.base}")
        return p.stdout.decode(errors="replace")

    def ensure(self, files: list[str]) -> None:
        todo = sorted({f for f in files if f in self.tracked and f not in self.present})
        if not todo:
            return
        stdin = "".join(f + "\0" for f in todo)
        self.run("update-index", "-z", "--no-skip-worktree", "--stdin", input=stdin)
        self.run("checkout-index", "-f", "-u", "-z", "--stdin", input=stdin)
        self.present.update(todo)


def pathspec_match(path: str, pathspecs: tuple[str, ...]) -> bool:
    """Whether git would take `path` for these pathspecs: the forms
    mmconvert uses (globs, literal paths, `:(exclude)`, `:(literal)`)."""
    include: list[tuple[str, bool]] = []
    exclude: list[tuple[str, bool]] = []
    for spec in pathspecs:
        magic: set[str] = set()
        if spec.startswith(":("):
            words, spec = spec[2:].split(")", 1)
            magic = set(words.split(","))
        (exclude if "exclude" in magic else include).append((spec, "literal" in magic))

    def hit(spec: str, literal: bool) -> bool:
        if literal or not any(c in spec for c in "*?["):
            return path == spec or path.startswith(spec.rstrip("/") + "/")
        return fnmatch.fnmatchcase(path, spec)
    return (not include or any(hit(*i) for i in include)) and not any(hit(*e) for e in exclude)
