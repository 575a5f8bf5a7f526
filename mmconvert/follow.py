"""Following the vma out of a handler: into the helpers it is passed to,
and into the ops tables a call through a member pointer dispatches to.

Classification (classify.py) works on one body's text; this is the part
that reads the rest of the tree for it: where a called function is
defined, and what type a member call's table has.  Both look only at
definitions written in kernel style (a definition's name at the start of a
line or after its return type, a struct's `struct name {` at the start of
a line), which is how the tree writes them.
"""

from __future__ import annotations

import os
import re

from .classify import Body, Helper, function_span, strip_comments
from .gitrepo import GitTree

# Wrappers whose value has the type of their first argument.
_SAME_TYPE = re.compile(r"^(READ_ONCE|rcu_dereference\w*|rcu_access_pointer|smp_load_acquire)$")
_IDENT = re.compile(r"^[A-Za-z_]\w*$")


# The mm and DMA core (and each architecture's page-table headers) are the
# API the descriptor stands in for: a vma handed to them is page-table
# work, named at the call, not followed.
CORE = re.compile(r"^(mm/|kernel/dma/|include/asm-generic/|tools/|include/linux/(mm|mm_types|"
                  r"mm_inline|huge_mm|hugetlb|dma-mapping|dma-map-ops)\.h$|.*pgtable[^/]*\.h$)")
# A definition's name: after its return type, or alone at the start of a
# line (`static int\nfoo(...)`).
_DEF_NAME = re.compile(r"^(?:[A-Za-z_][^(=;]*?\b)?(\w+)\s*\(")
_INCLUDE = re.compile(r'^#\s*include\s*([<"])([^>"]+)[>"]', re.M)


