// SPDX-License-Identifier: GPL-2.0
/*
 * ifdefdev - a trace buffer whose mapping support is optional.
 *
 * With CONFIG_IFDEFDEV_MMAP=n the buffer can only be read(), and
 * mmap() fails with -ENODEV.
 */

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>

#define IFDEFDEV_NR_PAGES	32

struct ifdefdev {
	struct page *pages[IFDEFDEV_NR_PAGES];
	unsigned long npages;
};

static struct ifdefdev ifdefdev_buf = {
	.npages = IFDEFDEV_NR_PAGES,
};

static int ifdefdev_open(struct inode *inode, struct file *file)
{
	file->private_data = &ifdefdev_buf;
	return 0;
}

#ifdef CONFIG_IFDEFDEV_MMAP
static vm_fault_t ifdefdev_vm_fault(struct vm_fault *vmf)
{
	struct ifdefdev *idev = vmf->vma->vm_private_data;
	struct page *page;

	if (vmf->pgoff >= idev->npages)
		return VM_FAULT_SIGBUS;

	page = idev->pages[vmf->pgoff];
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct ifdefdev_vm_ops = {
	.fault		= ifdefdev_vm_fault,
};

static int ifdefdev_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct ifdefdev *idev = file->private_data;

	if (vma->vm_pgoff + vma_pages(vma) > idev->npages)
		return -EINVAL;

	vma->vm_ops = &ifdefdev_vm_ops;
	vma->vm_private_data = idev;
	vm_flags_set(vma, VM_DONTEXPAND);
	return 0;
}
#else
static int ifdefdev_mmap(struct file *file, struct vm_area_struct *vma)
{
	return -ENODEV;
}
#endif

static const struct file_operations ifdefdev_fops = {
	.owner		= THIS_MODULE,
	.open		= ifdefdev_open,
	.mmap		= ifdefdev_mmap,
	.llseek		= noop_llseek,
};

static struct miscdevice ifdefdev_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= "ifdefdev",
	.fops		= &ifdefdev_fops,
};

static int __init ifdefdev_init(void)
{
	int i;

	for (i = 0; i < IFDEFDEV_NR_PAGES; i++) {
		ifdefdev_buf.pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!ifdefdev_buf.pages[i])
			goto err_free;
	}

	return misc_register(&ifdefdev_misc);

err_free:
	while (--i >= 0)
		__free_page(ifdefdev_buf.pages[i]);
	return -ENOMEM;
}

static void __exit ifdefdev_exit(void)
{
	int i;

	misc_deregister(&ifdefdev_misc);
	for (i = 0; i < IFDEFDEV_NR_PAGES; i++)
		__free_page(ifdefdev_buf.pages[i]);
}

module_init(ifdefdev_init);
module_exit(ifdefdev_exit);

MODULE_DESCRIPTION("Trace buffer with an #ifdef'd mmap handler");
MODULE_LICENSE("GPL");
