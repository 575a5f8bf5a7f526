"""The mmconvert command line: one typer app wiring the pipeline stages.

Library code raises typed errors; this is the only place that turns them
into one line on stderr and an exit code.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import typer

from . import __version__, spatch
from .model import to_json
from .ui import ApiOpt, JobsOpt, TimeoutOpt, progress, run

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Move kernel struct file_operations .mmap handlers to the new "
                       "mmap_prepare/mmap_proto hook and emit a review-ready patch series.")
log = logging.getLogger("mmconvert")

def _version(value: bool):
    if value:
        print(f"mmconvert {__version__}")
        raise typer.Exit()


@app.callback()
def main(quiet: bool = typer.Option(False, "-q", "--quiet", help="only errors"),
         debug: bool = typer.Option(False, "-d", "--debug", help="log every command run"),
         version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="print the version")):
    logging.basicConfig(format="%(message)s", stream=sys.stderr,
                        level=logging.DEBUG if debug else logging.ERROR if quiet else logging.INFO)


@app.command()
def api(tree: Path = typer.Argument(..., help="kernel checkout"), api: str = ApiOpt,
        as_json: bool = typer.Option(False, "--json", help="facts as JSON")):
    """Say which generation of the mmap hook TREE declares, and its facts."""
    from .tree import open_tree, resolve

    def go():
        open_tree(tree)
        facts = resolve(tree, api)
        return facts

    facts = run(go)
    if as_json:
        print(json.dumps(to_json(facts), indent=2))
    else:
        from .textout import api_text
        print(api_text(str(tree), facts))


def _inventory(tree: Path, api: str, jobs, timeout):
    from . import forwarders
    from .inventory import scan
    from .tree import open_tree, resolve

    gt = open_tree(tree)
    facts = resolve(tree, api)
    cache = spatch.Cache()
    inv = scan(gt, facts, jobs=jobs, timeout=timeout, cache=cache, progress=progress)
    sites = forwarders.find(gt, facts, jobs=jobs, timeout=timeout, cache=cache,
                            progress=progress)
    return inv, sites


@app.command()
def scan(tree: Path = typer.Argument(..., help="kernel checkout"), api: str = ApiOpt,
         as_json: bool = typer.Option(False, "--json", help="records as JSON"),
         jobs: int | None = JobsOpt, timeout: int = TimeoutOpt):
    """Inventory every struct file_operations .mmap handler and classify it,
    then list the forwarders and presence checks."""
    inv, sites = run(lambda: _inventory(tree, api, jobs, timeout))
    if as_json:
        out = to_json(inv)
        out["forwarders"] = to_json(sites)
        print(json.dumps(out, indent=1))
    else:
        from .forwarders import sites_text
        from .textout import scan_text
        print(scan_text(inv))
        print()
        print(sites_text(sites))


# -- stage commands: each stage module owns its command ------------------
from .convert import convert_command  # noqa: E402

app.command("convert")(convert_command)
from .report import report_command  # noqa: E402

app.command("report")(report_command)
from .verify import verify_command  # noqa: E402

app.command("verify")(verify_command)
from .series import series_command  # noqa: E402

app.command("series")(series_command)
from .check import check_command  # noqa: E402

app.command("check")(check_command)


if __name__ == "__main__":
    app()
