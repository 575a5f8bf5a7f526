"""Classification of one handler body for one API generation.

The rules mirror what the conversion's semantic patches can express: a use
of the vma the desc has an equivalent for is fine, the first one it has not
decides `needs-vma` and is reported with its expression and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from .model import ApiFacts, Klass, Site, VmaHelper, VmaOpen
from .vmafacts import (
    DESC_FIELDS,
    FLAG_CALLS,
    LIBRARY_CALLS,
    MAPPING_CALLS,
    READ_CALLS,
    READ_ONLY_FIELDS,
    VMA_BIT_CALLS,
)

FORWARD_CALLS = {"call_mmap", "vfs_mmap", "backing_file_mmap"}
# Work that must happen once per created VMA: moving it to a hook that may
# run for a mapping that is never created would leak or double count.
SIDE_EFFECT = re.compile(
    r"^(kref_get\w*|refcount_inc\w*|atomic_inc\w*|atomic_long_inc\w*|atomic64_inc\w*"
    r"|get_device|get_file|fget\w*|mmgrab|mmget|kobject_get|try_module_get|__module_get"
    r"|\w+_get|pm_runtime_get\w*|pm_runtime_resume_and_get|k[mzcv]?alloc\w*|kvzalloc\w*|kvmalloc\w*"
    r"|vmalloc\w*|vzalloc\w*|alloc_pages?\w*|__get_free_pages?|get_zeroed_page"
    r"|dma_alloc_\w+|kmem_cache_alloc\w*|list_add\w*|idr_alloc\w*|xa_store|xa_alloc\w*"
    r"|kzalloc\w*|devm_\w+)$")
# Wrappers of a condition, which hand nothing on.
CONDITION_WRAPPERS = {"likely", "unlikely", "WARN_ON", "WARN_ON_ONCE"}
KEYWORDS = {"if", "while", "for", "switch", "return", "sizeof", "do", "else", "case",
            "typeof", "__typeof__", "defined"}
ASSIGN_OPS = {"=", "|=", "&=", "^=", "+=", "-=", "<<=", ">>=", "*=", "/=", "++", "--"}

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:\\.|[^"\\])*")
  | (?P<chr>'(?:\\.|[^'\\])*')
  | (?P<id>[A-Za-z_]\w*)
  | (?P<num>\d[\w.]*)
  | (?P<op><<=|>>=|->|\+\+|--|&&|\|\||[|&^+\-*/=!<>]=|<<|>>|[^\s])
""", re.X)


@dataclass(frozen=True)
class Tok:
    text: str
    start: int
    line: int


def strip_comments(text: str) -> str:
    """Comments and preprocessor lines blanked, line numbers kept."""
    text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group()), text, flags=re.S)
    text = re.sub(r"//[^\n]*", lambda m: " " * len(m.group()), text)
    return re.sub(r"(?m)^[ \t]*#(?:[^\n]*\\\n)*[^\n]*",
                  lambda m: re.sub(r"[^\n]", " ", m.group()), text)


def tokens(text: str, first_line: int) -> list[Tok]:
    out, line = [], first_line
    for m in _TOKEN.finditer(text):
        if m.lastgroup == "ws":
            line += m.group().count("\n")
            continue
        out.append(Tok(m.group(), m.start(), line))
    return out


def function_span(lines: list[str], def_line: int) -> tuple[int, int]:
    """(line of '{', line of the matching '}') for a definition whose name
    is on `def_line` (1-based)."""
    text = strip_comments("\n".join(lines[def_line - 1:]))
    depth, line, open_line = 0, def_line, None
    in_str = None
    for i, ch in enumerate(text):
        if ch == "\n":
            line += 1
        if in_str:
            if ch == in_str and text[i - 1] != "\\":
                in_str = None
            continue
        if ch in "\"'":
            in_str = ch
        elif ch == "{":
            if open_line is None:
                open_line = line
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0 and open_line is not None:
                return open_line, line
        elif ch == ";" and open_line is None:
            break
    raise ValueError(f"no function body after line {def_line}")


@dataclass(frozen=True)
class Use:
    line: int
    kind: str          # field | call | bare
    name: str          # field name or called function
    write: bool
    expr: str          # source text that shows the use
    arg: int = -1      # argument position in the call
    at: int = -1       # token of the called function, for a call


