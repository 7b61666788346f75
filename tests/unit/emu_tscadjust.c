/* SPDX-License-Identifier: MIT */
/*
 * IA32_TSC_ADJUST (MSR 0x3b) on the emu engine, against SDM Vol. 3 17.17.3: CPUID.(EAX=7,ECX=0):
 * EBX[1] advertises it; it reads 0 after RESET; a WRMSR that adds X to IA32_TSC_ADJUST adds X to
 * the TSC, and a WRMSR to IA32_TIME_STAMP_COUNTER that adds X to the TSC adds X to IA32_TSC_ADJUST.
 * Both rules keep TSC_ADJUST - (TSC - the VM's clock) constant, 0 from RESET on: the engine's
 * tsc_offset and tsc_adjust must end equal, and the TSC write's X is bounded by the host clock
 * read around the run.
 */
#include <time.h>

#include "emu/emu.h"
#include "emu_harness.h"

#define DATA 0x100000

GUEST(g, ".code64",
	"mov $7, %eax; xor %ecx, %ecx; cpuid; mov %ebx, 0x100000\n"
	"mov $0x3b, %ecx; rdmsr; mov %eax, 0x100008; mov %edx, 0x10000c\n"   /* 0 after RESET */
	"rdtsc; mov %eax, 0x100010; mov %edx, 0x100014\n"
	"mov $0x3b, %ecx; xor %eax, %eax; mov $1, %edx; wrmsr\n"             /* TSC_ADJUST = 2^32 */
	"rdtsc; mov %eax, 0x100018; mov %edx, 0x10001c\n"                    /* the TSC moved on 2^32 */
	"rdmsr; mov %eax, 0x100020; mov %edx, 0x100024\n"
	"mov $0x10, %ecx; mov $5, %eax; xor %edx, %edx; wrmsr\n"             /* TSC = 5 */
	"mov $0x3b, %ecx; rdmsr; mov %eax, 0x100028; mov %edx, 0x10002c\n"   /* 2^32 + (5 - TSC before) */
	"cli; hlt\n");

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(void)
{
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	t_load(&t, T_CODE, g_start, g_end);
	uint64_t before = mono_ns();
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	uint64_t after = mono_ns();
	CHECK(t_r32(&t, DATA) & (1u << 1), "CPUID.7.0:EBX[1] TSC_ADJUST");
	CHECK_EQ(t_r64(&t, DATA + 0x08), 0);
	uint64_t t0 = t_r64(&t, DATA + 0x10), t1 = t_r64(&t, DATA + 0x18);
	CHECK(t1 - t0 >= (1ull << 32), "TSC before %llu, after adding 2^32 to TSC_ADJUST %llu",
	      (unsigned long long)t0, (unsigned long long)t1);
	CHECK_EQ(t_r64(&t, DATA + 0x20), 1ull << 32);
	/* the TSC write at clock T set the TSC to 5, adding 5 - (T + 2^32) to it and to TSC_ADJUST */
	int64_t adj = (int64_t)t_r64(&t, DATA + 0x28);
	CHECK(adj <= 5 - (int64_t)before && adj >= 5 - (int64_t)after, "TSC_ADJUST %lld after TSC = 5 at %llu..%llu",
	      (long long)adj, (unsigned long long)before, (unsigned long long)after);
	struct emu_vcpu *c = (struct emu_vcpu *)t.cpu;
	CHECK_EQ(c->tsc_adjust, c->tsc_offset);
	CHECK_EQ(c->tsc_adjust, (uint64_t)adj);
	t_fini(&t);
	return t_result("emu_tscadjust");
}
