"""The classifier and the semantic patch read one table of what the
descriptor can express (mmconvert/vmafacts.py)."""

import pytest

from mmconvert import convert, spatch, vmafacts
from mmconvert.tree import NAMED


@pytest.mark.parametrize("generation", sorted(NAMED))
def test_the_rule_rewrites_every_field_and_bitmap_call_of_the_table(generation):
    api = NAMED[generation]
    if not api.has_hook:
        pytest.skip("no hook to convert to")
    units = convert._Units(renames={"x_mmap": "x_mmap" + api.suffix}, defs=["x_mmap"],
                           prototypes=["x_mmap"], fops_names=["x_mmap"])
    rule = spatch.render("convert", **convert._rule_context(api, units))
    for field, role in vmafacts.DESC_ROLES.items():
        if field == "vm_flags" and api.flag_style == "bitmap":
            continue
        assert f"- v->{field}\n+ desc->{api.fields[role]}\n" in rule, field
    for old, new in vmafacts.VMA_BIT_CALLS.items():
        assert (f"- {old}(v, es)\n+ {new}(desc, es)\n" in rule) == (api.flag_style == "bitmap")
    # The read-only helpers the classifier takes are rewritten too.
    for call in vmafacts.READ_CALLS:
        assert f"- {call}(v)\n" in rule, call
