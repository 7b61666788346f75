/* SPDX-License-Identifier: MIT */
/*
 * Linux introspection from outside (src/introspect/linux.h, issue 13), on synthetic kernels: a BTF
 * built here with libbpf's writer (other offsets than any real kernel's, the <= 6.1 per-CPU
 * `current_task` and the 6.2+ `pcpu_hot.current_task` forms, pid/tgid inside an anonymous struct)
 * and a guest-physical image with 4-level page tables (4 KiB, 2 MiB and 1 GiB pages, a task_struct
 * whose comm crosses a page), read as a kernel-mode and as a PTI user-mode vCPU (PCID and bit 12
 * set in CR3, the per-CPU base in IA32_KERNEL_GS_BASE). Oracle: the values the test placed.
 * Then hostile input: damaged BTF and random page tables and pointers (no crash, never a wrong
 * answer claimed as right: either -1 or a task read from RAM).
 *
 * `introspect_linux --layout VMLINUX` prints the layout of a real kernel (tests/sh/introspect-btf.sh
 * compares it with bpftool's dump of the same BTF).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <bpf/btf.h>

#include "introspect/linux.h"
#include "boot/boot.h" /* blvm_bzimage_vmlinux: a bzImage's payload */

static int failures;
#define CHECK(c, ...) do { if (!(c)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
	printf(__VA_ARGS__); printf("\n"); } } while (0)

/* ---------------------------------------------------------------- synthetic BTF */

struct synth { uint32_t comm, pid, tgid, size; uint64_t cur; bool hot; };

/* task_struct { long state; char pad[p]; struct { int pid; int tgid; }; ... char comm[16]; }
 * pid sits in an anonymous struct, as C allows and randomized layouts produce. */
static void *make_btf(const struct synth *s, uint32_t *len)
{
	struct btf *b = btf__new_empty();
	int i32 = btf__add_int(b, "int", 4, BTF_INT_SIGNED);
	int pid_t_ = btf__add_typedef(b, "pid_t", i32);
	int ch = btf__add_int(b, "char", 1, BTF_INT_SIGNED);
	int u64 = btf__add_int(b, "long unsigned int", 8, 0);
	int idx = btf__add_int(b, "__ARRAY_SIZE_TYPE__", 4, 0);
	int comm = btf__add_array(b, idx, ch, 16);
	int anon = btf__add_struct(b, NULL, 8);
	btf__add_field(b, "pid", pid_t_, 0, 0);
	btf__add_field(b, "tgid", pid_t_, 32, 0);
	int ts = btf__add_struct(b, "task_struct", s->size);
	btf__add_field(b, "__state", u64, 0, 0);
	btf__add_field(b, NULL, anon, s->pid * 8, 0); /* the test keeps tgid = pid + 4 */
	btf__add_field(b, "comm", comm, s->comm * 8, 0);
	int cptr = btf__add_ptr(b, btf__add_const(b, ts));
	int var;
	if (s->hot) {
		int hot = btf__add_struct(b, "pcpu_hot", 64);
		btf__add_field(b, "preempt_count", i32, 0, 0);
		btf__add_field(b, "current_task", cptr, 128, 0);
		var = btf__add_var(b, "pcpu_hot", BTF_VAR_GLOBAL_ALLOCATED, hot);
	} else {
		var = btf__add_var(b, "current_task", BTF_VAR_GLOBAL_ALLOCATED, cptr);
	}
	int other = btf__add_var(b, "cpu_number", BTF_VAR_GLOBAL_ALLOCATED, i32);
	btf__add_datasec(b, ".data..percpu", 0x40000);
	btf__add_datasec_var_info(b, other, 0x100, 4);
	btf__add_datasec_var_info(b, var, s->hot ? s->cur - 16 : s->cur, s->hot ? 64 : 8);
	const void *raw = btf__raw_data(b, len);
	void *copy = malloc(*len);
	memcpy(copy, raw, *len);
	btf__free(b);
	return copy;
}