class Tree:
    """Definitions and struct layouts looked up in one tree, each once."""

    def __init__(self, gt: GitTree):
        self.gt = gt
        self._lines: dict[str, list[str]] = {}
        self._vma_funcs: dict[str, list[tuple[str, int]]] | None = None
        self._structs: dict[str, list[tuple[str, int]]] = {}

    def lines(self, rel: str) -> list[str]:
        if rel not in self._lines:
            try:
                self._lines[rel] = self.gt.read_text(rel).splitlines()
            except OSError:
                self._lines[rel] = []
        return self._lines[rel]

    # -- helpers ----------------------------------------------------------------
    def _functions(self) -> dict[str, list[tuple[str, int]]]:
        """Every function whose parameter list names a `struct
        vm_area_struct *`, by name, from one search of the tree (a parameter
        on a continuation line is looked up from the lines above it)."""
        if self._vma_funcs is None:
            found: dict[str, set[tuple[str, int]]] = {}
            for f, n, text in self.gt.grep_lines(["struct vm_area_struct *"], fixed=True,
                                                 checkout=False):
                if text.rstrip().endswith(";"):
                    continue        # a prototype or a local
                at = n if not text[:1].isspace() else None
                if at is None and "=" not in text:
                    lines = self.lines(f)
                    for k in range(n - 2, max(n - 7, -1), -1):
                        if k < len(lines) and _DEF_NAME.match(lines[k]):
                            at = k + 1
                            break
                        if k < len(lines) and lines[k].rstrip().endswith((";", "{", "}")):
                            break
                if at is None:
                    continue
                head = _DEF_NAME.match(self.lines(f)[at - 1] if at != n else text)
                if head:
                    found.setdefault(head.group(1), set()).add((f, at))
            self._vma_funcs = {k: sorted(v) for k, v in found.items()}
        return self._vma_funcs

    def helper(self, name: str, arg: int, near: str) -> Helper | None:
        """The definition of `name` nearest to file `near` whose parameter
        `arg` is a `struct vm_area_struct *`, as a Body over that parameter;
        None for the mm core and for what the tree does not define."""
        defs = [(f, n) for f, n in self._functions().get(name, ())
                if self._defines(f, n)
                and (f == near or f.endswith(".h") or not self._static(f, n))]
        if not defs:
            return None
        # The nearest definition is the one the caller gets (another
        # architecture's is not: each architecture's code is its own core).
        f, n = min(defs, key=lambda fn: _distance(fn[0], near))
        arch = re.match(r"arch/[^/]+/", f)
        if CORE.match(f) or (arch and not near.startswith(arch.group())):
            return None
        return self._body(name, f, n, arg)

    def _defines(self, f: str, n: int) -> bool:
        try:
            function_span(self.lines(f), n)
        except ValueError:
            return False    # a prototype
        return True

    def _static(self, f: str, n: int) -> bool:
        return is_static(self.lines(f), n)

    def _body(self, name: str, f: str, n: int, arg: int) -> Helper | None:
        lines = self.lines(f)
        try:
            open_line, end = function_span(lines, n)
        except ValueError:
            return None
        head = strip_comments("\n".join(lines[n - 1:open_line]))
        m = re.search(rf"(?<![\w]){re.escape(name)}\s*\(", head)
        if m is None:
            return None
        params = _split_args(head[m.end():])
        if params is None or arg >= len(params):
            return None
        vma = _param_name(params[arg], "vm_area_struct")
        if vma is None:
            return None
        file = next((p for p in (_param_name(x, "file") for x in params) if p), "")
        src = "\n".join(lines[open_line - 1:end])
        return Helper(name, f, n, Body(src[src.index("{"):], open_line, vma, file, head))

    def names(self, name: str, file: str) -> bool:
        """Whether `file` already uses the identifier `name`."""
        return re.search(rf"\b{re.escape(name)}\b", "\n".join(self.lines(file))) is not None

    def vm_ops(self, name: str, file: str) -> tuple[dict[str, str], bool] | None:
        """The `.field = value` entries of the vm_operations_struct `name`
        defined in `file`, and whether anything else than one assignment
        names it there (more than one mapping function installs it)."""
        text = strip_comments("\n".join(self.lines(file)))
        m = re.search(rf"^(?:static\s+)?(?:const\s+)?struct\s+vm_operations_struct\s+"
                      rf"{re.escape(name)}\s*=\s*\{{(.*?)^\}};", text, re.M | re.S)
        if m is None:
            return None
        rest = text[:m.start()] + text[m.end():]
        uses = [u for u in re.finditer(rf"(?<![\w.>]){re.escape(name)}\b", rest)
                if not re.search(r"struct\s+vm_operations_struct\s+$",
                                 rest[max(0, u.start() - 60):u.start()])]
        return dict(re.findall(r"\.(\w+)\s*=\s*(\w+)", m.group(1))), len(uses) != 1

    # -- ops tables -------------------------------------------------------------
    def table(self, body: Body, i: int, near: str) -> str | None:
        """The struct type a member call at token i (`a->ops->mmap(`) is
        made through, e.g. `struct dma_buf_ops`; None when it cannot tell.
        The chain's root is declared in the body or its parameter list;
        `near` is the file the call is in."""
        chain = _chain(body, i)
        if not chain:
            return None
        root, members = chain[0], chain[1:]
        text = body.header + "\n" + body.src
        m = re.search(rf"\bstruct\s+(\w+)\s*(?:\*\s*(?:const\s+)?)*{re.escape(root)}\b"
                      r"(?!\s*\()", text)
        if m is None:
            return None
        ty = m.group(1)
        for member in members[:-1]:
            nxt = self._member_type(ty, member, near)
            if nxt is None:
                return None
            ty = nxt
        return f"struct {ty}"

    def _member_type(self, struct: str, member: str, near: str) -> str | None:
        for f, n in self._struct_defs(struct, near):
            lines = self.lines(f)
            try:
                _, end = function_span(lines, n)
            except ValueError:
                continue
            decl = strip_comments("\n".join(lines[n:end]))
            # `const struct x_ops *ops;`, `struct x __rcu *p;`, `struct x_ops ops;`
            m = re.search(rf"\bstruct\s+(\w+)\s*(?:__rcu\s*)?(?:\*\s*(?:const\s+)?)*"
                          rf"(?:__rcu\s+)?{re.escape(member)}\s*(?:\[[^]]*\]\s*)?;", decl)
            if m:
                return m.group(1)
        return None

    def _struct_defs(self, struct: str, near: str) -> list[tuple[str, int]]:
        """Where `struct name {` is: in the file and the headers it
        includes (two levels) when it is there, else anywhere in the tree."""
        want = f"struct {struct} {{"
        seen: set[str] = set()
        todo = [near]
        for _ in range(3):
            nxt = []
            for f in todo:
                if f in seen:
                    continue
                seen.add(f)
                lines = self.lines(f)
                hits = [(f, k + 1) for k, t in enumerate(lines) if t.startswith(want)]
                if hits:
                    return hits
                nxt += _includes(f, "\n".join(lines))
            todo = nxt
        if struct not in self._structs:
            self._structs[struct] = [(f, n) for f, n, t in self.gt.grep_lines(
                [want], fixed=True, checkout=False) if t.startswith(want)]
        return sorted(self._structs[struct], key=lambda fn: _distance(fn[0], near))


