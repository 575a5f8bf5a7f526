// SPDX-License-Identifier: GPL-2.0
/*
 * sample_heap - exports page-backed buffers as dma-bufs.
 *
 * Note that sample_heap_mmap() is a struct dma_buf_ops callback, not a
 * struct file_operations one.
 */

#include <linux/dma-buf.h>
#include <linux/err.h>
#include <linux/errno.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>

struct sample_heap_buffer {
	struct page **pages;
	unsigned long pagecount;
	size_t len;
};

static vm_fault_t sample_heap_vm_fault(struct vm_fault *vmf)
{
	struct sample_heap_buffer *buffer = vmf->vma->vm_private_data;

	if (vmf->pgoff >= buffer->pagecount)
		return VM_FAULT_SIGBUS;

	vmf->page = buffer->pages[vmf->pgoff];
	get_page(vmf->page);
	return 0;
}

static const struct vm_operations_struct sample_heap_vm_ops = {
	.fault		= sample_heap_vm_fault,
};

static int sample_heap_mmap(struct dma_buf *dmabuf, struct vm_area_struct *vma)
{
	struct sample_heap_buffer *buffer = dmabuf->priv;

	if (vma->vm_pgoff + vma_pages(vma) > buffer->pagecount)
		return -EINVAL;

	vma->vm_ops = &sample_heap_vm_ops;
	vma->vm_private_data = buffer;
	return 0;
}

static void sample_heap_free(struct sample_heap_buffer *buffer)
{
	unsigned long i;

	for (i = 0; i < buffer->pagecount; i++)
		if (buffer->pages[i])
			__free_page(buffer->pages[i]);
	kfree(buffer->pages);
	kfree(buffer);
}

static void sample_heap_dma_buf_release(struct dma_buf *dmabuf)
{
	sample_heap_free(dmabuf->priv);
}

static const struct dma_buf_ops sample_heap_buf_ops = {
	.release	= sample_heap_dma_buf_release,
	.mmap		= sample_heap_mmap,
};

struct dma_buf *sample_heap_allocate(unsigned long len)
{
	struct dma_buf_export_info exp_info = {
		.exp_name	= "sample_heap",
		.owner		= THIS_MODULE,
		.ops		= &sample_heap_buf_ops,
	};
	struct sample_heap_buffer *buffer;
	struct dma_buf *dmabuf;
	unsigned long i;

	buffer = kzalloc(sizeof(*buffer), GFP_KERNEL);
	if (!buffer)
		return ERR_PTR(-ENOMEM);

	buffer->len = len;
	buffer->pagecount = len >> PAGE_SHIFT;
	buffer->pages = kcalloc(buffer->pagecount, sizeof(*buffer->pages),
				GFP_KERNEL);
	if (!buffer->pages)
		goto err_free;

	for (i = 0; i < buffer->pagecount; i++) {
		buffer->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!buffer->pages[i])
			goto err_free;
	}

	exp_info.size = buffer->len;
	exp_info.priv = buffer;
	dmabuf = dma_buf_export(&exp_info);
	if (IS_ERR(dmabuf))
		goto err_free;

	return dmabuf;

err_free:
	sample_heap_free(buffer);
	return ERR_PTR(-ENOMEM);
}
EXPORT_SYMBOL_GPL(sample_heap_allocate);
