/* SPDX-License-Identifier: MIT */
/*
 * --kernel-symbols (issue 13): a synthetic System.map and a synthetic IA32_LSTAR, so that no kernel's
 * addresses are built in. The map is parsed (code symbols only, sized up to the next symbol of any
 * type), the KASLR offset is learnt by the monitor's task source from LSTAR through the engine
 * contract (a fake engine's get_sregs and get_msrs, as KVM_GET_SREGS and KVM_GET_MSRS), and
 * blvm_vm_symbol, which the policy's reports use, names relocated kernel RIPs: before the offset is
 * known, nothing; user addresses, nothing; data past the last function, nothing. Malformed maps are
 * refused with the line that is wrong; an LSTAR that cannot be a KASLR offset names nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vmm.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)

static const char map[] =
	"0000000000000000 D __per_cpu_start\n"
	"ffffffff81000000 T _stext\n"
	"ffffffff81000000 t _text_local\n"
	"ffffffff81000100 T memcpy_split\n"
	"ffffffff81000180 t helper_local\n"
	"ffffffff81000200 W weak_fn\n"
	"ffffffff81234000 T entry_SYSCALL_64\n"
	"ffffffff81234100 T _etext\n"
	"ffffffff82000000 D some_data\n"
	"ffffffff82000100 B _end\n";

static uint64_t lstar; /* what the fake engine's IA32_LSTAR holds */
static int get_sregs(struct blvm_engine_vcpu *v, struct kvm_sregs *s)
{
	(void)v;
	memset(s, 0, sizeof *s);
	s->cr0 = 0x80000001;
	s->efer = 1u << 10 | 1u << 8; /* LMA, LME: long mode */
	s->cs.selector = 0x10;        /* CPL 0 */
	return 0;
}
static int get_msrs(struct blvm_engine_vcpu *v, struct kvm_msrs *m)
{
	(void)v;
	for (unsigned i = 0; i < m->nmsrs; i++)
		m->entries[i].data = m->entries[i].index == 0xc0000082 ? lstar : 0;
	return (int)m->nmsrs;
}

static const char *name(struct blvm_vm *vm, uint64_t rip)
{
	static char buf[96];
	blvm_vm_symbol(vm, rip, buf, sizeof buf);
	return buf;
}

