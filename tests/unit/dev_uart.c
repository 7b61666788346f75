/* SPDX-License-Identifier: MIT */
/*
 * The 16550A model (src/dev/uart.c) against the PC16550D data sheet: reset values (table 6), the
 * divisor latch (DLAB), the scratch register, IIR's priority order (table 4) and what clears each
 * source, the FIFOs and their trigger levels (FCR), the character timeout, loopback (MCR bit 4:
 * modem outputs on the modem inputs, transmitter into the receiver, overrun), LSR and MSR clearing,
 * MCR.OUT2 gating the IRQ as on a PC; and blvm's serial line: THRE/TEMT follow the console
 * buffer's room (back-pressure, no byte dropped while the guest waits for THRE), input held on the
 * host side while the FIFO is full (nothing lost).
 */
#include <stdio.h>
#include <string.h>

#include "dev/dev.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)
#define CHECK_EQ(a, b) do { unsigned long long _a = (a), _b = (b); if (_a != _b) { \
	fprintf(stderr, "%s:%d: %s = 0x%llx, expected 0x%llx\n", __FILE__, __LINE__, #a, _a, _b); failures++; } } while (0)

/* The serial line: an output buffer with settable room, and bytes waiting to be received. */
struct line {
	size_t room;
	uint8_t out[256];
	size_t nout;
	uint8_t in[256];
	size_t in_head, in_len;
	int irq, irq_changes;
};

static size_t tx_room(void *p) { return ((struct line *)p)->room; }
static bool tx_put(void *p, uint8_t b)
{
	struct line *l = p;
	if (!l->room)
		return false;
	l->room--;
	l->out[l->nout++ % sizeof l->out] = b;
	return true;
}
static int rx_get(void *p)
{
	struct line *l = p;
	if (l->in_head == l->in_len)
		return -1;
	return l->in[l->in_head++];
}
static void irq(void *p, int level)
{
	struct line *l = p;
	l->irq = level;
	l->irq_changes++;
}

static void setup(struct uart16550 *u, struct line *l)
{
	memset(l, 0, sizeof *l);
	memset(u, 0, sizeof *u);
	l->room = 1000;
	u->line = l;
	u->tx_room = tx_room;
	u->tx_put = tx_put;
	u->rx_get = rx_get;
	u->irq = irq;
	u->irq_opaque = l;
	uart16550_reset(u);
}

static void type(struct uart16550 *u, struct line *l, const char *s)
{
	size_t n = strlen(s);
	memcpy(l->in + l->in_len, s, n);
	l->in_len += n;
	uart16550_line_event(u);
}

static void test_reset_and_registers(void)
{
	struct uart16550 u;
	struct line l;
	setup(&u, &l);
	/* Table 6: IER 0, IIR 0x01, FCR 0, LCR 0, MCR 0, LSR 0x60; MSR: CTS, DSR, DCD of an attached terminal. */
	CHECK_EQ(uart16550_read(&u, UART_IER), 0);
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0x01);
	CHECK_EQ(uart16550_read(&u, UART_LCR), 0);
	CHECK_EQ(uart16550_read(&u, UART_MCR), 0);
	CHECK_EQ(uart16550_read(&u, UART_LSR), 0x60);
	CHECK_EQ(uart16550_read(&u, UART_MSR), 0xb0);
	CHECK_EQ(l.irq_changes, 0);
	/* Divisor latch behind DLAB; IER and RBR/THR again without it. */
	uart16550_write(&u, UART_IER, 0x05);
	uart16550_write(&u, UART_LCR, 0x83);
	uart16550_write(&u, UART_DLL, 0x0c);
	uart16550_write(&u, UART_DLM, 0x01);
	CHECK_EQ(uart16550_read(&u, UART_DLL), 0x0c);
	CHECK_EQ(uart16550_read(&u, UART_DLM), 0x01);
	CHECK_EQ(l.nout, 0); /* a divisor write is not a byte sent */
	uart16550_write(&u, UART_LCR, 0x03);
	CHECK_EQ(uart16550_read(&u, UART_LCR), 0x03);
	CHECK_EQ(uart16550_read(&u, UART_IER), 0x05);
	/* IER keeps its 4 bits (Linux's autoconfig writes 0x0f and expects 0x0f back). */
	uart16550_write(&u, UART_IER, 0xff);
	CHECK_EQ(uart16550_read(&u, UART_IER), 0x0f);
	uart16550_write(&u, UART_IER, 0);
	uart16550_write(&u, UART_SCR, 0xa5);
	CHECK_EQ(uart16550_read(&u, UART_SCR), 0xa5);
	/* MCR keeps 5 bits. */
	uart16550_write(&u, UART_MCR, 0xff);
	CHECK_EQ(uart16550_read(&u, UART_MCR), 0x1f);
}

