/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _SAMPLEFS_H
#define _SAMPLEFS_H

#include <linux/fs.h>

/* samplefs_inode_info->flags */
#define SAMPLEFS_INODE_JOURNAL_DATA	0x0001	/* data goes through the journal */
#define SAMPLEFS_INODE_READONLY		0x0002	/* image is mounted read-only */

/* In-core part of a samplefs inode, hung off inode->i_private. */
struct samplefs_inode_info {
	unsigned int flags;
};

static inline struct samplefs_inode_info *SAMPLEFS_I(struct inode *inode)
{
	return inode->i_private;
}

/* file.c */
void samplefs_set_file_ops(struct inode *inode);

#endif /* _SAMPLEFS_H */
