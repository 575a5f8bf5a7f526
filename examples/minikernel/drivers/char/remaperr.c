// SPDX-License-Identifier: GPL-2.0
/*
 * remaperr - maps a device's on-board SRAM into user space.
 *
 * Any failure to set up the page tables is reported as -EAGAIN, which
 * is what the user space library of this device has always expected.
 */

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>

#define REMAPERR_SRAM_BASE	0xfd000000UL
#define REMAPERR_SRAM_SIZE	(64 * 1024UL)

struct remaperr_dev {
	phys_addr_t phys;
	unsigned long size;
};

static struct remaperr_dev remaperr_sram = {
	.phys	= REMAPERR_SRAM_BASE,
	.size	= REMAPERR_SRAM_SIZE,
};

static int remaperr_open(struct inode *inode, struct file *file)
{
	file->private_data = &remaperr_sram;
	return 0;
}

static int remaperr_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct remaperr_dev *dev = file->private_data;
	unsigned long size = vma->vm_end - vma->vm_start;
	unsigned long pfn;

	/* The SRAM is always mapped from its start. */
	if (vma->vm_pgoff)
		return -EINVAL;

	if (size > dev->size)
		return -EINVAL;

	pfn = dev->phys >> PAGE_SHIFT;

	vm_flags_set(vma, VM_IO | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);

	if (remap_pfn_range(vma, vma->vm_start, pfn, size, vma->vm_page_prot))
		return -EAGAIN;

	return 0;
}

static const struct file_operations remaperr_fops = {
	.owner		= THIS_MODULE,
	.open		= remaperr_open,
	.mmap		= remaperr_mmap,
	.llseek		= noop_llseek,
};

static struct miscdevice remaperr_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= "remaperr",
	.fops		= &remaperr_fops,
};

static int __init remaperr_init(void)
{
	return misc_register(&remaperr_misc);
}

static void __exit remaperr_exit(void)
{
	misc_deregister(&remaperr_misc);
}

module_init(remaperr_init);
module_exit(remaperr_exit);

MODULE_DESCRIPTION("On-board SRAM mapped with remap_pfn_range(), -EAGAIN on failure");
MODULE_LICENSE("GPL");
