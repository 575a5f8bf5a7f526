"""Text from templates/: changelogs, titles, comments inserted into kernel
code.  One Jinja environment for every stage that writes prose (the report
has its own, which escapes HTML)."""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@functools.lru_cache(maxsize=1)
def env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
                              trim_blocks=True, lstrip_blocks=True)


def render(name: str, **ctx) -> str:
    return env().get_template(name).render(**ctx)
