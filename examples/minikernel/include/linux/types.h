/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_TYPES_H
#define _LINUX_TYPES_H

#include <linux/compiler_types.h>

#define NULL ((void *)0)

typedef _Bool			bool;
enum {
	false	= 0,
	true	= 1
};

typedef unsigned char		u8;
typedef unsigned short		u16;
typedef unsigned int		u32;
typedef unsigned long long	u64;

typedef unsigned long		size_t;
typedef long			ssize_t;
typedef long long		loff_t;
typedef unsigned short		umode_t;
typedef unsigned int		fmode_t;
typedef unsigned int		gfp_t;
typedef u64			phys_addr_t;

#endif /* _LINUX_TYPES_H */