/* ---------------------------------------------------------------- a guest-physical image */

#define RAM (8u << 20)
static uint8_t *ram;

static int rd(void *arg, uint64_t gpa, void *buf, size_t len)
{
	(void)arg;
	if (gpa > RAM || len > RAM - gpa)
		return -1;
	memcpy(buf, ram + gpa, len);
	return 0;
}

static void put64(uint64_t gpa, uint64_t v) { memcpy(ram + gpa, &v, 8); }

/* Page tables at 0x1000 (PML4), 0x3000 (PTI user PML4, the odd page of the 8 KiB pair at 0x2000),
 * mapping: PERCPU_VA (4 KiB pages at PA 0x100000..), TASK_VA (a 2 MiB page at PA 0x200000) and
 * KTEXT_VA (a 1 GiB page at PA 0). */
#define PML4 0x2000ull
#define PERCPU_VA 0xffffc90000001000ull
#define PERCPU_PA 0x100000ull
#define TASK_VA 0xffff888000400000ull
#define TASK_PA 0x400000ull

static void build_tables(void)
{
	memset(ram, 0, RAM);
	/* PERCPU_VA: PML4[402] -> PDPT 0x4000 -> PD 0x5000 -> PT 0x6000 -> two 4 KiB pages */
	put64(PML4 + ((PERCPU_VA >> 39) & 0x1ff) * 8, 0x4000 | 3);
	put64(0x4000 + ((PERCPU_VA >> 30) & 0x1ff) * 8, 0x5000 | 3);
	put64(0x5000 + ((PERCPU_VA >> 21) & 0x1ff) * 8, 0x6000 | 3);
	for (unsigned k = 0; k < 16; k++)
		put64(0x6000 + (((PERCPU_VA >> 12) + k) & 0x1ff) * 8, (PERCPU_PA + k * 0x1000) | 3);
	/* TASK_VA: PML4[273] -> PDPT 0x7000 -> PD 0x8000 -> a 2 MiB page */
	put64(PML4 + ((TASK_VA >> 39) & 0x1ff) * 8, 0x7000 | 3);
	put64(0x7000 + ((TASK_VA >> 30) & 0x1ff) * 8, 0x8000 | 3);
	put64(0x8000 + ((TASK_VA >> 21) & 0x1ff) * 8, TASK_PA | 0x83);
	put64(0x8000 + (((TASK_VA >> 21) + 1) & 0x1ff) * 8, (TASK_PA + 0x200000) | 0x83);
	/* a 1 GiB page: PML4[511] -> PDPT 0x9000, entry 510 -> PA 0 */
	put64(PML4 + 511 * 8, 0x9000 | 3);
	put64(0x9000 + 510 * 8, 0 | 0x83);
}

static void place_task(const struct synth *s, uint64_t task_va, const char *comm, int pid)
{
	uint64_t pa = TASK_PA + (task_va - TASK_VA);
	memcpy(ram + pa + s->pid, &pid, 4);
	int tgid = pid - 1;
	memcpy(ram + pa + s->pid + 4, &tgid, 4);
	memset(ram + pa + s->comm, 0, 16);
	memcpy(ram + pa + s->comm, comm, strlen(comm) < 16 ? strlen(comm) : 16);
	put64(PERCPU_PA + (s->cur & 0xffff), task_va);
}