class Body:
    """The tokens of one function body and the uses of its parameters."""

    def __init__(self, src: str, first_line: int, vma: str, file: str, header: str = ""):
        self.header = strip_comments(header)   # the parameter list, for declarations
        self.src = strip_comments(src)
        self.toks = tokens(self.src, first_line)
        self.vma, self.file = vma, file
        self.uses = self._uses()

    def text(self, a: int, b: int) -> str:
        """Source of tokens a..b inclusive, whitespace collapsed."""
        s = self.src[self.toks[a].start:self.toks[b].start + len(self.toks[b].text)]
        return " ".join(s.split()).replace("( ", "(").replace(" )", ")")

    def operand_start(self, i: int) -> int:
        """First token of the operand `a->b.c` (or `READ_ONCE(a->b)->c`)
        that ends at token i."""
        j = i
        while j >= 2 and self.toks[j - 1].text in ("->", "."):
            k = j - 2
            # a->ops[i]->mmap, READ_ONCE(a->ops)->mmap: back over the group.
            while self.toks[k].text in (")", "]"):
                close, open_ = self.toks[k].text, "(" if self.toks[k].text == ")" else "["
                depth = 0
                while k > 0:
                    depth += (self.toks[k].text == close) - (self.toks[k].text == open_)
                    if depth == 0:
                        break
                    k -= 1
                if k > 0 and re.match(r"[A-Za-z_]\w*$", self.toks[k - 1].text) \
                        and self.toks[k - 1].text not in KEYWORDS:
                    k -= 1
                elif open_ == "(":
                    break
            j = k
        return j

    def pointer_from(self, i: int) -> int | None:
        """For a call through a local function pointer (`mmap = a->ops->
        mmap; ... mmap(f, vma)`), the token of the member it was set from."""
        name = self.toks[i].text
        for k in range(len(self.toks) - 3):
            # `mmap = ...;`, `T (*mmap)(...) = ...;` or `__auto_type mmap = ...;`
            if self.toks[k].text == name and self.toks[k + 1].text == "=" and \
                    (k == 0 or self.toks[k - 1].text in (";", "{", "}", "*", ",")
                     or re.match(r"[A-Za-z_]\w*$", self.toks[k - 1].text)):
                end = k + 2
                while end < len(self.toks) and self.toks[end].text != ";":
                    end += 1
                last = end - 1
                if last > k + 2 and self.toks[last - 1].text in ("->", "."):
                    return last
        return None

    def match_paren(self, i: int) -> int:
        depth = 0
        for j in range(i, len(self.toks)):
            t = self.toks[j].text
            depth += (t == "(") - (t == ")")
            if depth == 0:
                return j
        return len(self.toks) - 1

    def enclosing_call(self, i: int) -> tuple[int, int] | None:
        """(index of the callee name, argument position) of the call whose
        argument list holds token i, if any."""
        depth, commas = 0, 0
        for j in range(i - 1, -1, -1):
            t = self.toks[j].text
            if t in (")", "]"):
                depth += 1
            elif t in ("(", "["):
                if depth == 0:
                    if t == "(" and j > 0 and re.match(r"[A-Za-z_]\w*$", self.toks[j - 1].text) \
                            and self.toks[j - 1].text not in KEYWORDS:
                        # unlikely(vma->vm_mm != mm) is the condition itself.
                        if self.toks[j - 1].text in CONDITION_WRAPPERS and commas == 0:
                            return self.enclosing_call(j - 1)
                        return j - 1, commas
                    return None if t == "(" and (j == 0 or self.toks[j - 1].text in KEYWORDS) \
                        else self.enclosing_call(j)
                depth -= 1
            elif t == "," and depth == 0:
                commas += 1
            elif t in (";", "{", "}") and depth == 0:
                return None
        return None

    def _uses(self) -> list[Use]:
        uses = []
        toks = self.toks
        for i, t in enumerate(toks):
            if t.text != self.vma or (i and toks[i - 1].text in (".", "->")):
                continue
            if i + 2 < len(toks) and toks[i + 1].text == "->":
                fld = toks[i + 2].text
                nxt = toks[i + 3].text if i + 3 < len(toks) else ""
                call = self.enclosing_call(i)
                uses.append(Use(t.line, "field", fld, nxt in ASSIGN_OPS, self.text(i, i + 2),
                                -1 if call is None else call[1]))
                if call and fld == "vm_mm":
                    c = call[0]
                    uses[-1] = Use(t.line, "field", fld, False,
                                   self.text(c, self.match_paren(c + 1)), call[1])
                continue
            call = self.enclosing_call(i)
            if call:
                c, arg = call
                uses.append(Use(t.line, "call", toks[c].text, False,
                                self.text(c, self.match_paren(c + 1)), arg, c))
            else:
                a, b = self.statement(i)
                uses.append(Use(t.line, "bare", t.text, False, self.text(a, b)))
        return uses

    def statement(self, i: int) -> tuple[int, int]:
        """Token range of the statement (or condition) holding token i."""
        a = i
        while a > 0 and self.toks[a - 1].text not in (";", "{", "}"):
            a -= 1
        b = i
        while b < len(self.toks) - 1 and self.toks[b].text not in (";", "{", "}"):
            b += 1
        return a, b - (self.toks[b].text in ("{", "}"))

    def calls(self) -> list[tuple[int, str]]:
        return [(i, t.text) for i, t in enumerate(self.toks[:-1])
                if self.toks[i + 1].text == "(" and re.match(r"[A-Za-z_]\w*$", t.text)
                and t.text not in KEYWORDS]

    def uses_file(self) -> bool:
        return any(t.text == self.file and (i == 0 or self.toks[i - 1].text not in (".", "->"))
                   for i, t in enumerate(self.toks))

    def trailing_mapping(self, i: int) -> str | None:
        """How the mapping call at token i ends the function: 'return' for
        `return call(...);`, 'if' for `if (call(...)) return -E; return 0;`,
        None when work follows it."""
        toks = self.toks
        end = self.match_paren(i + 1)
        rest = [t.text for t in toks[end + 1:]]
        if i and toks[i - 1].text == "return" and rest[:2] == [";", "}"] and len(rest) == 2:
            return "return"
        if i >= 2 and toks[i - 1].text == "(" and toks[i - 2].text == "if":
            tail = " ".join(rest)
            if re.fullmatch(r"\) \{? ?return - [A-Z0-9_]+ ; \}? ?return 0 ; \}", tail):
                return "if"
        return None

    def error_code(self, i: int) -> str:
        end = self.match_paren(i + 1)
        rest = [t.text for t in self.toks[end + 1:]]
        k = rest.index("-")
        return "-" + rest[k + 1]


