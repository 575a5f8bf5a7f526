/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_SHAREDFB_H
#define _LINUX_SHAREDFB_H

#include <linux/types.h>

struct file;
struct page;
struct vm_area_struct;

/**
 * struct sharedfb_info - a frame buffer shared by several device nodes
 * @name: name of the frame buffer
 * @pages: backing pages, @npages of them
 * @npages: size of the frame buffer in pages
 */
struct sharedfb_info {
	const char *name;
	struct page **pages;
	unsigned long npages;
};

struct sharedfb_info *sharedfb_get_primary(void);
int sharedfb_mmap(struct file *file, struct vm_area_struct *vma);

#endif /* _LINUX_SHAREDFB_H */
