"""Signals that end a run: Ctrl-C (SIGINT), SIGTERM (`timeout`, a CI job
cancelled) and SIGHUP (the terminal closed) all stop mmconvert the same
way, by raising `Stop` (a KeyboardInterrupt) where the program is, so every
cleanup path written for Ctrl-C runs for all three.

Once one has arrived, later ones are only noted: a second Ctrl-C must not
cut the cleanup of the first short, and the exit status is the first
signal's.  Code that must not be cut short even by the first one (removing
a worktree, restoring files) runs under `shield()`.
"""

from __future__ import annotations

import contextlib
import signal
import threading

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop(KeyboardInterrupt):
    """The run was stopped by `signum`."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_state = {"first": None, "pending": None, "shield": 0, "said": False}


def _handler(signum, _frame):
    if _state["first"] is not None:
        return
    if _state["shield"]:
        _state["pending"] = _state["pending"] or signum
        return
    _state["first"] = signum
    raise Stop(signum)


def install() -> None:
    """Called first thing by the entry point (the main thread)."""
    for sig in HANDLED:
        signal.signal(sig, _handler)


@contextlib.contextmanager
def shield():
    """Hold any stopping signal until the block is done, then stop.  Works
    without `install()` too (the library used from Python), on the main
    thread; elsewhere signals do not reach the code anyway."""
    swapped = {}
    if threading.current_thread() is threading.main_thread():
        for sig in HANDLED:
            if signal.getsignal(sig) is not _handler:
                swapped[sig] = signal.signal(sig, _handler)
    _state["shield"] += 1
    try:
        yield
    finally:
        _state["shield"] -= 1
        for sig, old in swapped.items():
            signal.signal(sig, old)
        pending = _state["pending"]
        if not _state["shield"] and pending and _state["first"] is None:
            _state["pending"] = None
            _state["first"] = pending
            raise Stop(pending)


def stopped_by(exc: BaseException | None = None) -> int:
    """The signal that stopped the run (SIGINT for a bare KeyboardInterrupt)."""
    if _state["first"] is not None:
        return _state["first"]
    if isinstance(exc, Stop):
        return exc.signum
    return signal.SIGINT


def exit_status(signum: int) -> int:
    return 128 + signum


def message(signum: int) -> str:
    names: dict[int, str] = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated (SIGTERM)",
                             signal.SIGHUP: "hung up (SIGHUP)"}
    what = names.get(signum, f"stopped by signal {signum}")
    return f"mmconvert: {what}; nothing was left behind"


def say_once(signum: int) -> None:
    """The one line for a stopped run, printed once whoever notices first."""
    import sys

    if not _state["said"]:
        _state["said"] = True
        print(message(signum), file=sys.stderr, flush=True)


def fired() -> int | None:
    return _state["first"]
