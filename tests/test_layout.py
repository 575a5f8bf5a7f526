"""How converted code is laid out: the kernel-style clean-ups applied to
what spatch prints, each on the cases a reviewer flagged."""

from __future__ import annotations

import pytest

from mmconvert.convert import (
    drop_lone_call_parens,
    realign_continuations,
    realign_initialisers,
    wrap_long_lines,
)


@pytest.mark.parametrize("before,after", [
    ("\tif ((vma_desc_test(desc, VMA_READ_BIT)) && x)", "\tif (vma_desc_test(desc, VMA_READ_BIT) && x)"),
    ("\tsz = (vma_desc_size(desc));", "\tsz = vma_desc_size(desc);"),
    ("\tx = f((vma_desc_size(desc)) >> PAGE_SHIFT);", "\tx = f(vma_desc_size(desc) >> PAGE_SHIFT);"),
    ("\tif (!(vma_desc_test(desc, A)))", "\tif (!vma_desc_test(desc, A))"),
    # the parentheses of a call, an if or a while stay
    ("\tfoo(vma_desc_size(desc));", "\tfoo(vma_desc_size(desc));"),
    ("\tif (vma_desc_test(desc, A))", "\tif (vma_desc_test(desc, A))"),
    ("\twhile (vma_desc_test(desc, A))", "\twhile (vma_desc_test(desc, A))"),
])
def test_a_call_keeps_no_parentheses_of_its_own(before, after):
    assert drop_lone_call_parens(before) == after


@pytest.mark.parametrize("table,want", [
    # single space before '='
    ("\t.owner = THIS_MODULE,\n\t.mmap_prepare = x_mmap_prepare,\n};", "\t.mmap_prepare = x"),
    # tab columns: '=' where the others have it when the name fits, else one tab
    ("\t.owner\t\t\t= THIS_MODULE,\n\t.mmap_prepare = x_mmap_prepare,\n};", "\t.mmap_prepare\t\t= x"),
    ("\t.read\t= r,\n\t.mmap_prepare = x_mmap_prepare,\n};", "\t.mmap_prepare\t= x"),
    # tab after '=' as well
    ("\t.owner\t\t=\tTHIS_MODULE,\n\t.mmap_prepare = x_mmap_prepare,\n};", "\t.mmap_prepare\t=\tx"),
    # padded with spaces
    ("\t.owner          = THIS_MODULE,\n\t.mmap_prepare = x_mmap_prepare,\n};",
     "\t.mmap_prepare   = x"),
])
def test_an_initialiser_keeps_its_tables_layout(table, want):
    text = "static const struct file_operations x_fops = {\n" + table
    assert want + "_mmap_prepare," in realign_initialisers(text, "mmap_prepare").split("\n")


@pytest.mark.parametrize("table,original_mmap,want", [
    # the widest name has one space: a longer one gets one space too
    ("\t.open\t = o,\n\t.release = r,\n\t.mmap_prepare = x_mmap_prepare,\n};",
     "\t.mmap\t = x_mmap,", "\t.mmap_prepare = x"),
    # the replaced line was padded with spaces: one space, not a tab
    ("\t.read\t= r,\n\t.open\t= o,\n\t.mmap_prepare = x_mmap_prepare,\n};",
     "\t.mmap   = x_mmap,", "\t.mmap_prepare = x"),
    # the same table, the replaced line tab-aligned: one tab
    ("\t.read\t= r,\n\t.open\t= o,\n\t.mmap_prepare = x_mmap_prepare,\n};",
     "\t.mmap\t= x_mmap,", "\t.mmap_prepare\t= x"),
])
def test_a_name_too_long_for_the_column_goes_as_the_table_says(table, original_mmap, want):
    text = "static const struct file_operations x_fops = {\n" + table
    original = text.replace("\t.mmap_prepare = x_mmap_prepare,", original_mmap)
    assert want + "_mmap_prepare," in realign_initialisers(text, "mmap_prepare",
                                                           original).split("\n")


def test_a_line_made_too_long_is_wrapped_as_kernel_code_wraps():
    original = "\tif (vma->vm_pgoff + vma_pages(vma) > lpc_ctrl->mem_size >> PAGE_SHIFT)"
    new = "\tif (desc->pgoff + vma_desc_pages(desc) > lpc_ctrl->mem_size >> PAGE_SHIFT)"
    assert wrap_long_lines(new, original) == (
        "\tif (desc->pgoff + vma_desc_pages(desc) >\n\t    lpc_ctrl->mem_size >> PAGE_SHIFT)")
    cond = ("\t    (vma_desc_test(desc, VMA_EXEC_BIT) || !vma_desc_test(desc, VMA_SHARED_BIT)))")
    assert wrap_long_lines(cond, "") == ("\t    (vma_desc_test(desc, VMA_EXEC_BIT) ||\n"
                                         "\t     !vma_desc_test(desc, VMA_SHARED_BIT)))")
    # A line that was already that long is the author's choice.
    assert wrap_long_lines(new, new) == new


def test_continuation_lines_follow_their_parenthesis():
    original = ("\tvma->vm_pgoff += (pci_resource_start(vk->pdev, BAR)\n"
                "\t\t\t  >> PAGE_SHIFT);\n"
                "\tfoo(a,\n"
                "\t    b);")
    new = ("\tdesc->pgoff += (pci_resource_start(vk->pdev, BAR)\n"
           "\t\t\t  >> PAGE_SHIFT);\n"
           "\tfoo(a,\n"
           "\t    b);")
    assert realign_continuations(new, original) == (
        "\tdesc->pgoff += (pci_resource_start(vk->pdev, BAR)\n"
        "\t\t\t>> PAGE_SHIFT);\n"
        "\tfoo(a,\n"
        "\t    b);")
    # A continuation the author did not align with the parenthesis stays.
    loose = new.replace("\t\t\t  >>", "\t\t>>")
    assert realign_continuations(loose, original.replace("\t\t\t  >>", "\t\t>>")) == loose
    # Nothing changed, nothing moves.
    assert realign_continuations(original, original) == original


@pytest.mark.parametrize("said, want", [("The file to map", "The VMA descriptor"),
                                        ("the file to map", "the VMA descriptor")])
def test_kernel_doc_keeps_its_name_and_the_case_of_its_descriptions(said, want):
    from mmconvert.convert import fix_kernel_doc

    doc = ("/**\n * gfs2_mmap\n * @file: " + said + "\n * @vma: The VMA which described the "
           "mapping\n *\n * Uses @vma once.\n */\nstatic int gfs2_mmap(struct file *file, "
           "struct vm_area_struct *vma)")
    assert fix_kernel_doc(doc, "gfs2_mmap", "gfs2_mmap_prepare", "@desc: the VMA descriptor") == (
        "/**\n * gfs2_mmap_prepare\n * @desc: " + want + "\n *\n * Uses @desc once.\n */\n"
        "static int gfs2_mmap(struct file *file, struct vm_area_struct *vma)")
