// SPDX-License-Identifier: GPL-2.0
/*
 * samplefs regular file operations.
 */

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/mm.h>

#include "samplefs.h"

static int samplefs_file_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct inode *inode = file_inode(file);

	/*
	 * Data journalling writes pages through the journal, which shared
	 * writable mappings would bypass.
	 */
	if (SAMPLEFS_I(inode)->flags & SAMPLEFS_INODE_JOURNAL_DATA)
		return -EINVAL;

	return generic_file_mmap(file, vma);
}

static const struct file_operations samplefs_file_operations = {
	.llseek		= noop_llseek,
	.mmap		= samplefs_file_mmap,
};

/* Used for files of images mounted read-only. */
static const struct file_operations samplefs_ro_fops = {
	.llseek		= noop_llseek,
	.mmap		= generic_file_readonly_mmap,
};

void samplefs_set_file_ops(struct inode *inode)
{
	if (SAMPLEFS_I(inode)->flags & SAMPLEFS_INODE_READONLY)
		inode->i_fop = &samplefs_ro_fops;
	else
		inode->i_fop = &samplefs_file_operations;
}
