"""Text a maintainer reads at a glance: counts first, then the list."""

from __future__ import annotations

import collections

from .model import ApiFacts, Inventory, Klass

CLASS_ORDER = [Klass.FIELDS, Klass.ACTION, Klass.LIBRARY, Klass.FORWARDER, Klass.DISPATCHER, Klass.NEEDS_VMA,
               Klass.UNCLEAR]


def api_text(tree: str, api: ApiFacts) -> str:
    if api.generation == "none":
        return f"{tree}: no new hook (only .mmap)"
    f = api.fields
    source = "read from the tree" if api.source == "tree" else "named generation, not in the tree"
    flags = ("vma_flags_t bitmap, vma_desc_*() helpers" if api.flag_style == "bitmap"
             else f"plain flags word ({f.get('flags', '?')})")
    forwarding = [n for n, ok in (("vfs_mmap", api.has_vfs_mmap),
                                  ("call_mmap", api.has_call_mmap),
                                  ("can_mmap_file", api.has_can_mmap_file)) if ok]
    lines = [
        f"{tree}: {api.generation} ({source})",
        f"  hook          .{api.hook}({api.desc_type} *)",
        "  fields        " + ", ".join(f"{k}={v}" for k, v in sorted(f.items())),
        f"  flags         {flags}",
        f"  actions       {', '.join(api.actions) or '-'}",
        f"  library       {', '.join(api.library_helpers) or '-'}",
        f"  size helpers  {', '.join(api.size_helpers) or '-'}",
        f"  forwarding    {', '.join(forwarding) or '-'}",
    ]
    return "\n".join(lines)


def subsystem_of(path: str) -> str:
    parts = path.split("/")
    return "/".join(parts[:3 if parts[0] in ("drivers", "arch", "sound") and len(parts) > 3 else 2])


def scan_text(inv: Inventory) -> str:
    hs = inv.handlers
    by_class = collections.Counter(h.klass for h in hs)
    nulls = sum(1 for e in inv.entries if e.handler is None)
    macro = sum(1 for e in inv.entries if e.form == "macro")
    out = [f"{inv.tree}: {inv.api.generation}",
           f"{len(inv.entries)} struct file_operations .mmap entries "
           f"({len(inv.entries) - macro} literal, {macro} from macros, {nulls} NULL), "
           f"{len(hs)} handlers",
           "",
           "by class:"]
    for k in CLASS_ORDER:
        if by_class[k]:
            out.append(f"  {k.value:10} {by_class[k]:4}")
    convertible = sum(by_class[k] for k in CLASS_ORDER if k.convertible)
    out.append(f"  {'convertible':10} {convertible:4}")
    subs: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for h in hs:
        subs[subsystem_of(h.subsystem_file)][h.klass] += 1
    out += ["", "by directory:"]
    for s in sorted(subs):
        c = subs[s]
        out.append(f"  {s:40} " + " ".join(f"{k.value}={c[k]}" for k in CLASS_ORDER if c[k]))
    out += ["", "handlers:"]
    for h in sorted(hs, key=lambda h: (CLASS_ORDER.index(h.klass), h.reason.file, h.name)):
        via = "".join(f"{v}() > " for v in h.via)
        why = f"  ({via}{'; '.join(h.notes)})" if h.notes and not h.klass.convertible else ""
        out.append(f"  {h.klass.value:10} {h.name:36} {h.reason.file}:{h.reason.line}: "
                   f"{h.reason.expression}{why}")
    if inv.warnings:
        out += ["", "not processed:"]
        out += [f"  {w.file}: {w.problem}: {w.detail}" for w in inv.warnings]
    return "\n".join(out)
