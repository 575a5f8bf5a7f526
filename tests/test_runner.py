"""The one runner of external programs: the command in the debug log, a
failure as one typed line that names the tool and what it said last."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from mmconvert import runner
from mmconvert.errors import MmconvertError
from mmconvert.gitrepo import GitTree

FAIL = "import sys; print('first', file=sys.stderr); print('the reason', file=sys.stderr); " \
       "print(file=sys.stderr); sys.exit(3)"


def test_a_failure_names_the_tool_and_its_last_line():
    with pytest.raises(runner.ToolFailed) as e:
        runner.run([sys.executable, "-c", FAIL])
    assert isinstance(e.value, MmconvertError) and e.value.exit_code == 1
    assert e.value.tool == os.path.basename(sys.executable)
    assert e.value.status == 3 and e.value.last == "the reason"
    assert str(e.value).endswith("failed (exit status 3): the reason")


def test_unchecked_returns_the_status_and_output():
    res = runner.run([sys.executable, "-c", FAIL], check=False)
    assert res.returncode == 3 and res.stderr.startswith("first\n")
    res = runner.run([sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read())"],
                     input=b"\xff", text=False)
    assert res.stdout == b"\xff"


def test_every_command_is_logged_for_debug(caplog):
    with caplog.at_level(logging.DEBUG, logger="mmconvert"):
        runner.run([sys.executable, "-c", "pass"])
        runner.run([sys.executable, "-c", "pass"], shown="python, briefly")
    assert [r.getMessage() for r in caplog.records] == [f"{sys.executable} -c pass",
                                                       "python, briefly"]


def test_a_failed_git_command_is_a_typed_error(sample_tree):
    with pytest.raises(runner.ToolFailed) as e:
        GitTree(sample_tree).run("rev-parse", "--verify", "no-such-ref")
    assert (e.value.tool, e.value.status, e.value.last) == \
        ("git", 128, "fatal: Needed a single revision")
