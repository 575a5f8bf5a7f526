/*
 * Hints for spatch (--macro-file): kernel constructs Coccinelle 1.1.1
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
