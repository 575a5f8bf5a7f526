"""A vma handed to a helper of the tree whose own use of it converts: the
helper takes the descriptor with its handler when nothing else calls it
with a vma (issue 17, rule 1), in the same patch, prototypes and
kernel-doc included; otherwise the handler stays, named at that call."""

from __future__ import annotations

import re
import subprocess

import pytest
from conftest import git
from test_convert import add_driver, convert, function, read
from test_scan import scan_json

LIB_H = """\
/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_HELPERLIB_H
#define _LINUX_HELPERLIB_H

struct hdev;
struct vm_area_struct;

int hdev_lib_check(struct hdev *d,
\t\t   struct vm_area_struct *vma);

#endif
"""

LIB = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/errno.h>
#include <linux/mm.h>
#include <linux/helperlib.h>

struct hdev {
\tunsigned long size;
};

/**
 * hdev_lib_check - check a mapping of the device
 * @d: the device
 * @vma: the mapping asked for
 *
 * Return: 0, or -EINVAL for a mapping larger than the device.
 */
int hdev_lib_check(struct hdev *d, struct vm_area_struct *vma)
{
\tif (vma->vm_end - vma->vm_start > d->size)
\t\treturn -EINVAL;
\treturn 0;
}
"""

DRIVER = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/helperlib.h>

static int hdev_region_mmap(struct vm_area_struct *vma, unsigned long limit)
{
\tif (vma->vm_pgoff > limit)
\t\treturn -EINVAL;
\treturn hdev_lib_check(NULL, vma);
}

static int hdev_mmap(struct file *file, struct vm_area_struct *vma)
{
\tint ret = hdev_region_mmap(vma, 4);

\tif (ret)
\t\treturn ret;
\tvma->vm_private_data = file->private_data;
\treturn 0;
}

/* Also called by the fault handler, which keeps its VMA. */
static int hdev_pgoff_ok(struct vm_area_struct *vma)
{
\treturn vma->vm_pgoff == 0;
}

static int hdev_shared_mmap(struct file *file, struct vm_area_struct *vma)
{
\tif (!hdev_pgoff_ok(vma))
\t\treturn -EINVAL;
\tvma->vm_private_data = file->private_data;
\treturn 0;
}

static vm_fault_t hdev_fault(struct vm_fault *vmf)
{
\treturn hdev_pgoff_ok(vmf->vma) ? 0 : VM_FAULT_SIGBUS;
}

const struct vm_operations_struct hdev_vm_ops = {
\t.fault = hdev_fault,
};

static const struct file_operations hdev_fops = {
\t.mmap\t\t= hdev_mmap,
};

static const struct file_operations hdev_shared_fops = {
\t.mmap\t\t= hdev_shared_mmap,
};

const struct file_operations *hdev_all[] = { &hdev_fops, &hdev_shared_fops };
"""


def handlers_of(tree, *args) -> dict:
    """scan's handlers of `tree`, by name."""
    return {h["handler"]: h for h in scan_json(tree, *args)["handlers"]}


@pytest.fixture
def helper_tree(sample_tree):
    (sample_tree / "include/linux/helperlib.h").write_text(LIB_H)
    (sample_tree / "drivers/char/helperlib.c").write_text(LIB)
    git(sample_tree, "add", "include/linux/helperlib.h", "drivers/char/helperlib.c")
    add_driver(sample_tree, "drivers/char/helperdev.c", DRIVER)
    return sample_tree


def test_helpers_only_converted_code_calls_take_the_descriptor(helper_tree):
    handlers = handlers_of(helper_tree)
    h = handlers["hdev_mmap"]
    assert h["class"] == "fields"
    assert [x["name"] for x in h["helpers"]] == ["hdev_region_mmap", "hdev_lib_check"]
    assert h["helpers"][1]["prototypes"] == ["include/linux/helperlib.h"]

    convert(helper_tree, "--only", "drivers/char/helperdev.c")
    drv = read(helper_tree, "drivers/char/helperdev.c")
    # Named for the hook it served, it takes the new hook's suffix.
    assert "hdev_region_mmap(" not in drv
    assert function(drv, "hdev_region_mmap_proto") == (
        "static int hdev_region_mmap_proto(struct vma_proto *desc, unsigned long limit)\n{\n"
        "\tif (desc->pgoff > limit)\n\t\treturn -EINVAL;\n"
        "\treturn hdev_lib_check(NULL, desc);\n}")
    assert function(drv, "hdev_mmap_proto") == (
        "static int hdev_mmap_proto(struct vma_proto *desc)\n{\n"
        "\tint ret = hdev_region_mmap_proto(desc, 4);\n\n\tif (ret)\n\t\treturn ret;\n"
        "\tdesc->private_data = desc->file->private_data;\n\treturn 0;\n}")
    lib = read(helper_tree, "drivers/char/helperlib.c")
    assert function(lib, "hdev_lib_check") == (
        "int hdev_lib_check(struct hdev *d, struct vma_proto *desc)\n{\n"
        "\tif (desc->end - desc->start > d->size)\n\t\treturn -EINVAL;\n\treturn 0;\n}")
    # Its kernel-doc names the descriptor; the other parameters stay.
    assert " * @d: the device\n * @desc: the VMA descriptor\n *\n" in lib
    # The header declares what its prototype now takes.
    assert read(helper_tree, "include/linux/helperlib.h").endswith(
        "struct hdev;\nstruct vm_area_struct;\nstruct vma_proto;\n\n"
        "int hdev_lib_check(struct hdev *d,\n\t\t   struct vma_proto *desc);\n\n#endif\n")
    r = subprocess.run(["make", "-s", "drivers/char/helperdev.o", "drivers/char/helperlib.o"],
                       cwd=helper_tree, capture_output=True, text=True)
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr


