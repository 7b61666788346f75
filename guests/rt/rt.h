/* SPDX-License-Identifier: MIT */
/*
 * blvm guest runtime: the whole API a test guest may use.
 *
 * A guest is a freestanding x86-64 PVH kernel. The runtime (guests/rt/) owns the 32-bit PVH
 * entry, long mode, the IDT, the COM1 console and the exit port; the guest supplies
 * `int guest_main(void)`, whose return value becomes the exit status. See guests/README.md.
 *
 * Everything here is plain integer code: no SSE, no x87, no 1 GiB pages, no optional CPUID
 * features, so a young software CPU can run it.
 */
#ifndef BLVM_GUEST_RT_H
#define BLVM_GUEST_RT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rt_asm.h"

/* ---- the guest's entry point ------------------------------------------------------------ */

/* Called once on the boot CPU (vCPU 0) with paging on, interrupts off, .bss zeroed, a 64 KiB
 * stack; the other vCPUs, if any, wait for INIT/SIPI until the first rt_smp_run() starts them. */
int guest_main(void);

/* ---- exit statuses (the value written to port 0xf4) ------------------------------------ */

#define RT_EXIT_OK 0        /* every self-check passed */
#define RT_EXIT_FAIL 1      /* a self-check failed (the guest printed what) */
#define RT_EXIT_EXCEPTION 3 /* an exception nobody handled (the runtime printed it) */

/* Writes status to the isa-debug-exit port 0xf4 (32-bit OUT), then halts forever with
 * interrupts off in case nothing listens there. */
__attribute__((noreturn)) void rt_exit(uint32_t status);

/* ---- console: 16550 UART at COM1 ---------------------------------------------------------- */

#define RT_COM1 0x3f8
#define RT_DEBUG_EXIT_PORT 0xf4

void rt_putc(char c);           /* polls LSR bit 5 (THR empty), then writes THR */
void rt_puts(const char *s);    /* writes s; no newline added */
int rt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int rt_vprintf(const char *fmt, va_list ap);

/* Prints "blvm-rt: assertion failed: EXPR (FILE:LINE)" and exits with RT_EXIT_FAIL. */
#define RT_ASSERT(e) ((e) ? (void)0 : rt_assert_failed(#e, __FILE__, __LINE__))
__attribute__((noreturn)) void rt_assert_failed(const char *expr, const char *file, int line);

/* ---- SMP (guests/README.md, "SMP") -------------------------------------------------------- */

/* Number of vCPUs (at most RT_MAX_CPUS): blvm's CPUID leaf 0x40000001 EAX, else QEMU's fw_cfg
 * FW_CFG_NB_CPUS (-smp N), else 1. */
unsigned rt_cpu_count(void);
/* This vCPU's index, 0 (the boot CPU, which runs guest_main) to rt_cpu_count() - 1. */
unsigned rt_cpu_index(void);
/* How many vCPUs have reached the runtime's AP loop, plus the boot CPU. */
unsigned rt_cpus_online(void);
/* Runs fn(cpu, arg) on every vCPU, the caller (which must be vCPU 0) included, and returns when
 * all have returned; the first call starts the APs (INIT-SIPI-SIPI). With one vCPU: fn(0, arg).
 * Not re-entrant: fn must not call it. */
void rt_smp_run(void (*fn)(unsigned cpu, void *arg), void *arg);
/* The console lock rt_printf and rt_puts take (re-entrant on one vCPU; a no-op with one vCPU):
 * hold it around several calls to keep them together. */
void rt_console_lock(void);
void rt_console_unlock(void);

/* ---- boot information (Xen public/arch-x86/hvm/start_info.h) ------------------------------- */

#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic;          /* HVM_START_MAGIC */
	uint32_t version;        /* 0, or 1 when memmap_* are valid */
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;  /* NUL-terminated, 0 if none */
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;   /* version >= 1 */
	uint32_t memmap_entries; /* version >= 1 */
	uint32_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* E820 types: 1 RAM, 2 reserved, 3 ACPI, 4 NVS, 5 unusable */
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr; /* NUL-terminated, 0 if none */
	uint64_t reserved;
};

#define RT_E820_RAM 1

