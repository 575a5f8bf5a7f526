/*
 * Hints for spatch (appended to its standard.h, which they override, and
 * given as --macro-file-builtins): kernel constructs Coccinelle 1.1.1
 * cannot parse on its own.  Without them a function that uses
 * scoped_guard() is skipped silently (perf_mmap, fw_device_op_mmap).
 */
#define scoped_guard(...) for (;;)
#define scoped_cond_guard(...) for (;;)
#define guard(x) __guard
#define list_for_each_entry_from(...) for (;;)
#define scoped_with_creds(...) for (;;)
#define scoped_with_kernel_creds(...) for (;;)
#define with_ovl_creds(...) for (;;)
/*
 * standard.h's per-cpu definitions do not parse, and declaration
 * attributes it does not know break the statement they are in.
 */
#define DEFINE_PER_CPU(type, name) type name
#define DEFINE_PER_CPU_ALIGNED(type, name) type name
#define DEFINE_PER_CPU_SHARED_ALIGNED(type, name) type name
#define DEFINE_PER_CPU_READ_MOSTLY(type, name) type name
#define DEFINE_PER_CPU_PAGE_ALIGNED(type, name) type name
#define DECLARE_PER_CPU(type, name) extern type name
#define __free(x)
#define __randomize_layout