static void test_layout_and_current(bool hot)
{
	/* offsets unlike any kernel's; comm placed so that it crosses the task's 2 MiB page boundary */
	struct synth s = { .comm = 0x1ff8 + 0x100, .pid = 0x1230, .tgid = 0x1234, .size = 0x2400,
			   .cur = hot ? 0x2010 + 16 : 0x2010, .hot = hot };
	uint32_t len;
	void *raw = make_btf(&s, &len);
	struct blvm_linux_layout l;
	char err[200] = "";
	int r = blvm_linux_layout_from_btf(raw, len, &l, err, sizeof err);
	CHECK(r == 0, "layout (%s): %s", hot ? "pcpu_hot" : "current_task", err);
	CHECK(l.task_comm == s.comm && l.task_pid == s.pid && l.task_tgid == s.tgid && l.comm_len == 16 &&
	      l.task_size == s.size, "offsets comm %u pid %u tgid %u len %u size %u", l.task_comm, l.task_pid,
	      l.task_tgid, l.comm_len, l.task_size);
	CHECK(l.current_task == s.cur, "current task offset 0x%llx, expected 0x%llx",
	      (unsigned long long)l.current_task, (unsigned long long)s.cur);
	CHECK(strcmp(l.current_task_how, hot ? "pcpu_hot.current_task" : "current_task") == 0, "how: %s",
	      l.current_task_how);

	build_tables();
	/* the task starts 0x100 below the 2 MiB boundary + comm offset: comm straddles the pages */
	uint64_t task = TASK_VA + 0x200000 - 0x1ff8 - 0x100 - 6;
	place_task(&s, task, "splitlock", 57);
	struct blvm_linux_task t;
	uint64_t percpu = PERCPU_VA; /* percpu + cur: PERCPU_PA + cur, where place_task put the pointer */
	/* kernel mode: CR3 = the kernel PGD, per-CPU base in IA32_GS_BASE */
	r = blvm_linux_current(&l, PML4, false, false, percpu, 0xdead0000, rd, NULL, &t, err, sizeof err);
	CHECK(r == 0 && t.addr == task && t.pid == 57 && t.tgid == 56 && strcmp(t.comm, "splitlock") == 0,
	      "kernel mode: r %d %s addr 0x%llx pid %d tgid %d comm '%s'", r, err, (unsigned long long)t.addr,
	      t.pid, t.tgid, t.comm);
	/* user mode under PTI: CR3 = the user PGD (bit 12) with a PCID and the no-flush bit, the kernel's
	 * per-CPU base waiting in IA32_KERNEL_GS_BASE, IA32_GS_BASE the user's (garbage here) */
	r = blvm_linux_current(&l, (1ull << 63) | PML4 | 0x1000 | 0x805, false, true, 0x7f0012340000, percpu, rd,
			       NULL, &t, err, sizeof err);
	CHECK(r == 0 && t.pid == 57 && strcmp(t.comm, "splitlock") == 0, "user mode: r %d %s pid %d comm '%s'", r,
	      err, t.pid, t.comm);
	/* a 16-byte comm without a NUL */
	place_task(&s, task, "0123456789abcdefXYZ", 4242);
	r = blvm_linux_current(&l, PML4, false, false, percpu, 0, rd, NULL, &t, err, sizeof err);
	CHECK(r == 0 && strcmp(t.comm, "0123456789abcdef") == 0 && t.pid == 4242, "16-byte comm: '%s'", t.comm);
	/* a task pointer in the user half, a pid beyond PID_MAX_LIMIT: a kernel that does not match */
	put64(PERCPU_PA + (s.cur & 0xffff), 0x00007f0000400000ull);
	r = blvm_linux_current(&l, PML4, false, false, percpu, 0, rd, NULL, &t, err, sizeof err);
	CHECK(r == -1 && strstr(err, "not a kernel address"), "user-half task: r %d '%s'", r, err);
	place_task(&s, task, "splitlock", 4194305);
	r = blvm_linux_current(&l, PML4, false, false, percpu, 0, rd, NULL, &t, err, sizeof err);
	CHECK(r == -1 && strstr(err, "pid 4194305"), "pid beyond PID_MAX_LIMIT: r %d '%s'", r, err);
	/* the current-task pointer outside every mapping: -1 with a reason */
	put64(PERCPU_PA + (s.cur & 0xffff), 0xffff888077000000ull);
	r = blvm_linux_current(&l, PML4, false, false, percpu, 0, rd, NULL, &t, err, sizeof err);
	CHECK(r == -1 && strstr(err, "task_struct"), "unmapped task: r %d '%s'", r, err);
	/* the per-CPU base outside every mapping */
	r = blvm_linux_current(&l, PML4, false, false, 0xffffc90100000000ull, 0, rd, NULL, &t, err, sizeof err);
	CHECK(r == -1 && strstr(err, "per-CPU"), "unmapped per-CPU base: r %d '%s'", r, err);
	/* translation of the 1 GiB page and a non-canonical address */
	uint64_t gpa = 1;
	CHECK(blvm_guest_translate(PML4, false, 0xffffffff80123456ull, rd, NULL, &gpa) == 0 && gpa == 0x123456,
	      "1 GiB page: 0x%llx", (unsigned long long)gpa);
	CHECK(blvm_guest_translate(PML4, false, 0x0000800000000000ull, rd, NULL, &gpa) == -1, "non-canonical");

	/* damaged BTF: every outcome is a clean 0 or -1 (ASan/UBSan watch the reads) */
	uint8_t *bad = malloc(len);
	srand(hot ? 2 : 1);
	int refused = 0;
	for (int k = 0; k < 3000; k++) {
		memcpy(bad, raw, len);
		int flips = 1 + rand() % 4;
		for (int f = 0; f < flips; f++)
			bad[rand() % len] = (uint8_t)rand();
		size_t blen = rand() % 8 ? len : (size_t)(rand() % len);
		struct blvm_linux_layout bl;
		r = blvm_linux_layout_from_btf(bad, blen, &bl, err, sizeof err);
		CHECK(r == 0 || r == -1, "damaged BTF returned %d", r);
		refused += r != 0;
		if (r == 0)
			CHECK(bl.task_comm + bl.comm_len <= bl.task_size && bl.task_pid + 4 <= bl.task_size,
			      "damaged BTF gave offsets outside task_struct");
	}
	printf("damaged BTF (%s): %d of 3000 refused, none crashed\n", hot ? "pcpu_hot" : "current_task", refused);
	free(bad);
	free(raw);
}

