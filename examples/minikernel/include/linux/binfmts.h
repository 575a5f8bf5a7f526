/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_BINFMTS_H
#define _LINUX_BINFMTS_H

#include <linux/types.h>

struct file;
struct module;

#define BINPRM_BUF_SIZE 256

/*
 * This structure is used to hold the arguments that are used when loading binaries.
 */
struct linux_binprm {
	struct file *file;
	unsigned long p;		/* current top of mem */
	int argc, envc;
	const char *filename;		/* Name of binary as seen by procps */
	char buf[BINPRM_BUF_SIZE];
};

/*
 * This structure defines the functions that are used to load the binary formats that
 * linux accepts.
 */
struct linux_binfmt {
	struct module *module;
	int (*load_binary)(struct linux_binprm *);
	int (*load_shlib)(struct file *);
};

extern void register_binfmt(struct linux_binfmt *fmt);
extern void unregister_binfmt(struct linux_binfmt *);

extern void start_thread(unsigned long pc, unsigned long sp);

#endif /* _LINUX_BINFMTS_H */
