/* SPDX-License-Identifier: MIT */
/*
 * The PC platform's devices, created with every VM: to add a device, write src/dev/NAME.c with a
 * dev_NAME_create() that registers its ranges on vm->bus (and its state with
 * blvm_bus_add_device), and add it to the table below (docs/HACKING.md, "Adding a device").
 */
#include <stdio.h>

#include "vmm/vmm.h"

int dev_uart_create(struct blvm_vm *vm, char *err, size_t errlen);
int dev_debug_exit_create(struct blvm_vm *vm, char *err, size_t errlen);

static int (*const device_table[])(struct blvm_vm *, char *, size_t) = {
	dev_uart_create, dev_debug_exit_create,
};

int blvm_devices_create(struct blvm_vm *vm, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof device_table / sizeof device_table[0]; i++)
		if (device_table[i](vm, err, errlen) != 0)
			return -1;
	return 0;
}
