"""Tree and API detection: is this a kernel checkout, and which generation
of the mmap hook does it declare?

Names come from the tree's own headers when it has the hook; the named
generations are the fallback for a tree that does not have it yet (G0).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from .errors import TreeError, UsageError
from .gitrepo import GitTree
from .model import ApiFacts

GENERATIONS = ("proto", "prepare-6.16", "prepare-7")
API_CHOICES = ("auto", *GENERATIONS)

# The headers that declare the hook, its descriptor and their helpers.
HEADERS = ("include/linux/fs.h", "include/linux/mm_types.h", "include/linux/mm.h")
# Where the mapping actions are carried out (what a changelog says of them
# is checked there).
ACTIONS_C = "mm/util.c"

_COMMON_FIELDS = {"mm": "mm", "start": "start", "end": "end", "pgoff": "pgoff",
                  "page_prot": "page_prot", "vm_ops": "vm_ops", "private_data": "private_data"}

NAMED: dict[str, ApiFacts] = {
    "proto": ApiFacts(
        generation="proto", source="named", hook="mmap_proto", suffix="_proto",
        desc_type="struct vma_proto",
        fields={**_COMMON_FIELDS, "file": "file", "vm_file": "file", "flags": "flags"},
        flag_style="word", has_call_mmap=True,
    ),
    "prepare-6.16": ApiFacts(
        generation="prepare-6.16", source="named", hook="mmap_prepare", suffix="_prepare",
        desc_type="struct vm_area_desc",
        fields={**_COMMON_FIELDS, "file": "file", "vm_file": "file", "flags": "vm_flags"},
        flag_style="word",
        library_helpers=("generic_file_mmap_prepare", "generic_file_readonly_mmap_prepare"),
        has_call_mmap=True,
    ),
    "prepare-7": ApiFacts(
        generation="prepare-7", source="named", hook="mmap_prepare", suffix="_prepare",
        desc_type="struct vm_area_desc",
        fields={**_COMMON_FIELDS, "file": "file", "vm_file": "vm_file", "flags": "vma_flags",
                "action": "action"},
        flag_style="bitmap",
        actions=("mmap_action_ioremap", "mmap_action_ioremap_full",
                 "mmap_action_map_kernel_pages", "mmap_action_map_kernel_pages_full",
                 "mmap_action_remap", "mmap_action_remap_full", "mmap_action_simple_ioremap"),
        library_helpers=("generic_file_mmap_prepare", "generic_file_readonly_mmap_prepare"),
        size_helpers=("vma_desc_pages", "vma_desc_size"),
        has_vfs_mmap=True, has_can_mmap_file=True, has_set_anonymous=True,
        override_on_compat=False,
    ),
}


def open_tree(path: Path | str) -> GitTree:
    """The checkout at `path`, refused unless it looks like a kernel."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: no such directory")
    if not p.is_dir():
        raise UsageError(f"{path}: not a directory")
    fs_h = p / "include/linux/fs.h"
    if not fs_h.is_file() or "struct file_operations" not in fs_h.read_text(errors="replace"):
        raise TreeError(f"{path}: not a kernel tree (no struct file_operations in "
                        "include/linux/fs.h)")
    return GitTree(p)


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group().count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _struct_body(text: str, tag: str) -> str | None:
    m = re.search(r"\bstruct\s+" + re.escape(tag) + r"\s*\{", text)
    if not m:
        return None
    depth, i = 1, m.end()
    while depth and i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[m.end():i - 1]


def _fields(body: str) -> list[tuple[str, str]]:
    """(type, name) of each member at the top level of a struct body."""
    out, depth, cur = [], 0, ""
    for ch in body:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == ";" and depth == 0:
            decl = " ".join(cur.split())
            cur = ""
            m = re.match(r"(.*?)([A-Za-z_]\w*)\s*(?::\s*\d+)?(\[[^]]*\])?$", decl)
            if m:
                out.append((m.group(1).strip(), m.group(2)))
        else:
            cur += ch
    return out


def _declares(text: str, name: str) -> bool:
    return re.search(r"(?:\b\w+\s*\**\s*|#define\s+)" + re.escape(name) + r"\s*\(", text) is not None


