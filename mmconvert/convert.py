"""Conversion: rewrite the convertible handlers for one API generation.

`plan()` reads the tree and returns the edits as `Change`s without touching
it; `run_convert` applies them to the user's working tree.  The code
changes are made by cocci/convert.cocci.j2; Python only inserts the twins
spatch then converts, and afterwards mends what spatch cannot express:
initialiser alignment, the blank line after declarations, kernel-doc
names and #define aliases, all at positions the inventory reported.
"""

from __future__ import annotations

import collections
import dataclasses
import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import unidiff

from . import prose, spatch
from .classify import Body, function_span, strip_comments
from .errors import SpatchError, TreeError
from .gitrepo import GitTree
from .inventory import locate
from .model import (
    ApiFacts,
    Change,
    Definition,
    FileWarning,
    Handler,
    HandlerChange,
    Inventory,
    Klass,
    LibraryTwin,
    Reference,
    VmaHelper,
    VmaOpen,
    to_json,
)
from .ui import progress, run
from .vmafacts import DESC_ROLES, LIBRARY_CALLS, MAPPING_CALLS, VMA_BIT_CALLS

LIB_HELPERS = LIBRARY_CALLS
TWIN = "__mmconvert_twin"


def _match(pattern: str, text: str) -> re.Match[str]:
    """re.match() where the caller knows the text has the pattern."""
    m = re.match(pattern, text)
    if m is None:
        raise ValueError(f"internal error: {text!r} does not match {pattern!r}")
    return m


def _prose(name: str, **ctx) -> str:
    return prose.render(name, **ctx).strip("\n")


# -- editing text ----------------------------------------------------------

def apply_diff(text: str, diff: str) -> str:
    """The text a unified diff of one file turns `text` into."""
    old = text.splitlines(keepends=True)
    out: list[str] = []
    pos = 0
    for pf in unidiff.PatchSet(diff):
        for h in pf:
            start = h.source_start - 1 if h.source_length else h.source_start
            out.extend(old[pos:start])
            pos = start
            for ln in h:
                if ln.is_added:
                    out.append(ln.value)
                elif ln.is_removed:
                    pos += 1
                else:
                    out.append(old[pos])
                    pos += 1
    out.extend(old[pos:])
    return "".join(out)


def make_diff(path: str, old: str, new: str) -> str:
    if old == new:
        return ""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 f"a/{path}", f"b/{path}", n=3)
    return "".join(ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n"
                   for ln in lines)


def _def_start(lines: list[str], d: Definition) -> int:
    """0-based index of the first line of a definition (`static int` may
    stand on the line before the name)."""
    i = d.line - 1
    if re.match(rf"\s*{re.escape(_name_at(lines, d))}\s*\(", lines[i]) and i > 0:
        return i - 1
    return i


def _name_at(lines: list[str], d: Definition) -> str:
    m = re.search(r"(\w+)\s*\(", lines[d.line - 1])
    return m.group(1) if m else ""


def insert_twins(text: str, twins: list[tuple[str, list[Definition], list[int], list[int]]]
                 ) -> str:
    """For each (name, definitions, prototype lines) in one file: a copy of
    each definition (with its EXPORT_SYMBOL line) and prototype named
    `name__mmconvert_twin`, right after the original, for spatch to convert
    while the original stays for its remaining users."""
    lines = text.splitlines(keepends=True)
    plain = [ln.rstrip("\n") for ln in lines]
    inserts: list[tuple[int, list[str]]] = []
    for name, defs, protos, exports in twins:
        twin = name + TWIN
        for d in defs:
            start = _def_start(lines, d)
            _, end = function_span(plain, d.line)
            body = lines[start:end]
            after = end
            extra: list[str] = []
            if end < len(lines) and re.match(rf"\s*EXPORT_SYMBOL\w*\(\s*{name}\s*\)", lines[end]):
                extra = [re.sub(rf"\b{name}\b", twin, lines[end])]
                after = end + 1
            copy = [re.sub(rf"\b{name}\b", twin, body[0]), *body[1:]]
            if d.line - 1 != start:
                copy[1] = re.sub(rf"\b{name}\b", twin, copy[1])
            inserts.append((after, ["\n", *copy, *extra]))
        for n in protos:
            j = n - 1
            while j < len(lines) and ";" not in lines[j]:
                j += 1
            inserts.append((j + 1, [re.sub(rf"\b{name}\b", twin, ln) for ln in lines[n - 1:j + 1]]))
        for n in exports:
            if not any(at == n and new[-1:] and twin in new[-1] for at, new in inserts):
                inserts.append((n, [re.sub(rf"\b{name}\b", twin, lines[n - 1])]))
    for at, new in sorted(inserts, key=lambda x: -x[0]):
        lines[at:at] = new
    return "".join(lines)


# A declaration: type words, then a declarator ending in '=', ';' or ','
# (`int xid, rc = 0;`).
_DECL = re.compile(r"^\s*(?!return\b|goto\b|else\b|case\b)(?:[A-Za-z_]\w*[\s*]+)+\**[A-Za-z_]\w*"
                   r"(?:\[[^]]*\])?\s*(?:=|;|,)")


_INIT_LINE = re.compile(r"^(\s*\.\w+)([ \t]+)=([ \t]*)\S")


def _initialiser_style(lines: list[str], i: int) -> tuple[str, int | None, str, str]:
    """How the initialiser around line i lays out `.field = value`: "single"
    (one space before '='), "tabs" or "spaces" (padded to a column), the
    column of '=' its lines share most, what follows '=' (a tab in the
    `.field\t=\tvalue` style, else a space), and what its widest names put
    before '=' (where a name too long for the column goes)."""
    near = []
    j = i - 1                        # up to the line that opens the initialiser
    while j >= 0 and not lines[j].rstrip().endswith("{") and i - j < 60:
        near.append(_INIT_LINE.match(lines[j]))
        j -= 1
    j = i + 1                        # down to the line that closes it
    while j < len(lines) and not lines[j].lstrip().startswith("}") and j - i < 60:
        near.append(_INIT_LINE.match(lines[j]))
        j += 1
    found = [m for m in near if m]
    if not found:
        return "single", None, " ", " "
    before = [m.group(2) for m in found]
    after = collections.Counter("\t" if "\t" in m.group(3) else " " for m in found)
    cols = collections.Counter(len((m.group(1) + m.group(2)).expandtabs(8)) for m in found)
    col = max(cols, key=lambda c: (cols[c], c))
    if all(b == " " for b in before):
        kind = "single"
    elif sum("\t" in b for b in before) >= sum(b != " " and "\t" not in b for b in before):
        # The layout most of its lines use (ocxl pads with spaces but for
        # one `.owner\t\t=`).
        kind = "tabs"
    else:
        kind = "spaces"
    widest = max(_cols(m.group(1)) for m in found)
    overflow = collections.Counter(m.group(2) for m in found if _cols(m.group(1)) == widest)
    return kind, col, after.most_common(1)[0][0], " " if set(overflow) == {" "} else "\t"


