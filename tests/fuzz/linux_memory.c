/* SPDX-License-Identifier: MIT */
/* Fuzz: reading the current task of a Linux guest from hostile guest memory (src/introspect/
 * linux.c): the input is the guest's physical memory (page tables, per-CPU data, task_struct, all
 * of it the fuzzer's) behind a fixed layout and registers taken from the input's first bytes. The
 * reader returns 0 or -1, reads only through the callback (which checks every access against the
 * image), and the comm it returns is NUL-terminated within 16 bytes. */
#include <stdlib.h>
#include <string.h>

#include "introspect/linux.h"

struct img { const uint8_t *p; size_t n; unsigned reads; };

static int rd(void *arg, uint64_t gpa, void *buf, size_t len)
{
	struct img *m = arg;
	m->reads++;
	if (gpa > m->n || len > m->n - gpa)
		return -1;
	memcpy(buf, m->p + gpa, len);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 40)
		return 0;
	uint64_t regs[4];
	memcpy(regs, data, sizeof regs);
	uint8_t flags = data[32];
	struct blvm_linux_layout l = { .task_comm = 0x5a0 + (data[33] & 0x3f) * 8, .task_pid = 0x4e8,
				       .task_tgid = 0x4ec, .comm_len = 16, .task_size = 0x2400,
				       .current_task = (data[34] | (uint64_t)data[35] << 8) * 8 };
	struct img m = { data, size, 0 };
	struct blvm_linux_task t;
	char err[256];
	/* cr3 low bits from the input: page tables anywhere in the image */
	int r = blvm_linux_current(&l, regs[0] & 0xffff, flags & 1, flags & 2, regs[1], regs[2], rd, &m, &t, err,
				   sizeof err);
	if ((r != 0 && r != -1) || strlen(t.comm) > 16)
		abort();
	/* a walk reads at most 5 entries per page touched: bounded whatever the tables say */
	if (m.reads > 3 * (16 + 5 * 4))
		abort();
	uint64_t gpa;
	(void)blvm_guest_translate(regs[0] & 0xffff, flags & 4, regs[3], rd, &m, &gpa);
	return 0;
}
