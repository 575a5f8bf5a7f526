"""What every command shares: options, progress, and turning typed errors
into one line and an exit status (the only place that does)."""

from __future__ import annotations

import logging
import sys

import typer

from . import spatch
from .errors import MmconvertError
from .tree import API_CHOICES

ApiOpt = typer.Option("auto", "--api", help=f"API generation: {', '.join(API_CHOICES)}")
JobsOpt = typer.Option(None, "--jobs", "-j", help="spatch jobs (default: number of cores)")
TimeoutOpt = typer.Option(spatch.DEFAULT_TIMEOUT, "--timeout",
                          help="seconds spatch may spend on one file")
OnlyOpt = typer.Option(None, "--only", help="only handlers defined under PATH (repeatable)")
CoreOpt = typer.Option(False, "--include-core",
                       help="also treat mm/ core forwarders (the API patch owns them)")


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
        raise typer.Exit(e.exit_code)
    except KeyboardInterrupt:
        print("mmconvert: interrupted; nothing was left behind", file=sys.stderr)
        raise typer.Exit(130)
    except (typer.Exit, typer.Abort):
        raise
    except Exception as e:  # a bug: one line, the traceback with -d
        if logging.getLogger("mmconvert").isEnabledFor(logging.DEBUG):
            raise
        print(f"mmconvert: internal error: {type(e).__name__}: {e} (run with -d for the "
              "traceback)", file=sys.stderr)
        raise typer.Exit(1)
