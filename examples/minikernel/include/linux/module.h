/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _LINUX_MODULE_H
#define _LINUX_MODULE_H

#include <linux/types.h>
#include <linux/init.h>

struct module;

#define THIS_MODULE ((struct module *)0)

/*
 * Symbol export markers.  There is no module loader here, so these only
 * leave a harmless declaration behind.
 */
#define EXPORT_SYMBOL(sym)	extern int __ksym_marker_##sym
#define EXPORT_SYMBOL_GPL(sym)	extern int __ksym_marker_##sym

/* Each module has one init and one exit function. */
#define module_init(initfn)					\
	static inline initcall_t __maybe_unused __inittest(void)	\
	{ return initfn; }					\
	int init_module(void) __attribute__((__alias__(#initfn)))

#define module_exit(exitfn)					\
	static inline exitcall_t __maybe_unused __exittest(void)	\
	{ return exitfn; }					\
	void cleanup_module(void) __attribute__((__alias__(#exitfn)))

#define MODULE_INFO(tag, info)						\
	static const char __mod_##tag[]					\
	__attribute__((__used__, __section__(".modinfo"))) = #tag "=" info

#define MODULE_LICENSE(_license)	MODULE_INFO(license, _license)
#define MODULE_DESCRIPTION(_desc)	MODULE_INFO(description, _desc)
#define MODULE_AUTHOR(_author)		MODULE_INFO(author, _author)

#endif /* _LINUX_MODULE_H */