def test_a_helper_a_fault_path_calls_with_its_vma_keeps_the_handler(helper_tree):
    handlers = handlers_of(helper_tree)
    h = handlers["hdev_shared_mmap"]
    assert h["class"] == "needs-vma"
    line = DRIVER.splitlines().index("\treturn hdev_pgoff_ok(vmf->vma) ? 0 : VM_FAULT_SIGBUS;")
    assert h["reason"] == {"file": "drivers/char/helperdev.c", "line": line + 1,
                           "expression": "return hdev_pgoff_ok(vmf->vma) ? 0 : VM_FAULT_SIGBUS;"}
    at = DRIVER.splitlines().index("static int hdev_pgoff_ok(struct vm_area_struct *vma)") + 1
    assert h["notes"] == [f"hdev_pgoff_ok() (drivers/char/helperdev.c:{at}) is also used here, "
                          "with a vma: converting it with a twin is not done yet"]
    convert(helper_tree, "--only", "drivers/char/helperdev.c")
    drv = read(helper_tree, "drivers/char/helperdev.c")
    assert "static int hdev_pgoff_ok(struct vm_area_struct *vma)\n" in drv
    assert "\t.mmap\t\t= hdev_shared_mmap,\n" in drv


# -- per-VMA work moves to .mapped (issue 17, rule 2) ------------------------

MAPPED_OPS = """\
struct vm_operations_struct {
\tint (*mapped)(unsigned long start, unsigned long end, pgoff_t pgoff,
\t\t      const struct file *file, void **vm_private_data);
\tvoid (*open)(struct vm_area_struct *area);
\tvoid (*close)(struct vm_area_struct *area);
};

#endif /* _LINUX_MM_H */
"""

COUNTED = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/mm.h>

struct cdev_state {
\tint users;
\tunsigned long last;
};

static void cdev_vma_open(struct vm_area_struct *vma)
{
\tstruct cdev_state *s = vma->vm_private_data;

\tif (!s)
\t\treturn;
\ts->users++;
}

static void cdev_vma_close(struct vm_area_struct *vma)
{
\tstruct cdev_state *s = vma->vm_private_data;

\ts->users--;
}

static const struct vm_operations_struct cdev_vm_ops = {
\t.open\t= cdev_vma_open,
\t.close\t= cdev_vma_close,
};

static int cdev_mmap(struct file *file, struct vm_area_struct *vma)
{
\tif (vma->vm_pgoff)
\t\treturn -EINVAL;
\tvma->vm_ops = &cdev_vm_ops;
\tvma->vm_private_data = file->private_data;
\tcdev_vma_open(vma);
\treturn 0;
}

/* Its .open reads where the VMA starts: that needs the VMA. */
static void where_vma_open(struct vm_area_struct *vma)
{
\tstruct cdev_state *s = vma->vm_private_data;

\ts->last = vma->vm_start;
\ts->users++;
}

static const struct vm_operations_struct where_vm_ops = {
\t.open\t= where_vma_open,
};

static int where_mmap(struct file *file, struct vm_area_struct *vma)
{
\tvma->vm_ops = &where_vm_ops;
\tvma->vm_private_data = file->private_data;
\twhere_vma_open(vma);
\treturn 0;
}

/* Two handlers install one table: .mapped would be the table's, not one's. */
static void both_vma_open(struct vm_area_struct *vma)
{
\tstruct cdev_state *s = vma->vm_private_data;

\ts->users++;
}

static const struct vm_operations_struct both_vm_ops = {
\t.open\t= both_vma_open,
};

static int both_mmap(struct file *file, struct vm_area_struct *vma)
{
\tvma->vm_ops = &both_vm_ops;
\tboth_vma_open(vma);
\treturn 0;
}

static int both_ro_mmap(struct file *file, struct vm_area_struct *vma)
{
\tvma->vm_ops = &both_vm_ops;
\treturn 0;
}

