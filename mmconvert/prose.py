"""Text from templates/: changelogs, titles, comments inserted into kernel
code.  One Jinja environment for every stage that writes prose (the report
has its own, which escapes HTML)."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(str(resources.files("mmconvert") / "templates"))


@functools.cache
def jinja_env(directory: Path, keep_trailing_newline: bool = False) -> jinja2.Environment:
    """The one way templates are loaded: strict about undefined names, block
    tags take their own line (the semantic patches in cocci/ use it too).
    Jinja is imported here, not at the top: spatch needs this module, and
    the CLI's options need spatch, before any command has run."""
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(directory)),
                              undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=keep_trailing_newline,
                              trim_blocks=True, lstrip_blocks=True)


def env() -> jinja2.Environment:
    return jinja_env(TEMPLATES)


def render(name: str, **ctx) -> str:
    return env().get_template(name).render(**ctx)
