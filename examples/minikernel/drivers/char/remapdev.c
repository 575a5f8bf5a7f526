// SPDX-License-Identifier: GPL-2.0
/*
 * remapdev - maps a window of device registers into user space.
 */

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>

#define REMAPDEV_PHYS_BASE	0xfe000000UL
#define REMAPDEV_NR_PAGES	16

struct remapdev {
	phys_addr_t phys;		/* start of the register window */
	unsigned long npages;		/* size of the window in pages */
};

static struct remapdev remapdev_dev = {
	.phys	= REMAPDEV_PHYS_BASE,
	.npages	= REMAPDEV_NR_PAGES,
};

static int remapdev_open(struct inode *inode, struct file *file)
{
	file->private_data = &remapdev_dev;
	return 0;
}

static int remapdev_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct remapdev *rdev = file->private_data;
	unsigned long pfn;

	if (vma->vm_pgoff + vma_pages(vma) > rdev->npages)
		return -EINVAL;

	pfn = (rdev->phys >> PAGE_SHIFT) + vma->vm_pgoff;

	vm_flags_set(vma, VM_IO | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);

	return remap_pfn_range(vma, vma->vm_start, pfn,
			       vma->vm_end - vma->vm_start,
			       vma->vm_page_prot);
}

static const struct file_operations remapdev_fops = {
	.owner		= THIS_MODULE,
	.open		= remapdev_open,
	.mmap		= remapdev_mmap,
	.llseek		= noop_llseek,
};

static struct miscdevice remapdev_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= "remapdev",
	.fops		= &remapdev_fops,
};

static int __init remapdev_init(void)
{
	return misc_register(&remapdev_misc);
}

static void __exit remapdev_exit(void)
{
	misc_deregister(&remapdev_misc);
}

module_init(remapdev_init);
module_exit(remapdev_exit);

MODULE_DESCRIPTION("Register window mapped with remap_pfn_range()");
MODULE_LICENSE("GPL");
