"""Plain data passed between the pipeline stages.

Every record is a frozen dataclass that serialises to JSON as it is
(`to_json`), so `scan --json`, the report and the series all read the same
fields a reviewer asks about: file, line, handler, class, reason.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any


class Klass(str, enum.Enum):
    """How a handler can move to the new hook under one API generation."""

    LIBRARY = "library"        # shared helper used by other files' fops, or only wraps one
    FIELDS = "fields"          # only desc-equivalent field work
    ACTION = "action"          # fields plus one trailing mapping call (G3 only)
    FORWARDER = "forwarder"    # forwards to another file's mmap
    DISPATCHER = "dispatcher"  # hands the vma to a second ops table (dma_buf_ops, proto_ops...)
    NEEDS_VMA = "needs-vma"    # uses the vma in a way the desc cannot express
    UNCLEAR = "unclear"        # mmconvert could not decide (no definition, macro body...)

    @property
    def convertible(self) -> bool:
        return self in (Klass.LIBRARY, Klass.FIELDS, Klass.ACTION)


@dataclass(frozen=True)
class Site:
    """A place in the tree, with the expression that decided something."""

    file: str
    line: int
    expression: str = ""


@dataclass(frozen=True)
class FopsEntry:
    """One `struct file_operations` initialiser entry that sets `.mmap`."""

    file: str
    line: int
    fops: str                  # variable name, "(compound literal)" for those
    handler: str | None        # None for `.mmap = NULL`
    form: str                  # literal | array | compound | macro
    macro: str | None = None   # DEFINE_DRM_GEM_FOPS, DRM_GEM_FOPS, ...


@dataclass(frozen=True)
class Definition:
    file: str
    line: int                  # line of the function name
    end_line: int              # line of the closing brace
    file_param: str
    vma_param: str
    static: bool
    condition: str = ""        # innermost #if/#ifdef around it, if any


@dataclass(frozen=True)
class VmaHelper:
    """A function of the tree a handler hands its vma to, whose own use of
    it converts: it takes the descriptor with its handler."""

    name: str
    file: str
    line: int                  # line of the function name
    vma_param: str
    end_line: int = 0          # line of the closing brace (set by inventory)
    prototypes: tuple[str, ...] = ()  # files that declare it (set by inventory)


@dataclass(frozen=True)
class VmaOpen:
    """A handler's last step `X(vma); return 0;` where X is the `.open` of
    the vm_operations_struct it installs: the work X does for each new VMA
    moves to a `.mapped` callback of that table."""

    name: str                  # the .open callback the handler called
    line: int                  # its definition's line
    ops: str                   # the vm_operations_struct it is the .open of
    mapped: str                # the .mapped callback made from it
    vma_param: str


@dataclass(frozen=True)
class Reference:
    file: str
    line: int
    kind: str                  # prototype | export | call | fops-macro | kernel-doc | define | use
    text: str


@dataclass(frozen=True)
class Handler:
    name: str = field(metadata={"json": "handler"})
    klass: Klass = field(metadata={"json": "class"})
    reason: Site
    definitions: tuple[Definition, ...]
    fops: tuple[FopsEntry, ...]
    references: tuple[Reference, ...] = ()
    linkage: str = "static"    # static | global | exported
    notes: tuple[str, ...] = ()
    via: tuple[str, ...] = ()  # helpers, outermost first, the reason lies in
    # What convert branches on (scan's JSON shows them only when set).
    needs_twin: bool = field(default=False, metadata={"omit_default": True})
    # The library helper it only wraps (`return generic_file_mmap(file, vma);`).
    wraps_library: str = field(default="", metadata={"omit_default": True})
    # Its mapping call's error is tested and a code of its own returned.
    mapping_checked: bool = field(default=False, metadata={"omit_default": True})
    # The helpers, outermost first, that take the descriptor with it.
    helpers: tuple[VmaHelper, ...] = field(default=(), metadata={"omit_default": True})
    # Its per-VMA .open call that moves to .mapped.
    opens: VmaOpen | None = field(default=None, metadata={"omit_default": True})

    @property
    def key(self) -> str:
        """Unique in an inventory: two static handlers may share a name."""
        return f"{self.name}@{self.subsystem_file}"

    @property
    def subsystem_file(self) -> str:
        """The file a series groups this handler by: its definition."""
        if self.definitions:
            return self.definitions[0].file
        return self.fops[0].file


@dataclass(frozen=True)
class FileWarning:
    """A file mmconvert could not process, reported by name."""

    file: str
    problem: str               # parse | timeout | missing
    detail: str


@dataclass(frozen=True)
class ApiFacts:
    """What the converter needs to know of one API generation."""

    generation: str            # none | proto | prepare-6.16 | prepare-7
    source: str                # "tree" (read from headers) or "named" (--api)
    hook: str = ""             # mmap_proto | mmap_prepare
    suffix: str = ""           # _proto | _prepare
    desc_type: str = ""        # struct vma_proto | struct vm_area_desc
    fields: dict[str, str] = field(default_factory=dict)  # role -> field name
    flag_style: str = ""       # word | bitmap
    actions: tuple[str, ...] = ()          # mmap_action_* helpers present
    library_helpers: tuple[str, ...] = ()  # generic_file_mmap_prepare, ...
    size_helpers: tuple[str, ...] = ()     # vma_desc_size, vma_desc_pages
    has_vfs_mmap: bool = False
    has_call_mmap: bool = False
    has_can_mmap_file: bool = False
    has_set_anonymous: bool = False
    # vm_operations_struct has .mapped (a callback once the new VMA exists).
    has_mapped: bool = False
    # Whether desc->action.error_override also applies when the file is
    # mapped through the compatibility layer (mm/util.c says; 7.3: no).
    override_on_compat: bool = True

    @property
    def has_hook(self) -> bool:
        return bool(self.hook)


@dataclass(frozen=True)
class Inventory:
    tree: str
    api: ApiFacts
    entries: tuple[FopsEntry, ...]
    handlers: tuple[Handler, ...]
    warnings: tuple[FileWarning, ...] = ()

    def handler(self, name: str) -> Handler:
        for h in self.handlers:
            if h.name == name:
                return h
        raise KeyError(name)


def to_json(obj: Any) -> Any:
    """Dataclasses, enums and tuples as plain JSON values.  A field marked
    `omit_default` appears only when it differs from its default (a fact
    most records do not have)."""
    if dataclasses.is_dataclass(obj):
        return {f.metadata.get("json", f.name): to_json(getattr(obj, f.name))
                for f in dataclasses.fields(obj)
                if not (f.metadata.get("omit_default") and getattr(obj, f.name) == f.default)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [to_json(o) for o in obj]
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    return obj


@dataclass(frozen=True)
class HandlerChange:
    """What converting one handler (or switching one subsystem's fops to a
    library helper) did, for the changelog and `convert --json`."""

    handler: str                    # the function the fops named
    new_name: str                   # what they name now
    file: str                       # the definition's file (the fops' for a library helper)
    line: int
    klass: Klass
    action: str | None = None       # mmap_action_* the final mapping call became
    mapping_call: str | None = None  # remap_pfn_range, ... that it replaced
    error_override: str | None = None  # -EAGAIN, ... the handler returned when that failed
    twin: bool = False              # converted as a twin beside the original
    helper: str | None = None       # the library helper it uses (or the fops use instead)
    replaced_by_helper: bool = False  # the fops name `helper` in its place
    flags: bool = False             # it changes the VMA flags
    fops: tuple[str, ...] = ()      # "file:variable" of each fops that names it
    # It mapped with a changed local copy of the page protection.
    page_prot_from_local: bool = field(default=False, metadata={"omit_default": True})
    # Helpers of the handler's own that now take the descriptor, and the
    # (old, new) names of those renamed for the hook.
    helpers: tuple[str, ...] = field(default=(), metadata={"omit_default": True})
    renamed: tuple[tuple[str, str], ...] = field(default=(), metadata={"omit_default": True})
    # It sets a VM_SPECIAL flag or a mapping action (which sets them), so
    # its mapping is never merged into a neighbour.
    special: bool = field(default=False, metadata={"omit_default": True})
    # The .open call it made for each new VMA, now the .mapped callback
    # (open, mapped, vm_operations_struct).
    mapped: tuple[str, str, str] | None = field(default=None, metadata={"omit_default": True})


@dataclass(frozen=True)
class LibraryTwin:
    """A library helper's new-hook twin added beside it."""

    helper: str                     # generic_file_mmap_prepare
    original: str                   # generic_file_mmap
    file: str


