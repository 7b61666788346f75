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
int dev_rtc_create(struct blvm_vm *vm, char *err, size_t errlen);
int dev_fw_cfg_create(struct blvm_vm *vm, char *err, size_t errlen);
int dev_pm_create(struct blvm_vm *vm, char *err, size_t errlen);
int dev_i8042_create(struct blvm_vm *vm, char *err, size_t errlen);
int dev_pc_testdev_create(struct blvm_vm *vm, char *err, size_t errlen);
int dev_engine_ports_create(struct blvm_vm *vm, char *err, size_t errlen);

static int (*const device_table[])(struct blvm_vm *, char *, size_t) = {
	dev_uart_create, dev_debug_exit_create, dev_rtc_create, dev_fw_cfg_create, dev_pm_create,
	dev_i8042_create, dev_pc_testdev_create, dev_engine_ports_create,
};

void dev_platform_event(struct blvm_vm *vm, struct blvm_vcpu *vcpu, enum pm_event ev, const char *how)
{
	/* As `qemu -no-reboot`: a reset ends the VM as a power-off does, status 0, saying which. */
	if (ev == PM_EVENT_POWEROFF)
		blvm_vm_end(vm, BLVM_END_POWEROFF, 0, blvm_vcpu_rip(vcpu), "guest powered off (%s)", how);
	else if (ev == PM_EVENT_RESET)
		blvm_vm_end(vm, BLVM_END_REBOOT, 0, blvm_vcpu_rip(vcpu), "guest rebooted (%s)", how);
}

int blvm_devices_create(struct blvm_vm *vm, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof device_table / sizeof device_table[0]; i++)
		if (device_table[i](vm, err, errlen) != 0)
			return -1;
	vm->acpi_rsdp = acpi_build_tables(vm->ram, vm->cfg.mem_size, vm->cfg.nr_vcpus, err, errlen);
	return vm->acpi_rsdp ? 0 : -1;
}
