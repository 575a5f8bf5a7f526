"""What every command shares: options, progress, and turning typed errors
into one line and an exit status (the only place that does)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import typer

from . import signals, spatch
from .errors import MmconvertError, UsageError
from .tree import API_CHOICES

TreeArg = typer.Argument(..., help="kernel checkout")
ApiOpt = typer.Option("auto", "--api", help=f"API generation: {', '.join(API_CHOICES)}")
JobsOpt = typer.Option(None, "--jobs", "-j", min=1, help="spatch jobs (default: number of cores)")
TimeoutOpt = typer.Option(spatch.DEFAULT_TIMEOUT, "--timeout", min=1,
                          help="seconds spatch may spend on one file")
OnlyOpt = typer.Option(None, "--only", help="only handlers defined under PATH (repeatable)")
CoreOpt = typer.Option(False, "--include-core",
                       help="also treat mm/ core forwarders (the API patch owns them)")


def check_output_file(path: Path | None, what: str) -> None:
    """Refuse an output file that cannot be written, before any work: the
    result of a long run must not be lost at its end.  Missing parent
    directories are created when the file is written."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{what} {path}: is a directory")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: cannot be written ({parent} is not a writable "
                         "directory)")


def progress(label: str, done: int, total: int) -> None:
    """Progress on a terminal only; CI logs stay quiet."""
    if sys.stderr.isatty():
        end = "\n" if done == total else ""
        print(f"\r{label}: {done}/{total} files", end=end, file=sys.stderr, flush=True)


def run(fn):
    """Call a stage; typed errors and Ctrl-C become one line and a status."""
    try:
        return fn()
    except MmconvertError as e:
        print(f"mmconvert: {e}", file=sys.stderr)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt as e:
        signum = signals.stopped_by(e)
        signals.say_once(signum)
        raise typer.Exit(signals.exit_status(signum)) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as e:  # a bug: one line, the traceback with -d
        if logging.getLogger("mmconvert").isEnabledFor(logging.DEBUG):
            raise
        print(f"mmconvert: internal error: {type(e).__name__}: {e} (run with -d for the "
              "traceback)", file=sys.stderr)
        raise typer.Exit(1) from None
