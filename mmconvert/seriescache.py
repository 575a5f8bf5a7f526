"""Reusing an identical earlier series.

Commits are dated with the base commit's date, so the same inputs give the
same commits and the same patch files byte for byte.  A finished series is
therefore recorded under the repository's git directory (its commits live
in that object store), keyed by everything the output depends on: the base,
the options, the identity that signs, mmconvert's own code, rules and
templates, and the spatch and git versions.  A rerun with nothing changed
takes the record instead of planning again, once it has checked that the
commits are still in the repository and the previous version's branch (for
a range-diff) has not moved.  A series with a spatch timeout is never
recorded: a timeout says more about the machine's load than about the tree.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from . import prose, runner, spatch
from .gitrepo import GitTree

log = logging.getLogger("mmconvert")

FORMAT = 2


@functools.lru_cache(maxsize=1)
def code_id() -> str:
    """Content hash of what turns a tree into a series: the package, the
    semantic patches and the templates."""
    h = hashlib.sha256()
    for top, pattern in ((Path(__file__).resolve().parent, "*.py"),
                         (spatch.COCCI_DIR, "*"), (prose.TEMPLATES, "*")):
        for f in sorted(p for p in top.rglob(pattern) if p.is_file()):
            h.update(f"{f.relative_to(top.parent)}\0".encode())
            h.update(f.read_bytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def _git_version() -> str:
    return runner.run(["git", "--version"], check=False).stdout.strip()


@dataclass(frozen=True)
class Entry:
    """A finished series: its commits' tip, the files format-patch wrote
    (with the headers mmconvert added), and what the summary line says."""

    generation: str
    head: str
    previous: str | None       # identity of the version N-1 it was compared to
    files: list[tuple[str, str]]
    census: dict
    record: dict | None = None  # its row in reroll.Records

class SeriesCache:
    def __init__(self, gt: GitTree):
        common = gt.run("rev-parse", "--path-format=absolute", "--git-common-dir").strip()
        self.root = Path(common) / "mmconvert" / "series"
        self.gt = gt

    @staticmethod
    def key(**inputs) -> str:
        inputs.update(format=FORMAT, code=code_id(), git=_git_version(),
                      spatch=spatch.spatch_version(spatch.spatch_program()))
        return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> Entry | None:
        try:
            raw = json.loads(self._path(key).read_text())
            entry = Entry(raw["generation"], raw["head"], raw["previous"],
                          [tuple(f) for f in raw["files"]], raw["census"], raw.get("record"))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        # `git gc` may have pruned the commits of a deleted branch.
        if self.gt.run_rc("cat-file", "-e", f"{entry.head}^{{commit}}")[0] != 0:
            return None
        return entry

    def put(self, key: str, entry: Entry) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self._path(key).with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(asdict(entry)))
            tmp.replace(self._path(key))
        except OSError as e:  # a read-only git dir only costs the next run time
            log.info("series: cannot record the series for reuse: %s", e)
