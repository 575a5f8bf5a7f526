// SPDX-License-Identifier: GPL-2.0
/*
 * nofile - a read-only event ring shared by every opener.
 *
 * There is a single ring, so the mmap handler never needs to look at
 * the file being mapped.
 */

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>

#define NOFILE_RING_PAGES	8

static struct page *nofile_ring[NOFILE_RING_PAGES];

static vm_fault_t nofile_vm_fault(struct vm_fault *vmf)
{
	struct page *page;

	if (vmf->pgoff >= NOFILE_RING_PAGES)
		return VM_FAULT_SIGBUS;

	page = nofile_ring[vmf->pgoff];
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct nofile_vm_ops = {
	.fault		= nofile_vm_fault,
};

static int nofile_mmap(struct file *file, struct vm_area_struct *vma)
{
	/* A private copy of the ring would never see new events. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;

	/* Only the device writes to the ring. */
	if (vma->vm_flags & VM_WRITE)
		return -EACCES;

	/* ... and mprotect() must not be able to change that. */
	vm_flags_clear(vma, VM_MAYWRITE);

	vma->vm_ops = &nofile_vm_ops;
	return 0;
}

static const struct file_operations nofile_fops = {
	.owner		= THIS_MODULE,
	.mmap		= nofile_mmap,
	.llseek		= noop_llseek,
};

static struct miscdevice nofile_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= "nofile",
	.fops		= &nofile_fops,
	.mode		= 0444,
};

static int __init nofile_init(void)
{
	int i;

	for (i = 0; i < NOFILE_RING_PAGES; i++) {
		nofile_ring[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!nofile_ring[i])
			goto err_free;
	}

	return misc_register(&nofile_misc);

err_free:
	while (--i >= 0)
		__free_page(nofile_ring[i]);
	return -ENOMEM;
}

static void __exit nofile_exit(void)
{
	int i;

	misc_deregister(&nofile_misc);
	for (i = 0; i < NOFILE_RING_PAGES; i++)
		__free_page(nofile_ring[i]);
}

module_init(nofile_init);
module_exit(nofile_exit);

MODULE_DESCRIPTION("Shared event ring whose mmap handler ignores the file");
MODULE_LICENSE("GPL");