@dataclass(frozen=True)
class Verdict:
    klass: Klass
    site: Site
    notes: tuple[str, ...] = ()
    via: tuple[str, ...] = ()   # the helpers, outermost first, the site is reached through
    mapping_ends: str = ""      # ACTION: "return" (returns its result) or "if" (tests it)
    # Helpers (outermost first) whose own use of the vma converts with it.
    helpers: tuple[VmaHelper, ...] = ()
    opens: VmaOpen | None = None    # the .open call that becomes .mapped


class Lookup(Protocol):
    """What classification needs from the rest of the tree (follow.Tree)."""

    def helper(self, name: str, arg: int, near: str) -> Helper | None: ...

    def table(self, body: Body, i: int, near: str) -> str | None: ...

    def vm_ops(self, name: str, file: str) -> tuple[dict[str, str], bool] | None: ...

    def names(self, name: str, file: str) -> bool: ...


@dataclass(frozen=True)
class Helper:
    """A function the vma is passed to, as its own body."""

    name: str
    file: str
    line: int
    body: Body


def classify_body(body: Body, file: str, api: ApiFacts, lookup: Lookup | None = None,
                  depth: int = 0) -> Verdict:
    """The class a handler body has under `api`, and why.  With `lookup`,
    a vma passed to a function defined in the tree is followed into it
    (`depth` is how far in this body is), and a call through an ops table
    is named by the table's type."""
    g3 = api.flag_style == "bitmap"
    calls = body.calls()
    for i, name in calls:
        if name in FORWARD_CALLS or (name == "mmap" and i >= 2 and body.toks[i - 1].text == "->"
                                     and body.toks[i - 2].text in ("f_op", "fops")):
            # A driver's own ops table named fops (v4l2_file_operations)
            # dispatches; only struct file_operations forwards.
            table = lookup.table(body, i, file) if lookup and name == "mmap" else None
            if table is not None and table != "struct file_operations":
                continue
            return Verdict(Klass.FORWARDER, Site(file, body.toks[i].line,
                                                 body.text(i - 2 if name == "mmap" else i,
                                                           body.match_paren(i + 1))))
    mapping = []
    notes: list[str] = []
    helpers: list[Verdict] = []     # helpers whose own use of the vma converts
    opens: VmaOpen | None = None
    for u in body.uses:
        site = Site(file, u.line, u.expr)
        if u.kind == "field":
            # The bitmap itself (prepare-7's vma->flags) is the desc's too.
            if u.name not in DESC_FIELDS and not (g3 and u.name == "flags"):
                return Verdict(Klass.NEEDS_VMA, site, (f"vma->{u.name} has no desc equivalent",))
            if u.write and u.name in READ_ONLY_FIELDS:
                return Verdict(Klass.NEEDS_VMA, site, (f"writes vma->{u.name}",))
            if u.name == "vm_mm" and u.arg >= 0:
                return Verdict(Klass.NEEDS_VMA, site, ("page-table work on vma->vm_mm",))
            continue
        if u.kind == "bare":
            return Verdict(Klass.NEEDS_VMA, site, ("uses the vma pointer itself",))
        if u.name in FLAG_CALLS and u.arg == 0:
            continue
        if u.name in READ_CALLS and u.arg == 0:
            continue
        if u.name in VMA_BIT_CALLS and u.arg == 0 and g3:
            continue
        if u.name == "vma_set_anonymous" and api.has_set_anonymous:
            continue
        if u.name in LIBRARY_CALLS and u.arg == 1:
            notes.append(f"calls {u.name}()")
            continue
        if u.name in MAPPING_CALLS and u.arg == 0:
            mapping.append(u)
            continue
        if lookup is not None and depth == 0 and api.has_mapped and u.kind == "call" \
                and opens is None:
            found = _opens(body, u, file, lookup)
            if isinstance(found, str):
                return Verdict(Klass.NEEDS_VMA, Site(file, u.line, u.expr), (found,))
            if found is not None:
                opens = found
                continue
        if lookup is not None:
            followed = _follow(body, u, file, api, lookup, depth)
            if followed is not None and followed.klass.convertible:
                helpers.append(followed)
                continue
            if followed is not None:
                return followed
        return Verdict(Klass.NEEDS_VMA, site, (f"passes the vma to {u.name}()",))
    if g3:
        bad = _bad_flag_use(body, file)
        if bad:
            return bad
    for i, name in calls:
        if SIDE_EFFECT.match(name):
            return Verdict(Klass.NEEDS_VMA,
                           Site(file, body.toks[i].line, body.text(i, body.match_paren(i + 1))),
                           ("side effect that must happen once per created VMA",))
    counted = _counter_update(body)
    if counted is not None:
        return Verdict(Klass.NEEDS_VMA, Site(file, body.toks[counted].line,
                                             body.text(*body.statement(counted))),
                       ("side effect that must happen once per created VMA",))
    # The helpers convert with it (inventory holds them back when another
    # caller keeps a vma).
    taken = tuple(dict.fromkeys(x for v in helpers for x in v.helpers))
    if mapping:
        first = mapping[0]
        site = Site(file, first.line, first.expr)
        if not api.actions:
            return Verdict(Klass.NEEDS_VMA, site,
                           (f"{first.name}() has no mmap action under {api.generation}",))
        if len(mapping) > 1:
            return Verdict(Klass.NEEDS_VMA, site, ("more than one mapping call",))
        idx = next(i for i, n in calls if n == first.name)
        how = body.trailing_mapping(idx)
        if how is None:
            return Verdict(Klass.NEEDS_VMA, site, (f"work after {first.name}()",))
        unbounded = _unbounded_size(body, idx, first.name, file)
        if unbounded is not None:
            return unbounded
        if opens is not None:
            # The .open call comes after the mapping call: not the tail.
            return Verdict(Klass.NEEDS_VMA, site, (f"work after {first.name}()",))
        return Verdict(Klass.ACTION, site, (how,), mapping_ends=how, helpers=taken)
    return Verdict(Klass.FIELDS, _first_site(body, file), tuple(notes), helpers=taken,
                   opens=opens)


