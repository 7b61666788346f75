/* SPDX-License-Identifier: MIT */
/*
 * The 8042 keyboard controller of a PC/AT with the PS/2 auxiliary port, as much of it as a PC
 * without a keyboard or a mouse plugged in has: its reset line and the controller itself (the
 * command set of the IBM PC AT technical reference, "Keyboard Controller", and the IBM PS/2
 * hardware interface technical reference's auxiliary-device commands).
 *
 * Reads: port 0x64 is the status register, 0x1c after power-on self test (SYS flag set, keyboard not
 * inhibited, last write a command), with OBF (bit 0) set only while a byte waits in the output
 * buffer, AUXB (bit 5) when that byte came from the auxiliary side, TIMEOUT (bit 6) when it reports
 * a time-out; port 0x60 returns that byte (the last one again when there is none).
 *
 * No device is plugged into either port. A byte sent to one (port 0x60 without a pending command:
 * the keyboard; command 0xd4 and its byte: the auxiliary device) is never clocked in, and the
 * controller reports the transmit time-out as a PS/2 controller does: 0xfe in the output buffer with
 * the TIMEOUT bit (and AUXB for the auxiliary port). A driver learns at once that nothing answers
 * (Linux's libps2 takes 0xfe as a NAK and gives up) instead of waiting for its own time-outs.
 * Commands 0xd2 and 0xd3 write the keyboard's / the auxiliary device's output buffer: the next
 * data byte comes back as if that device had sent it (Linux tests the auxiliary port, and the
 * delivery of its interrupt, with 0xd3).
 *
 * Interrupts: the output buffer drives IRQ 1 (a keyboard byte, command byte bit 0 set) or IRQ 12 (an
 * auxiliary byte, command byte bit 1), high while the byte waits, as the controller's OBF and
 * MOBF outputs are wired on a PC/AT; reading port 0x60 lowers it. i8042_irq_levels() says which.
 *
 * Reset: command 0xfe (pulse output port bit 0, CPU reset) or any of 0xf0-0xff with bit 0 clear,
 * or command 0xd1 writing an output port value with bit 0 clear, resets the machine: blvm ends the
 * VM as `qemu -no-reboot` does.
 */
#include "dev/dev.h"

#define STAT_OBF 0x01
#define STAT_SYS 0x04
#define STAT_CMD 0x08     /* A2: the last write went to port 0x64 */
#define STAT_UNLOCKED 0x10
#define STAT_AUXB 0x20    /* the output buffer holds a byte of the auxiliary side */
#define STAT_TIMEOUT 0x40 /* general time-out: a byte sent to a device was not taken */

#define CCB_KBD_INT 0x01
#define CCB_AUX_INT 0x02

#define CCB_KBD_DISABLE 0x10
#define CCB_AUX_DISABLE 0x20

void i8042_init(struct i8042 *k)
{
	k->status = STAT_SYS | STAT_CMD | STAT_UNLOCKED;
	k->ccb = 0x45;      /* keyboard interrupt, SYS, scancode translation: as firmware leaves it */
	k->out_port = 0xcf; /* reset line high (not in reset), A20 enabled: QEMU's initial value */
	k->obuf = 0;
	k->pending_cmd = 0;
}

/* A byte into the output buffer, from the controller or the keyboard side (aux false) or from the
 * auxiliary side; timeout: it is the controller's time-out report. */
static void output(struct i8042 *k, uint8_t v, bool aux, bool timeout)
{
	k->obuf = v;
	k->status = (uint8_t)((k->status & ~(STAT_AUXB | STAT_TIMEOUT)) | STAT_OBF | (aux ? STAT_AUXB : 0) |
			      (timeout ? STAT_TIMEOUT : 0));
}

static void answer(struct i8042 *k, uint8_t v)
{
	output(k, v, false, false);
}

unsigned i8042_irq_levels(const struct i8042 *k)
{
	if (!(k->status & STAT_OBF))
		return 0;
	if (k->status & STAT_AUXB)
		return (k->ccb & CCB_AUX_INT) ? I8042_IRQ_AUX : 0;
	return (k->ccb & CCB_KBD_INT) ? I8042_IRQ_KBD : 0;
}

uint8_t i8042_read(struct i8042 *k, unsigned port)
{
	if (port == DEV_I8042_CMD)
		return k->status;
	k->status &= (uint8_t)~STAT_OBF;
	return k->obuf;
}

