// SPDX-License-Identifier: GPL-2.0
/*
 * mmconvert's boot probe: the initramfs /init of `mmconvert verify --boot`.
 *
 * Mounts the pseudo file systems, turns ftrace's function tracer on for the
 * functions listed in /trace-functions, and mmaps every path it finds with a
 * fixed matrix of cases.  Prints one JSON object a line on the console
 * between the BEGIN and END markers, then powers the machine off.
 *
 * Built with `gcc -static -O2`; nothing but libc.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define PAGE 4096
#define TRACE "/sys/kernel/tracing"
#define MAX_PATHS 4096
#define MAX_DEPTH 6
#define START "MMCONVERT-PROBE-BEGIN"
#define END "MMCONVERT-PROBE-END"

static char *paths[MAX_PATHS];
static int npaths;
static char funcs[8192];
static int tracing;
static sigjmp_buf fault_jmp;
static volatile sig_atomic_t in_read;
static char smaps[1 << 20];

/* Never opened, mapped or walked: reading or mapping them has effects
 * beyond the probe (physical memory, I/O ports, the console we print on,
 * the trace buffer we read coverage from, watchdogs that reboot). */
static const char *deny[] = {
	"/dev/mem", "/dev/kmem", "/dev/port", "/dev/console", "/dev/tty", "/dev/ttyS",
	"/dev/watchdog", "/dev/kmsg", "/dev/snapshot", "/dev/cpu", "/dev/nvram",
	"/dev/hpet", "/dev/vcs", "/dev/ptmx", "/dev/pts",
	"/proc/kcore", "/proc/kmsg", "/proc/sysrq-trigger", "/proc/self", "/proc/thread-self",
	"/proc/sys", "/proc/irq", "/proc/bus", "/proc/fs", "/proc/tty", "/proc/driver",
	"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	"/sys/fs/selinux/load", "/sys/fs/selinux/commit_pending_bools",
	"/sys/kernel/debug/provoke-crash", "/sys/kernel/debug/fail_",
	NULL,
};

static void out(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	/* One write a line: the console does not interleave within it. */
	if (write(1, buf, n) < 0)
		return;
}

static const char *err_name(int e)
{
	static char buf[32];
	const char *s = strerrorname_np(e);

	if (s)
		return s;
	snprintf(buf, sizeof(buf), "errno%d", e);
	return buf;
}

static int denied(const char *p)
{
	for (int i = 0; deny[i]; i++) {
		size_t n = strlen(deny[i]);

		if (!strncmp(p, deny[i], n))
			return 1;
	}
	return 0;
}

static void add_path(const char *p)
{
	if (npaths < MAX_PATHS && !denied(p))
		paths[npaths++] = strdup(p);
}

static int numeric(const char *s)
{
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* Files under `dir` (character devices under /dev, regular files elsewhere). */
static void walk(const char *dir, int depth, int want_chr)
{
	DIR *d;
	struct dirent *e;
	char p[512];
	struct stat st;
	char **names = NULL;
	int n = 0;

	if (depth > MAX_DEPTH || denied(dir))
		return;
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!strcmp(dir, "/proc") && numeric(e->d_name))
			continue;   /* processes: not the same on two boots */
		names = realloc(names, (n + 1) * sizeof(*names));
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	/* A fixed order, so two boots list paths alike. */
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (strcmp(names[j], names[i]) < 0) {
				char *t = names[i];

				names[i] = names[j];
				names[j] = t;
			}
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		free(names[i]);
		if (lstat(p, &st))
			continue;
		if (S_ISDIR(st.st_mode))
			walk(p, depth + 1, want_chr);
		else if (want_chr ? S_ISCHR(st.st_mode) : S_ISREG(st.st_mode))
			add_path(p);
	}
	free(names);
}

static int write_file(const char *path, const char *s, int append)
{
	int fd = open(path, O_WRONLY | (append ? O_APPEND : O_TRUNC));
	ssize_t w;

	if (fd < 0)
		return -errno;
	w = write(fd, s, strlen(s));
	close(fd);
	return w < 0 ? -errno : 0;
}

static ssize_t read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	size_t got = 0;
	ssize_t r;

	if (fd < 0)
		return -1;
	while (got < size - 1 && (r = read(fd, buf + got, size - 1 - got)) > 0)
		got += r;
	close(fd);
	buf[got] = 0;
	return got;
}

