"""The classifier's verdicts on small handler bodies: the decisions a
reviewer would check first."""

from __future__ import annotations

import pytest

from mmconvert.classify import Body, classify_body
from mmconvert.model import Klass
from mmconvert.tree import NAMED


def verdict(body: str, api: str = "prepare-7"):
    return classify_body(Body(body, 1, "vma", "file"), "x.c", NAMED[api])


@pytest.mark.parametrize("body,klass,expr", [
    ("{\n\tvma->vm_ops = &x_ops;\n\treturn 0;\n}", Klass.FIELDS, "vma->vm_ops"),
    ("{\n\treturn vm_insert_page(vma, vma->vm_start, page);\n}", Klass.NEEDS_VMA,
     "vm_insert_page(vma, vma->vm_start, page)"),
    ("{\n\tpriv->vma = vma;\n\treturn 0;\n}", Klass.NEEDS_VMA, "priv->vma = vma;"),
    ("{\n\tvma->vm_start += PAGE_SIZE;\n\treturn 0;\n}", Klass.NEEDS_VMA, "vma->vm_start"),
    ("{\n\tkref_get(&d->ref);\n\tvma->vm_ops = &x_ops;\n\treturn 0;\n}", Klass.NEEDS_VMA,
     "kref_get(&d->ref)"),
    ("{\n\treturn call_mmap(d->file, vma);\n}", Klass.FORWARDER, "call_mmap(d->file, vma)"),
    ("{\n\treturn remap_pfn_range(vma, vma->vm_start, pfn, PAGE_SIZE, vma->vm_page_prot);\n}",
     Klass.ACTION, "remap_pfn_range(vma, vma->vm_start, pfn, PAGE_SIZE, vma->vm_page_prot)"),
])
def test_verdicts_name_the_deciding_expression(body, klass, expr):
    v = verdict(body)
    assert v.klass == klass
    assert v.site.expression == expr and v.site.line >= 1


def test_a_condition_wrapper_hands_nothing_on():
    # unlikely() is the condition, not a callee given the mm.
    read = verdict("{\n\tif (unlikely(vma->vm_mm != d->mm))\n\t\treturn -EINVAL;\n"
                   "\treturn 0;\n}")
    assert read.klass == Klass.FIELDS
    passed = verdict("{\n\tmmgrab(vma->vm_mm);\n\treturn 0;\n}")
    assert passed.klass == Klass.NEEDS_VMA and passed.notes == ("page-table work on vma->vm_mm",)


def test_a_mapping_call_is_never_an_action_under_proto():
    v = verdict("{\n\treturn remap_pfn_range(vma, vma->vm_start, pfn, PAGE_SIZE, "
                "vma->vm_page_prot);\n}", "proto")
    assert v.klass == Klass.NEEDS_VMA and "no mmap action under proto" in v.notes[0]


def test_work_after_the_mapping_call_is_not_an_action():
    v = verdict("{\n\tif (remap_pfn_range(vma, vma->vm_start, pfn, PAGE_SIZE, "
                "vma->vm_page_prot)) {\n\t\tpr_err(\"failed\\n\");\n\t\treturn -EAGAIN;\n\t}\n"
                "\treturn 0;\n}")
    assert v.klass == Klass.NEEDS_VMA and "work after remap_pfn_range()" in v.notes[0]


def test_an_error_code_kept_by_error_override_is_an_action():
    v = verdict("{\n\tif (remap_pfn_range(vma, vma->vm_start, pfn, PAGE_SIZE, "
                "vma->vm_page_prot))\n\t\treturn -EAGAIN;\n\n\treturn 0;\n}")
    assert v.klass == Klass.ACTION and v.notes == ("if",)


def test_flags_need_a_bit_form_under_prepare_7_only():
    body = "{\n\tif (vma->vm_flags & mask)\n\t\treturn -EINVAL;\n\treturn 0;\n}"
    assert verdict(body).klass == Klass.NEEDS_VMA
    assert verdict(body, "prepare-6.16").klass == Klass.FIELDS
    ok = "{\n\tif (!(vma->vm_flags & (VM_READ | VM_WRITE)))\n\t\treturn -EINVAL;\n\treturn 0;\n}"
    assert verdict(ok).klass == Klass.FIELDS


