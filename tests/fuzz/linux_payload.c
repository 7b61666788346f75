/* SPDX-License-Identifier: MIT */
/*
 * Fuzz: a bzImage's compressed payload as blvm unpacks it for the guest kernel's BTF
 * (blvm_bzimage_vmlinux, src/boot/bzimage.c, through the packaged decompressors of every format
 * Linux builds: LZ4's legacy frame, gzip, xz, legacy LZMA, zstd, bzip2, LZO in lzop's format), and
 * what it unpacks as src/vmm/tasks.c reads it (blvm_linux_layout_from_elf). Input: the payload, its
 * last 4 bytes the unpacked size the kernel's build appends; the harness puts it behind a setup
 * header of boot protocol 2.15 (payload_offset 0, payload_length the input's length).
 *
 * The contract (issue 13: a hostile kernel image): -1 with one line in err, nothing returned; or an
 * ELF of exactly the appended size, which is within the bound the caller gives (here 4 MiB, so that
 * no input makes the harness allocate more: the decoders write into that buffer only), and whose
 * layout, when accepted, keeps comm, pid and tgid inside task_struct. ASan watches both buffers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"
#include "introspect/linux.h"

#define SETUP 1024   /* setup_sects 1: (1 + 1) * 512 bytes before the protected-mode part */
#define FUZZ_MAX (4u << 20)

static void line_or_abort(const char *err)
{
	if (!err[0] || strchr(err, '\n'))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > UINT32_MAX - SETUP)
		return 0;
	uint8_t *f = calloc(1, SETUP + size);
	if (!f)
		return 0;
	f[0x1f1] = 1;                                  /* setup_sects */
	memcpy(f + 0x202, "HdrS", 4);                  /* header magic */
	f[0x206] = 0x0f, f[0x207] = 0x02;              /* protocol 2.15 */
	uint32_t len = (uint32_t)size;
	memcpy(f + 0x24c, &len, 4);                    /* payload_length; payload_offset 0 */
	memcpy(f + SETUP, data, size);

	uint8_t *v = (uint8_t *)1;
	size_t vlen = 0;
	char err[256] = "";
	int r = blvm_bzimage_vmlinux(f, SETUP + size, FUZZ_MAX, &v, &vlen, err, sizeof err);
	free(f);
	if (r == -1) {
		line_or_abort(err);
		if (v != NULL)
			abort();
		return 0;
	}
	uint32_t want;
	if (r != 0 || size < 4 || (memcpy(&want, data + size - 4, 4), vlen != want) || vlen > FUZZ_MAX || vlen < 64 ||
	    memcmp(v, "\177ELF", 4) != 0)
		abort();
	struct blvm_linux_layout l;
	err[0] = 0;
	r = blvm_linux_layout_from_elf(v, vlen, &l, err, sizeof err);
	if (r == -1)
		line_or_abort(err);
	else if (r != 0 || l.task_comm + (uint64_t)l.comm_len > l.task_size || l.task_pid + 4ull > l.task_size ||
		 l.task_tgid + 4ull > l.task_size || l.comm_len == 0)
		abort();
	free(v);
	return 0;
}