static void json_str(char *dst, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < size; s++) {
		if (*s == '"' || *s == '\\') {
			dst[o++] = '\\';
			dst[o++] = *s;
		} else if ((unsigned char)*s < 0x20) {
			o += snprintf(dst + o, size - o, "\\u%04x", *s);
		} else {
			dst[o++] = *s;
		}
	}
	dst[o] = 0;
}

static void setup_tracing(void)
{
	char buf[8192], *save, *name;
	char list[8192] = "";

	if (read_file("/trace-functions", funcs, sizeof(funcs)) <= 0)
		return;
	if (write_file(TRACE "/tracing_on", "0", 0)) {
		out("{\"trace\":\"no tracefs\",\"errno\":\"%s\"}", err_name(errno));
		return;
	}
	write_file(TRACE "/set_ftrace_filter", "", 0);
	strcpy(buf, funcs);
	for (name = strtok_r(buf, " \n", &save); name; name = strtok_r(NULL, " \n", &save)) {
		int r = write_file(TRACE "/set_ftrace_filter", name, 1);

		/* EINVAL: not in available_filter_functions (inlined, notrace). */
		out("{\"trace_filter\":\"%s\",\"result\":\"%s\"}", name, r ? err_name(-r) : "ok");
		if (!r)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), " %s", name);
	}
	if (!list[0])
		return;
	if (write_file(TRACE "/current_tracer", "function", 0) ||
	    write_file(TRACE "/trace", "", 0) || write_file(TRACE "/tracing_on", "1", 0)) {
		out("{\"trace\":\"cannot start the function tracer\",\"errno\":\"%s\"}",
		    err_name(errno));
		return;
	}
	tracing = 1;
}

/* The converted functions that ran since the last call, as a JSON list. */
static void called_since(char *dst, size_t size)
{
	static char trace[1 << 16];
	char buf[8192], *save, *name;
	size_t o = 0;

	dst[o++] = '[';
	dst[o] = 0;
	if (!tracing)
		goto done;
	write_file(TRACE "/tracing_on", "0", 0);
	if (read_file(TRACE "/trace", trace, sizeof(trace)) > 0) {
		strcpy(buf, funcs);
		for (name = strtok_r(buf, " \n", &save); name;
		     name = strtok_r(NULL, " \n", &save)) {
			char pat[256];

			/* A trace line: "...: name <-caller" */
			snprintf(pat, sizeof(pat), " %s <-", name);
			if (strstr(trace, pat) && o + strlen(name) + 4 < size)
				o += snprintf(dst + o, size - o, "%s\"%s\"", o > 1 ? "," : "", name);
		}
	}
	write_file(TRACE "/trace", "", 0);
	write_file(TRACE "/tracing_on", "1", 0);
done:
	snprintf(dst + o, size - o, "]");
}

/* The VmFlags line of the mapping at `addr` in /proc/self/smaps. */
static void vmflags(void *addr, char *dst, size_t size)
{
	char key[32], *p, *nl;

	strcpy(dst, "?");
	if (read_file("/proc/self/smaps", smaps, sizeof(smaps)) <= 0)
		return;
	snprintf(key, sizeof(key), "%lx-", (unsigned long)addr);
	for (p = smaps; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, key, strlen(key)))
			break;
	if (!p)
		return;
	p = strstr(p, "VmFlags:");
	if (!p)
		return;
	p += strlen("VmFlags:");
	while (*p == ' ')
		p++;
	nl = strchr(p, '\n');
	if (nl)
		*nl = 0;
	snprintf(dst, size, "%s", p);
	for (size_t i = strlen(dst); i > 0 && dst[i - 1] == ' '; i--)
		dst[i - 1] = 0;
}

static void on_fault(int sig)
{
	if (in_read)
		siglongjmp(fault_jmp, sig);
	_exit(128 + sig);
}

