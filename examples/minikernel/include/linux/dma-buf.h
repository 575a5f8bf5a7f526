/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Header file for dma buffer sharing framework.
 */
#ifndef __DMA_BUF_H__
#define __DMA_BUF_H__

#include <linux/types.h>

struct dma_buf;
struct module;
struct vm_area_struct;

/**
 * struct dma_buf_ops - operations possible on struct dma_buf
 */
struct dma_buf_ops {
	/**
	 * @release:
	 *
	 * Called after the last dma_buf_put to release the &dma_buf, and
	 * mandatory.
	 */
	void (*release)(struct dma_buf *);

	/**
	 * @mmap:
	 *
	 * Callback used by the dma_buf_mmap() function
	 *
	 * Note that the mapping needs to be incoherent, userspace is expected
	 * to bracket CPU access using the DMA_BUF_IOCTL_SYNC interface.
	 */
	int (*mmap)(struct dma_buf *, struct vm_area_struct *vma);
};

/**
 * struct dma_buf - shared buffer object
 * @size: size of the buffer; invariant over the lifetime of the buffer.
 * @file: file pointer used for sharing buffers across, and for refcounting.
 * @ops: dma_buf_ops associated with this buffer object.
 * @exp_name: name of the exporter; useful for debugging.
 * @owner: pointer to exporter module; used for refcounting when exporter is a
 *         kernel module.
 * @priv: exporter specific private data for this buffer object.
 */
struct dma_buf {
	size_t size;
	struct file *file;
	const struct dma_buf_ops *ops;
	const char *exp_name;
	struct module *owner;
	void *priv;
};

/**
 * struct dma_buf_export_info - holds information needed to export a dma_buf
 * @exp_name:	name of the exporter - useful for debugging.
 * @owner:	pointer to exporter module - used for refcounting kernel module
 * @ops:	Attach allocator-defined dma buf ops to the new buffer
 * @size:	Size of the buffer - invariant over the lifetime of the buffer
 * @flags:	mode flags for the file
 * @priv:	Attach private data of allocator to this buffer
 */
struct dma_buf_export_info {
	const char *exp_name;
	struct module *owner;
	const struct dma_buf_ops *ops;
	size_t size;
	int flags;
	void *priv;
};

struct dma_buf *dma_buf_export(const struct dma_buf_export_info *exp_info);
int dma_buf_mmap(struct dma_buf *, struct vm_area_struct *,
		 unsigned long);

#endif /* __DMA_BUF_H__ */