def _opens(body: Body, u: Use, file: str, lookup: Lookup) -> VmaOpen | str | None:
    """`X(vma); return 0;` ending the handler, where X is the `.open` of the
    vm_operations_struct the handler installs (`vma->vm_ops = &ops;`, a
    table of this file no other code installs, with no `.mapped` yet) and
    X only reads the VMA's private data and file: what X does for each
    new VMA is what a `.mapped` callback does (upstream's tcmu and stm).
    A str says why such a call cannot move; None is not such a call."""
    toks, i = body.toks, u.at
    end = body.match_paren(i + 1)
    if u.arg != 0 or body.text(i, end) != f"{u.name}({body.vma})" \
            or toks[i - 1].text not in (";", "{", "}") \
            or [t.text for t in toks[end + 1:]] != [";", "return", "0", ";", "}"]:
        return None
    text = " ".join(t.text for t in toks)
    m = re.search(rf"(?<![\w.>]){re.escape(body.vma)} -> vm_ops = & (\w+) ;", text)
    if m is None:
        return None
    table = m.group(1)
    found = lookup.vm_ops(table, file)
    if found is None or found[0].get("open") != u.name:
        return None
    ops, shared = found
    helper = lookup.helper(u.name, 0, file)
    if helper is None or helper.file != file \
            or not re.search(rf"\bvoid\s+{re.escape(u.name)}\s*\(", helper.body.header):
        return None
    why = f"{u.name}() does for each new VMA what a .mapped callback would, but "
    if shared:
        return why + f"{table} is installed elsewhere too, and .mapped would run for those " \
            "mappings as well"
    if "mapped" in ops:
        return why + f"{table} has a .mapped callback already"
    other = next((x for x in helper.body.uses if not (
        x.kind == "field" and x.name in ("vm_private_data", "vm_file") and not x.write)), None)
    if other is not None:
        return why + f"it uses the VMA itself ({other.expr}, line {other.line}), which " \
            ".mapped is not given"
    mapped = u.name.removesuffix("_open") + "_mapped"
    if lookup.names(mapped, file):
        return why + f"{mapped} is taken"
    return VmaOpen(u.name, helper.line, table, mapped, helper.body.vma)