/* FNV-1a of the first page, or the signal reading it raised. */
static void checksum(const volatile unsigned char *m, char *dst, size_t size)
{
	volatile uint64_t h = 1469598103934665603ULL;
	int sig;

	in_read = 1;
	sig = sigsetjmp(fault_jmp, 1);
	if (sig) {
		in_read = 0;
		snprintf(dst, size, "%s", sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
		return;
	}
	for (int i = 0; i < PAGE; i++)
		h = (h ^ m[i]) * 1099511628211ULL;
	in_read = 0;
	snprintf(dst, size, "%016llx", (unsigned long long)h);
}

/* Reading is safe where the bytes are memory, not device registers. */
static int readable(const char *path, const struct stat *st)
{
	return S_ISREG(st->st_mode) || !strcmp(path, "memfd");
}

static void probe_fd(const char *path, int fd, const char *mode, int can_read)
{
	static const struct { const char *name; int prot; } prots[] = {
		{ "r", PROT_READ }, { "rw", PROT_READ | PROT_WRITE },
	};
	static const struct { const char *name; int flags; } maps[] = {
		{ "shared", MAP_SHARED }, { "private", MAP_PRIVATE },
	};
	static const long offs[] = { 0, PAGE };
	static const int pages[] = { 1, 4 };
	char jpath[1024], flags[256], sum[32], called[1024];

	json_str(jpath, sizeof(jpath), path);
	for (int a = 0; a < 2; a++)
		for (int b = 0; b < 2; b++)
			for (int c = 0; c < 2; c++)
				for (int d = 0; d < 2; d++) {
					size_t len = (size_t)pages[d] * PAGE;
					void *m = mmap(NULL, len, prots[a].prot, maps[b].flags, fd,
						       offs[c]);
					char cs[64];

					snprintf(cs, sizeof(cs), "%s-%s-off%ld-%dp", prots[a].name,
						 maps[b].name, offs[c] / PAGE, pages[d]);
					if (m == MAP_FAILED) {
						out("{\"path\":\"%s\",\"mode\":\"%s\",\"case\":\"%s\","
						    "\"result\":\"%s\"}", jpath, mode, cs, err_name(errno));
						continue;
					}
					vmflags(m, flags, sizeof(flags));
					if (can_read)
						checksum(m, sum, sizeof(sum));
					else
						strcpy(sum, "");
					munmap(m, len);
					out("{\"path\":\"%s\",\"mode\":\"%s\",\"case\":\"%s\",\"result\":\"ok\","
					    "\"vmflags\":\"%s\",\"sum\":\"%s\"}", jpath, mode, cs, flags, sum);
				}
	called_since(called, sizeof(called));
	out("{\"path\":\"%s\",\"called\":%s}", jpath, called);
}

static void probe_path(const char *path, int try_write)
{
	struct stat st;
	int fd = -1;
	const char *mode = "rw";
	char jpath[1024];

	json_str(jpath, sizeof(jpath), path);
	if (try_write)
		fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		mode = "ro";
		fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	}
	if (fd < 0) {
		char called[1024];

		out("{\"path\":\"%s\",\"open\":\"%s\"}", jpath, err_name(errno));
		called_since(called, sizeof(called));
		out("{\"path\":\"%s\",\"called\":%s}", jpath, called);
		return;
	}
	if (fstat(fd, &st)) {
		close(fd);
		return;
	}
	probe_fd(path, fd, mode, readable(path, &st));
	close(fd);
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_fault };
	int memfd;

	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	mount("tracefs", TRACE, "tracefs", 0, NULL);
	if (mount("selinuxfs", "/sys/fs/selinux", "selinuxfs", 0, NULL))
		out("{\"mount\":\"selinuxfs\",\"errno\":\"%s\"}", err_name(errno));

	/* On a line of its own: the firmware's escape codes end without one. */
	out("\n" START);
	setup_tracing();

	/* The baseline every kernel has: shmem behind a memfd. */
	memfd = memfd_create("mmconvert-probe", MFD_CLOEXEC);
	if (memfd >= 0 && ftruncate(memfd, 8 * PAGE) == 0)
		probe_fd("memfd", memfd, "rw", 1);
	else
		out("{\"path\":\"memfd\",\"open\":\"%s\"}", err_name(errno));

	walk("/sys/fs/selinux", 0, 0);
	walk("/dev", 0, 1);
	walk("/proc", 0, 0);
	walk("/sys/kernel/debug", 0, 0);
	for (int i = 0; i < npaths; i++)
		probe_path(paths[i], !strncmp(paths[i], "/dev/", 5) ||
			   !strncmp(paths[i], "/sys/fs/selinux/", 16));
	out("{\"paths\":%d}", npaths);
	out(END);
	sync();
	/* Without ACPI (tinyconfig) this halts: mmconvert stops qemu once it
	 * has read the end marker. */
	reboot(RB_POWER_OFF);
	return 0;
}
