"""Typed errors.  Library code raises these; only the CLI turns them into
one line on stderr and an exit code."""


class MmconvertError(Exception):
    """Base class: the message is the one line the user sees."""

    exit_code = 2


class UsageError(MmconvertError):
    """Bad arguments or bad input (not a tree, unknown ref, unknown --api)."""


class TreeError(MmconvertError):
    """The tree is not usable: not a git repo, not a kernel, dirty."""


class ToolMissing(MmconvertError):
    """An external program (spatch, git, perl) is not installed."""


class SpatchError(MmconvertError):
    """spatch failed as a whole (not one file: those become warnings)."""

    exit_code = 1
