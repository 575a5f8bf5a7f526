"""The command line starts light: a command imports the stages it runs and
no others, so `api`, `--help` and a mistyped option answer at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Runs one command in a fresh interpreter and prints, last, which of the
# modules a light command must not load were loaded.
PROBE = """
import json, sys
from mmconvert.cli import app
try:
    app(sys.argv[1:], prog_name="mmconvert", standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m in (
    "mmconvert.tree", "mmconvert.convert", "mmconvert.series", "mmconvert.report",
    "mmconvert.verify", "mmconvert.check", "mmconvert.inventory", "mmconvert.forwarders",
    "unidiff", "jinja2"))))
"""
HEAVY = {"mmconvert.convert", "mmconvert.series", "mmconvert.report", "mmconvert.verify",
         "mmconvert.check", "mmconvert.inventory", "mmconvert.forwarders", "unidiff", "jinja2"}


def _loaded(cwd: Path, *args: str | Path) -> tuple[str, set[str]]:
    p = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], cwd=cwd,
                       capture_output=True, text=True, check=True)
    out, _, last = p.stdout.rstrip("\n").rpartition("\n")
    return out, set(json.loads(last))


def test_api_imports_no_stage(sample_tree, tmp_path):
    out, loaded = _loaded(tmp_path, "api", sample_tree)
    assert "proto" in out  # the command ran, and read the tree
    assert "mmconvert.tree" in loaded
    assert not loaded & HEAVY


@pytest.mark.parametrize("args", [("--help",), ("api", "--help"), ("series", "--help"),
                                  ("report", "--help")])
def test_help_imports_no_stage(args, tmp_path):
    out, loaded = _loaded(tmp_path, *args)
    assert "Usage:" in out
    assert not loaded & HEAVY
