/* SPDX-License-Identifier: MIT */
/*
 * 16550A UART, as the National Semiconductor PC16550D data sheet describes it (register numbers
 * and bit names are the data sheet's, table 2 and section 8).
 *
 * What the serial line is: the transmitter hands bytes to the console's output buffer (console.c),
 * which a writer thread drains to stdout; the receiver takes bytes typed or piped into stdin. The
 * transmitter is as fast as the buffer: THR and the transmitter read empty (LSR.THRE, LSR.TEMT)
 * while the buffer has room for a whole FIFO load (16 bytes, what a driver may write after one
 * THRE), and not empty while it does not, so a guest that waits for THRE, as drivers do, waits for
 * stdout as it would for a slow line: nothing is dropped, and the vCPU never blocks in write(2).
 * A byte written while THRE is clear is lost and counted (tx_dropped), as an overrun of a real
 * transmitter loses it.
 *
 * The receiver FIFO is filled from the console's input buffer whenever it has room, so the host
 * side holds what the guest has not read yet (flow control: the reader thread stops reading stdin
 * when its buffer is full) and a receiver overrun happens only in loopback mode. The character
 * timeout interrupt (data sheet 8.6.2: data below the trigger level and no character for four
 * character times) is pending as soon as data sits below the trigger level, because bytes from the
 * host arrive in bursts that are already in the FIFO by the time the guest looks: waiting four
 * character times could only delay the guest. No parity, framing or break conditions arise.
 *
 * Interrupts: IIR reports the highest-priority pending source (data sheet table 4): receiver line
 * status, then received data available / character timeout, then THR empty, then modem status. The
 * INTR pin drives IRQ 4 through MCR.OUT2, as on every PC (OUT2 gates the UART's interrupt onto the
 * ISA bus; Linux's 8250 driver sets it for that reason); in loopback mode OUT2 is looped back
 * internally and the pin is inactive.
 */
#include <string.h>

#include "dev/dev.h"

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_ELSI 0x04  /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */

#define IIR_NO_INT 0x01
#define IIR_RLS 0x06
#define IIR_RDA 0x04
#define IIR_CTI 0x0c
#define IIR_THRE 0x02
#define IIR_MSR 0x00
#define IIR_FIFOS_ENABLED 0xc0

#define FCR_FIFO_ENABLE 0x01
#define FCR_RCVR_RESET 0x02
#define FCR_XMIT_RESET 0x04
#define FCR_DMA_MODE 0x08
#define FCR_TRIGGER 0xc0

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_PE 0x04
#define LSR_FE 0x08
#define LSR_BI 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

static bool fifo_mode(const struct uart16550 *u)
{
	return u->fcr & FCR_FIFO_ENABLE;
}

static unsigned rx_capacity(const struct uart16550 *u)
{
	return fifo_mode(u) ? UART_FIFO_SIZE : 1; /* 16450 mode: one receiver buffer register */
}

static unsigned rx_trigger(const struct uart16550 *u)
{
	static const unsigned level[4] = { 1, 4, 8, 14 }; /* FCR bits 7:6, data sheet table 3 */
	return fifo_mode(u) ? level[u->fcr >> 6] : 1;
}

/* The transmitter can take a FIFO load: what LSR.THRE and LSR.TEMT report. */
static bool thr_empty(const struct uart16550 *u)
{
	if (u->mcr & MCR_LOOP)
		return true; /* looped back into our own receiver at once */
	return u->tx_room(u->line) >= UART_FIFO_SIZE;
}

/* Modem inputs: a terminal is attached (CTS, DSR, DCD); in loopback the outputs come back
 * (data sheet 8.5, MCR bit 4: CTS = RTS, DSR = DTR, RI = OUT1, DCD = OUT2). */
static uint8_t modem_inputs(const struct uart16550 *u)
{
	if (!(u->mcr & MCR_LOOP))
		return MSR_CTS | MSR_DSR | MSR_DCD;
	uint8_t m = 0;
	if (u->mcr & MCR_RTS)
		m |= MSR_CTS;
	if (u->mcr & MCR_DTR)
		m |= MSR_DSR;
	if (u->mcr & MCR_OUT1)
		m |= MSR_RI;
	if (u->mcr & MCR_OUT2)
		m |= MSR_DCD;
	return m;
}

static void set_modem_inputs(struct uart16550 *u, uint8_t now)
{
	uint8_t was = u->msr & 0xf0, delta = 0;
	if ((was ^ now) & MSR_CTS)
		delta |= MSR_DCTS;
	if ((was ^ now) & MSR_DSR)
		delta |= MSR_DDSR;
	if ((was ^ now) & MSR_DCD)
		delta |= MSR_DDCD;
	if ((was & MSR_RI) && !(now & MSR_RI))
		delta |= MSR_TERI; /* trailing edge of ring indicator */
	u->msr = now | (u->msr & 0x0f) | delta;
}

