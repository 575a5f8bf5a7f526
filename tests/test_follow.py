"""Following the vma out of a handler: into the helpers it is passed to
(the reason then names the expression inside the helper, and the helpers
it was reached through), and into a second ops table, which makes the
handler a `dispatcher` with the table named."""

from __future__ import annotations

import shutil

import pytest
from conftest import SAMPLE, _identity, git
from test_scan import scan_json

HEADER = """\
struct fdev;
struct vm_area_struct;

struct follow_ops {
	int (*mmap)(struct fdev *, struct vm_area_struct *);
};
"""

# A function of the mm core the vma is handed to.
MM = """\
// SPDX-License-Identifier: GPL-2.0
int core_map_range(struct vm_area_struct *vma, unsigned long pfn)
{
	vma->vm_start += pfn;
	return 0;
}
"""

DRIVER = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/followops.h>

struct fdev {
	const struct follow_ops *ops;
	void *priv;
	int users;
	const struct follow_ops *tables[2];
};

struct fvideo {
	const struct follow_ops *fops;
};

static int fdev_check(struct fdev *d, struct vm_area_struct *vma)
{
	if (vma->vm_pgoff)
		return -EINVAL;
	return 0;
}

static int fdev_pin(struct fdev *d,
\t\t    struct vm_area_struct *vma)
{
	d->priv = vma;
	return 0;
}

static int fdev_outer(struct fdev *d, struct vm_area_struct *vma)
{
	return fdev_pin(d, vma);
}

static int fdev_dispatch_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct fdev *d = file->private_data;

	return d->ops->mmap(d, vma);
}

static int fdev_pointer_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct fdev *d = file->private_data;
	int (*mmap)(struct fdev *, struct vm_area_struct *);

	mmap = d->ops->mmap;
	return mmap(d, vma);
}

static int fvideo_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct fvideo *v = file->private_data;

	return v->fops->mmap(NULL, vma);
}

static int fdev_helper_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct fdev *d = file->private_data;

	return fdev_outer(d, vma);
}

static int fdev_checked_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct fdev *d = file->private_data;
	int ret = fdev_check(d, vma);

	if (ret)
		return ret;
	vma->vm_ops = NULL;
	return 0;
}

static int fdev_core_mmap(struct file *file, struct vm_area_struct *vma)
{
	return core_map_range(vma, 0);
}

static int fdev_counted_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct fdev *d = file->private_data;

	d->users++;
	vma->vm_private_data = d;
	return 0;
}

static int
fdev_col0(struct fdev *d, struct vm_area_struct *vma)
{
	d->priv = vma;
	return 0;
}

static int fdev_col0_mmap(struct file *file, struct vm_area_struct *vma)
{
	return fdev_col0(file->private_data, vma);
}

static int fdev_open_mmap(struct file *file, struct vm_area_struct *vma)
{
	vma->vm_ops = NULL;
	vma->vm_ops->open(vma);
	return 0;
}

static int fdev_array_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct fdev *d = file->private_data;

	return d->tables[0]->mmap(d, vma);
}