def _counter_update(body: Body) -> int | None:
    """A token of the first `p->count++` (or --, +=, -=) on state outside
    the function: a count of mappings kept by hand, which the VMA's close
    undoes."""
    toks = body.toks
    for i, t in enumerate(toks):
        if t.text not in ("++", "--", "+=", "-="):
            continue
        if t.text in ("++", "--") and i + 3 < len(toks) and toks[i + 2].text == "->" \
                and toks[i - 1].text in (";", "{", "}", ")") and toks[i + 1].text != body.vma:
            return i
        if i >= 3 and toks[i - 2].text == "->" and toks[i - 3].text != body.vma \
                and (i < 4 or toks[i - 4].text in (";", "{", "}", ")")):
            return i
    return None


# How far a vma is followed through helpers.
FOLLOW_DEPTH = 3


def _follow(body: Body, u: Use, file: str, api: ApiFacts, lookup: Lookup,
            depth: int) -> Verdict | None:
    """The verdict for a vma handed to the call `u`: a call through a
    member pointer dispatches to another ops table; a function defined in
    the tree decides by its own use of the vma, reported where it is."""
    i = u.at
    member = i if i >= 1 and body.toks[i - 1].text in ("->", ".") else body.pointer_from(i)
    if member is not None:
        table = lookup.table(body, member, file)
        start = body.operand_start(member)
        if body.toks[start].text == body.vma:
            # vma->vm_ops->open(vma): the VMA's own callback, not a table.
            return Verdict(Klass.NEEDS_VMA, Site(file, u.line, body.text(
                start, body.match_paren(i + 1))), (f"calls {body.text(start, member)}()",))
        if table == "struct file_operations":
            return Verdict(Klass.FORWARDER, Site(file, u.line, body.text(
                start, body.match_paren(i + 1))), ("forwards to another file",))
        how = f"{table} .{body.toks[member].text}()" if table else \
            f"{body.text(start, member)}()"
        expr = body.text(body.operand_start(i), body.match_paren(i + 1))
        return Verdict(Klass.DISPATCHER, Site(file, u.line, expr), (f"hands the vma to {how}",))
    if depth >= FOLLOW_DEPTH:
        return None
    helper = lookup.helper(u.name, u.arg, file)
    if helper is None:
        return None
    inner = classify_body(helper.body, helper.file, api, lookup, depth + 1)
    if inner.klass == Klass.FIELDS:
        # The helper takes the descriptor too, it and its own helpers.
        return Verdict(Klass.FIELDS, Site(file, u.line, u.expr),
                       helpers=(VmaHelper(helper.name, helper.file, helper.line,
                                          helper.body.vma), *inner.helpers))
    via = (helper.name, *inner.via)
    if inner.klass.convertible:
        return Verdict(Klass.NEEDS_VMA, inner.site,
                       (f"maps with {inner.site.expression.split('(')[0]}(), which only a "
                        "handler's own last call can turn into an mmap action",), via)
    return Verdict(inner.klass, inner.site, inner.notes or ("forwards to another file",), via)


