// SPDX-License-Identifier: GPL-2.0-only
/*
 * Common helpers for stackable filesystems and backing files.
 *
 * Forward mmap of a user file to the backing (real) file that serves its
 * data, as fuse passthrough and overlayfs do.
 */

#include <linux/backing-file.h>
#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>

int backing_file_mmap(struct file *file, struct vm_area_struct *vma)
{
	int ret;

	if (!(file->f_mode & FMODE_BACKING))
		return -EIO;

	if (!file->f_op->mmap)
		return -ENODEV;

	/* The mapping refers to the backing file from now on. */
	vma->vm_file = file;

	ret = call_mmap(file, vma);

	return ret;
}
EXPORT_SYMBOL_GPL(backing_file_mmap);