def test_comments_and_strings_do_not_count_as_uses():
    v = verdict("{\n\t/* vm_insert_page(vma, ...) was here */\n"
                "\tpr_debug(\"vma %p\\n\", x);\n\tvma->vm_ops = &x_ops;\n\treturn 0;\n}")
    assert v.klass == Klass.FIELDS


@pytest.mark.parametrize("test,klass", [
    # forms with a vma_desc_test*() rewrite
    ("(vma->vm_flags & (VM_SHARED | VM_MAYSHARE)) !=\n\t    (VM_SHARED | VM_MAYSHARE)", Klass.FIELDS),
    ("(vma->vm_flags & VM_SHARED) == 0", Klass.FIELDS),
    ("(vma->vm_flags & (VM_READ | VM_WRITE)) != VM_READ", Klass.FIELDS),
    # and forms without: the whole comparison is the reason
    ("(vma->vm_flags & (VM_READ | VM_WRITE)) > VM_READ", Klass.NEEDS_VMA),
    ("(vma->vm_flags & (VM_READ | VM_WRITE)) != (VM_READ | VM_EXEC)", Klass.NEEDS_VMA),
    ("(vma->vm_flags & (VM_READ | VM_EXEC)) != VM_WRITE", Klass.NEEDS_VMA),
])
def test_a_masked_comparison_converts_only_where_a_test_helper_says_it(test, klass):
    v = verdict("{\n\tif (" + test + ")\n\t\treturn -EINVAL;\n\treturn 0;\n}")
    assert v.klass == klass
    if klass == Klass.NEEDS_VMA:
        assert v.site.expression == " ".join(test.split())


REMAP = "\tif (remap_pfn_range(vma, vma->vm_start, pfn, size, vma->vm_page_prot))\n" \
        "\t\treturn -EAGAIN;\n\treturn 0;\n}"


@pytest.mark.parametrize("head", [
    # the whole VMA, through a local
    "{\n\tsize_t size = vma->vm_end - vma->vm_start;\n\n",
    "{\n\tunsigned long size;\n\n\tsize = vma_pages(vma) << PAGE_SHIFT;\n",
    # a device size, checked against the VMA's before the call
    "{\n\tsize_t size = d->size;\n\n\tif (size > vma->vm_end - vma->vm_start)\n"
    "\t\treturn -EINVAL;\n",
    "{\n\tsize_t vsize = vma->vm_end - vma->vm_start, size = d->size;\n\n"
    "\tif (!d || size != vsize)\n\t\treturn -EINVAL;\n",
])
def test_a_size_within_the_vma_becomes_an_action(head):
    v = verdict(head + REMAP)
    assert v.klass == Klass.ACTION, v


@pytest.mark.parametrize("head", [
    # a device size that may exceed the VMA (the old remap mapped past vm_end)
    "{\n\tunsigned long size = d->size;\n\n\tif (vma->vm_end - vma->vm_start > size)\n"
    "\t\tsize = vma->vm_end - vma->vm_start;\n\tsize = max(size, d->window);\n",
    # checked, then changed again
    "{\n\tsize_t size = d->size;\n\n\tif (size > vma->vm_end - vma->vm_start)\n"
    "\t\treturn -EINVAL;\n\tsize += PAGE_SIZE;\n",
])
def test_a_size_that_may_exceed_the_vma_is_left_alone_and_says_why(head):
    v = verdict(head + REMAP)
    assert v.klass == Klass.NEEDS_VMA, v
    assert v.notes == ("size may be larger than the VMA, and mmap_action_remap() must not map "
                       "past its end",)
    assert v.site.expression == "remap_pfn_range(vma, vma->vm_start, pfn, size, vma->vm_page_prot)"
