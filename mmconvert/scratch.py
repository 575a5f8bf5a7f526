"""Scratch directories: every temporary directory mmconvert makes, marked
with the process that owns it, so that a later run can remove what a
killed one (SIGKILL, the OOM killer, a power cut) left behind, and only
that: a directory is removed only when it carries mmconvert's mark and its
owner is gone."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from . import signals

OWNER = ".mmconvert-owner"
PREFIX = "mmconvert-"
TRASH = "-trash"     # a worktree's directory being deleted in the background


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of
    /proc/PID/stat): with the pid it tells a process from a later one that
    reuses the pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    # A zombie (killed, not yet reaped) is gone for our purposes.
    return None if fields[0] in ("Z", "X") else fields[19]


def _mark() -> str:
    return f"{os.getpid()} {_start_time(os.getpid()) or '?'}\n"


def mkdtemp(prefix: str, dir: Path | str | None = None) -> Path:
    """tempfile.mkdtemp, marked as this process's."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=dir))
    (path / OWNER).write_text(_mark())
    return path


@contextlib.contextmanager
def directory(prefix: str, dir: Path | str | None = None):
    """A marked scratch directory, removed on every exit path."""
    with signals.shield():
        path = mkdtemp(prefix, dir)
    try:
        yield path
    finally:
        with signals.shield():   # a Ctrl-C must not leave half of it
            shutil.rmtree(path, ignore_errors=True)


def owner_alive(path: Path) -> bool | None:
    """Whether the process that made `path` still runs; None when `path`
    has no mark of ours (not mmconvert's, or its mark is already deleted)."""
    try:
        pid_s, start = (path / OWNER).read_text().split()
        pid = int(pid_s)
    except (OSError, ValueError):
        return None
    now = _start_time(pid)
    return now is not None and (start == "?" or now == start)


def stale(path: Path) -> bool:
    """A directory a dead mmconvert made.  A worktree's trash directory
    whose mark is already gone is one too: only mmconvert names them so,
    and removing one twice is harmless."""
    alive = owner_alive(path)
    if alive is None:
        return path.name.endswith(TRASH) and path.name.startswith(PREFIX)
    return not alive


def sweep(directory: Path | str | None = None, prefix: str = PREFIX) -> list[Path]:
    """Remove the stale scratch directories named `prefix*` in `directory`
    (the system's temporary directory by default); returns what went."""
    where = Path(directory or tempfile.gettempdir())
    gone: list[Path] = []
    try:
        entries = [p for p in where.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return gone
    for p in sorted(entries):
        if p.is_dir() and not p.is_symlink() and stale(p):
            shutil.rmtree(p, ignore_errors=True)
            gone.append(p)
    return gone
