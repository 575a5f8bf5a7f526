"""Fixtures shared by the suite: real Debian kernel trees (prepared and
cached by scripts/get-kernel), throwaway clones of them, and the sample
tree as a git checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "minikernel"
MMCONVERT = [str(ROOT / ".venv" / "bin" / "mmconvert")]


def git(cwd, *args, check=True) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=check, capture_output=True,
                          text=True).stdout


def _identity(path: Path) -> None:
    git(path, "config", "user.name", "mmconvert tests")
    git(path, "config", "user.email", "tests@mmconvert.invalid")


@pytest.fixture(scope="session")
def cached_kernel():
    """Path of the cached, read-only-by-convention tree for a version."""
    trees: dict[str, Path] = {}

    def get(version: str) -> Path:
        if version not in trees:
            out = subprocess.run([str(ROOT / "scripts" / "get-kernel"), version], check=True,
                                 capture_output=True, text=True).stdout
            trees[version] = Path(out.strip().splitlines()[-1])
        return trees[version]
    return get


def clone_kernel(src: Path, dst: Path) -> Path:
    git(dst.parent, "clone", "--quiet", "--shared", str(src), str(dst))
    git(dst, "fetch", "--quiet", "--tags", str(src))
    _identity(dst)
    return dst


G1_PATCH = ROOT / "tests" / "data" / "g1-proto-6.12.patch"


def commit_g1(tree: Path) -> str:
    """The G1 declarations on 6.12 as one commit with a fixed date, so its id
    (the build cache's key) is the same in every test and every run."""
    git(tree, "apply", str(G1_PATCH))
    env = dict(os.environ, GIT_AUTHOR_DATE="2025-04-01T00:00:00Z",
               GIT_COMMITTER_DATE="2025-04-01T00:00:00Z")
    subprocess.run(["git", "commit", "--quiet", "-am", "mm: add .mmap_proto (G1 declarations)"],
                   cwd=tree, check=True, env=env)
    return git(tree, "rev-parse", "HEAD").strip()


def remove_tree(path: Path) -> None:
    """Drop a kernel checkout as soon as its test is done: each is ~1.8 GB,
    and pytest would otherwise keep them until three sessions later."""
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def kernel_tree(cached_kernel, tmp_path):
    """A fresh throwaway clone of a real kernel tree (tag `base` at HEAD),
    removed when the test ends, passed or failed."""
    made: list[Path] = []

    def make(version: str) -> Path:
        made.append(clone_kernel(cached_kernel(version), tmp_path / f"linux-{version}"))
        return made[-1]
    yield make
    for path in made:
        remove_tree(path)


@pytest.fixture
def sample_tree(tmp_path) -> Path:
    """The shipped sample tree as a fresh git checkout with one commit."""
    dst = tmp_path / "minikernel"
    shutil.copytree(SAMPLE, dst, ignore=shutil.ignore_patterns("*.o"))
    git(dst, "init", "--quiet", "-b", "master")
    _identity(dst)
    git(dst, "add", "-A")
    git(dst, "commit", "--quiet", "-m", "minikernel")
    git(dst, "tag", "base")
    return dst


def run_mmconvert(*args, cwd=None, check=False, cache: Path | None = None
                  ) -> subprocess.CompletedProcess:
    """`cache`: a spatch result cache of the test's own (a test that needs
    spatch to run, not a result an earlier test left)."""
    env = dict(os.environ)
    if cache is not None:
        env["MMCONVERT_CACHE"] = str(cache)
    return subprocess.run([*MMCONVERT, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env=env, check=check)


def tree_state(path: Path) -> tuple[str, str, str]:
    """What 'the user's checkout is unchanged' compares: status, HEAD, branches."""
    return (git(path, "status", "--porcelain"), git(path, "rev-parse", "HEAD"),
            git(path, "for-each-ref", "--format=%(refname) %(objectname)"))
