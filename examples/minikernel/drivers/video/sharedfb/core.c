// SPDX-License-Identifier: GPL-2.0
/*
 * sharedfb core: owns the shared frame buffer and its primary device node.
 *
 * Other interfaces to the same frame buffer (see alt.c) reuse
 * sharedfb_mmap() for their own device nodes.
 */

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sharedfb.h>

#define SHAREDFB_NR_PAGES	256	/* 1 MiB */

static struct page *sharedfb_pages[SHAREDFB_NR_PAGES];

static struct sharedfb_info sharedfb_primary = {
	.name	= "sharedfb0",
	.pages	= sharedfb_pages,
	.npages	= SHAREDFB_NR_PAGES,
};

struct sharedfb_info *sharedfb_get_primary(void)
{
	return &sharedfb_primary;
}
EXPORT_SYMBOL_GPL(sharedfb_get_primary);

static vm_fault_t sharedfb_vm_fault(struct vm_fault *vmf)
{
	struct sharedfb_info *info = vmf->vma->vm_private_data;
	struct page *page;

	if (vmf->pgoff >= info->npages)
		return VM_FAULT_SIGBUS;

	page = info->pages[vmf->pgoff];
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct sharedfb_vm_ops = {
	.fault		= sharedfb_vm_fault,
};

/**
 * sharedfb_mmap - map the frame buffer
 * @file: an open sharedfb device node; its private_data is the frame buffer
 * @vma: the mapping being created
 *
 * Pages are faulted in on demand, so this only checks the requested range
 * and sets up @vma.
 *
 * Return: 0 on success, -EINVAL if the range is outside the frame buffer.
 */
int sharedfb_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct sharedfb_info *info = file->private_data;

	if (vma->vm_pgoff + vma_pages(vma) > info->npages)
		return -EINVAL;

	vma->vm_ops = &sharedfb_vm_ops;
	vma->vm_private_data = info;
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	return 0;
}
EXPORT_SYMBOL_GPL(sharedfb_mmap);

static int sharedfb_open(struct inode *inode, struct file *file)
{
	file->private_data = &sharedfb_primary;
	return 0;
}

static const struct file_operations sharedfb_fops = {
	.owner		= THIS_MODULE,
	.open		= sharedfb_open,
	.mmap		= sharedfb_mmap,
	.llseek		= noop_llseek,
};

static struct miscdevice sharedfb_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= "sharedfb",
	.fops		= &sharedfb_fops,
};

static int __init sharedfb_init(void)
{
	int i;

	for (i = 0; i < SHAREDFB_NR_PAGES; i++) {
		sharedfb_pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!sharedfb_pages[i])
			goto err_free;
	}

	return misc_register(&sharedfb_misc);

err_free:
	while (--i >= 0)
		__free_page(sharedfb_pages[i]);
	return -ENOMEM;
}

static void __exit sharedfb_exit(void)
{
	int i;

	misc_deregister(&sharedfb_misc);
	for (i = 0; i < SHAREDFB_NR_PAGES; i++)
		__free_page(sharedfb_pages[i]);
}

module_init(sharedfb_init);
module_exit(sharedfb_exit);

MODULE_DESCRIPTION("Shared frame buffer core");
MODULE_LICENSE("GPL");
