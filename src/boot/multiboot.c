/* SPDX-License-Identifier: MIT */
/* Multiboot v1 (placeholder until the loader lands). */
#include "boot/boot.h"

long blvm_multiboot_find(const uint8_t *f, size_t len)
{
	(void)f;
	(void)len;
	return -1;
}

int blvm_multiboot_load(struct blvm_vm *vm, const struct blvm_boot_files *bf, char *err, size_t errlen)
{
	(void)vm;
	return blvm_boot_fail(err, errlen, "kernel %s: Multiboot is not supported yet", bf->path);
}