def is_static(lines: list[str], n: int) -> bool:
    """Whether the definition whose name is on line n (1-based) is static
    (`static` on its line or the one above: `static int\nfoo(...)`)."""
    return re.search(r"\bstatic\b", " ".join(lines[max(0, n - 2):n])) is not None


def _includes(f: str, text: str) -> list[str]:
    out = []
    for kind, path in _INCLUDE.findall(text):
        out.append(os.path.normpath(os.path.join(os.path.dirname(f), path)) if kind == '"'
                   else "include/" + path)
    return out


def _distance(path: str, near: str) -> tuple[int, str]:
    """Nearest first: the same file, then the longest shared directory."""
    if not near:
        return (0, path)
    common = os.path.commonpath([path, near]) if path != near else path + "/"
    return (-len(common), path)


def _split_args(text: str) -> list[str] | None:
    """A parameter list's parameters, from just after its `(`."""
    out, depth, cur = [], 0, ""
    for c in text:
        if c == ")" and depth == 0:
            out.append(cur.strip())
            return out
        depth += (c in "([") - (c in ")]")
        if c == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += c
    return None


def _param_name(param: str, struct: str) -> str | None:
    m = re.fullmatch(rf"(?:const\s+)?struct\s+{struct}\s*\*\s*(\w+)", " ".join(param.split()))
    return m.group(1) if m else None


def _chain(body: Body, i: int) -> list[str] | None:
    """`a->b.c->mmap` before the call at token i as [a, b, c, mmap], or
    None for a plain call; identity wrappers (READ_ONCE(a->b)) are looked
    through."""
    chain = _operand(body, i)
    return chain if chain and len(chain) > 1 else None


def _operand(body: Body, i: int) -> list[str] | None:
    toks = body.toks
    out = [toks[i].text]
    j = i - 1
    while j >= 1 and toks[j].text in ("->", "."):
        j -= 1
        if toks[j].text == "]":
            # ops[i]->mmap: the element has the array's type.
            depth = 0
            while j > 0:
                depth += (toks[j].text == "]") - (toks[j].text == "[")
                if depth == 0:
                    break
                j -= 1
            j -= 1
        if toks[j].text == ")":
            # READ_ONCE(x->ops)->mmap: the wrapper's argument.
            depth, k = 0, j
            while k > 0:
                depth += (toks[k].text == ")") - (toks[k].text == "(")
                if depth == 0:
                    break
                k -= 1
            if k < 1 or j - 1 <= k or not _SAME_TYPE.match(toks[k - 1].text):
                return None
            inner = _operand(body, j - 1)
            return None if inner is None else inner + out[::-1]
        if not _IDENT.match(toks[j].text):
            return None
        out.append(toks[j].text)
        j -= 1
    return out[::-1]