int main(void)
{
	char err[200];
	struct blvm_symtab t;
	CHECK(blvm_symtab_load_map(&t, (const uint8_t *)map, strlen(map), err, sizeof err) == 0);
	CHECK(t.n == 7); /* _stext, _text_local, memcpy_split, helper_local, weak_fn, entry_SYSCALL_64, _etext */
	uint64_t a = 0;
	CHECK(blvm_symtab_find(&t, "entry_SYSCALL_64", &a) == 0 && a == 0xffffffff81234000ull);
	CHECK(blvm_symtab_find(&t, "some_data", &a) != 0); /* data is not kept */

	/* A VM as the monitor makes it, with only what the symbolizer and the task source read. */
	static struct blvm_engine_ops ops;
	ops.name = "fake";
	ops.get_sregs = get_sregs;
	ops.get_msrs = get_msrs;
	struct blvm_vm *vm = calloc(1, sizeof *vm);
	struct blvm_vcpu vcpu = { .vm = vm, .id = 0 };
	vm->cfg.nr_vcpus = 1;
	vm->cfg.kernel_symbols_path = "synthetic.map";
	vm->ops = &ops;
	vm->vcpus = &vcpu;
	pthread_mutex_init(&vm->report_lock, NULL);
	vm->syms = t;
	vm->syms_map = true;
	vm->syms_anchor = a;
	strcpy(vm->tasks.why, "no BTF in this test");

	/* Before the offset is known, nothing is named (rather than a wrong name). */
	CHECK(strcmp(name(vm, 0xffffffff81000104ull), "") == 0);
	struct blvm_policy_task task;
	lstar = 0; /* not set yet by the kernel: asked again later */
	memset(&task, 0, sizeof task);
	blvm_tasks_source(vm, 0, &task);
	CHECK(!atomic_load(&vm->syms_slide_known));

	const uint64_t slide = 0x21a00000;
	lstar = 0xffffffff81234000ull + slide;
	blvm_tasks_source(vm, 0, &task);
	CHECK(atomic_load(&vm->syms_slide_known) && atomic_load(&vm->syms_slide) == slide);
	CHECK(task.mode == BLVM_MODE_KERNEL);
	CHECK(strcmp(name(vm, 0xffffffff81000104ull + slide), "memcpy_split+0x4") == 0);
	CHECK(strcmp(name(vm, 0xffffffff81000000ull + slide), "_stext") == 0);     /* T before t */
	CHECK(strcmp(name(vm, 0xffffffff810001a0ull + slide), "helper_local+0x20") == 0);
	CHECK(strcmp(name(vm, 0xffffffff81000208ull + slide), "weak_fn+0x8") == 0);
	CHECK(strcmp(name(vm, 0xffffffff81234010ull + slide), "entry_SYSCALL_64+0x10") == 0);
	CHECK(strcmp(name(vm, 0xffffffff81000104ull), "") == 0 ||                  /* the link address: */
	      strcmp(name(vm, 0xffffffff81000104ull), "memcpy_split+0x4") != 0);  /* not the function */
	CHECK(strcmp(name(vm, 0x401571), "") == 0);                                /* a user RIP */
	CHECK(strcmp(name(vm, 0xffffffff82000010ull + slide), "") == 0);           /* data: past _etext's */
	CHECK(strcmp(name(vm, 0xffffffffc0001000ull), "") == 0);                   /* a module, past _end */
	/* Learnt once: a later LSTAR (another kernel?) does not move it. */
	lstar = 0xffffffff81234000ull;
	blvm_tasks_source(vm, 0, &task);
	CHECK(atomic_load(&vm->syms_slide) == slide);

	/* An LSTAR that is not this map's entry_SYSCALL_64 relocated by a 2 MiB multiple: said, nothing named. */
	atomic_store(&vm->syms_slide_known, false);
	atomic_store(&vm->syms_slide, 0);
	lstar = 0xffffffff81234000ull + 0x1000;
	blvm_tasks_source(vm, 0, &task);
	CHECK(!atomic_load(&vm->syms_slide_known) && atomic_load(&vm->syms_slide_said));
	CHECK(strcmp(name(vm, 0xffffffff81001104ull), "") == 0);
	lstar = 0xffffffff81234000ull + slide; /* said once: not read again at every bus lock */
	blvm_tasks_source(vm, 0, &task);
	CHECK(!atomic_load(&vm->syms_slide_known));
	uint64_t s;
	CHECK(blvm_kaslr_slide(0xffffffff81234000ull, 0xffffffff81034000ull, &s, err, sizeof err) != 0); /* below */
	CHECK(blvm_kaslr_slide(0xffffffff81234000ull, 0xffffffff81234000ull, &s, err, sizeof err) == 0 && s == 0);

	/* Malformed maps: refused, naming the line. */
	static const struct { const char *text, *why; } bad[] = {
		{ "", "the file is empty" },
		{ "ffffffff81000000 T ok\nnot a map line\n", "line 2 is not" },
		{ "ffffffff81000000 T\n", "line 1 is not" },
		{ "ffffffff81000000  T x\n", "line 1 is not" },
		{ "ffffffff810000000 T x\n", "line 1 is not" },            /* 17 digits */
		{ "ffffffff81000000 T two names\n", "line 1 is not" },
		{ "\x7f" "ELF\x02\x01\x01", "line 1 is not" },             /* a vmlinux given by mistake */
		{ "ffffffff81000000 T x\n\n", "line 2 is not" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct blvm_symtab b;
		err[0] = '\0';
		int r = blvm_symtab_load_map(&b, (const uint8_t *)bad[i].text, strlen(bad[i].text), err, sizeof err);
		CHECK(r == -1 && b.n == 0 && strstr(err, bad[i].why));
		if (r != -1 || !strstr(err, bad[i].why))
			fprintf(stderr, "  bad map %zu: %d \"%s\"\n", i, r, err);
	}
	/* Names with a NUL inside a line are refused, not cut. */
	static const char nul[] = "ffffffff81000000 T a\0b\n";
	struct blvm_symtab b;
	CHECK(blvm_symtab_load_map(&b, (const uint8_t *)nul, sizeof nul - 1, err, sizeof err) == -1);

	blvm_symtab_free(&vm->syms);
	free(vm);
	if (failures)
		return 1;
	printf("all checks passed\n");
	return 0;
}
