"""The `mmconvert` program.  Signal handlers go in before anything heavy is
imported, so a Ctrl-C in the first moments is one line too, not a
traceback from the middle of an import."""

from __future__ import annotations

import os
import sys

from . import signals


def main() -> None:
    signals.install()
    try:
        try:
            from .cli import app

            app()
            status = 0
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt as e:
        status = signals.exit_status(signals.stopped_by(e))
    signum = signals.fired()
    if signum is not None or status == 130:
        signum = signum or signals.signal.SIGINT
        signals.say_once(signum)
        # Everything of ours is cleaned up by now; interpreter shutdown
        # (joining helper threads) must not turn a second signal into an
        # exit by that signal.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(signals.exit_status(signum))
    sys.exit(status)


if __name__ == "__main__":
    main()
