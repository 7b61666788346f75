/* SPDX-License-Identifier: MIT */
/*
 * Fuzz: the options of `blvm run` (src/cli/main.c parse_run_options, which starts nothing), on any
 * argument vector: the input split at NUL bytes, at most 64 arguments, after "run".
 *
 * The contract (docs/DESIGN.md "Command line", issue 15 "bad option sets"): the parse either goes on
 * to run with a complete configuration (an engine blvm has, 1-64 vCPUs, RAM that is not empty, a
 * timeout >= 0 and finite, a kernel, a command line, non-empty --stats/--initrd names), saying
 * nothing (a note waits until the VM exists); or stops with status 0 after --help/--version on stdout and
 * nothing on stderr; or with status 2 after exactly one line "blvm: ..." on stderr. stdout and
 * stderr go to memfds during the call, so every byte printed is checked.
 */
#define main blvm_cli_main
#include "cli/main.c"
#undef main

#include <sys/mman.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Points fd `which` (1 or 2) at a fresh memfd; *saved keeps the original. */
static int capture(int which, int *saved)
{
	int fd = memfd_create(which == 1 ? "stdout" : "stderr", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	*saved = dup(which);
	if (*saved < 0 || dup2(fd, which) < 0)
		abort();
	close(fd);
	return which;
}

/* Puts fd `which` back; its bytes in buf (NUL-terminated, at most cap - 1); returns their count. */
static size_t release(int which, int saved, char *buf, size_t cap)
{
	off_t len = lseek(which, 0, SEEK_END);
	if (len < 0)
		abort();
	size_t n = (size_t)len < cap - 1 ? (size_t)len : cap - 1;
	if (pread(which, buf, n, 0) != (ssize_t)n)
		abort();
	buf[n] = '\0';
	if (dup2(saved, which) < 0)
		abort();
	close(saved);
	return (size_t)len;
}

/* Every line of buf (n bytes) starts with prefix and ends with a newline; returns the count. */
static unsigned lines_with(const char *buf, size_t n, const char *prefix)
{
	unsigned count = 0;
	size_t i = 0;
	while (i < n) {
		if (strncmp(buf + i, prefix, strlen(prefix)) != 0)
			abort();
		const char *nl = memchr(buf + i, '\n', n - i);
		if (!nl)
			abort(); /* a message without its newline */
		i = (size_t)(nl - buf) + 1;
		count++;
	}
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *copy = malloc(size + 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	copy[size] = '\0';
	char *argv[66];
	int argc = 0;
	argv[argc++] = (char *)"run";
	for (size_t i = 0; i <= size && argc < 65;) {
		argv[argc++] = copy + i;
		i += strlen(copy + i) + 1;
	}
	if (size == 0)
		argc = 1;
	argv[argc] = NULL;

	static char out[8192], err[8192];
	fflush(stdout);
	int so, se;
	capture(1, &so);
	capture(2, &se);
	struct blvm_vm_config cfg;
	const char *stats_path = NULL;
	struct blvm_control_config ctl_cfg;
	int r = parse_run_options(argc, argv, &cfg, &stats_path, &ctl_cfg);
	fflush(stdout);
	size_t nout = release(1, so, out, sizeof out);
	size_t nerr = release(2, se, err, sizeof err);
	if (nout >= sizeof out || nerr >= sizeof err)
		abort(); /* far more than any message */

	if (r == -1) {
		if (strcmp(cfg.engine, "emu") && strcmp(cfg.engine, "kvm") && strcmp(cfg.engine, "auto"))
			abort();
		if (cfg.nr_vcpus < 1 || cfg.nr_vcpus > 64 || cfg.mem_size == 0 || !cfg.kernel_path || !cfg.cmdline)
			abort();
		if (!(cfg.timeout_s >= 0) || !isfinite(cfg.timeout_s))
			abort();
		if ((stats_path && !*stats_path) || (cfg.initrd_path && !*cfg.initrd_path))
			abort();
		if (nout)
			abort(); /* stdout is the guest's console */
		if (nerr)
			abort(); /* notes wait until the VM exists (cmd_run) */
		free((char *)cfg.cmdline);
	} else if (r == 0) {
		if (!nout || nerr)
			abort();
	} else if (r == 2) {
		if (nout || lines_with(err, nerr, "blvm: ") != 1)
			abort();
	} else {
		abort();
	}
	free(copy);
	return 0;
}