@dataclass(frozen=True)
class ForwarderChange:
    """What one forwarder site's change does."""

    kind: str                       # ForwarderSite.kind
    file: str
    function: str
    line: int
    expression: str
    action: str                     # one of forwarders.ACTIONS
    state: str = ""                 # ForwarderSite.state
    core: bool = False
    note: str = ""
    already_guarded: bool = False   # a forward that needs no bailout
    guards: tuple[str, ...] = ()    # "expression (line n)" of the presence checks before it
    comment: str = ""               # the bailout's comment


ChangeDetail = HandlerChange | LibraryTwin | ForwarderChange


@dataclass(frozen=True)
class Change:
    """One unit of edits that travels together in a series: a forwarder
    fix, a library twin, or a handler conversion with its twins, header
    prototypes and every fops that names it."""

    stage: str                      # forwarders | library | conversion
    title: str                      # e.g. "convert foo_mmap() to .mmap_prepare"
    handlers: tuple[str, ...]       # handler or forwarder function names
    files: tuple[str, ...]
    diff: str                       # unified diff (a/ b/ paths) against the tree as the
                                    # previous stages left it; applies with `git apply`
    details: tuple[ChangeDetail, ...] = ()  # facts for the changelog templates, one per
                                            # handler/site


@dataclass(frozen=True)
class ForwarderSite:
    """A place that forwards mmap to another file, tests for the hook, or
    prints it."""

    file: str
    line: int
    function: str
    kind: str          # forward | presence-guard | presence-can-map | diagnostic
    expression: str
    state: str         # safe | needs-bailout | listed | handled | rewrite | core
    core: bool = False
    note: str = ""


@dataclass(frozen=True)
class Plan:
    """Everything one run decided, in series order."""

    api: ApiFacts
    inventory: Inventory
    forwarders: tuple[ForwarderSite, ...]
    changes: tuple[Change, ...]     # forwarders, then library, then conversion
    skipped: tuple[Handler, ...]
    warnings: tuple[FileWarning, ...]
    cocci: tuple[tuple[str, str], ...] = ()   # (template name, rendered semantic patch)