/* Random page tables, per-CPU bases and task pointers: the reader returns 0 or -1, never reads
 * outside RAM (rd checks), never loops. */
static void test_hostile_memory(void)
{
	struct synth s = { .comm = 0x5a0, .pid = 0x4e8, .tgid = 0x4ec, .size = 0x2400, .cur = 0x2010 };
	uint32_t len;
	void *raw = make_btf(&s, &len);
	struct blvm_linux_layout l;
	char err[200];
	CHECK(blvm_linux_layout_from_btf(raw, len, &l, err, sizeof err) == 0, "layout: %s", err);
	srand(7);
	unsigned ok = 0, refused = 0;
	for (int k = 0; k < 2000; k++) {
		build_tables();
		/* scribble over the paging structures and the per-CPU page */
		for (int f = 0; f < 64; f++) {
			uint64_t where = 0x2000 + (uint64_t)(rand() % 0x8000);
			ram[where] = (uint8_t)rand();
		}
		/* the task pointer: mostly inside the mapped 4 MiB, sometimes anywhere */
		uint64_t task = rand() % 4 ? TASK_VA + (uint64_t)(rand() % (4 << 20)) :
					     ((uint64_t)rand() << 33) ^ (uint64_t)rand();
		put64(PERCPU_PA + 0x2010, task);
		struct blvm_linux_task t;
		bool user = rand() & 1;
		uint64_t base = PERCPU_VA + (uint64_t)(rand() % 3 == 0 ? rand() : 0);
		int r = blvm_linux_current(&l, PML4 | (uint64_t)(rand() % 8 ? 0 : rand() & 0x1fff), rand() % 8 == 0,
					   user, user ? 0 : base, user ? base : 0, rd, NULL, &t, err, sizeof err);
		CHECK(r == 0 || r == -1, "returned %d", r);
		CHECK(strlen(t.comm) <= 16, "comm too long");
		if (r == 0)
			ok++;
		else
			refused++;
	}
	printf("hostile memory: %u read, %u refused, none crashed\n", ok, refused);
	free(raw);
}