def detect(tree: Path | str) -> ApiFacts:
    """The generation the tree's headers declare (generation 'none' for G0)."""
    root = Path(tree)
    texts = {h: _strip_comments((root / h).read_text(errors="replace"))
             for h in HEADERS if (root / h).is_file()}
    alltext = "\n".join(texts.values())
    fops = _struct_body(texts.get("include/linux/fs.h", ""), "file_operations") or ""
    hook = re.search(r"\(\s*\*\s*(mmap_(?:prepare|proto))\s*\)\s*\(\s*struct\s+(\w+)\s*\*", fops)
    common: dict[str, Any] = {
        "has_vfs_mmap": _declares(alltext, "vfs_mmap"),
        "has_call_mmap": _declares(alltext, "call_mmap"),
        "has_can_mmap_file": _declares(alltext, "can_mmap_file"),
        "has_mapped": re.search(r"\(\s*\*\s*mapped\s*\)\s*\(\s*unsigned long", alltext)
        is not None,
    }
    if not hook:
        # The library helpers a named generation would call, if this tree
        # has them already.
        library = tuple(n for gen in NAMED.values() for n in gen.library_helpers
                        if _declares(alltext, n))
        return ApiFacts(generation="none", source="tree", library_helpers=library, **common)
    hook_name, desc_tag = hook.groups()
    body = _struct_body(alltext, desc_tag)
    if body is None:
        raise TreeError(f"{tree}: .{hook_name} takes struct {desc_tag}, which no header defines")
    members = _fields(body)
    names = {n for _, n in members}
    fields: dict[str, str] = {}
    flag_style = "word"
    for typ, name in members:
        if "mm_struct" in typ:
            fields["mm"] = name
        elif typ == "pgoff_t":
            fields["pgoff"] = name
        elif typ == "pgprot_t":
            fields["page_prot"] = name
        elif typ in ("vm_flags_t", "vma_flags_t", "unsigned long") and "flag" in name:
            fields["flags"] = name
            flag_style = "bitmap" if typ == "vma_flags_t" else "word"
        elif "mmap_action" in typ:
            fields["action"] = name
        elif name in ("start", "end", "vm_ops", "private_data"):
            fields[name] = name
    fields["file"] = "file" if "file" in names else "vm_file"
    fields["vm_file"] = "vm_file" if "vm_file" in names else fields["file"]
    suffix = "_" + hook_name.split("_", 1)[1]
    if hook_name == "mmap_proto":
        generation = "proto"
    else:
        generation = "prepare-7" if flag_style == "bitmap" else "prepare-6.16"
    actions = tuple(sorted(set(re.findall(r"\b(mmap_action_\w+)\s*\(", alltext))
                           - {"mmap_action_prepare", "mmap_action_complete",
                              "mmap_action_finish"}))
    library = tuple(n for n in (f"generic_file_mmap{suffix}", f"generic_file_readonly_mmap{suffix}")
                    if _declares(alltext, n))
    size = tuple(n for n in ("vma_desc_pages", "vma_desc_size") if _declares(alltext, n))
    return ApiFacts(
        generation=generation, source="tree", hook=hook_name, suffix=suffix,
        desc_type=f"struct {desc_tag}", fields=fields, flag_style=flag_style,
        actions=actions, library_helpers=library, size_helpers=size,
        has_set_anonymous=_declares(alltext, "vma_desc_set_anonymous"),
        override_on_compat=_override_on_compat(root), **common,
    )


def _override_on_compat(root: Path) -> bool:
    """mm/util.c's mmap_action_finish() returns the action's own error to
    the compatibility layer before it looks at error_override."""
    util = root / ACTIONS_C
    if not util.is_file():
        return True
    text = _strip_comments(util.read_text(errors="replace"))
    return re.search(r"if\s*\(\s*!err\s*\|\|\s*is_compat\s*\)\s*return\s+err\s*;", text) is None


def resolve(tree: Path | str, api: str = "auto", name: Path | str | None = None) -> ApiFacts:
    """The facts to convert with: the tree's own, or a named generation
    (`name`: what messages call the tree when `tree` is a worktree of it)."""
    shown = tree if name is None else name
    if api not in API_CHOICES:
        raise UsageError(f"unknown --api {api!r}: choose one of {', '.join(API_CHOICES)}")
    found = detect(tree)
    if api == "auto":
        if found.generation == "none":
            raise UsageError(f"{shown}: no new hook (the tree has only .mmap); choose the "
                             f"generation to write with --api {'|'.join(GENERATIONS)}")
        return found
    if found.generation == "none":
        named = NAMED[api]
        # What forwarding the tree offers is a fact of the tree, not of the name.
        # Nor which library helpers it has: one it lacks gets a twin
        # rather than a call to a function the tree does not define.
        return replace(named, has_vfs_mmap=found.has_vfs_mmap,
                       has_call_mmap=found.has_call_mmap or named.has_call_mmap,
                       has_can_mmap_file=found.has_can_mmap_file,
                       has_mapped=found.has_mapped,
                       library_helpers=tuple(n for n in named.library_helpers
                                             if n in found.library_helpers))
    if found.generation != api:
        raise UsageError(f"{shown}: the tree declares {found.generation}, not {api} "
                         f"(use --api auto or --api {found.generation})")
    return found
