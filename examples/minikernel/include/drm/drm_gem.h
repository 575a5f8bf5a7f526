/* SPDX-License-Identifier: MIT */
#ifndef __DRM_GEM_H__
#define __DRM_GEM_H__

/*
 * GEM Graphics Execution Manager Driver Interfaces
 */

#include <linux/types.h>

struct drm_device;
struct drm_gem_object;
struct file;
struct inode;
struct vm_area_struct;
struct vm_operations_struct;

/**
 * struct drm_gem_object_funcs - GEM object functions
 */
struct drm_gem_object_funcs {
	/**
	 * @free:
	 *
	 * Deconstructor for drm_gem_objects.
	 */
	void (*free)(struct drm_gem_object *obj);

	/**
	 * @mmap:
	 *
	 * Handle mmap() of the gem object, setup vma accordingly.
	 *
	 * This callback is optional.
	 */
	int (*mmap)(struct drm_gem_object *obj, struct vm_area_struct *vma);

	/**
	 * @vm_ops:
	 *
	 * Virtual memory operations used with mmap.
	 */
	const struct vm_operations_struct *vm_ops;
};

/**
 * struct drm_gem_object - GEM buffer object
 */
struct drm_gem_object {
	unsigned int refcount;
	struct drm_device *dev;
	size_t size;
	const struct drm_gem_object_funcs *funcs;
};

/**
 * struct drm_file - DRM file private data
 */
struct drm_file {
	struct drm_device *dev;
};

int drm_open(struct inode *inode, struct file *filp);
int drm_release(struct inode *inode, struct file *filp);

/**
 * DRM_GEM_FOPS - Default drm GEM file operations
 *
 * This macro provides a shorthand for setting the GEM file ops in the
 * &file_operations structure.  If all you need are the default ops, use
 * DEFINE_DRM_GEM_FOPS instead.
 */
#define DRM_GEM_FOPS \
	.open		= drm_open,\
	.release	= drm_release,\
	.mmap		= drm_gem_mmap

/**
 * DEFINE_DRM_GEM_FOPS() - macro to generate file operations for GEM drivers
 * @name: name for the generated structure
 *
 * This macro autogenerates a suitable &struct file_operations for GEM based
 * drivers, which can be assigned to &drm_driver.fops. Note that this structure
 * cannot be shared between drivers, because it contains a reference to the
 * current module using THIS_MODULE.
 */
#define DEFINE_DRM_GEM_FOPS(name) \
	static const struct file_operations name = {\
		.owner		= THIS_MODULE,\
		DRM_GEM_FOPS,\
	}

void drm_gem_object_get(struct drm_gem_object *obj);
void drm_gem_object_put(struct drm_gem_object *obj);

struct drm_gem_object *drm_gem_lookup_mmap_offset(struct drm_file *file_priv,
						  unsigned long pgoff,
						  unsigned long pages,
						  unsigned long *obj_pages);

int drm_gem_mmap(struct file *filp, struct vm_area_struct *vma);

#endif /* __DRM_GEM_H__ */