_VM_FLAG = re.compile(r"^VM_[A-Z0-9_]+$")
# Where each mapping call takes its size.
SIZE_ARG = {"remap_pfn_range": 3, "io_remap_pfn_range": 3}


def _args(body: Body, i: int) -> list[tuple[int, int]]:
    """Token ranges of the arguments of the call whose name is token i."""
    open_, close = i + 1, body.match_paren(i + 1)
    out, depth, start = [], 0, open_ + 1
    for j in range(open_ + 1, close):
        t = body.toks[j].text
        depth += (t in "([{") - (t in ")]}")
        if t == "," and depth == 0:
            out.append((start, j - 1))
            start = j + 1
    out.append((start, close - 1))
    return out


def _top_level(value: str) -> str:
    """`value` up to its first comma outside parentheses."""
    depth = 0
    for k, c in enumerate(value):
        depth += (c in "([{") - (c in ")]}")
        if c == "," and depth == 0:
            return value[:k].strip()
    return value.strip()


def _unbounded_size(body: Body, i: int, name: str, file: str) -> Verdict | None:
    """A mapping action must not be handed more than the descriptor covers:
    remap_pfn_range() mapped past vm_end silently, the action WARNs.  The
    size is fine when it is the whole VMA (directly or through a local only
    ever set to it) or a check against the VMA's size returns before the
    call when it is larger; otherwise the handler is left alone."""
    if name not in SIZE_ARG:
        return None
    args = _args(body, i)
    if len(args) <= SIZE_ARG[name]:
        return None
    size = body.text(*args[SIZE_ARG[name]])
    v = re.escape(body.vma)
    whole_re = rf"(?:\(?{v}->vm_end - {v}->vm_start\)?|\(?vma_pages\({v}\) << PAGE_SHIFT\)?)"
    before = body.text(0, i - 1)

    def sets(n: str, text: str = before) -> list[str]:
        """What `n` is set to (a declarator list ends a value at its comma)."""
        return [_top_level(v) for v in
                re.findall(rf"(?<![\w>.]){re.escape(n)} (?:[-+*/|&^]|<<|>>)?= ([^;]*);", text)]
    whole = {m.group(1) for m in re.finditer(rf"(?<![\w>.])(\w+) = {whole_re}[;,]", before)}
    whole = {n for n in whole if all(re.fullmatch(whole_re, x) for x in sets(n))}
    # A VMA is at least a page long.
    if re.fullmatch(whole_re, size) or size in whole or size == "PAGE_SIZE":
        return None
    bound = "|".join([whole_re, *map(re.escape, sorted(whole))])
    s = re.escape(size)
    for m in re.finditer(r"\bif \((.*?)\) (?:\{ )?(?:return|goto)\b", before):
        for part in re.split(r" \|\| ", m.group(1)):
            part = part.strip("() ")
            if re.fullmatch(rf"{s} (?:>|!=) \(?(?:{bound})\)?|\(?(?:{bound})\)? (?:<|!=) {s}", part) \
                    and not sets(size, before[m.end():]):
                return None
    line = body.toks[args[SIZE_ARG[name]][0]].line
    return Verdict(Klass.NEEDS_VMA, Site(file, line, body.text(i, body.match_paren(i + 1))),
                   (f"{size} may be larger than the VMA, and {MAPPING_CALLS[name]}() must not "
                    "map past its end",))


