/* SPDX-License-Identifier: MIT */
/* Reading a Linux guest from outside: BTF layout, the guest's page tables, the current task
 * (linux.h says what and why). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "introspect/linux.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* [a, a + b) within [0, limit), without overflow. */
static bool within(uint64_t a, uint64_t b, uint64_t limit)
{
	return a <= limit && b <= limit - a;
}

/* ---------------------------------------------------------------- BTF */

/* The type id behind typedefs and const/volatile/restrict (btf.rst 2.2), or 0. */
static uint32_t strip(const struct btf *btf, uint32_t id)
{
	for (int depth = 0; depth < 32 && id; depth++) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		if (!t)
			return 0;
		if (!btf_is_typedef(t) && !btf_is_mod(t))
			return id;
		id = t->type;
	}
	return 0;
}

/* Finds member `name` of the struct/union `id`, looking into anonymous struct/union members as C
 * does (task_struct has some, and randomized-layout groups). Byte offset and member type id. */
static bool member(const struct btf *btf, uint32_t id, const char *name, uint64_t *off, uint32_t *type,
		   int depth)
{
	const struct btf_type *t = btf__type_by_id(btf, strip(btf, id));
	if (!t || !btf_is_composite(t) || depth > 8)
		return false;
	const struct btf_member *m = btf_members(t);
	for (unsigned k = 0; k < btf_vlen(t); k++) {
		uint32_t bits = btf_member_bit_offset(t, k);
		const char *mn = btf__name_by_offset(btf, m[k].name_off);
		if (mn && mn[0] && strcmp(mn, name) == 0) {
			if (bits % 8 || btf_member_bitfield_size(t, k))
				return false; /* a bitfield: not what comm/pid/tgid are */
			*off = bits / 8;
			*type = m[k].type;
			return true;
		}
		if ((!mn || !mn[0]) && member(btf, m[k].type, name, off, type, depth + 1)) {
			*off += bits / 8;
			return true;
		}
	}
	return false;
}

/* The per-CPU offset of the VAR `name` in the DATASEC ".data..percpu". */
static bool percpu_var(const struct btf *btf, const char *name, uint64_t *off, uint32_t *type)
{
	int sec = btf__find_by_name_kind(btf, ".data..percpu", BTF_KIND_DATASEC);
	if (sec <= 0)
		return false;
	const struct btf_type *t = btf__type_by_id(btf, (uint32_t)sec);
	const struct btf_var_secinfo *v = btf_var_secinfos(t);
	for (unsigned k = 0; k < btf_vlen(t); k++) {
		const struct btf_type *var = btf__type_by_id(btf, v[k].type);
		if (!var || !btf_is_var(var))
			continue;
		const char *vn = btf__name_by_offset(btf, var->name_off);
		if (vn && strcmp(vn, name) == 0) {
			*off = v[k].offset;
			*type = var->type;
			return true;
		}
	}
	return false;
}

static bool is_int_of_size(const struct btf *btf, uint32_t id, unsigned size)
{
	const struct btf_type *t = btf__type_by_id(btf, strip(btf, id));
	return t && (btf_is_int(t) || btf_is_enum(t)) && t->size == size;
}

