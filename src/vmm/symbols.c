/* SPDX-License-Identifier: MIT */
/*
 * The kernel's own symbol table, so that reports can say "guest_main+0x1a5" next to a RIP.
 *
 * A PVH kernel is an ELF file; unless it was stripped, its section header table holds a SHT_SYMTAB
 * section (ELF gABI "Symbol Table") whose function symbols carry the virtual addresses the code
 * runs at: identity-mapped guests like this project's, and Linux's vmlinux at 0xffffffff8...,
 * alike, so a guest RIP is looked up as it is. The file is untrusted input, as in pvh.c: every
 * offset and size is checked against the file before it is used, and a table that does not check
 * out is ignored with a reason (symbols are an aid; QEMU boots such a kernel, and so do we).
 */
#include <elf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vmm.h"

#define SYMTAB_MAX_SYMBOLS (1u << 20) /* Linux's vmlinux has ~150000 */

struct blvm_sym {
	uint64_t addr, size;
	uint32_t name; /* offset into strtab */
	uint8_t rank;  /* at one address, the higher rank names it: 2 global function, 1 function, 0 other */
};

static int why(char *buf, size_t len, const char *msg)
{
	snprintf(buf, len, "%s", msg);
	return -1;
}

/* A uniform view of ELF32 and ELF64 section headers and symbols. */
struct shdr {
	uint32_t type, link;
	uint64_t offset, size, entsize;
};

static void get_shdr(const uint8_t *f, bool is64, uint64_t shoff, unsigned i, struct shdr *s)
{
	if (is64) {
		Elf64_Shdr h;
		memcpy(&h, f + shoff + (uint64_t)i * sizeof h, sizeof h);
		*s = (struct shdr){ h.sh_type, h.sh_link, h.sh_offset, h.sh_size, h.sh_entsize };
	} else {
		Elf32_Shdr h;
		memcpy(&h, f + shoff + (uint64_t)i * sizeof h, sizeof h);
		*s = (struct shdr){ h.sh_type, h.sh_link, h.sh_offset, h.sh_size, h.sh_entsize };
	}
}

static int cmp_sym(const void *a, const void *b)
{
	const struct blvm_sym *x = a, *y = b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return (int)y->rank - (int)x->rank; /* the best name first */
}

int blvm_symtab_load(struct blvm_symtab *t, const uint8_t *f, size_t len, char *err, size_t errlen)
{
	memset(t, 0, sizeof *t);
	bool is64 = f[EI_CLASS] == ELFCLASS64; /* the caller has checked the ELF header */
	uint64_t shoff;
	unsigned shnum, shentsize;
	if (is64) {
		Elf64_Ehdr eh;
		memcpy(&eh, f, sizeof eh);
		shoff = eh.e_shoff, shnum = eh.e_shnum, shentsize = eh.e_shentsize;
	} else {
		Elf32_Ehdr eh;
		memcpy(&eh, f, sizeof eh);
		shoff = eh.e_shoff, shnum = eh.e_shnum, shentsize = eh.e_shentsize;
	}
	if (shoff == 0 || shnum == 0)
		return 0; /* no section headers: nothing to name, nothing wrong */
	if (shentsize != (is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr)))
		return why(err, errlen, "section header entries have the wrong size");
	if (!fits(shoff, (uint64_t)shnum * shentsize, len))
		return why(err, errlen, "the section header table lies past the end of the file");

	struct shdr sym = { 0 }, str;
	unsigned i;
	for (i = 0; i < shnum; i++) {
		get_shdr(f, is64, shoff, i, &sym);
		if (sym.type == SHT_SYMTAB)
			break;
	}
	if (i == shnum)
		return 0; /* stripped */
	size_t symsz = is64 ? sizeof(Elf64_Sym) : sizeof(Elf32_Sym);
	if (sym.entsize != symsz)
		return why(err, errlen, "symbol table entries have the wrong size");
	if (!fits(sym.offset, sym.size, len))
		return why(err, errlen, "the symbol table lies past the end of the file");
	if (sym.link >= shnum)
		return why(err, errlen, "the symbol table's string table index is out of range");
	get_shdr(f, is64, shoff, sym.link, &str);
	if (str.type != SHT_STRTAB || !fits(str.offset, str.size, len) || str.size == 0)
		return why(err, errlen, "the symbol table's string table is missing or lies past the end of the file");
	uint64_t count = sym.size / symsz;
	if (count > SYMTAB_MAX_SYMBOLS)
		return why(err, errlen, "more than 1048576 symbols");

	/* Copy the string table with a NUL at its end, so that every name is a C string. */
	t->strtab = malloc(str.size + 1);
	t->v = calloc(count ? count : 1, sizeof *t->v);
	if (!t->strtab || !t->v) {
		blvm_symtab_free(t);
		return why(err, errlen, "out of memory");
	}
	memcpy(t->strtab, f + str.offset, str.size);
	t->strtab[str.size] = '\0';
	t->strsz = str.size;
	for (uint64_t k = 0; k < count; k++) {
		uint64_t value, size;
		uint32_t name;
		uint16_t shndx;
		uint8_t info;
		if (is64) {
			Elf64_Sym s;
			memcpy(&s, f + sym.offset + k * symsz, sizeof s);
			value = s.st_value, size = s.st_size, name = s.st_name, shndx = s.st_shndx, info = s.st_info;
		} else {
			Elf32_Sym s;
			memcpy(&s, f + sym.offset + k * symsz, sizeof s);
			value = s.st_value, size = s.st_size, name = s.st_name, shndx = s.st_shndx, info = s.st_info;
		}
		unsigned type = is64 ? ELF64_ST_TYPE(info) : ELF32_ST_TYPE(info);
		unsigned bind = is64 ? ELF64_ST_BIND(info) : ELF32_ST_BIND(info);
		/* Code symbols only: functions, and the untyped labels assembly code defines. */
		if ((type != STT_FUNC && type != STT_NOTYPE) || shndx == SHN_UNDEF || shndx >= SHN_LORESERVE)
			continue;
		if (name == 0 || name >= str.size || t->strtab[name] == '\0')
			continue; /* unnamed, or a name outside the string table: skipped, not trusted */
		t->v[t->n++] = (struct blvm_sym){ value, size, name,
						  (uint8_t)(type == STT_FUNC ? (bind == STB_GLOBAL ? 2 : 1) : 0) };
	}
	qsort(t->v, t->n, sizeof *t->v, cmp_sym);
	return 0;
}

