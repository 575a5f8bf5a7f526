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


@pytest.fixture
def kernel_tree(cached_kernel, tmp_path):
    """A fresh throwaway clone of a real kernel tree (tag `base` at HEAD)."""
    def make(version: str) -> Path:
        src = cached_kernel(version)
        dst = tmp_path / f"linux-{version}"
        git(tmp_path, "clone", "--quiet", "--shared", str(src), str(dst))
        git(dst, "fetch", "--quiet", "--tags", str(src))
        _identity(dst)
        return dst
    return make


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


def run_mmconvert(*args, cwd=None, check=False) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run([*MMCONVERT, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env=env, check=check)


def tree_state(path: Path) -> tuple[str, str, str]:
    """What 'the user's checkout is unchanged' compares: status, HEAD, branches."""
    return (git(path, "status", "--porcelain"), git(path, "rev-parse", "HEAD"),
            git(path, "for-each-ref", "--format=%(refname) %(objectname)"))
