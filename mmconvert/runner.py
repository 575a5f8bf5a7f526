"""The one way mmconvert runs an external program (git, spatch, make, perl,
cp, apt-get): every command is logged for `-d`, and a failure the caller
does not handle itself is a typed error naming the tool and the last thing
it said.  The few runs that must stream or own a process group (parallel
spatch, the background removal of a worktree) start their own process but
log it here too."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import MmconvertError

log = logging.getLogger("mmconvert")


class ToolFailed(MmconvertError):
    """An external program exited non-zero where that was not expected."""

    exit_code = 1

    def __init__(self, tool: str, status: int, last: str):
        self.tool, self.status, self.last = tool, status, last
        super().__init__(f"{tool} failed (exit status {status})" + (f": {last}" if last else ""))


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: Any           # str, or bytes when run with text=False
    stderr: Any


def last_line(text: str | bytes) -> str:
    """The last non-empty line, which is where tools put the reason."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "")


def log_command(cmd: Sequence[str], shown: str | None = None) -> None:
    """`shown`: the command as the log names it, where the full line would
    only repeat options every run passes."""
    log.debug("%s", " ".join(cmd) if shown is None else shown)


def run(cmd: Sequence[str], *, cwd: Path | str | None = None, input: str | bytes | None = None,
        env: Mapping[str, str] | None = None, timeout: float | None = None, check: bool = True,
        text: bool = True, errors: str | None = None, no_stdin: bool = False,
        shown: str | None = None) -> Result:
    """Run `cmd`, its output captured.  `check`: a non-zero exit raises
    ToolFailed.  `no_stdin`: the program reads /dev/null rather than our
    stdin (a tool that might prompt must not wait on the terminal).  A
    missing program raises FileNotFoundError and a timeout
    subprocess.TimeoutExpired, for the callers that say which tool it was."""
    log_command(cmd, shown)
    p = subprocess.run(list(cmd), cwd=cwd, input=input, capture_output=True, text=text,
                       errors=errors, env=None if env is None else dict(env), timeout=timeout,
                       stdin=subprocess.DEVNULL if no_stdin and input is None else None)
    if check and p.returncode != 0:
        raise ToolFailed(os.path.basename(cmd[0]), p.returncode, last_line(p.stderr))
    return Result(tuple(cmd), p.returncode, p.stdout, p.stderr)