static void test_transmit_backpressure(void)
{
	struct uart16550 u;
	struct line l;
	setup(&u, &l);
	uart16550_write(&u, UART_THR, 'h');
	uart16550_write(&u, UART_THR, 'i');
	CHECK_EQ(l.nout, 2);
	CHECK(l.out[0] == 'h' && l.out[1] == 'i');
	CHECK_EQ(u.tx_bytes, 2);
	/* Less than a FIFO load of room: THR and the transmitter are not empty. */
	l.room = 15;
	CHECK_EQ(uart16550_read(&u, UART_LSR) & 0x60, 0);
	l.room = 16;
	CHECK_EQ(uart16550_read(&u, UART_LSR) & 0x60, 0x60);
	/* A byte written while THRE is clear is lost, and counted. */
	l.room = 3;
	uart16550_write(&u, UART_THR, 'x');
	CHECK_EQ(u.tx_dropped, 1);
	CHECK_EQ(l.nout, 2);
}

static void test_thre_interrupt(void)
{
	struct uart16550 u;
	struct line l;
	setup(&u, &l);
	/* Without OUT2 the interrupt is pending in IIR but the PC's IRQ line stays low. */
	uart16550_write(&u, UART_IER, 0x02);
	CHECK_EQ(l.irq, 0);
	uart16550_write(&u, UART_IER, 0x00);
	uart16550_write(&u, UART_MCR, 0x08); /* OUT2 */
	CHECK_EQ(l.irq, 0);
	/* Enabling ETBEI with THR empty raises the THRE interrupt at once. */
	uart16550_write(&u, UART_IER, 0x02);
	CHECK_EQ(l.irq, 1);
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0x02);
	/* Reading IIR that reports THRE clears it. */
	CHECK_EQ(l.irq, 0);
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0x01);
	/* A THR write: the byte leaves at once, THR is empty again, the interrupt comes back. */
	uart16550_write(&u, UART_THR, 'a');
	CHECK_EQ(l.irq, 1);
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0x02);
	/* The console buffer fills: no THRE interrupt until the writer makes room. */
	l.room = 16;
	uart16550_write(&u, UART_THR, 'b');
	CHECK_EQ(l.room, 15);
	CHECK_EQ(l.irq, 0);
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0x01);
	CHECK_EQ(uart16550_read(&u, UART_LSR) & 0x60, 0);
	l.room = 100;
	uart16550_line_event(&u);
	CHECK_EQ(l.irq, 1);
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0x02);
	CHECK_EQ(uart16550_read(&u, UART_LSR) & 0x60, 0x60);
}

static void test_receive_16450_mode(void)
{
	struct uart16550 u;
	struct line l;
	setup(&u, &l);
	uart16550_write(&u, UART_MCR, 0x08);
	uart16550_write(&u, UART_IER, 0x01);
	CHECK_EQ(uart16550_read(&u, UART_LSR) & 1, 0);
	type(&u, &l, "ok");
	CHECK_EQ(l.irq, 1);
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0x04); /* received data available, no FIFO bits */
	CHECK_EQ(uart16550_read(&u, UART_LSR) & 1, 1);
	CHECK_EQ(uart16550_read(&u, UART_RBR), 'o');
	/* One receiver buffer register: 'k' moved in as 'o' left; nothing lost. */
	CHECK_EQ(uart16550_read(&u, UART_LSR) & 1, 1);
	CHECK_EQ(uart16550_read(&u, UART_RBR), 'k');
	CHECK_EQ(uart16550_read(&u, UART_LSR) & 1, 0);
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0x01);
	CHECK_EQ(l.irq, 0);
}

