// SPDX-License-Identifier: GPL-2.0
/*
 * fieldsdev - exposes a small page-backed status area to user space.
 *
 * The mmap handler only validates the request and fills in the VMA;
 * pages are supplied on demand by the fault handler.
 */

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>

#define FIELDSDEV_NR_PAGES	4
#define FIELDSDEV_MAX_PGOFF	(FIELDSDEV_NR_PAGES - 1)

struct fieldsdev {
	struct page *pages[FIELDSDEV_NR_PAGES];
	unsigned long size;		/* bytes that may be mapped */
};

static struct fieldsdev fieldsdev_dev = {
	.size = FIELDSDEV_NR_PAGES * PAGE_SIZE,
};

static vm_fault_t fieldsdev_vm_fault(struct vm_fault *vmf)
{
	struct fieldsdev *fdev = vmf->vma->vm_private_data;
	struct page *page;

	if (vmf->pgoff >= FIELDSDEV_NR_PAGES)
		return VM_FAULT_SIGBUS;

	page = fdev->pages[vmf->pgoff];
	if (!page)
		return VM_FAULT_SIGBUS;

	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct fieldsdev_vm_ops = {
	.fault		= fieldsdev_vm_fault,
};

static int fieldsdev_open(struct inode *inode, struct file *file)
{
	file->private_data = &fieldsdev_dev;
	return 0;
}

static int fieldsdev_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct fieldsdev *fdev = file->private_data;

	if (vma->vm_pgoff > FIELDSDEV_MAX_PGOFF)
		return -EINVAL;

	if (vma->vm_end - vma->vm_start > fdev->size)
		return -EINVAL;

	vma->vm_ops = &fieldsdev_vm_ops;
	vma->vm_private_data = fdev;
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	/* The status area is updated by the device behind the CPU's back. */
	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
	return 0;
}

static const struct file_operations fieldsdev_fops = {
	.owner		= THIS_MODULE,
	.open		= fieldsdev_open,
	.mmap		= fieldsdev_mmap,
	.llseek		= noop_llseek,
};

static struct miscdevice fieldsdev_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= "fieldsdev",
	.fops		= &fieldsdev_fops,
};

static int __init fieldsdev_init(void)
{
	int i;

	for (i = 0; i < FIELDSDEV_NR_PAGES; i++) {
		fieldsdev_dev.pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!fieldsdev_dev.pages[i])
			goto err_free;
	}

	return misc_register(&fieldsdev_misc);

err_free:
	while (--i >= 0)
		__free_page(fieldsdev_dev.pages[i]);
	return -ENOMEM;
}

static void __exit fieldsdev_exit(void)
{
	int i;

	misc_deregister(&fieldsdev_misc);
	for (i = 0; i < FIELDSDEV_NR_PAGES; i++)
		__free_page(fieldsdev_dev.pages[i]);
}

module_init(fieldsdev_init);
module_exit(fieldsdev_exit);

MODULE_DESCRIPTION("Page-backed status area with a field-only mmap handler");
MODULE_LICENSE("GPL");
