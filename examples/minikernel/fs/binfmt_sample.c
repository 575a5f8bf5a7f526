// SPDX-License-Identifier: GPL-2.0
/*
 * binfmt_sample: loader for flat "SMPL" images.
 *
 * The image is mapped straight from the file at the address given in its
 * header, so only files that can be mmap()ed can be executed.
 */

#include <linux/binfmts.h>
#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/init.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>

#define SAMPLE_MAGIC	0x4c504d53	/* "SMPL", little endian */

struct sample_hdr {
	u32 magic;
	u32 flags;
	u64 load_addr;		/* page aligned */
	u64 size;		/* bytes to map from offset 0 */
	u64 entry;
	u64 stack_top;
};

static int load_sample_binary(struct linux_binprm *bprm)
{
	const struct sample_hdr *hdr = (const struct sample_hdr *)bprm->buf;
	struct file *file = bprm->file;
	unsigned long addr;

	if (hdr->magic != SAMPLE_MAGIC)
		return -ENOEXEC;

	if (hdr->load_addr & ~PAGE_MASK)
		return -ENOEXEC;

	if (!file->f_op->mmap)
		return -ENOEXEC;

	addr = vm_mmap(file, hdr->load_addr, hdr->size,
		       PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, 0);
	if (addr != hdr->load_addr)
		return -ENOMEM;

	start_thread(hdr->entry, hdr->stack_top);
	return 0;
}

static struct linux_binfmt sample_format = {
	.module		= THIS_MODULE,
	.load_binary	= load_sample_binary,
};

static int __init init_sample_binfmt(void)
{
	register_binfmt(&sample_format);
	return 0;
}

static void __exit exit_sample_binfmt(void)
{
	unregister_binfmt(&sample_format);
}

module_init(init_sample_binfmt);
module_exit(exit_sample_binfmt);

MODULE_DESCRIPTION("Loader for flat SMPL images");
MODULE_LICENSE("GPL");
