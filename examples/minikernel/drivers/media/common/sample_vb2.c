// SPDX-License-Identifier: GPL-2.0-only
/*
 * sample_vb2 - page-array memory allocator for videobuf2.
 *
 * sample_vb2_mmap() is a struct vb2_mem_ops callback: it receives the
 * allocator's buffer, not a file.
 */

#include <linux/err.h>
#include <linux/errno.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <media/videobuf2-core.h>

struct sample_vb2_buf {
	struct page **pages;
	unsigned long npages;
	unsigned long size;
	unsigned int refcount;
};

static void sample_vb2_put(void *buf_priv)
{
	struct sample_vb2_buf *buf = buf_priv;
	unsigned long i;

	if (--buf->refcount)
		return;

	for (i = 0; i < buf->npages; i++)
		if (buf->pages[i])
			__free_page(buf->pages[i]);
	kfree(buf->pages);
	kfree(buf);
}

static void *sample_vb2_alloc(struct vb2_buffer *vb, struct device *dev,
			      unsigned long size)
{
	struct sample_vb2_buf *buf;
	unsigned long i;

	buf = kzalloc(sizeof(*buf), GFP_KERNEL);
	if (!buf)
		return ERR_PTR(-ENOMEM);

	buf->size = size;
	buf->npages = (size + PAGE_SIZE - 1) >> PAGE_SHIFT;
	buf->refcount = 1;
	buf->pages = kcalloc(buf->npages, sizeof(*buf->pages), GFP_KERNEL);
	if (!buf->pages)
		goto err_put;

	for (i = 0; i < buf->npages; i++) {
		buf->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!buf->pages[i])
			goto err_put;
	}

	return buf;

err_put:
	sample_vb2_put(buf);
	return ERR_PTR(-ENOMEM);
}

static unsigned int sample_vb2_num_users(void *buf_priv)
{
	struct sample_vb2_buf *buf = buf_priv;

	return buf->refcount;
}

static void sample_vb2_vm_open(struct vm_area_struct *vma)
{
	struct sample_vb2_buf *buf = vma->vm_private_data;

	buf->refcount++;
}

static void sample_vb2_vm_close(struct vm_area_struct *vma)
{
	sample_vb2_put(vma->vm_private_data);
}

static vm_fault_t sample_vb2_vm_fault(struct vm_fault *vmf)
{
	struct sample_vb2_buf *buf = vmf->vma->vm_private_data;

	if (vmf->pgoff >= buf->npages)
		return VM_FAULT_SIGBUS;

	vmf->page = buf->pages[vmf->pgoff];
	get_page(vmf->page);
	return 0;
}

static const struct vm_operations_struct sample_vb2_vm_ops = {
	.open		= sample_vb2_vm_open,
	.close		= sample_vb2_vm_close,
	.fault		= sample_vb2_vm_fault,
};

static int sample_vb2_mmap(void *buf_priv, struct vm_area_struct *vma)
{
	struct sample_vb2_buf *buf = buf_priv;

	if (!buf)
		return -EINVAL;

	if (vma->vm_end - vma->vm_start > buf->npages << PAGE_SHIFT)
		return -EINVAL;

	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_private_data = buf;
	vma->vm_ops = &sample_vb2_vm_ops;

	/* The mapping holds a reference, dropped by sample_vb2_vm_close(). */
	sample_vb2_vm_open(vma);
	return 0;
}

const struct vb2_mem_ops sample_vb2_memops = {
	.alloc		= sample_vb2_alloc,
	.put		= sample_vb2_put,
	.num_users	= sample_vb2_num_users,
	.mmap		= sample_vb2_mmap,
};
EXPORT_SYMBOL_GPL(sample_vb2_memops);

MODULE_DESCRIPTION("Page-array memory allocator for videobuf2");
MODULE_LICENSE("GPL");
