/* SPDX-License-Identifier: MIT */
/*
 * Self-modifying code and #UD rules of the emu engine:
 *  - a guest patches an instruction later in the same block, and a function it already ran, then runs
 *    them: the new bytes must execute (decode cache invalidated by the page write generation);
 *  - LOCK on a non-lockable instruction, and LOCK with a register destination, raise #UD (SDM Vol. 2
 *    "LOCK"); a locked ADD to memory works;
 *  - an unimplemented instruction raises #UD and is named once on stderr;
 *  - the HOST (the monitor, which owns guest RAM) writes a new program between two runs, also the
 *    second page of an instruction that straddles two: the next run executes the new bytes, as
 *    under KVM, which keeps no decoded code (decode.c, block_same_bytes).
 */
#include <fcntl.h>
#include <unistd.h>

#include "emu_harness.h"

GUEST(smc, ".code64",
	"call smc_fn\n"                          /* rax = 1 */
	"mov %rax, %r8\n"
	"lea smc_fn(%rip), %rdi\n"
	"movb $7, 1(%rdi)\n"                     /* patch smc_fn's immediate: mov $7, %eax */
	"call smc_fn\n"
	"mov %rax, %r9\n"                        /* 7 */
	"lea smc_patch(%rip), %rdi\n"
	"movb $2, 1(%rdi)\n"                     /* patch the next instruction in this very block */
	"smc_patch: mov $1, %ebx\n"              /* runs as mov $2, %ebx */
	"hlt\n"
	"smc_fn: mov $1, %eax\n"
	"ret\n");

/* #UD handler: count in r14, skip the faulting instruction by its length in r13 */
GUEST(ud, ".code64",
	"jmp ud_body\n"
	"ud_handler:\n"
	"inc %r14\n"
	"add %r13, (%rsp)\n"
	"iretq\n"
	"ud_body:\n"
	"mov $0x100000, %esi\n"
	"movl $5, (%rsi)\n"
	"lock addl $3, (%rsi)\n"                 /* fine: 8 */
	"mov $3, %r13d\n"
	".byte 0xf0, 0x39, 0x06\n"               /* lock cmp %eax, (%rsi): #UD */
	"mov $3, %r13d\n"
	".byte 0xf0, 0x01, 0xd8\n"               /* lock add %ebx, %eax: register destination, #UD */
	"mov $3, %r13d\n"
	"vzeroupper\n"                           /* AVX: not implemented, #UD */
	"mov $3, %r13d\n"
	"vzeroupper\n"                           /* named only once */
	"hlt\n");

/* Runs the program at gpa from a fresh RIP and returns RAX once it halts. */
static uint64_t run_at(struct t_vm *t, uint64_t gpa)
{
	struct kvm_regs r = t_regs(t);
	r.rip = gpa;
	r.rax = 0;
	t->ops->set_regs(t->cpu, &r);
	int e = t_run(t);
	CHECK_EQ(e, KVM_EXIT_HLT);
	return t_regs(t).rax;
}

static void host_writes(void)
{
	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	for (uint8_t k = 1; k <= 3; k++) {
		const uint8_t prog[] = { 0xb8, k, 0, 0, 0, 0xf4 }; /* mov $k, %eax; hlt */
		memcpy(t.ram + T_CODE, prog, sizeof prog);
		CHECK_EQ(run_at(&t, T_CODE), k);
		CHECK_EQ(run_at(&t, T_CODE), k); /* unchanged bytes: the same block again */
	}
	/* mov $imm32, %eax at 0x...ffc: its imm32's last byte is on the next page; hlt after it */
	const uint64_t at = T_CODE + 0x1ffc;
	const uint8_t prog[] = { 0xb8, 0x44, 0x33, 0x22, 0x11, 0xf4 };
	memcpy(t.ram + at, prog, sizeof prog);
	CHECK_EQ(run_at(&t, at), 0x11223344);
	t.ram[at + 4] = 0x55; /* only the byte on the second page */
	CHECK_EQ(run_at(&t, at), 0x55223344);
	t.ram[at + 1] = 0x66; /* only a byte on the first page */
	CHECK_EQ(run_at(&t, at), 0x55223366);
	t_fini(&t);
}

int main(void)
{
	host_writes();

	struct t_vm t;
	t_init(&t);
	t_long_mode(&t);
	t_load(&t, T_CODE, smc_start, smc_end);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	struct kvm_regs r = t_regs(&t);
	CHECK_EQ(r.r8, 1);
	CHECK_EQ(r.r9, 7);
	CHECK_EQ(r.rbx, 2);
	t_fini(&t);

	/* capture stderr to check the "unimplemented" line */
	char path[] = "/tmp/emu_smc_XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(2);
	fflush(stderr);
	dup2(fd, 2);

	t_init(&t);
	t_long_mode(&t);
	t_load(&t, T_CODE, ud_start, ud_end);
	t_gate(&t, 6, T_CODE + 2, 0, 0);
	int exit = t_run(&t);
	r = t_regs(&t);
	uint32_t locked = t_r32(&t, 0x100000);
	t_fini(&t);

	fflush(stderr);
	dup2(saved, 2);
	char buf[1024] = { 0 };
	lseek(fd, 0, SEEK_SET);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	unlink(path);
	(void)n;

	CHECK(exit == KVM_EXIT_HLT, "exit %d, stderr: %s", exit, buf);
	CHECK_EQ(r.r14, 4);
	CHECK_EQ(locked, 8);
	CHECK(strstr(buf, "blvm: emu: unimplemented instruction vzeroupper at rip 0x") != NULL, "stderr: %s", buf);
	CHECK(strstr(buf, "vzeroupper") && strstr(strstr(buf, "vzeroupper") + 1, "vzeroupper") == NULL, "named twice: %s", buf);
	return t_result("emu_smc");
}
