// SPDX-License-Identifier: GPL-2.0
/*
 * ipc/shmlike.c - shared memory segments backed by a file of another
 * file system, modelled on ipc/shm.c.
 *
 * A segment's file wraps the backing file: mapping it maps the backing
 * file, with our vm_ops interposed to keep the attach count.
 */

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/slab.h>

struct shmlike_file_data {
	int id;
	unsigned long nattch;		/* number of current attaches */
	struct file *file;		/* the backing file */
	const struct vm_operations_struct *vm_ops;
};

#define shmlike_file_data(file) (*((struct shmlike_file_data **)&(file)->private_data))

static void shmlike_open(struct vm_area_struct *vma)
{
	struct file *file = vma->vm_file;
	struct shmlike_file_data *sfd = shmlike_file_data(file);

	sfd->nattch++;
	if (sfd->vm_ops->open)
		sfd->vm_ops->open(vma);
}

static void shmlike_close(struct vm_area_struct *vma)
{
	struct file *file = vma->vm_file;
	struct shmlike_file_data *sfd = shmlike_file_data(file);

	if (sfd->vm_ops->close)
		sfd->vm_ops->close(vma);
	sfd->nattch--;
}

static vm_fault_t shmlike_fault(struct vm_fault *vmf)
{
	struct file *file = vmf->vma->vm_file;
	struct shmlike_file_data *sfd = shmlike_file_data(file);

	return sfd->vm_ops->fault(vmf);
}

static const struct vm_operations_struct shmlike_vm_ops = {
	.open	= shmlike_open,	/* callback for a new vm-area open */
	.close	= shmlike_close,	/* callback for when the vm-area is released */
	.fault	= shmlike_fault,
};

static int shmlike_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct shmlike_file_data *sfd = shmlike_file_data(file);
	int ret;

	ret = call_mmap(sfd->file, vma);
	if (ret)
		return ret;

	sfd->vm_ops = vma->vm_ops;
	vma->vm_ops = &shmlike_vm_ops;
	sfd->nattch++;
	return 0;
}

static int shmlike_release(struct inode *ino, struct file *file)
{
	struct shmlike_file_data *sfd = shmlike_file_data(file);

	shmlike_file_data(file) = NULL;
	kfree(sfd);
	return 0;
}

static unsigned long shmlike_get_unmapped_area(struct file *file,
	unsigned long addr, unsigned long len, unsigned long pgoff,
	unsigned long flags)
{
	struct shmlike_file_data *sfd = shmlike_file_data(file);

	return sfd->file->f_op->get_unmapped_area(sfd->file, addr, len,
						pgoff, flags);
}

static const struct file_operations shmlike_file_operations = {
	.mmap		= shmlike_mmap,
	.release	= shmlike_release,
	.get_unmapped_area	= shmlike_get_unmapped_area,
	.llseek		= noop_llseek,
};

bool is_file_shmlike(struct file *file)
{
	return file->f_op == &shmlike_file_operations;
}
