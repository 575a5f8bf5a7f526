"""The one module that talks to git.

Every git command goes through `GitTree.run()` (gitpython's command wrapper,
logged at debug level, `cwd` instead of chdir); every worktree mmconvert
makes is created and removed here, so nothing else can leave one behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
from pathlib import Path

import git

from .errors import TreeError, UsageError

log = logging.getLogger("mmconvert")


class GitTree:
    """A git working tree (the user's checkout or one of our worktrees)."""

    def __init__(self, path: Path | str):
        self.path = Path(path).resolve()
        if not self.path.is_dir():
            raise UsageError(f"{path}: not a directory")
        try:
            self.repo = git.Repo(self.path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise TreeError(f"{path}: not a git repository (mmconvert works on git checkouts)")
        if self.repo.bare or Path(self.repo.working_tree_dir).resolve() != self.path:
            raise TreeError(f"{path}: not the top of a git working tree")

    def run(self, *args: str, input: str | None = None, check: bool = True) -> str:
        """Run `git -C <tree> args...` and return its stdout."""
        status, out, err = self.run_rc(*args, input=input)
        if status != 0 and check:
            raise git.GitCommandError(["git", *args], status, err, out)
        return out

    def run_rc(self, *args: str, input: str | None = None,
               env: dict[str, str] | None = None) -> tuple[int, str, str]:
        """Run git, return (status, stdout, stderr) without raising."""
        log.debug("git %s", " ".join(args))
        full_env = None
        if env:
            full_env = dict(os.environ, **env)
        p = subprocess.run(["git", "--no-pager", *args], cwd=self.path, input=input,
                           capture_output=True, text=True, env=full_env)
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
              pathspecs: tuple[str, ...]) -> str:
        """git grep over the tracked files; exit 1 (no match) is no error."""
        args = ["grep", mode, "-I", "--no-color", "-F" if fixed else "-E"]
        if words:
            args.append("-w")
        for p in patterns:
            args += ["-e", p]
        status, out, err = self.run_rc(*args, "--", *pathspecs)
        if status not in (0, 1):
            raise TreeError(f"git grep failed: {err.strip()}")
        return out

    def grep_files(self, patterns: list[str], *, fixed: bool = False, words: bool = False,
                   pathspecs: tuple[str, ...] = ("*.c", "*.h")) -> list[str]:
        """Tracked files that contain any of `patterns` (git grep -l)."""
        if not patterns:
            return []
        return sorted(self._grep("-l", patterns, fixed, words, pathspecs).split())

    def grep_lines(self, patterns: list[str], *, fixed: bool = False, words: bool = False,
                   pathspecs: tuple[str, ...] = ("*.c", "*.h")) -> list[tuple[str, int, str]]:
        """(file, line, text) of every matching line."""
        if not patterns:
            return []
        hits = []
        for row in self._grep("-n", patterns, fixed, words, pathspecs).splitlines():
            path, line, text = row.split(":", 2)
            hits.append((path, int(line), text))
        return hits

    def blob_ids(self, files: list[str]) -> dict[str, str]:
        """Content ids of working-tree files (what the result cache keys on)."""
        if not files:
            return {}
        out = self.run("hash-object", "--stdin-paths", input="\n".join(files) + "\n")
        return dict(zip(files, out.split()))

    # -- worktrees -------------------------------------------------------
    @contextlib.contextmanager
    def worktree(self, rev: str, branch: str | None = None, keep_branch: bool = True):
        """A temporary worktree at `rev`, removed on every exit path.

        With `branch`, the worktree is on that new branch; the branch is
        deleted again if the body does not finish (exception or Ctrl-C), or
        always when `keep_branch` is false.
        """
        tmp = Path(tempfile.mkdtemp(prefix="mmconvert-wt-"))
        wt = tmp / "tree"
        args = ["worktree", "add", "--quiet"]
        args += ["-b", branch] if branch else ["--detach"]
        ok = False
        try:
            # Inside the try: Ctrl-C during the checkout must clean up too.
            status, _, err = self.run_rc(*args, str(wt), rev)
            if status != 0:
                raise TreeError(f"cannot create a worktree at {rev}: "
                                f"{err.strip().splitlines()[-1] if err.strip() else 'git failed'}")
            yield GitTree(wt)
            ok = True
        finally:
            with _deferred_sigint():
                self._drop_worktree(tmp, wt)
                if branch and (not ok or not keep_branch):
                    self.run_rc("branch", "-D", branch)

    def _drop_worktree(self, tmp: Path, wt: Path) -> None:
        """Detach the worktree from git at once and delete its files in the
        background: `git worktree remove` of a kernel tree takes minutes."""
        trash = tmp.with_name(tmp.name + "-trash")
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
        subprocess.Popen(["rm", "-rf", str(trash)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)


@contextlib.contextmanager
def _deferred_sigint():
    """Let cleanup finish even if Ctrl-C is pressed again during it."""
    import signal

    pending = []
    try:
        old = signal.signal(signal.SIGINT, lambda *_: pending.append(1))
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if pending:
            raise KeyboardInterrupt
