"""Applying planned changes to a working tree (the user's, when `convert`
was asked to, or a series worktree)."""

from __future__ import annotations

from .errors import MmconvertError
from .gitrepo import GitTree
from .model import Change


class ApplyError(MmconvertError):
    exit_code = 1


def apply_changes(gt: GitTree, changes: list[Change] | tuple[Change, ...]) -> None:
    """`git apply` each change's diff in order; all or nothing per change."""
    for ch in changes:
        if not ch.diff:
            continue
        status, _, err = gt.run_rc("apply", "--whitespace=nowarn", "-", input=ch.diff)
        if status != 0:
            raise ApplyError(f"internal error: the change '{ch.title}' does not apply: "
                             f"{err.strip().splitlines()[0] if err.strip() else 'git apply failed'}")