int blvm_linux_layout_from_btf(const void *data, size_t len, struct blvm_linux_layout *l, char *err,
			       size_t errlen)
{
	memset(l, 0, sizeof *l);
	if (len == 0 || len > UINT32_MAX)
		return fail(err, errlen, "BTF of %zu bytes", len);
	/* libbpf reports what it refuses on stderr through its print callback; blvm says it in one
	 * line of its own (err), so the callback is off while parsing (at VM creation, one thread). */
	/* The type section must start 4-byte aligned, as the kernel's own BTF verifier requires
	 * (kernel/bpf/btf.c, btf_parse_type_sec: "Unaligned type_off"); libbpf accepts it unaligned and
	 * then hands out misaligned struct btf_type pointers (the linux_btf fuzzer found it). */
	struct btf_header hdr;
	if (len >= sizeof hdr) {
		memcpy(&hdr, data, sizeof hdr);
		if (hdr.magic == BTF_MAGIC && ((uint64_t)hdr.hdr_len + hdr.type_off) % 4 != 0)
			return fail(err, errlen, "the BTF is malformed (its type section is not 4-byte aligned)");
	}
	libbpf_print_fn_t old = libbpf_set_print(NULL);
	struct btf *btf = btf__new(data, (uint32_t)len);
	libbpf_set_print(old);
	if (!btf)
		return fail(err, errlen, "the BTF is malformed (libbpf refuses it)");
	int r = -1;
	int ts = btf__find_by_name_kind(btf, "task_struct", BTF_KIND_STRUCT);
	if (ts <= 0) {
		fail(err, errlen, "the BTF has no struct task_struct (not a Linux kernel?)");
		goto out;
	}
	const struct btf_type *tst = btf__type_by_id(btf, (uint32_t)ts);
	l->task_size = tst->size;
	uint64_t off;
	uint32_t type;
	const char *need[] = { "comm", "pid", "tgid" };
	uint32_t *dst[] = { &l->task_comm, &l->task_pid, &l->task_tgid };
	for (unsigned k = 0; k < 3; k++) {
		if (!member(btf, (uint32_t)ts, need[k], &off, &type, 0)) {
			fail(err, errlen, "struct task_struct has no member %s in the BTF", need[k]);
			goto out;
		}
		*dst[k] = (uint32_t)off;
		if (k == 0) {
			const struct btf_type *a = btf__type_by_id(btf, strip(btf, type));
			if (!a || !btf_is_array(a) || !is_int_of_size(btf, btf_array(a)->type, 1) ||
			    btf_array(a)->nelems == 0 || btf_array(a)->nelems > 64) {
				fail(err, errlen, "task_struct.comm is not a char array in the BTF");
				goto out;
			}
			l->comm_len = btf_array(a)->nelems;
		} else if (!is_int_of_size(btf, type, 4)) {
			fail(err, errlen, "task_struct.%s is not a 32-bit integer in the BTF", need[k]);
			goto out;
		}
		if (!within(off, k == 0 ? l->comm_len : 4, l->task_size)) {
			fail(err, errlen, "task_struct.%s lies outside the struct in the BTF", need[k]);
			goto out;
		}
	}
	/* The current task: per-CPU `current_task` (<= 6.1), or pcpu_hot.current_task (6.2+). */
	if (percpu_var(btf, "current_task", &off, &type)) {
		l->current_task = off;
		snprintf(l->current_task_how, sizeof l->current_task_how, "current_task");
	} else {
		uint64_t moff;
		uint32_t mtype;
		if (!percpu_var(btf, "pcpu_hot", &off, &type) || !member(btf, type, "current_task", &moff, &mtype, 0)) {
			fail(err, errlen, "the BTF has no per-CPU current_task nor pcpu_hot.current_task");
			goto out;
		}
		l->current_task = off + moff;
		snprintf(l->current_task_how, sizeof l->current_task_how, "pcpu_hot.current_task");
		type = mtype;
	}
	const struct btf_type *p = btf__type_by_id(btf, strip(btf, type));
	if (!p || !btf_is_ptr(p) || strip(btf, p->type) != (uint32_t)ts) {
		fail(err, errlen, "%s is not a struct task_struct pointer in the BTF", l->current_task_how);
		goto out;
	}
	r = 0;
out:
	btf__free(btf);
	return r;
}

int blvm_linux_layout_from_elf(const uint8_t *f, size_t len, struct blvm_linux_layout *l, char *err,
			       size_t errlen)
{
	/* ELF-64 Object File Format: the section headers, then the section called .BTF. */
	if (len < 64 || memcmp(f, "\177ELF", 4) != 0 || f[4] != 2 /* ELFCLASS64 */ || f[5] != 1 /* LSB */)
		return fail(err, errlen, "not a 64-bit little-endian ELF file");
	uint64_t shoff;
	uint16_t shentsize, shnum, shstrndx;
	memcpy(&shoff, f + 0x28, 8);
	memcpy(&shentsize, f + 0x3a, 2);
	memcpy(&shnum, f + 0x3c, 2);
	memcpy(&shstrndx, f + 0x3e, 2);
	if (shentsize < 64 || shnum == 0 || shstrndx >= shnum || !within(shoff, (uint64_t)shentsize * shnum, len))
		return fail(err, errlen, "the ELF section headers are malformed");
	const uint8_t *str = f + shoff + (uint64_t)shentsize * shstrndx;
	uint64_t str_off, str_size;
	memcpy(&str_off, str + 0x18, 8);
	memcpy(&str_size, str + 0x20, 8);
	if (!within(str_off, str_size, len))
		return fail(err, errlen, "the ELF section name table lies outside the file");
	for (unsigned k = 0; k < shnum; k++) {
		const uint8_t *sh = f + shoff + (uint64_t)shentsize * k;
		uint32_t name;
		uint64_t off, size;
		memcpy(&name, sh, 4);
		memcpy(&off, sh + 0x18, 8);
		memcpy(&size, sh + 0x20, 8);
		if (name >= str_size || str_size - name < sizeof ".BTF" ||
		    memcmp(f + str_off + name, ".BTF", sizeof ".BTF") != 0)
			continue;
		if (!within(off, size, len))
			return fail(err, errlen, "the .BTF section lies outside the file");
		return blvm_linux_layout_from_btf(f + off, size, l, err, errlen);
	}
	return fail(err, errlen, "the kernel has no .BTF section (built without CONFIG_DEBUG_INFO_BTF?)");
}

/* ---------------------------------------------------------------- the guest's page tables */

#define PTE_P 0x1ull
#define PTE_PS 0x80ull
#define PTE_ADDR 0x000ffffffffff000ull /* bits 51:12 (MAXPHYADDR <= 52, SDM Vol. 3 4.5.4) */