/* How the guest was booted: "pvh", "multiboot" (the NAME-mb variant), "bzimage" (NAME-bz), or
 * "none" (no boot information). The other two formats' information is presented as a start_info. */
const char *rt_boot_format(void);

/* The start_info the loader passed in ebx (NULL if ebx held no valid one). */
const struct hvm_start_info *rt_start_info(void);
/* The command line, "" if none. */
const char *rt_cmdline(void);
/* The memory map; count is 0 if the loader gave none (start_info version 0). */
unsigned rt_memmap_count(void);
const struct hvm_memmap_table_entry *rt_memmap_entry(unsigned i);
/* Whether [base, end) is RAM below 4 GiB by the memory map (true when there is no map to check
 * against: the loader is trusted then). For guests that use RAM beyond their image. */
bool rt_ram_covers(uint64_t base, uint64_t end);
/* End (exclusive) of the highest RAM range, and of the highest RAM range below 4 GiB (the
 * part the runtime's identity map covers). 0 if there is no memory map. */
uint64_t rt_ram_top(void);
uint64_t rt_ram_top_below_4g(void);

/* ---- exceptions and interrupts ------------------------------------------------------------- */

/*
 * The state saved on entry to any vector, lowest address first. A handler may change any field
 * (rip to skip an instruction, a GPR to return a value); the stub restores them and IRETQs.
 * cr2 is read on every entry, whatever the vector.
 */
struct rt_frame {
	uint64_t cr2;
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector;
	uint64_t error; /* 0 for vectors without an error code */
	/* pushed by the CPU (SDM Vol. 3A 6.14.2: in 64-bit mode SS:RSP is always pushed) */
	uint64_t rip, cs, rflags, rsp, ss;
};

typedef void (*rt_handler_fn)(struct rt_frame *f);

/* Installs fn for vector (0-255); NULL restores the default, which for vectors 0-31 prints
 *   blvm-rt: exception N (#MN) error=0xERR rip=0xRIP cr2=0xCR2
 * and exits with RT_EXIT_EXCEPTION. Returns the previous handler (NULL = default). */
rt_handler_fn rt_set_handler(unsigned vector, rt_handler_fn fn);
/* "DE", "UD", "PF", ..., "??" for reserved or >= 32. */
const char *rt_exception_mnemonic(unsigned vector);

/* Physical address of the PML4 the runtime built (identity map of 0-4 GiB, 2 MiB pages). */
uint64_t rt_pml4_paddr(void);

/* ---- the CPU -------------------------------------------------------------------------------- */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

struct rt_cpuid {
	uint32_t eax, ebx, ecx, edx;
};
static inline struct rt_cpuid cpuid(uint32_t leaf, uint32_t subleaf)
{
	struct rt_cpuid r;
	__asm__ volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
	return r;
}

#define RT_DEFINE_CR(n)                                                                          \
	static inline uint64_t read_cr##n(void)                                                  \
	{                                                                                        \
		uint64_t v;                                                                      \
		__asm__ volatile("mov %%cr" #n ", %0" : "=r"(v));                                \
		return v;                                                                        \
	}                                                                                        \
	static inline void write_cr##n(uint64_t v) { __asm__ volatile("mov %0, %%cr" #n : : "r"(v) : "memory"); }
RT_DEFINE_CR(0)
RT_DEFINE_CR(2)
RT_DEFINE_CR(3)
RT_DEFINE_CR(4)
#undef RT_DEFINE_CR

static inline void invlpg(const volatile void *va) { __asm__ volatile("invlpg (%0)" : : "r"(va) : "memory"); }
static inline void cli(void) { __asm__ volatile("cli" : : : "memory"); }
static inline void sti(void) { __asm__ volatile("sti" : : : "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" : : : "memory"); }
static inline void pause(void) { __asm__ volatile("pause"); }
static inline uint64_t read_rflags(void)
{
	uint64_t v;
	__asm__ volatile("pushfq; popq %0" : "=r"(v));
	return v;
}
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}
/* Stops the compiler from assuming anything about v (constant folding, hoisting). */
#define RT_OPAQUE(v) __asm__ volatile("" : "+r"(v))
#define RT_BARRIER() __asm__ volatile("" : : : "memory")

/* ---- a few libc functions (gcc may call the first four on its own) -------------------------- */

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif
