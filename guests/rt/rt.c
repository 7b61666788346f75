/* SPDX-License-Identifier: MIT */
/*
 * The runtime's C half: IDT and exception reports, boot information, console, exit, SMP.
 * entry.S calls rt_start() on the boot CPU once long mode, the stack and .bss are ready, and
 * rt_ap_start() on every other vCPU once the boot CPU has started it (INIT-SIPI-SIPI).
 */
#include "rt.h"

/* Set by entry.S from ebx before anything else runs. */
extern uint64_t rt_start_info_paddr;
/* bootfmt.c, linked only into the Multiboot and bzImage variants (guests.mk): a start_info made from
 * their boot information, or NULL (weak: absent from ordinary guests). */
const struct hvm_start_info *rt_boot_convert(const char **format) __attribute__((weak));
extern char rt_pml4[];
extern char rt_isr_stubs[];
extern char rt_stacks[];
extern char __image_end[];
/* SMP (entry.S, .data): the vCPU count the BSP found, the APs' stack area, the release flag. */
extern uint32_t rt_ncpus;
extern uint64_t rt_ap_stack_base;
extern uint32_t rt_smp_go;

__attribute__((noreturn)) void rt_start(void);
__attribute__((noreturn)) void rt_ap_start(unsigned index);
void rt_trap(struct rt_frame *f);

/* ---- SMP: which vCPU am I ------------------------------------------------------------------------ */

unsigned rt_cpu_count(void) { return rt_ncpus; }

/*
 * The index from the stack pointer: the BSP runs on rt_stacks, AP k on its slot of the AP stack
 * area, so no MSR and no VM exit is needed. A vCPU that has switched to a stack of its own
 * falls back to CPUID leaf 1 (EBX[31:24], the initial APIC ID), which exits on hardware.
 */
unsigned rt_cpu_index(void)
{
	if (rt_ncpus <= 1)
		return 0;
	uintptr_t sp;
	__asm__ volatile("mov %%rsp, %0" : "=r"(sp));
	uintptr_t bsp = (uintptr_t)rt_stacks, ap = (uintptr_t)rt_ap_stack_base;
	if (sp >= bsp && sp <= bsp + RT_STACK_SIZE)
		return 0;
	if (ap && sp > ap && sp <= ap + (uintptr_t)(rt_ncpus - 1) * RT_AP_STACK_SIZE)
		return (unsigned)((sp - ap - 1) / RT_AP_STACK_SIZE) + 1;
	return cpuid(1, 0).ebx >> 24;
}

/* ---- console lock --------------------------------------------------------------------------------- */

/* Owner's index + 1, 0 when free. Re-entrant on the owning vCPU (an exception report inside
 * rt_printf must not deadlock). With one vCPU nothing is locked: the guests written before SMP
 * execute exactly the instructions they always did. */
static uint32_t console_owner;
static unsigned console_depth;

void rt_console_lock(void)
{
	if (rt_ncpus <= 1)
		return;
	uint32_t me = rt_cpu_index() + 1;
	if (__atomic_load_n(&console_owner, __ATOMIC_RELAXED) == me) {
		console_depth++;
		return;
	}
	for (;;) {
		uint32_t free = 0;
		if (__atomic_compare_exchange_n(&console_owner, &free, me, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			break;
		while (__atomic_load_n(&console_owner, __ATOMIC_RELAXED) != 0)
			pause();
	}
	console_depth = 1;
}

void rt_console_unlock(void)
{
	if (rt_ncpus <= 1)
		return;
	if (--console_depth == 0)
		__atomic_store_n(&console_owner, 0, __ATOMIC_RELEASE);
}

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
	rt_console_lock();
	while (*s)
		rt_putc(*s++);
	rt_console_unlock();
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
static const char *boot_format; /* NULL: none */

const char *rt_boot_format(void) { return boot_format ? boot_format : "none"; }


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

/* Every vCPU loads the same IDT. */
static void idt_load(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idtr = { sizeof idt - 1, (uint64_t)(uintptr_t)idt };
	__asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
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
	idt_load();
}

void rt_trap(struct rt_frame *f)
{
	static int depth[RT_MAX_CPUS];
	unsigned v = (unsigned)f->vector;
	if (handlers[v]) {
		handlers[v](f);
		return;
	}
	/* A fault while reporting a fault: say so in as few instructions as possible. */
	if (depth[rt_cpu_index() % RT_MAX_CPUS]++) {
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

/* rt_smp_run's work: a generation counter the APs wait on, and how many have finished it. */
static void (*volatile smp_fn)(unsigned cpu, void *arg);
static void *volatile smp_arg;
static uint32_t smp_gen, smp_done, smp_online;

/*
 * The APs' stacks: (N-1) x RT_AP_STACK_SIZE of RAM from the first page boundary above the image.
 * They are not in the image so that the image (and the .bss the BSP zeroes) stays as small as
 * it was with one vCPU. Returns false, having said why, if that RAM is not there.
 */
bool rt_ram_covers(uint64_t base, uint64_t end)
{
	if (end > (1ull << 32))
		return false;
	bool ram = rt_memmap_count() == 0; /* no map to check against: trust the loader */
	for (unsigned i = 0; i < rt_memmap_count(); i++) {
		const struct hvm_memmap_table_entry *e = rt_memmap_entry(i);
		if (e->type == RT_E820_RAM && e->addr <= base && end <= e->addr + e->size)
			ram = true;
	}
	return ram;
}

static bool smp_place_stacks(void)
{
	uint64_t base = ((uint64_t)(uintptr_t)__image_end + 4095) & ~4095ull;
	uint64_t end = base + (uint64_t)(rt_ncpus - 1) * RT_AP_STACK_SIZE;
	if (!rt_ram_covers(base, end)) {
		rt_printf("blvm-rt: %u vCPUs need 0x%lx bytes of RAM at 0x%lx for their stacks; raise --mem\n",
			  rt_ncpus, (unsigned long)(end - base), (unsigned long)base);
		return false;
	}
	rt_ap_stack_base = base;
	return true;
}

/*
 * Starting the APs (SDM Vol. 3 9.4.4.1 "Typical BSP Initialization Sequence", 11.6.1 ICR): the
 * start-up code goes to RT_TRAMPOLINE_PAGE, then each AP k gets INIT (level assert), INIT
 * de-assert, and two SIPIs naming that page, through the BSP's xAPIC at its default base (the
 * runtime never moves it). The SDM's 10 ms and 200 us waits are for real processors: a virtual
 * local APIC (blvm's, KVM's, QEMU's) delivers an IPI as the ICR is written, and takes an INIT before
 * a SIPI that follows it; the delivery-status bit is still polled as the SDM says.
 */
extern const char rt_trampoline[], rt_trampoline_end[];
#define LAPIC_BASE 0xfee00000ul
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_DELIVERY_PENDING (1u << 12)
#define ICR_INIT 0x500u
#define ICR_STARTUP 0x600u
#define ICR_LEVEL_ASSERT (1u << 14)
#define ICR_LEVEL_TRIGGER (1u << 15)

static void lapic_ipi(unsigned apic_id, uint32_t lo)
{
	volatile uint32_t *hi_reg = (volatile uint32_t *)(LAPIC_BASE + LAPIC_ICR_HI);
	volatile uint32_t *lo_reg = (volatile uint32_t *)(LAPIC_BASE + LAPIC_ICR_LO);
	*hi_reg = apic_id << 24;
	*lo_reg = lo; /* the write of the low half sends it */
	while (*lo_reg & ICR_DELIVERY_PENDING)
		pause();
}

static bool smp_place_trampoline(void)
{
	size_t n = (size_t)(rt_trampoline_end - rt_trampoline);
	if (!rt_ram_covers(RT_TRAMPOLINE_PAGE, RT_TRAMPOLINE_PAGE + 4096)) {
		rt_printf("blvm-rt: the APs' start-up page 0x%x is not RAM\n", RT_TRAMPOLINE_PAGE);
		return false;
	}
	memcpy((void *)(uintptr_t)RT_TRAMPOLINE_PAGE, rt_trampoline, n);
	return true;
}

static void smp_start_aps(void)
{
	for (unsigned k = 1; k < rt_ncpus; k++) {
		lapic_ipi(k, ICR_INIT | ICR_LEVEL_TRIGGER | ICR_LEVEL_ASSERT);
		lapic_ipi(k, ICR_INIT | ICR_LEVEL_TRIGGER);
		for (int sipi = 0; sipi < 2; sipi++)
			lapic_ipi(k, ICR_STARTUP | ICR_LEVEL_ASSERT | (RT_TRAMPOLINE_PAGE >> 12));
	}
}

/*
 * The vCPU count where blvm's CPUID leaves are absent (entry.S stored 0): QEMU's fw_cfg (ports
 * 0x510/0x511, docs/specs/fw_cfg.rst): FW_CFG_SIGNATURE (key 0) "QEMU", FW_CFG_NB_CPUS (key 5, 16
 * bits). So `qemu-system-x86_64 -smp N -kernel GUEST` runs a guest on N vCPUs as blvm does. Without
 * the signature (no fw_cfg: ports read all ones), one vCPU.
 */
static unsigned fw_cfg_cpus(void)
{
	outw(0x510, 0);
	uint32_t sig = 0;
	for (unsigned i = 0; i < 4; i++)
		sig |= (uint32_t)inb(0x511) << (8 * i);
	if (sig != 0x554d4551u) /* "QEMU" */
		return 1;
	outw(0x510, 5);
	unsigned n = inb(0x511);
	n |= (unsigned)inb(0x511) << 8;
	return n == 0 ? 1 : n > RT_MAX_CPUS ? RT_MAX_CPUS : n;
}

void rt_start(void)
{
	const struct hvm_start_info *si = (const struct hvm_start_info *)(uintptr_t)rt_start_info_paddr;
	/* Every address below 4 GiB is mapped; anything else is not a start_info. */
	if (rt_start_info_paddr && rt_start_info_paddr < (1ull << 32) - sizeof *si && si->magic == HVM_START_MAGIC) {
		start_info = si;
		boot_format = "pvh";
	} else if (rt_boot_convert) {
		start_info = rt_boot_convert(&boot_format);
	}
	idt_init();
	if (rt_ncpus == 0) /* no blvm count (entry.S) */
		rt_ncpus = fw_cfg_cpus();
	if (rt_ncpus > 1) {
		if (!smp_place_stacks())
			rt_exit(RT_EXIT_FAIL);
		/* The release: everything above (.bss, IDT, start info, stacks) is written before the
		 * flag, and x86-TSO keeps stores in order; the release store also keeps gcc from
		 * moving them after it. */
		__atomic_store_n(&rt_smp_go, 1, __ATOMIC_RELEASE);
		if (!smp_place_trampoline())
			rt_exit(RT_EXIT_FAIL);
	}
	rt_exit((uint32_t)guest_main());
}

/* An AP, released by the BSP, on its own stack in long mode (entry.S). */
void rt_ap_start(unsigned index)
{
	idt_load();
	__atomic_fetch_add(&smp_online, 1, __ATOMIC_RELEASE);
	uint32_t seen = 0;
	for (;;) {
		uint32_t g;
		while ((g = __atomic_load_n(&smp_gen, __ATOMIC_ACQUIRE)) == seen)
			pause();
		seen = g;
		smp_fn(index, smp_arg);
		__atomic_fetch_add(&smp_done, 1, __ATOMIC_RELEASE);
	}
}

void rt_smp_run(void (*fn)(unsigned cpu, void *arg), void *arg)
{
	unsigned n = rt_ncpus;
	if (n <= 1) {
		fn(0, arg);
		return;
	}
	RT_ASSERT(rt_cpu_index() == 0);
	/* The APs start at the first call: a guest that never asks for them runs as with one vCPU,
	 * its APs waiting for INIT/SIPI (so a BSP that halts with IF = 0 still ends the VM) */
	static bool started;
	if (!started) {
		started = true;
		smp_start_aps();
	}
	smp_fn = fn;
	smp_arg = arg;
	__atomic_store_n(&smp_done, 0, __ATOMIC_RELAXED);
	/* Every AP finished the previous generation (we waited), so none reads fn or arg now. */
	__atomic_store_n(&smp_gen, smp_gen + 1, __ATOMIC_RELEASE);
	fn(0, arg);
	while (__atomic_load_n(&smp_done, __ATOMIC_ACQUIRE) != n - 1)
		pause();
}

unsigned rt_cpus_online(void) { return rt_ncpus <= 1 ? 1 : 1 + __atomic_load_n(&smp_online, __ATOMIC_ACQUIRE); }