static void test_fifo_trigger_timeout_flow_control(void)
{
	struct uart16550 u;
	struct line l;
	setup(&u, &l);
	uart16550_write(&u, UART_MCR, 0x08);
	uart16550_write(&u, UART_FCR, 0xc7); /* enable, clear both, trigger 14 */
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0xc1);
	uart16550_write(&u, UART_IER, 0x01);
	type(&u, &l, "abcdefghijklmnopqrstuvwxyz"); /* 26 bytes: 16 in the FIFO, 10 held by the host */
	CHECK_EQ(u.rx_count, 16);
	CHECK_EQ(l.in_len - l.in_head, 10);
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0xc4); /* at or above the trigger level */
	char got[32] = { 0 };
	unsigned n = 0;
	while ((uart16550_read(&u, UART_LSR) & 1) && n < 30) {
		if (n == 20)
			CHECK_EQ(uart16550_read(&u, UART_IIR), 0xcc); /* 6 left, below 14: character timeout */
		got[n++] = (char)uart16550_read(&u, UART_RBR);
	}
	CHECK_EQ(n, 26);
	CHECK(strcmp(got, "abcdefghijklmnopqrstuvwxyz") == 0);
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0xc1);
	CHECK_EQ(l.irq, 0);
	/* Trigger levels 1, 4, 8, 14 (FCR bits 7:6). */
	static const unsigned trig[4] = { 1, 4, 8, 14 };
	for (unsigned t = 0; t < 4; t++) {
		setup(&u, &l);
		uart16550_write(&u, UART_FCR, (uint8_t)(0x07 | t << 6));
		uart16550_write(&u, UART_IER, 0x01);
		char s[20] = { 0 };
		memset(s, 'x', trig[t] - 1);
		type(&u, &l, s);
		CHECK_EQ(uart16550_read(&u, UART_IIR), trig[t] == 1 ? 0xc1 : 0xcc);
		type(&u, &l, "y");
		CHECK_EQ(uart16550_read(&u, UART_IIR), 0xc4);
	}
	/* FCR bit 1 empties the receiver FIFO; turning the FIFOs off empties it too. */
	setup(&u, &l);
	uart16550_write(&u, UART_FCR, 0x01);
	type(&u, &l, "abc");
	uart16550_write(&u, UART_FCR, 0x03);
	CHECK_EQ(uart16550_read(&u, UART_LSR) & 1, 0);
}

static void test_loopback_priority(void)
{
	struct uart16550 u;
	struct line l;
	setup(&u, &l);
	uart16550_write(&u, UART_IER, 0x0f);
	uart16550_write(&u, UART_MCR, 0x18); /* loopback, OUT2 */
	CHECK_EQ(l.irq, 0);                  /* in loopback the IRQ pin is inactive */
	/* Outputs on the inputs: RTS -> CTS, DTR -> DSR, OUT1 -> RI, OUT2 -> DCD. Linux's
	 * autoconfig writes LOOP | 0x0a and expects 0x90. */
	uart16550_write(&u, UART_MCR, 0x1a);
	CHECK_EQ(uart16550_read(&u, UART_MSR) & 0xf0, 0x90);
	uart16550_write(&u, UART_MCR, 0x1f);
	CHECK_EQ(uart16550_read(&u, UART_MSR), 0xf0 | 0x02); /* DSR rose (DDSR); RI rising is no delta */
	uart16550_write(&u, UART_MCR, 0x1b);                 /* OUT1 off: RI falls: TERI */
	CHECK_EQ(uart16550_read(&u, UART_MSR), 0xb4);
	CHECK_EQ(uart16550_read(&u, UART_MSR), 0xb0);        /* deltas cleared by the read */
	/* Transmitter into the receiver, none of it on the console; a second byte with the
	 * (non-FIFO) holding register full is an overrun. */
	uart16550_read(&u, UART_IIR);
	uart16550_write(&u, UART_THR, 'x');
	uart16550_write(&u, UART_THR, 'y');
	CHECK_EQ(l.nout, 0);
	/* Priority (table 4): line status, then received data, then THR empty, then modem status. */
	uart16550_write(&u, UART_MCR, 0x10); /* all outputs off: CTS, DSR, DCD fall: modem status too */
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0x06);
	CHECK_EQ(uart16550_read(&u, UART_LSR), 0x63); /* OE | DR | THRE | TEMT */
	CHECK_EQ(uart16550_read(&u, UART_LSR), 0x61); /* OE cleared by the read */
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0x04);
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0x04); /* reading IIR does not clear a data interrupt */
	CHECK_EQ(uart16550_read(&u, UART_RBR), 'x');
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0x02);
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0x00);
	CHECK_EQ(uart16550_read(&u, UART_MSR), 0x0b);
	CHECK_EQ(uart16550_read(&u, UART_IIR), 0x01);
	/* Host input waits while in loopback (the serial input is disconnected), arrives after. */
	type(&u, &l, "z");
	CHECK_EQ(uart16550_read(&u, UART_LSR) & 1, 0);
	uart16550_write(&u, UART_MCR, 0x08);
	CHECK_EQ(uart16550_read(&u, UART_RBR), 'z');
}

int main(void)
{
	test_reset_and_registers();
	test_transmit_backpressure();
	test_thre_interrupt();
	test_receive_16450_mode();
	test_fifo_trigger_timeout_flow_control();
	test_loopback_priority();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("dev_uart: all checks passed\n");
	return 0;
}
