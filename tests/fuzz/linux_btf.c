/* SPDX-License-Identifier: MIT */
/* Fuzz: the guest kernel's BTF as blvm reads it (src/introspect/linux.c), raw and inside an ELF
 * file. Any bytes: 0 or -1 with a reason; a layout that is accepted keeps comm, pid and tgid inside
 * task_struct. */
#include <stdlib.h>
#include <string.h>

#include "introspect/linux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct blvm_linux_layout l;
	char err[256] = "";
	/* a private copy: the readers must not rely on the caller's buffer being writable or aligned */
	uint8_t *copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	for (int as_elf = 0; as_elf < 2; as_elf++) {
		int r = as_elf ? blvm_linux_layout_from_elf(copy, size, &l, err, sizeof err) :
				 blvm_linux_layout_from_btf(copy, size, &l, err, sizeof err);
		if (r == -1 && !err[0])
			abort();
		if (r == 0 && (l.task_comm + (uint64_t)l.comm_len > l.task_size || l.task_pid + 4ull > l.task_size ||
			       l.task_tgid + 4ull > l.task_size || l.comm_len == 0))
			abort();
		if (r != 0 && r != -1)
			abort();
	}
	free(copy);
	return 0;
}