void blvm_symtab_free(struct blvm_symtab *t)
{
	free(t->v);
	free(t->strtab);
	memset(t, 0, sizeof *t);
}

const char *blvm_symtab_lookup(const struct blvm_symtab *t, uint64_t addr, uint64_t *offset)
{
	size_t lo = 0, hi = t->n; /* the last symbol with addr <= the address */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->v[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	size_t k = lo - 1;
	while (k > 0 && t->v[k - 1].addr == t->v[k].addr)
		k--; /* the best-ranked name at that address (sorted first) */
	const struct blvm_sym *s = &t->v[k];
	/* A sized symbol (a C function) covers [addr, addr + size); past its end the address belongs to
	 * no function we know. An unsized one (an assembly label) reaches to the next symbol. */
	if (s->size && addr - s->addr >= s->size)
		return NULL;
	*offset = addr - s->addr;
	return t->strtab + s->name;
}

int blvm_symtab_format(const struct blvm_symtab *t, uint64_t addr, char *buf, size_t len)
{
	uint64_t off;
	const char *name = t ? blvm_symtab_lookup(t, addr, &off) : NULL;
	if (!name) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	return off ? snprintf(buf, len, "%s+0x%" PRIx64, name, off) : snprintf(buf, len, "%s", name);
}

/*
 * A System.map, as distributions ship it beside vmlinuz (Linux's scripts/mksysmap: `nm -n` output):
 * one symbol a line, "ADDRESS TYPE NAME", the address in hex, TYPE one nm(1) letter. Only code is
 * kept (T/t: text; W/w: weak, which in a kernel are functions), global first at one address, as for
 * an ELF table. The map has no sizes: a function reaches to the next symbol of any type (as the
 * kernel's kallsyms sizes them), so that an address past the last function (data, a module) is not
 * named after it. Its addresses are the link-time ones: a relocated (KASLR) kernel runs them shifted by
 * one offset (blvm_kaslr_slide). The file is the user's, not the guest's, but it is checked all the
 * same: a line that is not in that form is an error naming it, not a guess.
 */
#define MAP_NAME_MAX 512 /* KSYM_NAME_LEN is 512 since Linux 6.1 (include/linux/kallsyms.h) */

int blvm_symtab_load_map(struct blvm_symtab *t, const uint8_t *f, size_t len, char *err, size_t errlen)
{
	memset(t, 0, sizeof *t);
	size_t lines = 0, cap = 0;
	for (size_t i = 0; i < len; i++)
		lines += f[i] == '\n';
	cap = lines + 1;
	if (cap > SYMTAB_MAX_SYMBOLS)
		return why(err, errlen, "more than 1048576 lines");
	t->strtab = malloc(len + 2);
	t->v = calloc(cap, sizeof *t->v);
	if (!t->strtab || !t->v) {
		blvm_symtab_free(t);
		return why(err, errlen, "out of memory");
	}
	t->strtab[0] = '\0'; /* offset 0: no name, as in ELF */
	size_t used = 1, lineno = 0;
	for (size_t pos = 0; pos < len;) {
		const uint8_t *line = f + pos, *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		pos += n + 1;
		lineno++;
		if (n == 0 && !nl)
			break;
		size_t k = 0;
		uint64_t addr = 0;
		while (k < n && k < 16 && ((line[k] >= '0' && line[k] <= '9') || (line[k] >= 'a' && line[k] <= 'f') ||
					   (line[k] >= 'A' && line[k] <= 'F'))) {
			unsigned d = line[k] <= '9' ? line[k] - '0' : (line[k] | 0x20) - 'a' + 10;
			addr = addr << 4 | d;
			k++;
		}
		size_t name_len = k + 3 <= n ? n - (k + 3) : 0;
		if (k == 0 || k + 3 >= n + 1 || line[k] != ' ' || line[k + 1] <= ' ' || line[k + 1] > '~' ||
		    line[k + 2] != ' ' || name_len == 0 || name_len > MAP_NAME_MAX ||
		    memchr(line + k + 3, ' ', name_len) || memchr(line + k + 3, '\0', name_len)) {
			blvm_symtab_free(t);
			snprintf(err, errlen, "line %zu is not \"ADDRESS TYPE NAME\" (a System.map, as nm -n prints it)",
				 lineno);
			return -1;
		}
		char type = (char)line[k + 1];
		bool code = type == 'T' || type == 't' || type == 'W' || type == 'w';
		if (code) {
			memcpy(t->strtab + used, line + k + 3, name_len);
			t->strtab[used + name_len] = '\0';
		}
		/* Rank 0 here: not code, kept until the sizes are known. */
		t->v[t->n++] = (struct blvm_sym){ addr, 0, code ? (uint32_t)used : 0,
						  (uint8_t)(type == 'T' ? 2 : code ? 1 : 0) };
		if (code)
			used += name_len + 1;
	}
	if (lineno == 0) {
		blvm_symtab_free(t);
		return why(err, errlen, "the file is empty");
	}
	t->strsz = used;
	qsort(t->v, t->n, sizeof *t->v, cmp_sym);
	size_t next = 0, kept = 0;
	for (size_t k = 0; k < t->n; k++) {
		while (next < t->n && t->v[next].addr <= t->v[k].addr)
			next++;
		if (t->v[k].rank == 0)
			continue;
		t->v[k].size = next < t->n ? t->v[next].addr - t->v[k].addr : 0; /* the last: unbounded */
		t->v[kept++] = t->v[k];
	}
	t->n = kept;
	return 0;
}

int blvm_symtab_find(const struct blvm_symtab *t, const char *name, uint64_t *addr)
{
	for (size_t k = 0; k < t->n; k++) {
		if (strcmp(t->strtab + t->v[k].name, name) == 0) {
			*addr = t->v[k].addr;
			return 0;
		}
	}
	return -1;
}

/*
 * The KASLR offset of a 64-bit Linux: the runtime address of a symbol minus its link-time address.
 * arch/x86/boot/compressed/kaslr.c chooses the virtual offset in units of CONFIG_PHYSICAL_ALIGN (2 MiB
 * on x86-64 unless configured larger, always a multiple of 2 MiB: arch/x86/Kconfig), upwards from the
 * link address (LOAD_PHYSICAL_ADDR): a difference that is negative or not 2 MiB-aligned means the map
 * is not this kernel's.
 */
int blvm_kaslr_slide(uint64_t link, uint64_t runtime, uint64_t *slide, char *err, size_t errlen)
{
	if (runtime < link || (runtime - link) & 0x1fffff) {
		snprintf(err, errlen, "runtime address 0x%" PRIx64 " minus link address 0x%" PRIx64
			 " is not a KASLR offset (a non-negative multiple of 2 MiB)", runtime, link);
		return -1;
	}
	*slide = runtime - link;
	return 0;
}
