// SPDX-License-Identifier: GPL-2.0
/*
 * sharedfb-alt: a second device node onto the primary shared frame
 * buffer, for legacy clients that open /dev/sharedfb-alt.
 */

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/sharedfb.h>

static int sharedfb_alt_open(struct inode *inode, struct file *file)
{
	file->private_data = sharedfb_get_primary();
	return 0;
}

static const struct file_operations sharedfb_alt_fops = {
	.owner		= THIS_MODULE,
	.open		= sharedfb_alt_open,
	.mmap		= sharedfb_mmap,
	.llseek		= noop_llseek,
};

static struct miscdevice sharedfb_alt_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= "sharedfb-alt",
	.fops		= &sharedfb_alt_fops,
};

static int __init sharedfb_alt_init(void)
{
	return misc_register(&sharedfb_alt_misc);
}

static void __exit sharedfb_alt_exit(void)
{
	misc_deregister(&sharedfb_alt_misc);
}

module_init(sharedfb_alt_init);
module_exit(sharedfb_alt_exit);

MODULE_DESCRIPTION("Alternate device node for the shared frame buffer");
MODULE_LICENSE("GPL");
