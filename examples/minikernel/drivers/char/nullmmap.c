// SPDX-License-Identifier: GPL-2.0
/*
 * nullmmap - a read-only counter device that cannot be mapped.
 */

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>

static ssize_t nullmmap_read(struct file *file, char __user *buf,
			     size_t count, loff_t *ppos)
{
	/* Nothing to read yet: always at end of file. */
	return 0;
}

/*
 * ->mmap is spelled out as NULL so that nobody adds a mapping by
 * accident: the counter lives in device registers that must not be
 * exposed directly.
 */
static const struct file_operations nullmmap_fops = {
	.owner		= THIS_MODULE,
	.read		= nullmmap_read,
	.mmap		= NULL,
	.llseek		= noop_llseek,
};

static struct miscdevice nullmmap_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= "nullmmap",
	.fops		= &nullmmap_fops,
};

static int __init nullmmap_init(void)
{
	return misc_register(&nullmmap_misc);
}

static void __exit nullmmap_exit(void)
{
	misc_deregister(&nullmmap_misc);
}

module_init(nullmmap_init);
module_exit(nullmmap_exit);

MODULE_DESCRIPTION("Device whose file_operations set .mmap = NULL");
MODULE_LICENSE("GPL");
