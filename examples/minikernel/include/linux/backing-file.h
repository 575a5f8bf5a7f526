/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Common helpers for stackable filesystems and backing files.
 */
#ifndef _LINUX_BACKING_FILE_H
#define _LINUX_BACKING_FILE_H

struct file;
struct vm_area_struct;

int backing_file_mmap(struct file *file, struct vm_area_struct *vma);

#endif /* _LINUX_BACKING_FILE_H */
