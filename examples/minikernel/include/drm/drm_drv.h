/* SPDX-License-Identifier: MIT */
#ifndef _DRM_DRV_H_
#define _DRM_DRV_H_

#include <linux/types.h>

struct device;
struct drm_device;
struct file_operations;

/**
 * struct drm_driver - DRM driver structure
 *
 * This structure represent the common code for a family of cards. There will be
 * one &struct drm_device for each card present in this family.
 */
struct drm_driver {
	/** @name: driver name */
	const char *name;
	/** @desc: driver description */
	const char *desc;
	/**
	 * @fops:
	 *
	 * File operations for the DRM device node.
	 */
	const struct file_operations *fops;
};

struct drm_device *drm_dev_alloc(const struct drm_driver *driver,
				 struct device *parent);
int drm_dev_register(struct drm_device *dev, unsigned long flags);
void drm_dev_unregister(struct drm_device *dev);
void drm_dev_put(struct drm_device *dev);

#endif /* _DRM_DRV_H_ */
