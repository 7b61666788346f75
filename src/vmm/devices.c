/* SPDX-License-Identifier: MIT */
/*
 * The port and MMIO space: COM1 (a 16550 UART, transmit side), QEMU's isa-debug-exit at
 * 0xf4, and everything else. Unclaimed reads return all ones, as an unterminated ISA bus and
 * unbacked physical addresses do on real hardware; unclaimed writes are counted for --stats.
 */
#include <string.h>

#include "vmm/vmm.h"

/* 16550 registers (National Semiconductor PC16550D data sheet, table 2), offsets from base. */
enum { UART_THR = 0, UART_IER = 1, UART_IIR = 2, UART_LCR = 3, UART_MCR = 4, UART_LSR = 5,
       UART_MSR = 6, UART_SCR = 7 };
#define UART_LCR_DLAB 0x80
#define UART_LSR_THRE 0x20 /* transmitter holding register empty */
#define UART_LSR_TEMT 0x40 /* transmitter empty */
#define UART_IIR_NO_INT 0x01

void blvm_console_flush(struct blvm_vm *vm)
{
	fflush(vm->com1.out);
}

static void uart_write(struct blvm_uart *u, unsigned reg, uint8_t v)
{
	bool dlab = u->lcr & UART_LCR_DLAB;
	switch (reg) {
	case UART_THR:
		if (dlab) {
			u->dll = v;
		} else {
			/* Byte for byte to the console; a line is pushed out as soon as it ends so a
			 * watcher sees progress, and a flood costs one write per line at most. */
			putc(v, u->out);
			u->bytes++;
			if (v == '\n')
				fflush(u->out);
		}
		break;
	case UART_IER:
		if (dlab)
			u->dlm = v;
		else
			u->ier = v & 0x0f;
		break;
	case UART_LCR: u->lcr = v; break;
	case UART_MCR: u->mcr = v & 0x1f; break;
	case UART_SCR: u->scr = v; break;
	default: break; /* FCR, LSR, MSR: writes have no effect we model */
	}
}

static uint8_t uart_read(struct blvm_uart *u, unsigned reg)
{
	bool dlab = u->lcr & UART_LCR_DLAB;
	switch (reg) {
	case UART_THR: return dlab ? u->dll : 0; /* RBR: nothing is ever received */
	case UART_IER: return dlab ? u->dlm : u->ier;
	case UART_IIR: return UART_IIR_NO_INT;
	case UART_LCR: return u->lcr;
	case UART_MCR: return u->mcr;
	case UART_LSR: return UART_LSR_THRE | UART_LSR_TEMT; /* output is instantaneous */
	case UART_MSR: return 0xb0; /* CTS, DSR, DCD: a terminal is attached */
	case UART_SCR: return u->scr;
	}
	return 0xff;
}

void blvm_io(struct blvm_vm *vm, struct blvm_vcpu *vcpu, uint16_t port, bool is_write,
	     uint8_t *data, unsigned size)
{
	if (port >= COM1_BASE && port < COM1_BASE + 8) {
		/* The UART is a byte device; a wider access touches consecutive registers. */
		for (unsigned i = 0; i < size; i++) {
			unsigned reg = (port - COM1_BASE + i) & 7;
			if (is_write)
				uart_write(&vm->com1, reg, data[i]);
			else
				data[i] = uart_read(&vm->com1, reg);
		}
		return;
	}
	if (port == DEBUG_EXIT_PORT) {
		if (is_write) {
			uint32_t v = 0;
			memcpy(&v, data, size > 4 ? 4 : size);
			uint64_t rip = 0;
			struct kvm_regs regs;
			if (vm->ops->get_regs(vcpu->ev, &regs) == 0)
				rip = regs.rip;
			blvm_vm_end(vm, BLVM_END_GUEST_EXIT, (int)(v & 0xff), rip, "%s", "");
		} else {
			memset(data, 0xff, size);
		}
		return;
	}
	if (is_write) {
		vm->port_writes_unclaimed++;
	} else {
		vm->port_reads_unclaimed++;
		memset(data, 0xff, size);
	}
}

void blvm_mmio(struct blvm_vm *vm, uint64_t gpa, bool is_write, uint8_t *data, unsigned len)
{
	(void)gpa;
	if (is_write) {
		vm->mmio_writes++;
	} else {
		vm->mmio_reads++;
		memset(data, 0xff, len);
	}
}
