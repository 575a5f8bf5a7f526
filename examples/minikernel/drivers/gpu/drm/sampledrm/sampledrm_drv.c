// SPDX-License-Identifier: MIT
/*
 * sampledrm - minimal GEM driver using the default GEM file operations.
 */

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/module.h>

#include <drm/drm_drv.h>
#include <drm/drm_gem.h>

DEFINE_DRM_GEM_FOPS(sampledrm_fops);

static const struct drm_driver sampledrm_driver = {
	.name		= "sampledrm",
	.desc		= "Sample GEM driver",
	.fops		= &sampledrm_fops,
};

static struct drm_device *sampledrm_dev;

static int __init sampledrm_init(void)
{
	int ret;

	sampledrm_dev = drm_dev_alloc(&sampledrm_driver, NULL);
	if (!sampledrm_dev)
		return -ENOMEM;

	ret = drm_dev_register(sampledrm_dev, 0);
	if (ret)
		drm_dev_put(sampledrm_dev);
	return ret;
}

static void __exit sampledrm_exit(void)
{
	drm_dev_unregister(sampledrm_dev);
	drm_dev_put(sampledrm_dev);
}

module_init(sampledrm_init);
module_exit(sampledrm_exit);

MODULE_DESCRIPTION("Sample GEM driver");
MODULE_LICENSE("GPL and additional rights");
