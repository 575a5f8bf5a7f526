/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_FS_H
#define _LINUX_FS_H

#include <linux/types.h>

struct address_space;
struct file;
struct inode;
struct module;
struct vm_area_struct;
struct vma_proto;

/* file is open for reading */
#define FMODE_READ		((__force fmode_t)(1 << 0))
/* file is open for writing */
#define FMODE_WRITE		((__force fmode_t)(1 << 1))
/* File is stored in a backing file */
#define FMODE_BACKING		((__force fmode_t)(1 << 25))

struct address_space_operations {
	int (*read_folio)(struct file *, void *folio);
};

struct address_space {
	struct inode		*host;
	unsigned long		nrpages;
	const struct address_space_operations *a_ops;
};

struct inode {
	umode_t			i_mode;
	unsigned int		i_flags;
	unsigned long		i_ino;
	loff_t			i_size;
	const struct file_operations	*i_fop;
	struct address_space	*i_mapping;
	void			*i_private; /* fs or device private pointer */
};

struct file {
	struct inode		*f_inode;
	const struct file_operations	*f_op;
	fmode_t			f_mode;
	loff_t			f_pos;
	struct address_space	*f_mapping;
	/* needed for tty driver, and maybe others */
	void			*private_data;
};

static inline struct inode *file_inode(const struct file *f)
{
	return f->f_inode;
}

struct file_operations {
	struct module *owner;
	loff_t (*llseek)(struct file *, loff_t, int);
	ssize_t (*read)(struct file *, char __user *, size_t, loff_t *);
	ssize_t (*write)(struct file *, const char __user *, size_t, loff_t *);
	long (*unlocked_ioctl)(struct file *, unsigned int, unsigned long);
	int (*mmap)(struct file *, struct vm_area_struct *);
	int (*mmap_proto)(struct vma_proto *);
	int (*open)(struct inode *, struct file *);
	int (*release)(struct inode *, struct file *);
	unsigned long (*get_unmapped_area)(struct file *, unsigned long, unsigned long, unsigned long, unsigned long);
};

static inline int call_mmap(struct file *file, struct vm_area_struct *vma)
{
	return file->f_op->mmap(file, vma);
}

loff_t noop_llseek(struct file *file, loff_t offset, int whence);

static inline void file_accessed(struct file *file)
{
}

int generic_file_mmap(struct file *, struct vm_area_struct *);
int generic_file_readonly_mmap(struct file *, struct vm_area_struct *);

#endif /* _LINUX_FS_H */
