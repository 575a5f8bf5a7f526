/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_MM_H
#define _LINUX_MM_H

#include <linux/types.h>
#include <linux/mm_types.h>

struct page;

#define PAGE_SHIFT		12
#define PAGE_SIZE		(1UL << PAGE_SHIFT)
#define PAGE_MASK		(~(PAGE_SIZE - 1))

/*
 * vm_flags in vm_area_struct, see mm_types.h.
 * When changing, update also include/trace/events/mmflags.h
 */
#define VM_NONE		0x00000000UL

#define VM_READ		0x00000001UL	/* currently active flags */
#define VM_WRITE	0x00000002UL
#define VM_EXEC		0x00000004UL
#define VM_SHARED	0x00000008UL

/* mprotect() hardcodes VM_MAYREAD >> 4 == VM_READ, and so for r/w/x bits. */
#define VM_MAYREAD	0x00000010UL	/* limits for mprotect() etc */
#define VM_MAYWRITE	0x00000020UL
#define VM_MAYEXEC	0x00000040UL
#define VM_MAYSHARE	0x00000080UL

#define VM_PFNMAP	0x00000400UL	/* Page-ranges managed without "struct page", just pure PFN */

#define VM_IO		0x00004000UL	/* Memory mapped I/O or similar */

#define VM_DONTCOPY	0x00020000UL	/* Do not copy this vma on fork */
#define VM_DONTEXPAND	0x00040000UL	/* Cannot expand with mremap() */
#define VM_DONTDUMP	0x04000000UL	/* Do not include in the core dump */
#define VM_MIXEDMAP	0x10000000UL	/* Can contain "struct page" and pure PFN pages */

/* Sets VM_* flags on the VMA; the caller must hold the mmap write lock. */
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void vm_flags_clear(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}

static inline unsigned long vma_pages(struct vm_area_struct *vma)
{
	return (vma->vm_end - vma->vm_start) >> PAGE_SHIFT;
}

static inline pgprot_t pgprot_noncached(pgprot_t prot)
{
	return prot;
}

static inline pgprot_t pgprot_writecombine(pgprot_t prot)
{
	return prot;
}

struct vm_fault {
	struct vm_area_struct *vma;	/* Target VMA */
	pgoff_t pgoff;			/* Logical page offset based on vma */
	unsigned long address;		/* Faulting virtual address */
	unsigned int flags;		/* FAULT_FLAG_xxx flags */
	struct page *page;		/* ->fault handlers should return a
					 * page here, unless VM_FAULT_NOPAGE
					 * is set (which is also implied by
					 * VM_FAULT_ERROR).
					 */
};

void get_page(struct page *page);
void put_page(struct page *page);

int remap_pfn_range(struct vm_area_struct *, unsigned long addr,
		    unsigned long pfn, unsigned long size, pgprot_t);
int vm_insert_page(struct vm_area_struct *, unsigned long addr, struct page *);

unsigned long vm_mmap(struct file *, unsigned long, unsigned long,
		      unsigned long, unsigned long, unsigned long);

/* generic vm_area_ops exported for stackable file systems */
extern const struct vm_operations_struct generic_file_vm_ops;
vm_fault_t filemap_fault(struct vm_fault *vmf);

#endif /* _LINUX_MM_H */