static int print_layout(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return 2;
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc((size_t)n);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		perror(path);
		return 2;
	}
	fclose(f);
	struct blvm_linux_layout l;
	char err[200];
	if (blvm_is_bzimage(buf, (size_t)n)) { /* the vmlinux inside, as the monitor unpacks it */
		uint8_t *v;
		size_t vlen;
		if (blvm_bzimage_vmlinux(buf, (size_t)n, BLVM_VMLINUX_MAX, &v, &vlen, err, sizeof err) != 0) {
			printf("error: %s\n", err);
			free(buf);
			return 1;
		}
		free(buf);
		buf = v;
		n = (long)vlen;
	}
	if (blvm_linux_layout_from_elf(buf, (size_t)n, &l, err, sizeof err) != 0) {
		printf("error: %s\n", err);
		free(buf);
		return 1;
	}
	printf("task_struct size %u comm %u comm_len %u pid %u tgid %u\n%s %llu\n", l.task_size, l.task_comm,
	       l.comm_len, l.task_pid, l.task_tgid, l.current_task_how, (unsigned long long)l.current_task);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--layout") == 0)
		return print_layout(argv[2]);
	if (argc == 4 && strcmp(argv[1], "--vmlinux") == 0) {
		/* The ELF inside a bzImage's payload, written out (tests/sh/introspect-btf.sh). */
		uint8_t *buf = NULL, *v;
		size_t n = 0, vlen;
		char err[200];
		FILE *f = fopen(argv[2], "rb");
		if (f) {
			fseek(f, 0, SEEK_END);
			n = (size_t)ftell(f);
			fseek(f, 0, SEEK_SET);
			buf = malloc(n ? n : 1);
			if (!buf || fread(buf, 1, n, f) != n)
				n = 0;
			fclose(f);
		}
		if (!n || blvm_bzimage_vmlinux(buf, n, BLVM_VMLINUX_MAX, &v, &vlen, err, sizeof err) != 0) {
			printf("error: %s\n", n ? err : "cannot read the file");
			free(buf);
			return 1;
		}
		f = fopen(argv[3], "wb");
		int ok = f && fwrite(v, 1, vlen, f) == vlen;
		if (f)
			ok = fclose(f) == 0 && ok;
		free(v);
		free(buf);
		return ok ? 0 : 2;
	}
	if (argc == 3 && strcmp(argv[1], "--write-btf") == 0) {
		/* A synthetic kernel's BTF, for tests/sh/linux-buslock.sh: a valid layout that matches no
		 * guest, so reading the current task through it must fail cleanly. */
		struct synth s = { .comm = 0x5a0, .pid = 0x4e8, .tgid = 0x4ec, .size = 0x2400, .cur = 0x2010 };
		uint32_t len;
		void *raw = make_btf(&s, &len);
		FILE *f = fopen(argv[2], "wb");
		int ok = f && fwrite(raw, 1, len, f) == len;
		if (f)
			ok = fclose(f) == 0 && ok;
		free(raw);
		return ok ? 0 : 2;
	}
	ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	test_layout_and_current(false);
	test_layout_and_current(true);
	test_hostile_memory();
	/* not Linux: an ELF without .BTF, and a BTF without task_struct */
	struct blvm_linux_layout l;
	char err[200] = "";
	uint8_t notelf[64] = { 0 };
	CHECK(blvm_linux_layout_from_elf(notelf, sizeof notelf, &l, err, sizeof err) == -1 && strstr(err, "ELF"),
	      "not ELF: '%s'", err);
	struct btf *b = btf__new_empty();
	btf__add_int(b, "int", 4, BTF_INT_SIGNED);
	uint32_t len;
	const void *raw = btf__raw_data(b, &len);
	CHECK(blvm_linux_layout_from_btf(raw, len, &l, err, sizeof err) == -1 && strstr(err, "task_struct"),
	      "no task_struct: '%s'", err);
	btf__free(b);
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