uint64_t blvm_linux_kernel_cr3(uint64_t cr3)
{
	/* Bits 11:0 are the PCID with CR4.PCIDE (SDM Vol. 3 4.10.1), bit 12 PTI's user half, bit 63
	 * the no-flush hint that only MOV to CR3 sees. */
	return cr3 & PTE_ADDR & ~0x1000ull;
}

int blvm_guest_translate(uint64_t cr3, bool la57, uint64_t lin, blvm_phys_read_fn *rd, void *arg,
			 uint64_t *gpa)
{
	unsigned levels = la57 ? 5 : 4;
	unsigned top = 12 + 9 * levels; /* 48 or 57 */
	uint64_t ext = (uint64_t)((int64_t)(lin << (64 - top)) >> (64 - top));
	if (ext != lin)
		return -1; /* not canonical */
	uint64_t table = cr3 & PTE_ADDR;
	for (unsigned lvl = levels; lvl >= 1; lvl--) {
		unsigned shift = 12 + 9 * (lvl - 1);
		uint64_t e;
		if (rd(arg, table + ((lin >> shift) & 0x1ff) * 8, &e, 8) != 0 || !(e & PTE_P))
			return -1;
		/* A page-size bit ends the walk at a PDPTE (1 GiB) or PDE (2 MiB); SDM Vol. 3 4.5.4. */
		if ((lvl == 2 || lvl == 3) && (e & PTE_PS)) {
			uint64_t size = 1ull << shift;
			*gpa = (e & PTE_ADDR & ~(size - 1)) | (lin & (size - 1));
			return 0;
		}
		table = e & PTE_ADDR;
	}
	*gpa = table | (lin & 0xfff);
	return 0;
}

int blvm_guest_read(uint64_t cr3, bool la57, uint64_t lin, void *buf, size_t len, blvm_phys_read_fn *rd,
		    void *arg)
{
	uint8_t *out = buf;
	while (len) {
		size_t n = 0x1000 - (lin & 0xfff);
		if (n > len)
			n = len;
		uint64_t gpa;
		if (blvm_guest_translate(cr3, la57, lin, rd, arg, &gpa) != 0 || rd(arg, gpa, out, n) != 0)
			return -1;
		out += n;
		lin += n;
		len -= n;
	}
	return 0;
}

int blvm_linux_current(const struct blvm_linux_layout *l, uint64_t cr3, bool la57, bool user,
		       uint64_t gs_base, uint64_t kernel_gs_base, blvm_phys_read_fn *rd, void *arg,
		       struct blvm_linux_task *t, char *err, size_t errlen)
{
	memset(t, 0, sizeof *t);
	uint64_t kcr3 = blvm_linux_kernel_cr3(cr3);
	/* In user mode the kernel's per-CPU base waits in IA32_KERNEL_GS_BASE for the next SWAPGS. */
	uint64_t percpu = user ? kernel_gs_base : gs_base;
	uint64_t task;
	if (blvm_guest_read(kcr3, la57, percpu + l->current_task, &task, 8, rd, arg) != 0)
		return fail(err, errlen, "cannot read %s at 0x%llx (per-CPU base 0x%llx)", l->current_task_how,
			    (unsigned long long)(percpu + l->current_task), (unsigned long long)percpu);
	/* A task_struct lives in the kernel's half of the address space (Documentation/arch/x86/
	 * x86_64/mm.rst); a pointer into the user half means the BTF does not match the kernel. */
	if (task >> 63 == 0)
		return fail(err, errlen, "%s holds 0x%llx, not a kernel address", l->current_task_how,
			    (unsigned long long)task);
	uint8_t comm[64];
	unsigned clen = l->comm_len < sizeof comm ? l->comm_len : sizeof comm;
	if (blvm_guest_read(kcr3, la57, task + l->task_pid, &t->pid, 4, rd, arg) != 0 ||
	    blvm_guest_read(kcr3, la57, task + l->task_tgid, &t->tgid, 4, rd, arg) != 0 ||
	    blvm_guest_read(kcr3, la57, task + l->task_comm, comm, clen, rd, arg) != 0)
		return fail(err, errlen, "cannot read the task_struct at 0x%llx", (unsigned long long)task);
	/* A pid is at most PID_MAX_LIMIT (4194304, include/linux/threads.h): anything else is a kernel
	 * that does not match its BTF, or memory the guest made up. */
	if (t->pid < 0 || t->pid > 4194304 || t->tgid < 0 || t->tgid > 4194304)
		return fail(err, errlen, "the task_struct at 0x%llx holds pid %d, tgid %d", (unsigned long long)task,
			    (int)t->pid, (int)t->tgid);
	t->addr = task;
	size_t n = 0;
	while (n < clen && n < BLVM_TASK_COMM_LEN && comm[n])
		n++;
	memcpy(t->comm, comm, n);
	t->comm[n] = '\0';
	return 0;
}
