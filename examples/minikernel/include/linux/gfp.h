/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __LINUX_GFP_H
#define __LINUX_GFP_H

#include <linux/types.h>

struct page;

#define GFP_KERNEL	((gfp_t)0x0cc0u)
#define __GFP_ZERO	((gfp_t)0x100u)

struct page *alloc_pages(gfp_t gfp, unsigned int order);
#define alloc_page(gfp_mask) alloc_pages(gfp_mask, 0)

void __free_pages(struct page *page, unsigned int order);
#define __free_page(page) __free_pages((page), 0)

#endif /* __LINUX_GFP_H */