static const struct file_operations counted_fops[] = {
\t{ .mmap = cdev_mmap, },
\t{ .mmap = where_mmap, },
\t{ .mmap = both_mmap, },
\t{ .mmap = both_ro_mmap, },
};
"""


@pytest.fixture
def counted_tree(sample_tree):
    add_driver(sample_tree, "drivers/char/counted.c", COUNTED)
    return sample_tree


def with_mapped(tree) -> None:
    """The tree as one whose vm_operations_struct has .mapped (and no new
    hook of its own, so --api names prepare-7)."""
    mm_h = tree / "include/linux/mm.h"
    mm_h.write_text(mm_h.read_text().replace("#endif /* _LINUX_MM_H */\n", MAPPED_OPS))
    fs_h = tree / "include/linux/fs.h"
    fs_h.write_text(re.sub(r".*\(\*mmap_proto\).*\n", "", fs_h.read_text()))
    git(tree, "commit", "-qam", "vm_operations_struct.mapped, no new hook")


def test_the_per_vma_open_call_moves_to_a_mapped_callback(counted_tree):
    with_mapped(counted_tree)
    handlers = handlers_of(counted_tree, "--api", "prepare-7")
    assert handlers["cdev_mmap"]["class"] == "fields"
    assert handlers["cdev_mmap"]["opens"] == {"name": "cdev_vma_open", "line": 11,
                                              "ops": "cdev_vm_ops", "mapped": "cdev_vma_mapped",
                                              "vma_param": "vma"}
    convert(counted_tree, "--only", "drivers/char/counted.c", "--api", "prepare-7")
    src = read(counted_tree, "drivers/char/counted.c")
    assert function(src, "cdev_vma_mapped") == (
        "static int cdev_vma_mapped(unsigned long start, unsigned long end,\n"
        "\t\t\t   pgoff_t pgoff, const struct file *file,\n"
        "\t\t\t   void **vm_private_data)\n{\n"
        "\tstruct cdev_state *s = *vm_private_data;\n\n"
        "\tif (!s)\n\t\treturn 0;\n\ts->users++;\n\treturn 0;\n}")
    # Beside .open, which stays for the VMAs fork and splits copy.
    assert "static void cdev_vma_open(struct vm_area_struct *vma)\n{\n" \
        "\tstruct cdev_state *s = vma->vm_private_data;\n" in src
    assert "static const struct vm_operations_struct cdev_vm_ops = {\n" \
        "\t.mapped\t= cdev_vma_mapped,\n\t.open\t= cdev_vma_open,\n" in src
    assert function(src, "cdev_mmap_prepare") == (
        "static int cdev_mmap_prepare(struct vm_area_desc *desc)\n{\n"
        "\tif (desc->pgoff)\n\t\treturn -EINVAL;\n\tdesc->vm_ops = &cdev_vm_ops;\n"
        "\tdesc->private_data = desc->file->private_data;\n\treturn 0;\n}")


def test_open_work_that_needs_the_vma_or_a_shared_table_stays(counted_tree):
    with_mapped(counted_tree)
    handlers = handlers_of(counted_tree, "--api", "prepare-7")
    lines = COUNTED.splitlines()
    where = handlers["where_mmap"]
    assert where["class"] == "needs-vma" and "opens" not in where
    assert where["reason"] == {"file": "drivers/char/counted.c",
                               "line": lines.index("\twhere_vma_open(vma);") + 1,
                               "expression": "where_vma_open(vma)"}
    at = lines.index("\ts->last = vma->vm_start;") + 1
    assert where["notes"] == ["where_vma_open() does for each new VMA what a .mapped callback "
                              "would, but it uses the VMA itself (vma->vm_start, line "
                              f"{at}), which .mapped is not given"]
    both = handlers["both_mmap"]
    assert both["class"] == "needs-vma" and "opens" not in both
    assert both["notes"] == ["both_vma_open() does for each new VMA what a .mapped callback "
                             "would, but both_vm_ops is installed elsewhere too, and .mapped "
                             "would run for those mappings as well"]
    convert(counted_tree, "--only", "drivers/char/counted.c", "--api", "prepare-7")
    src = read(counted_tree, "drivers/char/counted.c")
    assert "static int where_mmap(struct file *file, struct vm_area_struct *vma)" in src
    assert "static int both_mmap(struct file *file, struct vm_area_struct *vma)" in src
    assert "both_ro_mmap_prepare" in src and "where_vma_mapped" not in src


def test_without_mapped_in_the_tree_the_open_call_keeps_the_vma(counted_tree):
    handlers = handlers_of(counted_tree)
    assert handlers["cdev_mmap"]["class"] == "needs-vma"
    assert "opens" not in handlers["cdev_mmap"]