static uint8_t iir_id(const struct uart16550 *u)
{
	if ((u->ier & IER_ELSI) && (u->lsr & LSR_ERRORS))
		return IIR_RLS;
	if ((u->ier & IER_ERBFI) && u->rx_count) {
		if (u->rx_count >= rx_trigger(u))
			return IIR_RDA;
		return IIR_CTI;
	}
	if ((u->ier & IER_ETBEI) && u->thre_pending)
		return IIR_THRE;
	if ((u->ier & IER_EDSSI) && (u->msr & 0x0f))
		return IIR_MSR;
	return IIR_NO_INT;
}

static void update_irq(struct uart16550 *u)
{
	bool level = iir_id(u) != IIR_NO_INT && (u->mcr & MCR_OUT2) && !(u->mcr & MCR_LOOP);
	if (level != u->irq_level) {
		u->irq_level = level;
		if (u->irq)
			u->irq(u->irq_opaque, level);
	}
}

static void rx_push(struct uart16550 *u, uint8_t b)
{
	if (u->rx_count == rx_capacity(u)) {
		u->lsr |= LSR_OE; /* the shift register's character is lost, the FIFO is kept */
		return;
	}
	u->rx_fifo[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = b;
	u->rx_count++;
}

/* Moves what the host has typed into the receiver while it has room (not in loopback, where the
 * serial input is disconnected: data sheet 8.5). */
static void rx_fill(struct uart16550 *u)
{
	if (u->mcr & MCR_LOOP)
		return;
	while (u->rx_count < rx_capacity(u)) {
		int b = u->rx_get(u->line);
		if (b < 0)
			break;
		u->rx_fifo[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = (uint8_t)b;
		u->rx_count++;
	}
}

void uart16550_reset(struct uart16550 *u)
{
	/* Data sheet table 6, "UART reset configuration". */
	u->ier = 0;
	u->lcr = 0;
	u->mcr = 0;
	u->lsr = 0;
	u->fcr = 0;
	u->scr = 0;
	u->dll = u->dlm = 0;
	u->rx_head = u->rx_count = 0;
	u->thre_pending = false;
	u->msr = modem_inputs(u);
	update_irq(u);
}

void uart16550_line_event(struct uart16550 *u)
{
	rx_fill(u);
	/* THR has just become empty again: the THRE interrupt (data sheet 8.6.3) fires when the
	 * transmitter had been reported busy. */
	if (u->tx_waiting && thr_empty(u)) {
		u->thre_pending = true;
		u->tx_waiting = false;
	}
	update_irq(u);
}

uint8_t uart16550_read(struct uart16550 *u, unsigned reg)
{
	bool dlab = u->lcr & LCR_DLAB;
	uint8_t v = 0xff;
	switch (reg & 7) {
	case UART_RBR:
		if (dlab)
			return u->dll;
		v = 0;
		if (u->rx_count) {
			v = u->rx_fifo[u->rx_head];
			u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
			u->rx_count--;
		}
		rx_fill(u);
		break;
	case UART_IER:
		return dlab ? u->dlm : u->ier;
	case UART_IIR: {
		uint8_t id = iir_id(u);
		v = id | (fifo_mode(u) ? IIR_FIFOS_ENABLED : 0);
		if (id == IIR_THRE)
			u->thre_pending = false; /* reading IIR clears a THRE interrupt it reports */
		break;
	}
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR: {
		bool empty = thr_empty(u);
		if (!empty)
			u->tx_waiting = true;
		v = (uint8_t)(u->lsr | (u->rx_count ? LSR_DR : 0) | (empty ? LSR_THRE | LSR_TEMT : 0));
		u->lsr &= (uint8_t)~LSR_ERRORS; /* reading LSR clears OE, PE, FE, BI */
		break;
	}
	case UART_MSR:
		v = u->msr;
		u->msr &= 0xf0; /* reading MSR clears the delta bits */
		break;
	case UART_SCR:
		return u->scr;
	}
	update_irq(u);
	return v;
}

void uart16550_write(struct uart16550 *u, unsigned reg, uint8_t v)
{
	bool dlab = u->lcr & LCR_DLAB;
	switch (reg & 7) {
	case UART_THR:
		if (dlab) {
			u->dll = v;
			return;
		}
		if (u->mcr & MCR_LOOP) {
			rx_push(u, v); /* serial output looped into the receiver */
			u->thre_pending = true;
			break;
		}
		if (!thr_empty(u) || !u->tx_put(u->line, v)) {
			u->tx_dropped++;
		} else {
			u->tx_bytes++;
		}
		/* The byte moves to the (instant) transmitter: THR is empty again at once when the
		 * buffer still has room; otherwise the THRE interrupt waits for the writer thread. */
		u->thre_pending = thr_empty(u);
		if (!u->thre_pending)
			u->tx_waiting = true;
		break;
	case UART_IER:
		if (dlab) {
			u->dlm = v;
			return;
		}
		if ((v & IER_ETBEI) && !(u->ier & IER_ETBEI) && thr_empty(u))
			u->thre_pending = true; /* enabling ETBEI with THR empty interrupts at once */
		u->ier = v & 0x0f;
		break;
	case UART_FCR:
		/* FCR0 must be set for the other bits to be written; changing it clears both FIFOs
		 * (data sheet 8.4). The transmitter FIFO is the console buffer: already sent. */
		if ((v & FCR_FIFO_ENABLE) != (u->fcr & FCR_FIFO_ENABLE) || (v & FCR_RCVR_RESET))
			u->rx_head = u->rx_count = 0;
		u->fcr = (v & FCR_FIFO_ENABLE) ? (uint8_t)(v & (FCR_FIFO_ENABLE | FCR_DMA_MODE | FCR_TRIGGER)) : 0;
		rx_fill(u);
		break;
	case UART_LCR:
		u->lcr = v;
		return;
	case UART_MCR:
		u->mcr = v & 0x1f;
		set_modem_inputs(u, modem_inputs(u));
		rx_fill(u);
		break;
	case UART_LSR:
	case UART_MSR:
		return; /* factory test registers: writes ignored */
	case UART_SCR:
		u->scr = v;
		return;
	}
	update_irq(u);
}

/* ---- COM1 on the VM: port 0x3f8, IRQ 4, the console behind it --------------------------------- */

#include <stdlib.h>

#include "vmm/vmm.h"

struct com1 {
	struct uart16550 uart;
	struct blvm_vm *vm;
};

static size_t line_tx_room(void *line) { return blvm_console_tx_room(line); }
static bool line_tx_put(void *line, uint8_t b) { return blvm_console_tx_put(line, b); }
static int line_rx_get(void *line) { return blvm_console_rx_get(line); }

static void com1_irq(void *opaque, int level)
{
	struct com1 *c = opaque;
	blvm_irq_line(c->vm, DEV_COM1_IRQ, level);
}

/* From the console's threads, with no lock held. */
static void com1_notify(void *opaque)
{
	struct com1 *c = opaque;
	pthread_mutex_lock(&c->vm->lock);
	uart16550_line_event(&c->uart);
	pthread_mutex_unlock(&c->vm->lock);
}

static void com1_access(void *opaque, struct blvm_vcpu *vcpu, uint64_t offset, bool is_write, uint8_t *data,
			unsigned size)
{
	struct com1 *c = opaque;
	(void)vcpu;
	/* A byte device: a wider access inside the 8 registers touches consecutive registers. */
	for (unsigned i = 0; i < size; i++) {
		if (is_write)
			uart16550_write(&c->uart, (unsigned)offset + i, data[i]);
		else
			data[i] = uart16550_read(&c->uart, (unsigned)offset + i);
	}
}

static void com1_destroy(void *opaque)
{
	struct com1 *c = opaque;
	blvm_console_destroy(c->vm->console);
	c->vm->console = NULL;
	c->vm->com1 = NULL;
	free(c);
}

int dev_uart_create(struct blvm_vm *vm, char *err, size_t errlen)
{
	struct com1 *c = calloc(1, sizeof *c);
	FILE *out = vm->cfg.console ? vm->cfg.console : stdout;
	fflush(out);
	if (c)
		vm->console = blvm_console_create(vm, vm->cfg.console_in, fileno(out), com1_notify, c);
	if (!c || !vm->console) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->vm = vm;
	c->uart.line = vm->console;
	c->uart.tx_room = line_tx_room;
	c->uart.tx_put = line_tx_put;
	c->uart.rx_get = line_rx_get;
	c->uart.irq = com1_irq;
	c->uart.irq_opaque = c;
	uart16550_reset(&c->uart);
	vm->com1 = &c->uart;
	struct blvm_region r = { .name = "COM1", .space = BLVM_SPACE_PIO, .base = DEV_COM1_BASE, .len = 8,
				 .access = com1_access, .opaque = c };
	if (blvm_bus_add_device(&vm->bus, c, com1_destroy) != 0) {
		com1_destroy(c);
		snprintf(err, errlen, "too many devices");
		return -1;
	}
	if (blvm_bus_register(&vm->bus, &r) != 0) {
		snprintf(err, errlen, "cannot register %s", r.name);
		return -1;
	}
	return 0;
}