def realign_initialisers(text: str, hook: str, original: str = "") -> str:
    """spatch prints a changed initialiser as `.x = y`; lay it out as the
    rest of its initialiser does.  A name too long for the table's column
    gets what the table's widest names have (`.release = ` among
    `.open\t = `), or one space where the line it replaces was padded with
    spaces (`.mmap   = `)."""
    padded = {m.group(2) for m in re.finditer(r"(?m)^\s*\.mmap( {2,})=\s*(\w+)", original)}
    lines = text.split("\n")
    for i, ln in enumerate(lines):
        m = re.match(rf"^(\s*\.{hook})\s*=\s*(.*)$", ln)
        if not m:
            continue
        kind, col, after, wide = _initialiser_style(lines, i)
        head = m.group(1)
        width = len(head.expandtabs(8))
        was_padded = any(m.group(2).startswith(v) for v in padded)
        if kind == "single" or col is None:
            pad = " "
        elif width + 1 > col:
            pad = " " if was_padded else wide
        elif kind == "tabs":
            pad, w = "\t", (width // 8 + 1) * 8
            while w < col:
                pad += "\t"
                w += 8
        else:
            pad = " " * (col - width) if col > width else " "
        lines[i] = f"{head}{pad}={after}{m.group(2)}"
        vcol = _value_column(lines, i)
        if vcol is not None and _cols(f"{head}{pad}= ") < vcol:
            # `.open =     x` tables pad after '=' to line their values up.
            lines[i] = f"{head}{pad}=" + " " * (vcol - _cols(f"{head}{pad}=")) + m.group(2)
    return "\n".join(lines)


def _value_column(lines: list[str], i: int) -> int | None:
    """The column the values of the initialiser around line i start at,
    when it pads with spaces after '=' to line them up."""
    found = []
    for step in (-1, 1):
        j = i + step
        while 0 <= j < len(lines) and abs(j - i) < 60 and not lines[j].rstrip().endswith("{") \
                and not lines[j].lstrip().startswith("}"):
            m = _INIT_LINE.match(lines[j])
            if m:
                found.append(m)
            j += step
    if len(found) < 2 or any("\t" in m.group(3) for m in found) \
            or all(len(m.group(3)) <= 1 for m in found):
        return None
    vcols = {_cols(m.group(0)) - 1 for m in found}
    return vcols.pop() if len(vcols) == 1 else None


def drop_unused_file_decl(text: str, decl: str, name: str) -> str:
    """spatch adds the file declaration to every #ifdef variant of a
    handler; a variant that never used the file does not keep it, and one
    that uses it once reads the descriptor's field there instead (a local
    for one use is noise)."""
    lines = text.split("\n")
    var, field = _match(r"struct file \*(\w+) = ([^;]+);", decl).groups()
    use = re.compile(rf"(?<![.>\w]){re.escape(var)}\b(?!\s*=[^=])")
    i = 0
    while i < len(lines):
        if lines[i].strip() == decl:
            try:
                start = max(j for j in range(i) if re.search(rf"\b{re.escape(name)}\s*\(", lines[j]))
                _, end = function_span(lines, start + 1)
            except ValueError:
                i += 1
                continue
            if end <= i:
                # The declaration belongs to another function.
                i += 1
                continue
            rest = strip_comments("\n".join(lines[i + 1:end]))
            uses = len(re.findall(rf"(?<![.>\w]){re.escape(var)}\b", rest))
            once = [j for j in range(i + 1, end) if use.search(lines[j])]
            if uses == 1 and len(once) == 1 and len(use.findall(lines[once[0]])) == 1:
                lines[once[0]] = use.sub(field, lines[once[0]])
                uses = 0
            if not uses:
                del lines[i]
                if i < len(lines) and not lines[i].strip() and i > 0 and lines[i - 1].rstrip().endswith("{"):
                    del lines[i]
                continue
        i += 1
    return "\n".join(lines)


def wrap_long_calls(text: str, limit: int = 80) -> str:
    """A rewritten call that no longer fits (a long VMA_*_BIT list) is
    wrapped at a comma and aligned with its open parenthesis."""
    out = []
    # spatch may break the call after its first argument: join it first.
    text = re.sub(r"(?m)^(\t+(?:return |[\w>.-]+ = )?vma_desc_\w+\(desc,)\n[ \t]+", r"\1 ", text)
    for ln in text.split("\n"):
        m = re.match(r"^(\t+)((?:return |[\w>.-]+ = )?vma_desc_\w+\()(.*)$", ln)
        if len(ln.expandtabs(8)) <= limit or not m:
            out.append(ln)
            continue
        indent, head, rest = m.groups()
        col = len((indent + head).expandtabs(8))
        cont = "\t" * (col // 8) + " " * (col % 8)
        line, parts = indent + head, rest.split(", ")
        for i, part in enumerate(parts):
            piece = part + ("," if i < len(parts) - 1 else "")
            trial = line + ("" if line.endswith("(") else " ") + piece
            if len(trial.expandtabs(8)) > limit and not line.endswith("("):
                out.append(line)
                line = cont + piece
            else:
                line = trial
        out.append(line)
    return "\n".join(out)


def drop_lone_call_parens(text: str) -> str:
    """`(vma->vm_flags & VM_READ) && x` became `(vma_desc_test(...)) && x`:
    a call needs no parentheses of its own."""
    return re.sub(r"(?<=[(!\s,=+\-*/<>&|?:])(?<!\bif )(?<!\bwhile )(?<!\bswitch )"
                  r"\((vma_desc_\w+\([^()]*\))\)"
                  r"(?=\s*(?:[-+*/<>=!&|?:;,)\]]|$))", r"\1", text, flags=re.MULTILINE)


def _cols(s: str) -> int:
    return len(s.expandtabs(8))


def _indent_to(col: int) -> str:
    return "\t" * (col // 8) + " " * (col % 8)


def wrap_long_lines(text: str, original: str, limit: int = 80) -> str:
    """A line the conversion made longer than `limit` columns (the ones it
    replaced fitted) is wrapped as kernel code wraps: a condition after its
    outermost `&&`/`||` that fits (else after a comparison), the rest
    aligned inside the parenthesis; a call's continuation that no longer
    fits aligned with the open parenthesis moves to two tabs in."""
    before = set(original.split("\n"))
    lines = text.split("\n")
    out: list[str] = []
    cont = None     # where a condition this wrapped continues
    for ln in lines:
        if cont is not None and out[-1].rstrip().endswith(("||", "&&")) \
                and _cols(_indent_to(cont) + ln.strip()) <= limit:
            # The condition's later lines follow the wrapped part.
            out.append(_indent_to(cont) + ln.strip())
            continue
        cont = None
        if ln in before or _cols(ln) <= limit:
            out.append(ln)
            continue
        prev = out[-1] if out else ""
        if re.match(r"^\t+ +\S", ln) and prev.rstrip().endswith(",") and "(" in prev:
            indent = _match(r"^\t*", prev).group(0) + "\t\t"
            moved = indent + ln.strip()
            if _cols(moved) <= limit:
                out.append(moved)
                continue
        decl = re.match(r"^[A-Za-z_][\w \t*]*?\b\w+\(", ln)
        if decl and ", " in ln[decl.end():]:
            # A function's header the new names made too long: cut at the
            # last parameter that fits, the rest under the parenthesis.
            at = max((m.end() for m in re.finditer(r", ", ln) if _cols(ln[:m.end() - 1]) <= limit),
                     default=None)
            if at is not None:
                out += [ln[:at - 1], _indent_to(_cols(ln[:decl.end()])) + ln[at:]]
                continue
        cut = _condition_cut(ln, limit)
        if cut is None:
            out.append(ln)
            continue
        k, col = cut
        head, tail = ln[:k].rstrip(), ln[k:].strip()
        out += [head, _indent_to(col) + tail]
        cont = col
    return "\n".join(out)


def _open_parens(ln: str) -> list[int]:
    """Columns of the parentheses `ln` leaves open (strings skipped)."""
    stack: list[int] = []
    col, quote = 0, ""
    for i, c in enumerate(ln):
        if quote:
            if c == quote and ln[i - 1] != "\\":
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "(":
            stack.append(col)
        elif c == ")" and stack:
            stack.pop()
        col = (col // 8 + 1) * 8 if c == "\t" else col + 1
    return stack


def realign_continuations(text: str, original: str) -> str:
    """A line the conversion shortened or lengthened (`vma->vm_pgoff += (`
    became `desc->pgoff += (`) takes the unchanged continuation lines that
    were aligned with its open parenthesis along."""
    old, new = original.split("\n"), text.split("\n")
    sm = difflib.SequenceMatcher(None, old, new, autojunk=False)
    unchanged = {j for tag, i1, i2, j1, j2 in sm.get_opcodes() if tag == "equal"
                 for j in range(j1, j2)}
    for tag, _, i2, _, j2 in sm.get_opcodes():
        if tag != "replace":
            continue
        was, now = _open_parens(old[i2 - 1]), _open_parens(new[j2 - 1])
        if not was or len(was) != len(now) or was[-1] == now[-1]:
            continue
        depth = 1
        for j in range(j2, len(new)):
            lead = _match(r"^[\t ]*", new[j]).group(0)
            if j not in unchanged or _cols(lead) != was[-1] + 1 or not new[j].strip():
                break
            new[j] = _indent_to(now[-1] + 1) + new[j][len(lead):]
            depth += new[j].count("(") - new[j].count(")")
            if depth <= 0:
                break
    return "\n".join(new)


def _condition_cut(ln: str, limit: int) -> tuple[int, int] | None:
    """(where the rest of a condition line starts, its column) for the
    outermost logical operator (else comparison) the line can break after."""
    lead = re.match(r"^(\t*(?:\} else )?(?:if|while) \(|\t+ *)", ln)
    if not lead:
        return None
    start = len(lead.group(1))
    stack = [_cols(lead.group(1))] if lead.group(1).endswith("(") else []
    best: dict[int, tuple[int, int]] = {}
    weak: dict[int, tuple[int, int]] = {}
    for k in range(start, len(ln)):
        c = ln[k]
        if c == "(":
            stack.append(_cols(ln[:k + 1]))
        elif c == ")":
            if stack:
                stack.pop()
        elif stack:
            for op, table in ((" && ", best), (" || ", best), (" > ", weak), (" < ", weak),
                              (" >= ", weak), (" <= ", weak), (" == ", weak), (" != ", weak)):
                if ln.startswith(op, k) and _cols(ln[:k + len(op) - 1]) <= limit:
                    table[len(stack)] = (k + len(op), stack[-1])
    for table in (best, weak):
        if table:
            return table[min(table)]
    return None


def drop_needless_braces(text: str) -> str:
    """`if (...) {` around one return, written over several lines before,
    fits on one line once converted: checkpatch wants no braces then."""
    return re.sub(r"(?m)^(\t+)(if \([^\n]*(?:vma_desc_|desc->)[^\n]*\)) \{\n\1\t(return [^;\n]+;)\n\1\}$",
                  lambda m: f"{m.group(1)}{m.group(2)}\n{m.group(1)}\t{m.group(3)}", text)


def blank_after_file_decl(text: str, decl: str) -> str:
    """The file declaration spatch adds may now be the only one: kernel
    style wants a blank line between declarations and code."""
    lines = text.split("\n")
    out = []
    for i, ln in enumerate(lines):
        out.append(ln)
        if ln.strip() == decl and i + 1 < len(lines):
            nxt = lines[i + 1]
            if nxt.strip() and not _DECL.match(nxt) and nxt.strip() != "}":
                out.append("")
    return "\n".join(out)


def fix_kernel_doc(text: str, old: str, new: str, desc_line: str,
                   params: tuple[str, ...] = ("file", "filp", "vma", "fp", "f", "area", "vm")
                   ) -> str:
    """`* old - ...` (or a bare `* old`) becomes `* new - ...`; the
    `params` lines of that comment (a handler's @file and @vma, a helper's
    @vma) become one @desc line."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    in_doc = False
    replaced = False
    while i < len(lines):
        ln = lines[i]
        if re.match(rf"^\s*\*\s+{re.escape(old)}(\(\))?:?(\s+-|\s*$)", ln):
            ln = re.sub(rf"\b{re.escape(old)}\b", new, ln, count=1)
            in_doc, replaced = True, False
        elif in_doc and re.match(r"^\s*\*/", ln):
            in_doc = False
        elif in_doc and re.match(r"^\s*\*\s+@(\w+):", ln):
            param = _match(r"^\s*\*\s+@(\w+):", ln).group(1)
            prefix = _match(r"^(\s*\*\s+)", ln).group(1)
            if param in params:
                # Drop continuation lines of this parameter's description.
                while i + 1 < len(lines) and re.match(r"^\s*\*\s{2,}\S|^\s*\*\t\S", lines[i + 1]) \
                        and not re.match(r"^\s*\*\s+@", lines[i + 1]):
                    i += 1
                if not replaced:
                    # In the case the comment writes its descriptions in.
                    said = ln[len(prefix) + len(param) + 2:].lstrip()
                    name, _, what = desc_line.partition(": ")
                    if said[:1].isupper():
                        what = what[:1].upper() + what[1:]
                    out.append(f"{prefix}{name}: {what}")
                    replaced = True
                i += 1
                continue
        if in_doc:
            # The description may still talk about the parameter it had.
            ln = re.sub(r"@(vma|vm|area)\b", "@desc", ln)
        out.append(ln)
        i += 1
    return "\n".join(out)


def declare_beside(text: str, decl: str, new: str) -> str:
    """A header that only declares `struct vm_area_struct;` for its
    prototypes declares the descriptor a helper's prototype now takes."""
    lines = text.split("\n")
    if new in lines or decl not in lines:
        return text
    # In name order, as such lists are kept.
    i = lines.index(decl) + (new > decl)
    return "\n".join([*lines[:i], new, *lines[i:]])


def rename_in_comment(text: str, line_text: str, old: str, new: str) -> str:
    """A comment that names the handler as `old()` names the new one."""
    lines = text.split("\n")
    for i, ln in enumerate(lines):
        if ln.strip() == line_text:
            lines[i] = re.sub(rf"\b{re.escape(old)}\(\)", f"{new}()", ln)
    return "\n".join(lines)


def rename_define_alias(text: str, line: int, old: str, new: str) -> str:
    lines = text.split("\n")
    if 0 < line <= len(lines) and re.match(r"\s*#\s*define\b", lines[line - 1]):
        lines[line - 1] = re.sub(rf"\b{re.escape(old)}\b", new, lines[line - 1])
    return "\n".join(lines)


def leftover(text: str, new_name: str, vma: str) -> str | None:
    """What of the old vma a converted function still uses, if anything."""
    lines = text.split("\n")
    for i, ln in enumerate(lines):
        if re.search(rf"\b{re.escape(new_name)}\s*\(", ln) and "desc" in ln and not ln.rstrip().endswith(";"):
            try:
                open_line, end = function_span(lines, i + 1)
            except ValueError:
                continue
            body = strip_comments("\n".join(lines[open_line - 1:end]))
            for m in re.finditer(rf"(?<![.>\w]){re.escape(vma)}\b", body):
                return body[max(0, m.start() - 20):m.end() + 20].strip()
    return None


# -- planning -------------------------------------------------------------

def _selected(inv: Inventory, only: tuple[str, ...]) -> list[Handler]:
    hs = [h for h in inv.handlers if h.klass.convertible]
    if only:
        hs = [h for h in hs if any(h.subsystem_file.startswith(o.rstrip("/")) for o in only)]
    return hs


def plan(gt: GitTree, api: ApiFacts, inv: Inventory, *, only: tuple[str, ...] = (),
         jobs=None, timeout=spatch.DEFAULT_TIMEOUT, cache=None, progress=None
         ) -> tuple[list[Change], list[Handler], list[FileWarning], list[tuple[str, str]]]:
    """The conversion of every convertible handler, as changes in series
    order (library twins first), the handlers left alone, files not
    processed, and the semantic patches used."""
    selected = _selected(inv, tuple(only or ()))
    skipped = [h for h in inv.handlers if not h.klass.convertible
               and (not only or any(h.subsystem_file.startswith(o.rstrip("/")) for o in only))]
    warnings: list[FileWarning] = []
    # Each pass drops the handlers the previous one could not finish, so
    # this ends; what ships never contains a half-converted function.
    while True:
        result = _plan_once(gt, api, selected, jobs=jobs, timeout=timeout, cache=cache,
                            progress=progress)
        failed = result.failed
        warnings = result.warnings
        if not failed:
            break
        # spatch could not finish these: leave them alone and say why.
        keep = []
        for h in selected:
            if h.key in failed:
                skipped.append(dataclasses.replace(
                    h, klass=Klass.UNCLEAR,
                    reason=dataclasses.replace(h.reason, expression=failed[h.key]),
                    notes=("spatch could not convert it completely",)))
            else:
                keep.append(h)
        if len(keep) == len(selected):
            raise SpatchError("internal error: the conversion failed for handlers it did not "
                              f"select: {', '.join(sorted(failed))}")
        selected = keep
    return result.changes, skipped, warnings, result.cocci


@dataclass(frozen=True)
class _Pass:
    """What one planning pass gives plan(): the changes, and the handlers
    spatch could not finish (key -> why), which the next pass leaves out."""

    changes: list[Change]
    warnings: list[FileWarning]
    failed: dict[str, str]
    cocci: list[tuple[str, str]]


class _Texts:
    """The tree's files as read once per pass (spatch and the mending read
    the same text)."""

    def __init__(self, gt: GitTree):
        self._gt = gt
        self._texts: dict[str, str] = {}

    def __call__(self, f: str) -> str:
        if f not in self._texts:
            self._texts[f] = self._gt.read_text(f)
        return self._texts[f]


@dataclass
class _Units:
    """The units of one pass (a handler, a library helper's fops in one
    file, a missing library twin) and what the semantic patch is told of
    them.  Filled while the names are chosen; read by every later step."""

    renames: dict[str, str] = field(default_factory=dict)   # old or twin name -> new name
    defs: list[str] = field(default_factory=list)           # definitions to convert
    prototypes: list[str] = field(default_factory=list)
    fops_names: list[str] = field(default_factory=list)     # names fops switch from
    remove: list[str] = field(default_factory=list)         # wrappers the fops stop naming
    file_users: list[str] = field(default_factory=list)     # definitions that use the file
    helpers: dict[str, VmaHelper] = field(default_factory=dict)  # name -> helper taking the desc
    opens: dict[str, VmaOpen] = field(default_factory=dict)  # .open -> its move to .mapped
    lib_needed: set[str] = field(default_factory=set)       # library helpers used
    details: dict[str, HandlerChange | LibraryTwin] = field(default_factory=dict)
    touched: dict[str, set[str]] = field(default_factory=dict)  # unit -> files
    twins: dict[str, list[Definition]] = field(default_factory=dict)  # name -> definitions
    missing: list[str] = field(default_factory=list)        # library helpers the tree lacks
    lib_refs: list[Reference] = field(default_factory=list)

    def converted(self, h: Handler) -> bool:
        """Whether h's definition is converted (not a library helper the
        fops merely switch away from, nor a wrapper that goes)."""
        return h.name not in LIB_HELPERS and h.name not in self.remove


def _plan_once(gt: GitTree, api: ApiFacts, selected: list[Handler], *, jobs, timeout, cache,
               progress) -> _Pass:
    """One conversion of `selected`: choose the names, render and run the
    rules, mend their output, and group the edits into changes."""
    text = _Texts(gt)
    units = _Units()
    for h in selected:
        _choose_names(h, api, units, text)
    _add_library_twins(gt, api, units, jobs=jobs, timeout=timeout, cache=cache,
                       progress=progress)
    overrides = _texts_with_twins(selected, units, text)
    rule = spatch.render("convert", **_rule_context(api, units))
    files = sorted(set().union(*units.touched.values())) if units.touched else []
    if not files:
        return _Pass([], [], {}, [("convert", rule)])
    res = spatch.run(gt.path, rule, files, blob_ids=gt.blob_ids(files), patch=True, jobs=jobs,
                     timeout=timeout, cache=cache, progress=progress,
                     label="convert: handlers", overrides=overrides)
    warnings = list(res.warnings) + _parse_warnings(selected, res.bad_regions)
    new_texts = {f: _mend(f, overrides.get(f, text(f)), res.diffs.get(f), text(f), api,
                          selected, units)
                 for f in files}
    _facts_from_result(selected, api, units, new_texts, text)
    timed_out = {w.file for w in warnings if w.problem == "timeout"}
    failed = _unfinished(selected, api, units, new_texts, timed_out)
    changes = _assemble(api, units, files, new_texts, text)
    return _Pass(changes, warnings, failed, [("convert", rule)])


def _choose_names(h: Handler, api: ApiFacts, units: _Units, text: _Texts) -> None:
    """Decide how h moves to the new hook: a library helper's fops switch
    per file, a wrapper of one is replaced by the helper, anything else is
    renamed (as a twin when the old name keeps other users)."""
    suffix = api.suffix
    new = h.name + suffix
    fops_files = {e.file for e in h.fops}
    d = HandlerChange(h.name, new, h.subsystem_file,
                      h.definitions[0].line if h.definitions else h.fops[0].line, h.klass,
                      fops=tuple(sorted(f"{e.file}:{e.fops}" for e in h.fops)))
    if h.name in LIB_HELPERS:
        # Never renamed: each fops that names it switches to the twin or
        # the tree's own helper, in its own subsystem.
        units.renames[h.name] = h.name + suffix
        units.fops_names.append(h.name)
        units.lib_needed.add(h.name)
        for f in sorted(fops_files):
            unit = f"{h.name}@{f}"
            units.touched[unit] = {f}
            units.details[unit] = dataclasses.replace(
                d, new_name=h.name + suffix, file=f, klass=Klass.LIBRARY,
                helper=h.name + suffix, replaced_by_helper=True,
                fops=tuple(sorted(f"{e.file}:{e.fops}" for e in h.fops if e.file == f)))
        return
    if h.wraps_library and h.linkage == "static" \
            and not any(r.kind in ("call", "use", "initialiser") for r in h.references):
        lib = h.wraps_library
        units.renames[h.name] = lib + suffix
        units.fops_names.append(h.name)
        units.remove.append(h.name)
        units.lib_needed.add(lib)
        d = dataclasses.replace(d, replaced_by_helper=True, helper=lib + suffix,
                                new_name=lib + suffix)
    else:
        twin = h.needs_twin
        target = h.name + TWIN if twin else h.name
        units.renames[target] = new
        units.renames[h.name] = new
        units.defs.append(target)
        units.prototypes.append(target)
        units.fops_names.append(h.name)
        if twin:
            units.twins[h.name] = list(h.definitions)
            d = dataclasses.replace(d, twin=True)
        d = _body_facts(h, d, target, api, units, text)
        for x in h.helpers:
            units.helpers[x.name] = x
        if h.helpers:
            d = dataclasses.replace(d, helpers=tuple(x.name for x in h.helpers),
                                    renamed=tuple((x.name, helper_name(x.name, api))
                                                  for x in h.helpers
                                                  if helper_name(x.name, api) != x.name))
        if h.opens is not None:
            units.opens[h.opens.name] = h.opens
            d = dataclasses.replace(d, mapped=(h.opens.name, h.opens.mapped, h.opens.ops))
    units.touched[h.key] = {dd.file for dd in h.definitions} | fops_files | {
        r.file for r in h.references if r.kind in ("prototype", "export", "kernel-doc",
                                                   "define", "comment")} | {
        f for x in h.helpers for f in (x.file, *x.prototypes)}
    units.details[h.key] = d


def _body_facts(h: Handler, d: HandlerChange, target: str, api: ApiFacts, units: _Units,
                text: _Texts) -> HandlerChange:
    """What h's definitions do that the rules and the changelog need: the
    library helper and mapping call they use (and the action it becomes,
    with the error it returned), whether they touch the flags or the file."""
    suffix = api.suffix
    for dd in h.definitions:
        lines = text(dd.file).splitlines()
        open_line, end = function_span(lines, dd.line)
        src = "\n".join(lines[open_line - 1:end])
        body = Body(src[src.index("{"):], open_line, dd.vma_param, dd.file_param)
        if body.uses_file() and target not in units.file_users:
            units.file_users.append(target)
        for i, name in body.calls():
            if name in LIB_HELPERS:
                units.lib_needed.add(name)
                d = dataclasses.replace(d, helper=name + suffix)
            if name in MAPPING_CALLS:
                act = MAPPING_CALLS[name]
                full = ("vm_start" in body.text(i, body.match_paren(i + 1))
                        and "vm_end - " in body.text(i, body.match_paren(i + 1))
                        and name != "vm_iomap_memory")
                d = dataclasses.replace(d, mapping_call=name,
                                        action=act + ("_full" if full else ""))
                if h.mapping_checked:
                    d = dataclasses.replace(d, error_override=body.error_code(i))
            if name in ("vm_flags_set", "vm_flags_clear", "vm_flags_mod"):
                d = dataclasses.replace(d, flags=True)
        if any(u.kind == "field" and u.name == "vm_flags" for u in body.uses):
            d = dataclasses.replace(d, flags=True)
    return d


def _add_library_twins(gt: GitTree, api: ApiFacts, units: _Units, *, jobs, timeout, cache,
                       progress) -> None:
    """The library helpers the conversions use and the tree lacks get a
    twin beside the original: their definitions are looked up (a search
    of their own) and each becomes a unit of the library patch."""
    suffix = api.suffix
    units.missing = sorted(n for n in units.lib_needed if n + suffix not in api.library_helpers)
    if not units.missing:
        return
    lib_defs, units.lib_refs = locate(gt, units.missing, jobs=jobs, timeout=timeout,
                                      cache=cache, progress=progress)
    for n in units.missing:
        if not lib_defs.get(n):
            raise TreeError(f"{n}() has no definition in the tree to add "
                            f"{n}{suffix}() beside")
        units.twins[n] = lib_defs[n]
        units.renames[n + TWIN] = n + suffix
        units.defs.append(n + TWIN)
        units.prototypes.append(n + TWIN)
        units.file_users.append(n + TWIN)
        unit = f"library:{n}"
        units.touched[unit] = {dd.file for dd in lib_defs[n]} | {
            r.file for r in units.lib_refs if r.text == n}
        units.details[unit] = LibraryTwin(n + suffix, n, lib_defs[n][0].file)


def _texts_with_twins(selected: list[Handler], units: _Units, text: _Texts) -> dict[str, str]:
    """The files that hold a twin, with the twin inserted: spatch converts
    the copy and leaves the original for its other users."""
    handler_refs = {h.name: h.references for h in selected}
    per_file: dict[str, list] = collections.defaultdict(list)
    for name, dlist in units.twins.items():
        refs = handler_refs.get(name) or [r for r in units.lib_refs if r.text == name]
        for f in sorted({dd.file for dd in dlist}
                        | {r.file for r in refs if r.kind in ("prototype", "export")}):
            per_file[f].append((name, [dd for dd in dlist if dd.file == f],
                                [r.line for r in refs if r.kind == "prototype" and r.file == f],
                                [r.line for r in refs if r.kind == "export" and r.file == f]))
    return {f: insert_twins(text(f), items) for f, items in per_file.items()}


def _rule_context(api: ApiFacts, units: _Units) -> dict[str, Any]:
    """What convert.cocci.j2 is rendered with."""
    # Each name is matched only in the files planned for it: a static
    # handler of the same name elsewhere (two drivers' afu_mmap) is not ours.
    scope: dict[str, set[str]] = collections.defaultdict(set)
    def_scope: dict[str, set[str]] = collections.defaultdict(set)
    for unit, fs in units.touched.items():
        info = units.details[unit]
        named = info.original if isinstance(info, LibraryTwin) else info.handler
        scope[named] |= fs
        scope[named + TWIN] |= fs
        twin = isinstance(info, LibraryTwin) or info.twin
        def_scope[named + TWIN if twin else named] |= fs
        if isinstance(info, HandlerChange):
            for n in (*info.helpers, *(info.mapped[:1] if info.mapped else ())):
                def_scope[n] |= fs
    lib_map = {n: n + api.suffix for n in LIB_HELPERS}
    renamed = {n: helper_name(n, api) for n in sorted(units.helpers)
               if helper_name(n, api) != n}
    # Two handlers of one name (static, in two drivers) are one name to match.
    return {"api": api, "renames": units.renames | renamed,
            "defs": list(dict.fromkeys(units.defs)),
            "helpers": sorted(units.helpers), "renamed_helpers": list(renamed),
            "opens": {n: o.mapped for n, o in sorted(units.opens.items())},
            "prototypes": list(dict.fromkeys(units.prototypes)),
            "scope": {k: sorted(v) for k, v in sorted(scope.items())},
            "def_scope": {k: sorted(v) for k, v in sorted(def_scope.items())},
            "fops_names": list(dict.fromkeys(units.fops_names)), "remove": units.remove,
            "file_users": list(dict.fromkeys(units.file_users)),
            "library": {k: v for k, v in lib_map.items()
                        if v in api.library_helpers or k in units.missing},
            "mapping": [(c, a) for c, a in MAPPING_CALLS.items() if a in api.actions],
            "desc_roles": DESC_ROLES, "vma_bit_calls": VMA_BIT_CALLS}


def _parse_warnings(selected: list[Handler], bad_regions: dict[str, list[tuple[int, int]]]
                    ) -> list[FileWarning]:
    """A handler whose definition lies where spatch could not parse is
    named: the file's warning alone would not say which one."""
    out = []
    for f, regions in bad_regions.items():
        for h in selected:
            for dd in h.definitions:
                if dd.file == f and any(lo <= dd.line <= hi for lo, hi in regions):
                    out.append(FileWarning(f, "parse", f"spatch could not parse lines "
                                           f"around {h.name}() at line {dd.line}"))
    return out


def _mend(f: str, base: str, diff: str | None, orig: str, api: ApiFacts,
          selected: list[Handler], units: _Units) -> str:
    """File f as spatch's diff leaves it, mended where spatch cannot
    express kernel style (alignment, wrapping, declarations) and where the
    old name lives outside code (kernel-doc, #define, comments)."""
    suffix = api.suffix
    new = apply_diff(base, diff) if diff is not None else base
    if new != orig:
        new = realign_initialisers(new, api.hook, orig)
        new = wrap_long_calls(drop_needless_braces(drop_lone_call_parens(new)))
        new = realign_continuations(wrap_long_lines(new, orig), orig)
        for h in selected:
            for dd in [dd for dd in h.definitions if dd.file == f]:
                decl = f"struct file *{dd.file_param} = desc->{api.fields['file']};"
                new = drop_unused_file_decl(new, decl, units.renames.get(h.name, h.name))
                new = blank_after_file_decl(new, decl)
        if units.missing:
            new = blank_after_file_decl(new, f"struct file *file = desc->{api.fields['file']};")
    for o in units.opens.values():
        new = _lay_out_mapped(new, orig, o)
    desc_line = _prose("kerneldoc-desc.j2", api=api)
    for x in units.helpers.values():
        if x.file == f:
            new = fix_kernel_doc(new, x.name, helper_name(x.name, api), desc_line,
                                 (x.vma_param, "vma"))
        if f in x.prototypes:
            new = declare_beside(new, "struct vm_area_struct;", f"{api.desc_type};")
    for h in selected:
        if not units.converted(h) or _handler_change(units.details, h.key).twin:
            continue
        for r in h.references:
            if r.file != f:
                continue
            if r.kind == "kernel-doc":
                new = fix_kernel_doc(new, h.name, h.name + suffix, desc_line)
            elif r.kind == "define":
                new = rename_define_alias(new, r.line, h.name, h.name + suffix)
            elif r.kind == "comment":
                new = rename_in_comment(new, r.text, h.name, h.name + suffix)
    return new


def helper_name(name: str, api: ApiFacts) -> str:
    """A helper that takes the descriptor keeps its name, but for one named
    for the hook it served: `vme_master_mmap()` became
    `vme_master_mmap_prepare()` upstream."""
    return name + api.suffix if name.endswith("_mmap") else name


def _lay_out_mapped(new: str, orig: str, o: VmaOpen) -> str:
    """The .mapped callback made from .open keeps that function's layout
    (spatch prints a copied body without its blank lines), and its
    initialiser entry the table's."""
    made, old = _function_text(new, o.mapped), _function_text(orig, o.name)
    if made is None or old is None:
        return new
    v = re.escape(o.vma_param)
    body = old[old.index("\n{") + 1:]
    body = re.sub(rf"(?<![\w.>]){v}->vm_private_data\b", "*vm_private_data", body)
    body = re.sub(rf"(?<![\w.>]){v}->vm_file\b", "file", body)
    body = re.sub(r"\breturn;", "return 0;", body)
    if not re.search(r"\treturn 0;\n\}$", body):
        body = body[:-1] + "\treturn 0;\n}"
    new = new.replace(made, made[:made.index("\n{") + 1] + body, 1)
    return realign_initialisers(new, "mapped")


def _facts_from_result(selected: list[Handler], api: ApiFacts, units: _Units,
                       new_texts: dict[str, str], text: _Texts) -> None:
    """What the changelog says comes from what the rules did: the mapping
    action they wrote, and whether the page protection is now set."""
    for h in selected:
        if not units.converted(h):
            continue
        for dd in h.definitions:
            done = _function_text(new_texts.get(dd.file, ""), h.name + api.suffix)
            if done is None:
                continue
            # Its own code and that of the helpers it hands the descriptor to.
            reached = "\n".join([done] + [_function_text(new_texts.get(x.file, ""),
                                                          helper_name(x.name, api)) or ""
                                           for x in h.helpers])
            if re.search(r"\bmmap_action_\w+\(|(?:vma_desc_set_flags\(|\|=)[^;]*"
                         r"\bVMA?_(?:IO|DONTEXPAND|PFNMAP|MIXEDMAP)(?:_BIT)?\b", reached):
                units.details[h.key] = dataclasses.replace(
                    _handler_change(units.details, h.key), special=True)
            acts = re.findall(r"\b(mmap_action_\w+)\(", done)
            if acts:
                units.details[h.key] = dataclasses.replace(
                    _handler_change(units.details, h.key), action=acts[-1])
            old = _function_text(text(dd.file), h.name) or ""
            pp = api.fields.get("page_prot", "page_prot")
            if re.search(rf"desc->{pp} = ", done) and not re.search(r"->vm_page_prot = ", old):
                units.details[h.key] = dataclasses.replace(
                    _handler_change(units.details, h.key), page_prot_from_local=True)


def _unfinished(selected: list[Handler], api: ApiFacts, units: _Units,
                new_texts: dict[str, str], timed_out: set[str]) -> dict[str, str]:
    """The handlers spatch did not finish (key -> why): a timeout, a use
    of the vma left, or a definition not converted at all."""
    failed: dict[str, str] = {}
    for h in selected:
        if not units.converted(h):
            continue
        for dd in h.definitions:
            if dd.file in timed_out:
                failed[h.key] = f"spatch timed out on {dd.file}"
                continue
            left = leftover(new_texts.get(dd.file, ""), h.name + api.suffix, dd.vma_param)
            # The new name alone is not enough: the fops rule renames the
            # initialiser even when the definition did not match.
            if left is not None or _function_text(new_texts.get(dd.file, ""),
                                                  h.name + api.suffix) is None:
                failed[h.key] = left or "spatch did not convert the definition"
    return failed


def _groups(touched: dict[str, set[str]]) -> dict[str, list[str]]:
    """The handler units that share a file, which travel in one change
    (union-find over files); library twins have a patch of their own."""
    parent = {u: u for u in touched}

    def find(u):
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    owner: dict[str, str] = {}
    for u in sorted(touched):
        if u.startswith("library:"):
            continue
        for f in touched[u]:
            if f in owner:
                parent[find(u)] = find(owner[f])
            else:
                owner[f] = u
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for u in touched:
        if not u.startswith("library:"):
            groups[find(u)].append(u)
    return groups


def _assemble(api: ApiFacts, units: _Units, files: list[str], new_texts: dict[str, str],
              text: _Texts) -> list[Change]:
    """The changes in series order: the library twins first (their diff
    holds only the twins), then one conversion per group of units, each
    diffed against the tree as the library patch leaves it."""
    suffix, missing, touched = api.suffix, units.missing, units.touched
    changes: list[Change] = []
    lib_files: set[str] = set()
    for n in missing:
        lib_files |= touched[f"library:{n}"]
    if missing:
        lib_list = sorted(lib_files)
        diff = "".join(make_diff(f, text(f), _only_twin(text(f), new_texts[f], missing, suffix))
                       for f in lib_list)
        changes.append(Change("library", _prose("title-library.j2", helpers=[
            n + suffix for n in missing], api=api), tuple(n + suffix for n in missing),
            tuple(lib_list), diff, tuple(units.details[f"library:{n}"] for n in missing)))
    base_after_lib = {f: _only_twin(text(f), new_texts[f], missing, suffix) if f in lib_files
                      else text(f) for f in files}
    groups = _groups(touched)
    for key in sorted(groups, key=lambda k: sorted(touched[k])[0]):
        members = sorted(groups[key])
        convs = [_handler_change(units.details, u) for u in members]
        names = [c.handler for c in convs]
        unit_files = sorted(set().union(*(touched[u] for u in members)))
        diff = "".join(make_diff(f, base_after_lib[f], new_texts[f]) for f in unit_files)
        if not diff:
            continue
        changes.append(Change("conversion", _prose("title-conversion.j2", handlers=names,
                                                    details=convs, api=api),
                              tuple(names), tuple(unit_files), diff, tuple(convs)))
    return changes


def _handler_change(details: dict[str, HandlerChange | LibraryTwin], key: str) -> HandlerChange:
    """The record of a handler unit (library units have a LibraryTwin)."""
    d = details[key]
    if not isinstance(d, HandlerChange):
        raise TypeError(f"internal error: {key} is not a handler unit")
    return d


def _function_text(text: str, name: str) -> str | None:
    """The text of function `name`'s (first) definition in `text`."""
    lines = text.split("\n")
    for i, ln in enumerate(lines):
        if re.search(rf"\b{re.escape(name)}\s*\([^;]*$", ln) and not ln.startswith((" ", "\t")):
            try:
                _open_line, end = function_span(lines, i + 1)
            except ValueError:
                continue
            return "\n".join(lines[i:end])
    return None


def _only_twin(orig: str, new: str, missing: list[str], suffix: str) -> str:
    """Of a file that holds both a library twin and conversions (mm/filemap.c
    may), the text with only the twin added: the library patch comes first."""
    if not missing:
        return orig
    o = orig.splitlines(keepends=True)
    n = new.splitlines(keepends=True)
    out: list[str] = []
    sm = difflib.SequenceMatcher(a=o, b=n, autojunk=False)
    names = [m + suffix for m in missing]
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            out.extend(o[i1:i2])
        elif tag == "insert" and any(nm in "".join(n[j1:j2]) for nm in names) \
                and not any(nm in "".join(o) for nm in names):
            out.extend(n[j1:j2])
        else:
            out.extend(o[i1:i2])
    return "".join(out)


# -- the command ----------------------------------------------------------

def run_convert(tree: Path, *, api: str, only: list[str] | None, jobs: int | None,
                timeout: int, include_core: bool, as_json: bool) -> None:
    """`mmconvert convert`: rewrite TREE's working tree, say what was left alone."""
    from . import pipeline
    from .series import SPARSE_SEED
    from .tree import open_tree, resolve

    def go():
        gt = open_tree(tree)
        if gt.is_dirty():
            raise TreeError(f"{tree}: the working tree has uncommitted changes; commit or "
                            "stash them first (mmconvert edits the working tree)")
        # Everything is planned and applied in a worktree first; the user's
        # tree is written last, in one step that an interrupt undoes.
        with gt.worktree(gt.head(), sparse=SPARSE_SEED) as wt:
            facts = resolve(wt.path, api, name=tree)
            p = pipeline.plan(wt, facts, only=tuple(only or ()), include_core=include_core,
                              jobs=jobs, timeout=timeout, cache=spatch.Cache(),
                              progress=progress)
            pipeline.apply_changes(wt, [c for c in p.changes if c.stage != "forwarders"])
            files = sorted({f for c in p.changes for f in c.files})
            wt.ensure(files)
            texts = {f: (wt.path / f).read_bytes() for f in files if (wt.path / f).exists()}
        pipeline.write_files(gt, texts)
        fchanges = [c for c in p.changes if c.stage == "forwarders"]
        changes = [c for c in p.changes if c.stage != "forwarders"]
        return facts, fchanges, changes, list(p.skipped), list(p.warnings)

    facts, fchanges, changes, skipped, warnings = run(go)
    if as_json:
        print(json.dumps({"api": to_json(facts), "forwarders": to_json(fchanges),
                          "changes": to_json(changes), "skipped": to_json(skipped),
                          "warnings": to_json(warnings)}, indent=1))
        return
    print(convert_text(facts, fchanges, changes, skipped, warnings))


def convert_text(api, fchanges, changes, skipped, warnings) -> str:
    conv = [d for c in changes if c.stage == "conversion" for d in c.details
            if isinstance(d, HandlerChange)]
    out = [f"{api.generation}: {len(conv)} handlers converted in "
           f"{sum(len(c.files) for c in changes if c.stage == 'conversion')} files, "
           f"{len(fchanges)} forwarder files changed, "
           f"{sum(1 for c in changes if c.stage == 'library')} library twins added, "
           f"{len(skipped)} handlers left alone"]
    for c in changes:
        if c.stage == "library":
            out.append(f"  added    {', '.join(c.handlers)}() in {', '.join(c.files)}")
    for d in sorted(conv, key=lambda d: (d.file, d.handler)):
        how = d.action or (f"fops now name {d.helper}" if d.replaced_by_helper else "")
        out.append(f"  {'converted':8} {d.handler} -> {d.new_name}  {d.file}:{d.line}"
                   + (f"  ({how})" if how else ""))
    for h in sorted(skipped, key=lambda h: (h.klass.value, h.reason.file)):
        why = "; ".join(h.notes)
        out.append(f"  {'skipped':8} {h.name} [{h.klass.value}] {h.reason.file}:{h.reason.line}: "
                   f"{h.reason.expression}" + (f" ({why})" if why else ""))
    for w in warnings:
        out.append(f"  warning  {w.file}: {w.problem}: {w.detail}")
    return "\n".join(out)
