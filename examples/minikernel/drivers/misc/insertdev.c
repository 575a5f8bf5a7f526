// SPDX-License-Identifier: GPL-2.0
/*
 * insertdev - gives every opener a private scratch page to map.
 */

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>

struct insertdev_ctx {
	struct page *page;		/* the scratch page of this opener */
};

static int insertdev_open(struct inode *inode, struct file *file)
{
	struct insertdev_ctx *ctx;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;

	ctx->page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!ctx->page) {
		kfree(ctx);
		return -ENOMEM;
	}

	file->private_data = ctx;
	return 0;
}

static int insertdev_release(struct inode *inode, struct file *file)
{
	struct insertdev_ctx *ctx = file->private_data;

	/* Existing mappings hold their own reference to the page. */
	__free_page(ctx->page);
	kfree(ctx);
	return 0;
}

static int insertdev_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct insertdev_ctx *ctx = file->private_data;
	struct page *page = ctx->page;

	if (vma->vm_pgoff || vma_pages(vma) != 1)
		return -EINVAL;

	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTCOPY);

	return vm_insert_page(vma, vma->vm_start, page);
}

static const struct file_operations insertdev_fops = {
	.owner		= THIS_MODULE,
	.open		= insertdev_open,
	.release	= insertdev_release,
	.mmap		= insertdev_mmap,
	.llseek		= noop_llseek,
};

static struct miscdevice insertdev_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= "insertdev",
	.fops		= &insertdev_fops,
};

static int __init insertdev_init(void)
{
	return misc_register(&insertdev_misc);
}

static void __exit insertdev_exit(void)
{
	misc_deregister(&insertdev_misc);
}

module_init(insertdev_init);
module_exit(insertdev_exit);

MODULE_DESCRIPTION("Per-open scratch page mapped with vm_insert_page()");
MODULE_LICENSE("GPL");
