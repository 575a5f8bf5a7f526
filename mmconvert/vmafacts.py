"""What of a VMA the descriptor can express, in one table for the
classifier (classify.py: what converts) and the semantic patch
(cocci/convert.cocci.j2: how it is rewritten), so the two cannot disagree.

Orders matter: the rules' disjunctions try the entries in table order.
"""

from __future__ import annotations

# VMA field -> the ApiFacts.fields role of the descriptor field it becomes.
# vm_flags is the flags word; a bitmap (prepare-7) has rules of its own.
DESC_ROLES = {"vm_start": "start", "vm_end": "end", "vm_pgoff": "pgoff",
              "vm_page_prot": "page_prot", "vm_ops": "vm_ops",
              "vm_private_data": "private_data", "vm_file": "vm_file", "vm_mm": "mm",
              "vm_flags": "flags"}
DESC_FIELDS = set(DESC_ROLES)
# Fields the descriptor has but a handler may only read.
READ_ONLY_FIELDS = {"vm_start", "vm_end", "vm_mm"}
FLAG_CALLS = {"vm_flags_set", "vm_flags_clear", "vm_flags_mod"}
# The VMA's bitmap helpers (prepare-7) and their descriptor twins.
VMA_BIT_CALLS = {"vma_set_flags": "vma_desc_set_flags", "vma_clear_flags": "vma_desc_clear_flags",
                 "vma_test": "vma_desc_test", "vma_test_any": "vma_desc_test_any",
                 "vma_test_all": "vma_desc_test_all"}
# Read-only VMA helpers whose descriptor forms the rules write.
READ_CALLS = ("vma_pages", "vma_is_shared_maywrite", "vma_start_pgoff")
# The library mmap helpers, each with a new-hook twin (name + suffix).
LIBRARY_CALLS = ("generic_file_mmap", "generic_file_readonly_mmap")
# Trailing mapping calls and the G3 mmap action each becomes.
MAPPING_CALLS = {"remap_pfn_range": "mmap_action_remap",
                 "io_remap_pfn_range": "mmap_action_ioremap",
                 "vm_iomap_memory": "mmap_action_simple_ioremap"}