enum pm_event i8042_write(struct i8042 *k, unsigned port, uint8_t v)
{
	if (port == DEV_I8042_DATA) {
		k->status &= (uint8_t)~STAT_CMD;
		uint8_t cmd = k->pending_cmd;
		k->pending_cmd = 0;
		if (cmd == 0x60) {
			k->ccb = v;
		} else if (cmd == 0xd1) {
			k->out_port = v;
			if (!(v & 1))
				return PM_EVENT_RESET;
		} else if (cmd == 0xd2 || cmd == 0xd3) {
			output(k, v, cmd == 0xd3, false); /* as if the keyboard / auxiliary device sent it */
		} else {
			output(k, 0xfe, cmd == 0xd4, true); /* to a device that is not there: time-out */
		}
		return PM_EVENT_NONE;
	}
	k->status |= STAT_CMD;
	k->pending_cmd = 0;
	switch (v) {
	case 0x20: answer(k, k->ccb); break;                 /* read command byte */
	case 0x60: case 0xd1: k->pending_cmd = v; break;    /* write command byte / output port */
	case 0xd2: case 0xd3: case 0xd4: k->pending_cmd = v; break; /* write kbd / aux output buffer, to aux */
	case 0xa7: k->ccb |= CCB_AUX_DISABLE; break;
	case 0xa8: k->ccb &= (uint8_t)~CCB_AUX_DISABLE; break;
	case 0xa9: answer(k, 0x00); break;                  /* aux interface test: no error */
	case 0xaa: answer(k, 0x55); break;                  /* controller self test passed */
	case 0xab: answer(k, 0x00); break;                  /* keyboard interface test: no error */
	case 0xad: k->ccb |= CCB_KBD_DISABLE; break;
	case 0xae: k->ccb &= (uint8_t)~CCB_KBD_DISABLE; break;
	case 0xd0: answer(k, k->out_port); break;           /* read output port */
	default:
		if (v >= 0xf0 && !(v & 1))
			return PM_EVENT_RESET;                     /* pulse output port bit 0: CPU reset */
		break;
	}
	return PM_EVENT_NONE;
}

/* ---- the i8042 on the VM: ports 0x60 and 0x64 -------------------------------------------------- */

#include <stdio.h>
#include <stdlib.h>

#include "vmm/vmm.h"

struct i8042_dev {
	struct i8042 kbc;
	struct blvm_vm *vm;
	unsigned irq_levels; /* I8042_IRQ_* as last driven */
};

static void update_irqs(struct i8042_dev *d)
{
	unsigned l = i8042_irq_levels(&d->kbc), changed = l ^ d->irq_levels;
	d->irq_levels = l;
	if (changed & I8042_IRQ_KBD)
		blvm_irq_line(d->vm, DEV_I8042_IRQ_KBD, !!(l & I8042_IRQ_KBD));
	if (changed & I8042_IRQ_AUX)
		blvm_irq_line(d->vm, DEV_I8042_IRQ_AUX, !!(l & I8042_IRQ_AUX));
}

static void i8042_access(void *opaque, struct blvm_vcpu *vcpu, uint64_t offset, bool is_write, uint8_t *data,
			 unsigned size, unsigned port)
{
	struct i8042_dev *d = opaque;
	(void)offset;
	for (unsigned i = 0; i < size; i++) {
		if (!is_write)
			data[i] = i8042_read(&d->kbc, port);
		else if (i8042_write(&d->kbc, port, data[i]) == PM_EVENT_RESET)
			dev_platform_event(d->vm, vcpu, PM_EVENT_RESET, "i8042 reset");
	}
	update_irqs(d);
}

static void i8042_data_access(void *o, struct blvm_vcpu *v, uint64_t off, bool w, uint8_t *d, unsigned n)
{
	i8042_access(o, v, off, w, d, n, DEV_I8042_DATA);
}

static void i8042_cmd_access(void *o, struct blvm_vcpu *v, uint64_t off, bool w, uint8_t *d, unsigned n)
{
	i8042_access(o, v, off, w, d, n, DEV_I8042_CMD);
}

int dev_i8042_create(struct blvm_vm *vm, char *err, size_t errlen)
{
	struct i8042_dev *d = calloc(1, sizeof *d);
	if (!d || blvm_bus_add_device(&vm->bus, d, free) != 0) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->vm = vm;
	i8042_init(&d->kbc);
	struct blvm_region data = { .name = "i8042-data", .space = BLVM_SPACE_PIO, .base = DEV_I8042_DATA,
				    .len = 1, .access = i8042_data_access, .opaque = d };
	struct blvm_region cmd = { .name = "i8042-cmd", .space = BLVM_SPACE_PIO, .base = DEV_I8042_CMD,
				   .len = 1, .access = i8042_cmd_access, .opaque = d };
	if (blvm_bus_register(&vm->bus, &data) != 0 || blvm_bus_register(&vm->bus, &cmd) != 0) {
		snprintf(err, errlen, "cannot register the i8042");
		return -1;
	}
	return 0;
}
