// SPDX-License-Identifier: GPL-2.0-only
/// The .mmap hook of struct file_operations is deprecated: a handler sets
/// up a VMA that already exists, and the mm core must undo its work when a
/// later step fails.  .mmap_prepare describes the mapping in a struct
/// vm_area_desc before the VMA is created, and can ask for a remap of a
/// PFN range as an mmap_action.  Find every struct file_operations
/// initialiser (alone, in an array, or a compound literal) that still sets
/// .mmap, so the handler can be converted or new code can use
/// .mmap_prepare from the start.
///
//# .mmap = NULL sets no handler and is not reported.  Ops tables of other
//# types with an .mmap member (dma_buf_ops, vb2 memops, kernfs_ops, ...)
//# never match.  A fops built by a macro (DEFINE_DRM_GEM_FOPS()) is seen
//# where the macro is defined, not where it is used.
//
// Confidence: High
// Copyright: (C) 2026 The mmconvert authors
// Options: --no-includes --include-headers
// Keywords: mmap, mmap_prepare, file_operations

virtual context
virtual report
virtual org

//----------------------------------------------------------
//  For context mode
//----------------------------------------------------------

@fops_mmap_context depends on context && !org && !report@
identifier fops, handler != NULL;
@@
(
 struct file_operations fops = { ...,
* .mmap = handler,
 ... };
|
 struct file_operations fops[...] = { ..., { ...,
* .mmap = handler,
 ... }, ... };
)

@compound_mmap_context depends on context && !org && !report@
identifier handler != NULL;
@@
 (struct file_operations){ ...,
* .mmap = handler,
 ... }

//----------------------------------------------------------
//  For org and report mode
//----------------------------------------------------------

@fops_mmap depends on !context && (org || report)@
identifier fops, handler != NULL;
position p;
@@
(
 struct file_operations fops = { ..., .mmap = handler@p, ... };
|
 struct file_operations fops[...] = { ..., { ..., .mmap = handler@p, ... }, ... };
)

@compound_mmap depends on !context && (org || report)@
identifier handler != NULL;
position p;
@@
 (struct file_operations){ ..., .mmap = handler@p, ... }

@script:python depends on report@
p << fops_mmap.p;
handler << fops_mmap.handler;
@@

msg = "WARNING: .mmap is deprecated, convert %s to .mmap_prepare" % (handler)
coccilib.report.print_report(p[0], msg)

@script:python depends on report@
p << compound_mmap.p;
handler << compound_mmap.handler;
@@

msg = "WARNING: .mmap is deprecated, convert %s to .mmap_prepare" % (handler)
coccilib.report.print_report(p[0], msg)

@script:python depends on org@
p << fops_mmap.p;
handler << fops_mmap.handler;
@@

msg = "WARNING: .mmap is deprecated, convert %s to .mmap_prepare" % (handler)
coccilib.org.print_todo(p[0], msg)

@script:python depends on org@
p << compound_mmap.p;
handler << compound_mmap.handler;
@@

msg = "WARNING: .mmap is deprecated, convert %s to .mmap_prepare" % (handler)
coccilib.org.print_todo(p[0], msg)