static const struct file_operations fdev_fops[] = {
	{ .mmap = fdev_dispatch_mmap, },
	{ .mmap = fdev_pointer_mmap, },
	{ .mmap = fvideo_mmap, },
	{ .mmap = fdev_helper_mmap, },
	{ .mmap = fdev_checked_mmap, },
	{ .mmap = fdev_core_mmap, },
	{ .mmap = fdev_counted_mmap, },
	{ .mmap = fdev_col0_mmap, },
	{ .mmap = fdev_open_mmap, },
	{ .mmap = fdev_array_mmap, },
};
"""


@pytest.fixture(scope="module")
def followed(tmp_path_factory):
    tree = tmp_path_factory.mktemp("follow") / "minikernel"
    shutil.copytree(SAMPLE, tree, ignore=shutil.ignore_patterns("*.o"))
    git(tree, "init", "--quiet", "-b", "master")
    _identity(tree)
    (tree / "include/linux/followops.h").write_text(HEADER)
    (tree / "drivers/misc/follow.c").write_text(DRIVER)
    (tree / "mm/core_map.c").write_text(MM)
    git(tree, "add", "-A")
    git(tree, "commit", "--quiet", "-m", "minikernel")
    inv = scan_json(tree)
    return {h["handler"]: h for h in inv["handlers"]}


def line_of(text: str) -> int:
    return DRIVER.splitlines().index(text) + 1


def test_a_call_through_an_ops_member_is_a_dispatcher_with_the_table_named(followed):
    h = followed["fdev_dispatch_mmap"]
    assert h["class"] == "dispatcher"
    assert h["reason"] == {"file": "drivers/misc/follow.c",
                           "line": line_of("\treturn d->ops->mmap(d, vma);"),
                           "expression": "d->ops->mmap(d, vma)"}
    assert h["notes"] == ["hands the vma to struct follow_ops .mmap()"]


def test_a_local_function_pointer_set_from_an_ops_member_dispatches_too(followed):
    h = followed["fdev_pointer_mmap"]
    assert h["class"] == "dispatcher"
    assert h["reason"]["expression"] == "mmap(d, vma)"
    assert h["notes"] == ["hands the vma to struct follow_ops .mmap()"]


def test_a_member_named_fops_of_another_type_dispatches_and_does_not_forward(followed):
    h = followed["fvideo_mmap"]
    assert h["class"] == "dispatcher"
    assert h["notes"] == ["hands the vma to struct follow_ops .mmap()"]


def test_a_helper_that_needs_the_vma_is_named_where_it_decides(followed):
    h = followed["fdev_helper_mmap"]
    assert h["class"] == "needs-vma"
    assert h["via"] == ["fdev_outer", "fdev_pin"]
    assert h["reason"] == {"file": "drivers/misc/follow.c",
                           "line": line_of("\td->priv = vma;"),
                           "expression": "d->priv = vma;"}
    assert h["notes"] == ["uses the vma pointer itself"]


def test_a_helper_whose_use_converts_goes_with_its_handler(followed):
    h = followed["fdev_checked_mmap"]
    assert h["class"] == "fields"
    assert h["via"] == []
    at = line_of("static int fdev_check(struct fdev *d, struct vm_area_struct *vma)")
    assert h["helpers"] == [{"name": "fdev_check", "file": "drivers/misc/follow.c", "line": at,
                             "vma_param": "vma", "end_line": at + 5, "prototypes": []}]


def test_the_mm_core_is_not_followed_the_call_into_it_decides(followed):
    h = followed["fdev_core_mmap"]
    assert h["class"] == "needs-vma" and h["via"] == []
    assert h["reason"]["file"] == "drivers/misc/follow.c"
    assert h["notes"] == ["passes the vma to core_map_range()"]


def test_a_count_kept_by_hand_is_a_side_effect(followed):
    h = followed["fdev_counted_mmap"]
    assert h["class"] == "needs-vma"
    assert h["reason"]["expression"] == "d->users++;"
    assert h["notes"] == ["side effect that must happen once per created VMA"]


def test_a_helper_named_at_the_start_of_its_line_is_followed(followed):
    h = followed["fdev_col0_mmap"]
    assert h["via"] == ["fdev_col0"] and h["notes"] == ["uses the vma pointer itself"]


def test_the_vmas_own_callback_is_not_a_second_ops_table(followed):
    h = followed["fdev_open_mmap"]
    assert h["class"] == "needs-vma"
    assert h["reason"]["expression"] == "vma->vm_ops->open(vma)"
    assert h["notes"] == ["calls vma->vm_ops->open()"]


def test_a_dispatch_through_an_array_member_is_named_whole(followed):
    h = followed["fdev_array_mmap"]
    assert h["class"] == "dispatcher"
    assert h["reason"]["expression"] == "d->tables[0]->mmap(d, vma)"
    assert h["notes"] == ["hands the vma to struct follow_ops .mmap()"]
