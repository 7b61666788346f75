/* SPDX-License-Identifier: MIT */
/*
 * The runtime's C half: IDT and exception reports, boot information, console, exit.
 * entry.S calls rt_start() on the boot CPU once long mode, the stack and .bss are ready.
 */
#include "rt.h"

/* Set by entry.S from ebx before anything else runs. */
extern uint64_t rt_start_info_paddr;
extern char rt_pml4[];
extern char rt_isr_stubs[];

__attribute__((noreturn)) void rt_start(void);
void rt_trap(struct rt_frame *f);

/* ---- console -------------------------------------------------------------------------------- */

#define UART_THR 0 /* transmit holding register (write) */
#define UART_LSR 5 /* line status register */
#define UART_LSR_THRE 0x20

void rt_putc(char c)
{
	/* A real 16550 drops bytes written while THR is full; blvm and QEMU report it empty at
	 * once. No PAUSE in the loop: plain instructions only. */
	while (!(inb(RT_COM1 + UART_LSR) & UART_LSR_THRE))
		;
	outb(RT_COM1 + UART_THR, (uint8_t)c);
}

void rt_puts(const char *s)
{
	while (*s)
		rt_putc(*s++);
}

/* ---- exit ----------------------------------------------------------------------------------- */

void rt_exit(uint32_t status)
{
	/* QEMU's isa-debug-exit (iosize=4) and blvm both take a 32-bit OUT here. */
	outl(RT_DEBUG_EXIT_PORT, status);
	for (;;) {
		cli();
		hlt();
	}
}

void rt_assert_failed(const char *expr, const char *file, int line)
{
	rt_printf("blvm-rt: assertion failed: %s (%s:%d)\n", expr, file, line);
	rt_exit(RT_EXIT_FAIL);
}

/* ---- boot information ------------------------------------------------------------------------ */

static const struct hvm_start_info *start_info;

const struct hvm_start_info *rt_start_info(void) { return start_info; }

const char *rt_cmdline(void)
{
	if (!start_info || !start_info->cmdline_paddr)
		return "";
	return (const char *)(uintptr_t)start_info->cmdline_paddr;
}

unsigned rt_memmap_count(void)
{
	if (!start_info || start_info->version < 1 || !start_info->memmap_paddr)
		return 0;
	return start_info->memmap_entries;
}

const struct hvm_memmap_table_entry *rt_memmap_entry(unsigned i)
{
	if (i >= rt_memmap_count())
		return NULL;
	return (const struct hvm_memmap_table_entry *)(uintptr_t)start_info->memmap_paddr + i;
}

static uint64_t ram_top(uint64_t limit)
{
	uint64_t top = 0;
	for (unsigned i = 0; i < rt_memmap_count(); i++) {
		const struct hvm_memmap_table_entry *e = rt_memmap_entry(i);
		if (e->type != RT_E820_RAM || e->addr >= limit)
			continue;
		uint64_t end = e->addr + e->size;
		if (end > limit || end < e->addr)
			end = limit;
		if (end > top)
			top = end;
	}
	return top;
}

uint64_t rt_ram_top(void) { return ram_top(UINT64_MAX); }
uint64_t rt_ram_top_below_4g(void) { return ram_top(1ull << 32); }

uint64_t rt_pml4_paddr(void) { return (uint64_t)(uintptr_t)rt_pml4; }

/* ---- IDT and exceptions ------------------------------------------------------------------------ */

/* A 64-bit interrupt gate (SDM Vol. 3A 6.14.1, Figure 6-8). */
struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr; /* P=1, DPL=0, type 0xE (64-bit interrupt gate: IF cleared on entry) */
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
};
_Static_assert(sizeof(struct idt_gate) == 16, "IDT gate is 16 bytes");
_Static_assert(sizeof(struct rt_frame) == 23 * 8, "rt_frame matches isr.S");

static struct idt_gate idt[256] __attribute__((aligned(16)));
static rt_handler_fn handlers[256];

static const char *const mnemonics[32] = {
	"DE", "DB", "NMI", "BP", "OF", "BR", "UD", "NM", "DF", "??", "TS", "NP", "SS", "GP", "PF", "??",
	"MF", "AC", "MC", "XM", "VE", "CP", "??", "??", "??", "??", "??", "??", "??", "??", "??", "??",
};

const char *rt_exception_mnemonic(unsigned vector) { return vector < 32 ? mnemonics[vector] : "??"; }

rt_handler_fn rt_set_handler(unsigned vector, rt_handler_fn fn)
{
	if (vector >= 256)
		return NULL;
	rt_handler_fn old = handlers[vector];
	handlers[vector] = fn;
	return old;
}

static void idt_init(void)
{
	for (unsigned v = 0; v < 256; v++) {
		uint64_t a = (uint64_t)(uintptr_t)rt_isr_stubs + (uint64_t)v * RT_ISR_STUB_SIZE;
		idt[v] = (struct idt_gate){
			.offset_lo = (uint16_t)a,
			.selector = RT_SEL_CODE64,
			.ist = 0,
			.type_attr = 0x8e,
			.offset_mid = (uint16_t)(a >> 16),
			.offset_hi = (uint32_t)(a >> 32),
		};
	}
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idtr = { sizeof idt - 1, (uint64_t)(uintptr_t)idt };
	__asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
}

void rt_trap(struct rt_frame *f)
{
	static int depth;
	unsigned v = (unsigned)f->vector;
	if (handlers[v]) {
		handlers[v](f);
		return;
	}
	/* A fault while reporting a fault: say so in as few instructions as possible. */
	if (depth++) {
		rt_puts("blvm-rt: exception while reporting an exception\n");
		rt_exit(RT_EXIT_EXCEPTION);
	}
	if (v < 32)
		rt_printf("blvm-rt: exception %u (#%s) error=0x%lx rip=0x%lx cr2=0x%lx\n", v,
			  rt_exception_mnemonic(v), f->error, f->rip, f->cr2);
	else
		rt_printf("blvm-rt: unexpected interrupt %u rip=0x%lx\n", v, f->rip);
	rt_exit(RT_EXIT_EXCEPTION);
}

/* ---- start ------------------------------------------------------------------------------------ */

void rt_start(void)
{
	const struct hvm_start_info *si = (const struct hvm_start_info *)(uintptr_t)rt_start_info_paddr;
	/* Every address below 4 GiB is mapped; anything else is not a start_info. */
	if (rt_start_info_paddr && rt_start_info_paddr < (1ull << 32) - sizeof *si && si->magic == HVM_START_MAGIC)
		start_info = si;
	idt_init();
	rt_exit((uint32_t)guest_main());
}
