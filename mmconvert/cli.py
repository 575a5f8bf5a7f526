"""The mmconvert command line: one typer app wiring the pipeline stages.

Every command's options are here; its stage module is imported only when
it runs.  Library code raises typed errors; ui.run() turns them into one
line on stderr and an exit code.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import typer

from . import __version__
from .model import to_json
from .ui import ApiOpt, CoreOpt, JobsOpt, OnlyOpt, TimeoutOpt, TreeArg, progress, run

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Move kernel struct file_operations .mmap handlers to the new "
                       "mmap_prepare/mmap_proto hook and emit a review-ready patch series.")


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
def api(tree: Path = TreeArg, api: str = ApiOpt,
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


@app.command()
def scan(tree: Path = TreeArg, api: str = ApiOpt,
         as_json: bool = typer.Option(False, "--json", help="records as JSON"),
         jobs: int | None = JobsOpt, timeout: int = TimeoutOpt):
    """Inventory every struct file_operations .mmap handler and classify it,
    then list the forwarders and presence checks."""
    from . import pipeline

    s = run(lambda: pipeline.survey(tree, api, jobs=jobs, timeout=timeout, progress=progress))
    inv, sites = s.inventory, s.forwarders
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


# -- the stage commands: each imports its stage only when it runs ---------

@app.command("convert")
def convert_command(
    tree: Path = typer.Argument(..., help="kernel checkout (its working tree is edited)"),
    api: str = ApiOpt,
    only: list[str] | None = OnlyOpt,
    jobs: int | None = JobsOpt,
    timeout: int = TimeoutOpt,
    include_core: bool = CoreOpt,
    as_json: bool = typer.Option(False, "--json", help="what was converted and skipped, as JSON"),
):
    """Rewrite every convertible handler in TREE's working tree (forwarders
    first), and say what was left alone and why."""
    from . import convert

    convert.run_convert(tree, api=api, only=only, jobs=jobs, timeout=timeout,
                        include_core=include_core, as_json=as_json)


@app.command("report")
def report_command(
    tree: Path = typer.Argument(..., help="kernel checkout (only read)"),
    output: Path | None = typer.Option(None, "-o", "--output", metavar="FILE.html",
                                       help="write the HTML report here"),
    markdown: Path | None = typer.Option(None, "--markdown", metavar="FILE.md",
                                         help="also (or only) write it as markdown"),
    api: str = ApiOpt,
    diffs: bool = typer.Option(True, "--diffs/--no-diffs",
                               help="compute the diff of every convertible handler"),
    jobs: int | None = JobsOpt,
    timeout: int = TimeoutOpt,
):
    """Write the state of the conversion campaign as one HTML page (and markdown)."""
    from . import report

    report.run_report(tree, output=output, markdown=markdown, api=api, diffs=diffs, jobs=jobs,
                      timeout=timeout)


@app.command("verify")
def verify_command(
    series: Path = typer.Argument(..., help="directory of git format-patch files"),
    tree: Path = typer.Option(..., "--tree", help="git checkout of the tree the series is for"),
    base: str | None = typer.Option(None, "--base",
                                    help="base REF (default: the cover letter's base-commit)"),
    checkpatch: bool = typer.Option(False, "--checkpatch",
                                    help="run the tree's scripts/checkpatch.pl on each patch"),
    build: bool = typer.Option(False, "--build",
                               help="build the objects each patch touches (allmodconfig on "
                               "x86, else on an architecture that builds them)"),
    json_file: Path | None = typer.Option(None, "--json",
                                          help="write the results as JSON to FILE"),
    junit_file: Path | None = typer.Option(None, "--junit",
                                           help="write JUnit XML for CI to FILE"),
    jobs: int | None = typer.Option(None, "--jobs", "-j",
                                    help="make jobs (default: number of cores)"),
    boot: bool = typer.Option(False, "--boot",
                              help="boot the base and the series (x86_64 tinyconfig in qemu) "
                              "and compare what mmap gives for every path a probe reaches"),
):
    """Check that a patch series applies, is well formed, passes checkpatch and
    builds at every step.  Exit 0: all passed, 1: something failed, 2: usage."""
    from . import verify

    passed = verify.run_verify(series, tree=tree, base=base, checkpatch=checkpatch, build=build,
                               json_file=json_file, junit_file=junit_file, jobs=jobs, boot=boot)
    raise typer.Exit(0 if passed else 1)


@app.command("series")
def series_command(
    tree: Path = typer.Argument(..., help="kernel checkout (left untouched)"),
    out: str = typer.Option(..., "-o", "--output", help="directory for the patches"),
    api: str = ApiOpt,
    base: str = typer.Option("HEAD", "--base", help="commit the series applies to"),
    branch: str | None = typer.Option(None, "--branch", help="branch for the commits (default "
                                      "mmconvert/<generation>-<short base>[-vN])"),
    signoff: bool = typer.Option(False, "--signoff", help="add your own Signed-off-by"),
    reroll: int = typer.Option(1, "-v", "--reroll-count", help="version N of the series"),
    only: list[str] | None = OnlyOpt,
    force: bool = typer.Option(False, "--force",
                               help="replace an existing branch or non-empty DIR"),
    jobs: int | None = JobsOpt,
    timeout: int = TimeoutOpt,
    no_cache: bool = typer.Option(False, "--no-cache", help="plan from scratch: no cached "
                                  "spatch results, no reuse of an identical earlier series"),
    build_check: bool = typer.Option(False, "--build", help="build every touched object after "
                                     "each patch (as verify --build does) and say so in the "
                                     "cover letter"),
    previous: str | None = typer.Option(None, "--previous", help="version N-1 of the series: "
                                        "its branch, tip or OLD_BASE..OLD_TIP (default: found "
                                        "from mmconvert's record)"),
    previous_link: str | None = typer.Option(None, "--previous-link", help="message-id or lore "
                                             "link of version N-1, for the cover letter's "
                                             "'Link to'"),
):
    """Write the conversion as a git format-patch series, one patch per subsystem."""
    from . import series

    series.run_series(tree, out=out, api=api, base=base, branch=branch, signoff=signoff,
                      reroll=reroll, only=only, force=force, jobs=jobs, timeout=timeout,
                      no_cache=no_cache, build_check=build_check, previous=previous,
                      previous_link=previous_link)


@app.command("check")
def check_command(
    patches: list[Path] = typer.Argument(..., help="patch files (git format-patch output, an "
                                         "mbox of several, or unified diffs), applied in this "
                                         "order"),
    tree: Path = typer.Option(Path("."), "--tree", help="kernel checkout the patches apply to, "
                              "at its HEAD (never changed)"),
    api: str = ApiOpt,
    as_json: bool = typer.Option(False, "--json", help="the flags as a JSON list"),
    jobs: int | None = JobsOpt,
    timeout: int = TimeoutOpt,
):
    """Flag every new struct file_operations .mmap user the patches add, with
    the handler's class and the hook to use instead.  Exit 0: nothing
    flagged, 1: something flagged, 2: a patch or the tree cannot be used."""
    from . import check

    flagged = check.run_check(patches, tree=tree, api=api, as_json=as_json, jobs=jobs,
                              timeout=timeout)
    raise typer.Exit(1 if flagged else 0)


if __name__ == "__main__":
    app()