def _bad_flag_use(body: Body, file: str) -> Verdict | None:
    """Under G3 flags are a bitmap: only VM_X constants or'ed together can
    become VMA_X_BIT lists, and a flags word can only be set, cleared or
    tested."""
    toks = body.toks
    for u in body.uses:
        if not (u.kind == "field" and u.name == "vm_flags") and u.name not in FLAG_CALLS:
            continue
        # Find this use's token index again by line and text.
        for i, t in enumerate(toks):
            if t.line != u.line or t.text != body.vma:
                continue
            if u.kind == "field" and (i + 2 >= len(toks) or toks[i + 2].text != u.name):
                continue
            if u.kind == "field":
                nxt = toks[i + 3].text if i + 3 < len(toks) else ""
                if nxt in ("|=", "&="):
                    end = _stmt_end(toks, i)
                    rhs = [x.text for x in toks[i + 4:end]]
                    if nxt == "&=" and rhs[:1] == ["~"]:
                        rhs = rhs[1:]
                    if not _flag_list(rhs):
                        return Verdict(Klass.NEEDS_VMA, Site(file, u.line, body.text(i, end - 1)),
                                       ("flag expression with no VMA_*_BIT form",))
                elif nxt == "&":
                    k = i + 4
                    end = body.match_paren(k) if toks[k].text == "(" else k
                    mask = [x.text for x in toks[k:end + 1]]
                    if not _flag_list(mask):
                        return Verdict(Klass.NEEDS_VMA, Site(file, u.line, body.text(i, end)),
                                       ("flag test with no VMA_*_BIT form",))
                    # `(flags & M) == V` for 0, M or one flag of M: V's bit
                    # set and the rest of M clear; other comparisons of the
                    # masked word have no helper.
                    after = [x.text for x in toks[end + 1:end + 3]]
                    if after[:1] == [")"] and after[1:] and after[1] in ("==", "!=", "<", ">"):
                        o = end + 3
                        oend = body.match_paren(o) if toks[o].text == "(" else o
                        value = [x.text for x in toks[o:oend + 1]]
                        start = i - 1 if toks[i - 1].text == "(" else i
                        if after[1] not in ("==", "!=") or not _masked_value(value, mask):
                            return Verdict(Klass.NEEDS_VMA,
                                           Site(file, u.line, body.text(start, oend)),
                                           ("flag comparison with no vma_desc_test*() form",))
                else:
                    return Verdict(Klass.NEEDS_VMA, Site(file, u.line, body.text(i, i + 2)),
                                   ("vm_flags used as a word; the desc has a bitmap",))
            else:
                c = body.enclosing_call(i)
                if c is None:
                    continue
                end = body.match_paren(c[0] + 1)
                args = [x.text for x in toks[c[0] + 2:end]]
                # vm_flags_mod(vma, set, clear): two lists.
                lists = " ".join(args[args.index(",") + 1:]).split(" , ") if "," in args else []
                if not lists or not all(_flag_list(x.split()) for x in lists):
                    return Verdict(Klass.NEEDS_VMA, Site(file, u.line, body.text(c[0], end)),
                                   ("flag expression with no VMA_*_BIT form",))
    return None


def _flag_names(tokens: list[str]) -> set[str]:
    return {t for t in tokens if t.startswith("VM_")}


def _masked_value(value: list[str], mask: list[str]) -> bool:
    """Whether `(flags & mask) == value` has a vma_desc_test*() form (the
    convert rules' flags_test and flags_cmp): the value is 0, the mask
    itself, or one VM_* flag of a mask of several."""
    if value in (["0"], mask):
        return True
    names = _flag_names(mask)
    return len(value) == 1 and value[0] in names and len(names) > 1


def _stmt_end(toks: list[Tok], i: int) -> int:
    while i < len(toks) and toks[i].text != ";":
        i += 1
    return i


def _flag_list(ts: list[str]) -> bool:
    ts = [t for t in ts if t not in ("(", ")")]
    return bool(ts) and all(_VM_FLAG.match(t) if k % 2 == 0 else t == "|"
                            for k, t in enumerate(ts))


def _first_site(body: Body, file: str) -> Site:
    if body.uses:
        u = body.uses[0]
        return Site(file, u.line, u.expr)
    return Site(file, body.toks[0].line if body.toks else 0, "(does not use the vma)")
