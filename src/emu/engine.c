/* SPDX-License-Identifier: MIT */
/*
 * The emu engine's ops: KVM's ioctls (Documentation/virt/kvm/api.rst) over the software CPU.
 * The run loop executes blocks and turns the CPU's exits into struct kvm_run as KVM fills it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "emu/emu.h"
#include "emu/xlate.h"
#include "emu/irq.h"

#define VM(v) ((struct emu_vm *)(v))
#define CPU(v) ((struct emu_vcpu *)(v))

static int emu_vm_create(const struct blvm_engine_config *cfg, struct blvm_engine_vm **out, char *err,
			 size_t errlen)
{
	struct emu_vm *vm = calloc(1, sizeof *vm);
	if (!vm) {
		snprintf(err, errlen, "emu engine: out of memory");
		return -ENOMEM;
	}
	if (cfg)
		vm->cfg = *cfg;
	if (!vm->cfg.nr_vcpus)
		vm->cfg.nr_vcpus = 1;
	pthread_mutex_init(&vm->stw_lock, NULL);
	*out = (struct blvm_engine_vm *)vm;
	return 0;
}

static void free_slot(struct emu_slot *s)
{
	free((void *)s->page_gen);
	free((void *)s->page_code);
	memset(s, 0, sizeof *s);
}

static void emu_vm_destroy(struct blvm_engine_vm *v)
{
	struct emu_vm *vm = VM(v);
	if (!vm)
		return;
	for (unsigned k = 0; k < vm->nslots; k++)
		free_slot(&vm->slots[k]);
	emu_irqchip_destroy_vm(vm);
	pthread_mutex_destroy(&vm->stw_lock);
	free(vm);
}

static int emu_check_extension(struct blvm_engine_vm *v, long cap)
{
	(void)v;
	switch (cap) {
	case KVM_CAP_USER_MEMORY:
	case KVM_CAP_IMMEDIATE_EXIT:
	case KVM_CAP_SET_GUEST_DEBUG:
		return 1;
	case KVM_CAP_NR_MEMSLOTS:
		return EMU_MAX_SLOTS;
	case KVM_CAP_X86_BUS_LOCK_EXIT:
		/* x86.c kvm_vm_ioctl_check_extension(): the mode bitmap where the CPU has the exit */
		return KVM_BUS_LOCK_DETECTION_OFF | KVM_BUS_LOCK_DETECTION_EXIT;
	case BLVM_CAP_BUS_LOCK_CONTAIN:
		return 1;
	default:
		return 0;
	}
}

static int emu_enable_cap(struct blvm_engine_vm *v, const struct kvm_enable_cap *cap)
{
	struct emu_vm *vm = VM(v);
	if (cap->cap == BLVM_CAP_BUS_LOCK_CONTAIN) {
		if (cap->args[0] > 1)
			return -EINVAL;
		atomic_store(&vm->bus_lock_contain, cap->args[0] != 0);
		return 0;
	}
	if (cap->cap != KVM_CAP_X86_BUS_LOCK_EXIT)
		return -EINVAL;
	uint64_t m = cap->args[0];
	/* As x86.c kvm_vm_ioctl_enable_cap(): unknown bits, or OFF together with EXIT, are -EINVAL;
	 * EXIT sets kvm->arch.bus_lock_detection_enabled, which nothing clears (OFF alone and 0 succeed
	 * and do nothing). vmx_secondary_exec_control() / init_vmcb() read it when a vCPU is set up,
	 * so it reaches only vCPUs created afterwards. */
	if ((m & ~(uint64_t)(KVM_BUS_LOCK_DETECTION_OFF | KVM_BUS_LOCK_DETECTION_EXIT)) ||
	    (m & KVM_BUS_LOCK_DETECTION_OFF && m & KVM_BUS_LOCK_DETECTION_EXIT))
		return -EINVAL;
	if (m & KVM_BUS_LOCK_DETECTION_EXIT)
		vm->bus_lock_detection_enabled = true;
	return 0;
}

/* KVM_SET_USER_MEMORY_REGION: create, resize/move (delete + create) or delete (size 0) a slot.
 * Slots may change only while no vCPU runs (every vCPU drops its TLB and blocks at its next run()). */
static int emu_set_user_memory_region(struct blvm_engine_vm *v, const struct kvm_userspace_memory_region *r)
{
	struct emu_vm *vm = VM(v);
	if ((r->guest_phys_addr | r->memory_size | r->userspace_addr) & 0xfff)
		return -EINVAL;
	if (r->flags & ~(uint32_t)KVM_MEM_READONLY)
		return -EINVAL;
	if (r->guest_phys_addr + r->memory_size < r->guest_phys_addr)
		return -EINVAL;
	unsigned id = r->slot & 0xffff;
	struct emu_slot *s = NULL;
	for (unsigned k = 0; k < vm->nslots; k++)
		if (vm->slots[k].size && vm->slots[k].id == id)
			s = &vm->slots[k];
	if (r->memory_size == 0) {
		if (s)
			free_slot(s);
		atomic_fetch_add(&vm->slots_epoch, 1);
		return 0;
	}
	for (unsigned k = 0; k < vm->nslots; k++) {
		struct emu_slot *o = &vm->slots[k];
		if (o == s || !o->size)
			continue;
		if (r->guest_phys_addr < o->gpa + o->size && o->gpa < r->guest_phys_addr + r->memory_size)
			return -EEXIST;
	}
	if (!s) {
		for (unsigned k = 0; k < vm->nslots; k++)
			if (!vm->slots[k].size)
				s = &vm->slots[k];
		if (!s) {
			if (vm->nslots == EMU_MAX_SLOTS)
				return -ENOSPC;
			s = &vm->slots[vm->nslots++];
		}
	} else {
		free_slot(s);
	}
	uint64_t pages = r->memory_size >> 12;
	s->page_gen = calloc(pages, sizeof *s->page_gen);
	s->page_code = calloc(pages, sizeof *s->page_code);
	if (!s->page_gen || !s->page_code) {
		free_slot(s);
		return -ENOMEM;
	}
	s->gpa = r->guest_phys_addr;
	s->size = r->memory_size;
	s->hva = (uint8_t *)(uintptr_t)r->userspace_addr;
	s->id = id;
	s->flags = r->flags;
	atomic_fetch_add(&vm->slots_epoch, 1);
	return 0;
}

/* Architectural state after RESET (SDM Vol. 3 10.1.1, Table 10-1): INIT's, and the MSRs INIT keeps. */
static void vcpu_reset(struct emu_vcpu *c)
{
	c->pat = EMU_PAT_RESET;
	c->misc_enable = EMU_MISC_ENABLE_RESET;
	c->mtrr_def_type = EMU_MTRR_DEF_TYPE_RESET;
	c->feature_control = 0;
	memset(c->mtrr_fixed, 0, sizeof c->mtrr_fixed);
	memset(c->mtrr_var, 0, sizeof c->mtrr_var);
	c->apic_base = 0xfee00000ull | (1u << 11) | (c->id == 0 ? (1u << 8) : 0);
	c->debugctl = 0; /* IA32_DEBUGCTL: 0 at power-up */
	c->pkrs = 0;     /* IA32_PKRS: 0 at RESET (SDM Vol. 4 Table 2-2) */
	c->bld_trap = false;
	emu_init_state(c);
	emu_fpu_reset(c); /* RESET only: INIT keeps the x87/SSE state (SDM Vol. 3 Table 10-1) */
	emu_bus_lock_controls(c);
}

static int emu_vcpu_create(struct blvm_engine_vm *v, unsigned id, struct blvm_engine_vcpu **out,
			   struct kvm_run **run)
{
	struct emu_vm *vm = VM(v);
	struct emu_vcpu *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	void *area = mmap(NULL, EMU_RUN_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) {
		free(c);
		return -ENOMEM;
	}
	c->run = area;
	c->vm = vm;
	c->id = id;
	if (emu_decoder_init(c) || emu_fpu_init(c)) {
		munmap(area, EMU_RUN_BYTES);
		emu_xlate_free(c);
		free(c->arena);
		free(c);
		return -ENOMEM;
	}
	c->seen_slots_epoch = atomic_load(&vm->slots_epoch);
	c->seen_sync = atomic_load(&vm->sync) & ~EMU_SYNC_STW;
	vcpu_reset(c);
	if (emu_irq_vcpu_init(c)) {
		munmap(area, EMU_RUN_BYTES);
		emu_xlate_free(c);
		free(c->arena);
		free(c);
		return -ENOMEM;
	}
	/* The VM-wide setting becomes this vCPU's execution controls (vmx_secondary_exec_control():
	 * SECONDARY_EXEC_BUS_LOCK_DETECTION; init_vmcb(): INTERCEPT_BUSLOCK, bus_lock_counter 0). */
	if (vm->bus_lock_detection_enabled) {
		if (vm->cfg.cpu_vendor_amd)
			c->intercept_buslock = true;
		else
			c->secondary_exec_control |= VMX_SECONDARY_EXEC_BUS_LOCK_DETECTION;
		c->bus_lock_counter = 0;
		emu_bus_lock_controls(c);
	}
	/* into the VM's list for the exclusive section (mmu.c, "SMP") */
	pthread_mutex_lock(&vm->stw_lock);
	unsigned k = 0;
	while (k < EMU_MAX_VCPUS && vm->vcpus[k])
		k++;
	if (k < EMU_MAX_VCPUS) {
		vm->vcpus[k] = c;
		atomic_fetch_add(&vm->nvcpus, 1);
	}
	pthread_mutex_unlock(&vm->stw_lock);
	if (k == EMU_MAX_VCPUS) {
		munmap(area, EMU_RUN_BYTES);
		emu_fpu_free(c);
		emu_xlate_free(c);
		free(c->arena);
		free(c);
		return -ENOSPC;
	}
	*out = (struct blvm_engine_vcpu *)c;
	*run = c->run;
	return 0;
}

static void emu_vcpu_destroy(struct blvm_engine_vcpu *v)
{
	struct emu_vcpu *c = CPU(v);
	if (!c)
		return;
	struct emu_vm *vm = c->vm;
	pthread_mutex_lock(&vm->stw_lock);
	for (unsigned k = 0; k < EMU_MAX_VCPUS; k++)
		if (vm->vcpus[k] == c) {
			vm->vcpus[k] = NULL;
			atomic_fetch_sub(&vm->nvcpus, 1);
		}
	pthread_mutex_unlock(&vm->stw_lock);
	emu_irq_vcpu_fini(c);
	munmap(c->run, EMU_RUN_BYTES);
	emu_fpu_free(c);
	emu_xlate_free(c);
	free(c->arena);
	free(c);
}

static int emu_get_regs(struct blvm_engine_vcpu *v, struct kvm_regs *r)
{
	struct emu_vcpu *c = CPU(v);
	r->rax = c->r[0]; r->rcx = c->r[1]; r->rdx = c->r[2]; r->rbx = c->r[3];
	r->rsp = c->r[4]; r->rbp = c->r[5]; r->rsi = c->r[6]; r->rdi = c->r[7];
	r->r8 = c->r[8]; r->r9 = c->r[9]; r->r10 = c->r[10]; r->r11 = c->r[11];
	r->r12 = c->r[12]; r->r13 = c->r[13]; r->r14 = c->r[14]; r->r15 = c->r[15];
	r->rip = c->rip;
	r->rflags = c->rflags;
	return 0;
}

static int emu_set_regs(struct blvm_engine_vcpu *v, const struct kvm_regs *r)
{
	struct emu_vcpu *c = CPU(v);
	c->r[0] = r->rax; c->r[1] = r->rcx; c->r[2] = r->rdx; c->r[3] = r->rbx;
	c->r[4] = r->rsp; c->r[5] = r->rbp; c->r[6] = r->rsi; c->r[7] = r->rdi;
	c->r[8] = r->r8; c->r[9] = r->r9; c->r[10] = r->r10; c->r[11] = r->r11;
	c->r[12] = r->r12; c->r[13] = r->r13; c->r[14] = r->r14; c->r[15] = r->r15;
	c->r[EMU_NOREG] = 0;
	c->rip = r->rip;
	c->rflags = (r->rflags & (EMU_FLAGS_WRITABLE | EMU_VM)) | EMU_RF_FIXED;
	emu_update_mode(c); /* EFLAGS.VM: virtual-8086 mode, refused when it runs (EMU_MODE_V86) */
	return 0;
}

static void dt_out(struct kvm_dtable *d, const struct emu_dtable *t)
{
	memset(d, 0, sizeof *d);
	d->base = t->base;
	d->limit = t->limit;
}

static int emu_get_sregs(struct blvm_engine_vcpu *v, struct kvm_sregs *s)
{
	struct emu_vcpu *c = CPU(v);
	memset(s, 0, sizeof *s);
	s->es = c->seg[EMU_ES]; s->cs = c->seg[EMU_CS]; s->ss = c->seg[EMU_SS];
	s->ds = c->seg[EMU_DS]; s->fs = c->seg[EMU_FS]; s->gs = c->seg[EMU_GS];
	s->tr = c->tr;
	s->ldt = c->ldt;
	dt_out(&s->gdt, &c->gdt);
	dt_out(&s->idt, &c->idt);
	s->cr0 = c->cr0; s->cr2 = c->cr2; s->cr3 = c->cr3; s->cr4 = c->cr4; s->cr8 = emu_irq_get_cr8(c);
	s->efer = c->efer;
	s->apic_base = c->apic_base;
	return 0;
}

static int emu_set_sregs(struct blvm_engine_vcpu *v, const struct kvm_sregs *s)
{
	struct emu_vcpu *c = CPU(v);
	c->seg[EMU_ES] = s->es; c->seg[EMU_CS] = s->cs; c->seg[EMU_SS] = s->ss;
	c->seg[EMU_DS] = s->ds; c->seg[EMU_FS] = s->fs; c->seg[EMU_GS] = s->gs;
	c->tr = s->tr;
	c->ldt = s->ldt;
	c->gdt = (struct emu_dtable){ s->gdt.base, s->gdt.limit };
	c->idt = (struct emu_dtable){ s->idt.base, s->idt.limit };
	c->cr0 = s->cr0 | CR0_ET;
	c->cr2 = s->cr2;
	c->cr3 = s->cr3;
	c->cr4 = s->cr4;
	emu_irq_set_cr8(c, s->cr8 & 0xf);
	c->efer = s->efer; /* as KVM: taken as given, LMA included */
	c->apic_base = s->apic_base;
	/* as KVM's KVM_SET_SREGS with PAE paging: the PDPTE registers from CR3's table, unchecked */
	if (!c->vm->cfg.cpu_vendor_amd && emu_pae_paging(c->cr0, c->cr4, c->efer))
		emu_load_pdptes(c, c->cr3, false);
	emu_tlb_flush(c);
	emu_update_mode(c);
	emu_tlb_flush(c);
	return 0;
}

/* KVM_GET_MSRS: the MSRs as the guest's RDMSR reads them (emu_rdmsr), stopping at the first the
 * model does not have, as KVM's msr_io() does. */
static int emu_get_msrs(struct blvm_engine_vcpu *v, struct kvm_msrs *msrs)
{
	struct emu_vcpu *c = CPU(v);
	uint32_t n = 0;
	uint64_t data;
	while (n < msrs->nmsrs && emu_rdmsr(c, msrs->entries[n].index, &data) == 0)
		msrs->entries[n++].data = data;
	return (int)n;
}

/*
 * Instruction breakpoints (SDM Vol. 3 17.3.1.1, "Instruction-Breakpoint Exception Condition"): a
 * #DB fault before the instruction whose first byte's linear address is in an enabled DR0-DR3 with
 * R/W = 00, unless EFLAGS.RF = 1, with DR6.Bn set for each matching breakpoint (emu_dr6_db). RF is
 * cleared once the instruction it suppressed the breakpoint for runs ("the processor clears the RF
 * flag at the end of every instruction", except IRET that loads it: cleared before, so an IRET
 * setting it keeps it for the next instruction). The run loop executes one instruction per block
 * while c->insn_bp. Returns true when a #DB is now pending.
 */
static bool insn_breakpoint(struct emu_vcpu *c)
{
	if (c->exc_vec >= 0)
		return false;
	if (c->rflags & EMU_RF) {
		c->rflags &= ~EMU_RF;
		return false;
	}
	uint64_t lin = emu_code_lin(c, c->rip), hit = 0;
	if (!c->mode64)
		lin = (uint32_t)lin;
	for (unsigned n = 0; n < 4; n++)
		if (emu_dr7_insn_bp(c->dr[7], n) && (c->mode64 ? c->dr[n] : (uint32_t)c->dr[n]) == lin)
			hit |= 1ull << n;
	if (!hit)
		return false;
	emu_dr6_db(c, hit);
	c->exc_vec = EMU_V_DB;
	c->exc_has_err = false;
	c->exc_err = 0;
	c->exc_soft = false;
	return true;
}

static int emu_set_guest_debug(struct blvm_engine_vcpu *v, const struct kvm_guest_debug *dbg)
{
	struct emu_vcpu *c = CPU(v);
	if (dbg->control & ~(uint32_t)(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP))
		return -EINVAL;
	c->singlestep = (dbg->control & KVM_GUESTDBG_ENABLE) && (dbg->control & KVM_GUESTDBG_SINGLESTEP);
	return 0;
}

static void emu_kick(struct blvm_engine_vcpu *v)
{
	atomic_fetch_or(&CPU(v)->kick, EMU_KICK_EXIT);
	emu_wake(CPU(v)); /* out of a HLT sleep */
}

/* emu.h. Zydis in Intel syntax with explicit operand sizes, as the reports print instructions. */
void emu_format_insn(const struct emu_vcpu *c, const uint8_t *bytes, unsigned n, unsigned mode, uint64_t rip,
		     char *buf, size_t len)
{
	const ZydisDecoder *dec = emu_decoder(c, mode);
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
	ZydisFormatter fmt;
	snprintf(buf, len, "(unknown)");
	if (n && ZYAN_SUCCESS(ZydisDecoderDecodeFull(dec, bytes, n, &zi, zo)) &&
	    ZYAN_SUCCESS(ZydisFormatterInit(&fmt, ZYDIS_FORMATTER_STYLE_INTEL)) &&
	    ZYAN_SUCCESS(ZydisFormatterSetProperty(&fmt, ZYDIS_FORMATTER_PROP_FORCE_SIZE, ZYAN_TRUE)))
		ZydisFormatterFormatInstruction(&fmt, &zi, zo, zi.operand_count_visible, buf, len, rip, NULL);
}

/* Beyond KVM: the bus lock the last run reported, attributed. The instruction is decoded again from
 * the bytes captured at detection (a slow path, at bus-lock rates). */
static int emu_bus_lock_info(struct blvm_engine_vcpu *v, struct blvm_bus_lock_info *info)
{
	struct emu_vcpu *c = CPU(v);
	if (!c->bl_valid)
		return -ENOENT;
	*info = c->bl;
	emu_format_insn(c, c->bl_bytes, c->bl_nbytes, c->bl_mode, c->bl.rip, info->disasm, sizeof info->disasm);
	return 0;
}

/* The SDM's mnemonics of the exception vectors (Vol. 3 6.3.1, Table 6-1); NULL: reserved. */
static const char *const exc_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", NULL, "#TS", "#NP", "#SS", "#GP", "#PF",
	NULL, "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", [28] = "#HV", [29] = "#VC", [30] = "#SX",
};

/* Beyond KVM: what led to the last KVM_EXIT_SHUTDOWN (system.c emu_deliver_pending). */
static int emu_shutdown_info(struct blvm_engine_vcpu *v, struct blvm_shutdown_info *info)
{
	struct emu_vcpu *c = CPU(v);
	if (c->run->exit_reason != KVM_EXIT_SHUTDOWN || !c->sd_n)
		return -ENOENT;
	memset(info, 0, sizeof *info);
	info->rip = emu_code_lin(c, c->rip);
	emu_format_insn(c, c->sd_bytes, c->sd_nbytes, c->sd_mode, info->rip, info->disasm, sizeof info->disasm);
	size_t off = 0;
	for (unsigned i = 0; i < c->sd_n; i++) {
		unsigned ev = c->sd_ev[i], vec = ev & 0xff;
		char name[24];
		if ((ev & EMU_EV_SOFT) && vec != EMU_V_BP && vec != EMU_V_OF)
			snprintf(name, sizeof name, "INT 0x%02x", vec);
		else if ((ev & EMU_EV_EXT) && vec != 2)
			snprintf(name, sizeof name, "interrupt 0x%02x", vec);
		else if (vec < 32 && exc_names[vec])
			snprintf(name, sizeof name, "%s", exc_names[vec]);
		else
			snprintf(name, sizeof name, "vector %u", vec);
		int k = snprintf(info->chain + off, sizeof info->chain - off, "%s%s", i ? " -> " : "", name);
		if (k < 0 || (size_t)k >= sizeof info->chain - off)
			break; /* truncated: what fits is kept */
		off += (size_t)k;
	}
	return 0;
}

static int64_t emu_native_instructions(struct blvm_engine_vcpu *v)
{
	const struct emu_vcpu *c = CPU(v);
	return c->xl ? (int64_t)emu_xlate_native(c) : -1;
}

static int64_t emu_instructions(struct blvm_engine_vcpu *v)
{
	/* Read live from other threads (--control, --metrics): the vCPU's thread stores it with
	 * __atomic_store_n (exec.c, emu_run), so a relaxed load never races. */
	return (int64_t)__atomic_load_n(&CPU(v)->icount, __ATOMIC_RELAXED);
}

/* The next queued MMIO write becomes this exit. */
static bool deliver_queued_write(struct emu_vcpu *c)
{
	if (c->mwq_pos >= c->mwq_n) {
		c->mwq_pos = c->mwq_n = 0;
		return false;
	}
	struct emu_mmio_wq *q = &c->mwq[c->mwq_pos++];
	struct kvm_run *run = c->run;
	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = q->gpa;
	run->mmio.len = q->len;
	run->mmio.is_write = 1;
	memcpy(run->mmio.data, q->data, sizeof run->mmio.data);
	if (c->mwq_pos == c->mwq_n)
		c->mwq_pos = c->mwq_n = 0;
	return true;
}

static void debug_exit(struct emu_vcpu *c)
{
	struct kvm_run *run = c->run;
	run->exit_reason = KVM_EXIT_DEBUG;
	memset(&run->debug, 0, sizeof run->debug);
	run->debug.arch.exception = EMU_V_DB;
	run->debug.arch.pc = c->rip;
	run->debug.arch.dr6 = 0xffff4ff0; /* BS */
	run->debug.arch.dr7 = c->dr[7];
}

static uint64_t linear_rip(const struct emu_vcpu *c)
{
	return emu_code_lin(c, c->rip); /* kvm_get_linear_rip() */
}

/*
 * The kernel layer of the bus-lock exit, after the CPU delivered an exit (c->exit_reason in the
 * hardware's numbering) or a bus lock rode on an exit filled straight into kvm_run.
 *
 * VMX, as arch/x86/kvm/vmx/vmx.c: handle_bus_lock_vmexit() sets exit_reason.bus_lock_detected on
 * exit 74 ("Hardware may or may not set the BUS_LOCK_DETECTED flag on BUS_LOCK VM-Exits") and
 * returns 1 (handled in the kernel); vmx_handle_exit() then, when bus_lock_detected: an exit
 * handled in the kernel (ret > 0) becomes KVM_EXIT_X86_BUS_LOCK, an exit to user space keeps its
 * reason, and in both cases run->flags |= KVM_RUN_X86_BUS_LOCK. The only exit the emu engine
 * handles "in the kernel" is 74 itself; everything else it delivers goes to the monitor.
 *
 * SVM, as arch/x86/kvm/svm/svm.c bus_lock_exit(): KVM_EXIT_X86_BUS_LOCK + flag, remember the linear
 * RIP and arm complete_userspace_buslock() for the next KVM_RUN.
 */
static void bus_lock_vmexit(struct emu_vcpu *c)
{
	struct kvm_run *run = c->run;
	if (c->exit_reason == SVM_EXIT_BUS_LOCK) {
		run->exit_reason = KVM_EXIT_X86_BUS_LOCK;
		run->flags |= KVM_RUN_X86_BUS_LOCK;
		c->cui_linear_rip = linear_rip(c);
		c->cui_buslock = true;
		c->bl_valid = true;
	} else {
		uint32_t er = c->exit_reason;
		if (c->bus_lock_detected)
			er |= VMX_EXIT_REASON_BUS_LOCK_DETECTED; /* bit 26 on whichever exit was delivered */
		if ((er & 0xffff) == VMX_EXIT_REASON_BUS_LOCK)
			er |= VMX_EXIT_REASON_BUS_LOCK_DETECTED; /* handle_bus_lock_vmexit() */
		if (er & VMX_EXIT_REASON_BUS_LOCK_DETECTED) {
			if ((er & 0xffff) == VMX_EXIT_REASON_BUS_LOCK) /* handled in the kernel: ret > 0 */
				run->exit_reason = KVM_EXIT_X86_BUS_LOCK;
			run->flags |= KVM_RUN_X86_BUS_LOCK;
			c->bl_valid = true;
		}
	}
	c->exit_reason = 0;
	c->bus_lock_detected = false;
}

/*
 * KVM_RUN. Order of business: clear flags; immediate_exit / pending kick -> -EINTR; complete the
 * previous exit (MMIO read data, IN data: the interrupted instruction re-executes alone and consumes
 * it); deliver any queued MMIO write; then run blocks until an exit.
 */
static int run_vcpu(struct emu_vcpu *c);

static int emu_run(struct blvm_engine_vcpu *v)
{
	struct emu_vcpu *c = CPU(v);
	struct kvm_run *run = c->run;
	run->flags = 0;
	c->bl_valid = false;
	if (run->immediate_exit || (atomic_fetch_and(&c->kick, ~EMU_KICK_EXIT) & EMU_KICK_EXIT)) {
		run->exit_reason = KVM_EXIT_INTR;
		return -EINTR;
	}
	/* Guest execution only while no exclusive section is held (mmu.c, "SMP"); OUT again after. */
	emu_vcpu_enter(c);
	int r = run_vcpu(c);
	emu_vcpu_leave(c);
	return r;
}

static int run_vcpu(struct emu_vcpu *c)
{
	struct kvm_run *run = c->run;
	if (unlikely(c->cui_buslock)) {
		/* complete_userspace_buslock(): "If userspace has NOT changed RIP, then KVM's ABI is to let
		 * the guest execute the bus-locking instruction" -- the counter lets one bus lock through. */
		c->cui_buslock = false;
		if (linear_rip(c) == c->cui_linear_rip)
			c->bus_lock_counter = 1;
	}
	uint32_t se = atomic_load(&c->vm->slots_epoch);
	if (se != c->seen_slots_epoch) {
		c->seen_slots_epoch = se;
		emu_tlb_flush(c);
		emu_bcache_flush(c);
	}
	/* the host may have written guest RAM since the last run: every block is compared with memory
	 * once before it runs again (decode.c, block_seen); the jump cache and chaining (exec epoch)
	 * send every block there first */
	if (++c->run_seq == 0)
		emu_bcache_flush(c); /* wrapped: no block may match an old sequence number */
	emu_xep_bump(c);
	if (c->mrc_wait) {
		struct emu_mmio_rc *rc = &c->mrc[c->mrc_n - 1];
		memcpy(rc->data, run->mmio.data, rc->len);
		c->mrc_wait = false;
		c->mrc_pos = 0;
		c->stop = EMU_ST_END;
	}
	if (c->pio_wait) {
		memcpy(c->pio_data, (uint8_t *)run + EMU_RUN_DATA_OFFSET, c->pio_size);
		c->pio_wait = false;
		c->pio_valid = true;
		c->stop = EMU_ST_END;
	}
	if (deliver_queued_write(c))
		return 0;
	c->exit_pending = false;
	if (c->halted || (c->lapic && c->lapic->mp_state != EMU_MP_RUNNABLE))
		atomic_fetch_or(&c->kick, EMU_KICK_EVENT); /* halt on, or wait for INIT/SIPI (irqchip.c) */
	if (c->rflags & EMU_IF)
		emu_irq_if_set(c); /* KVM_SET_REGS may have set IF under a held-back interrupt */

	for (;;) {
		bool tf = c->rflags & EMU_TF;
		/* the rare reasons to act at a block boundary, in one test (the hot path is the else) */
		if (unlikely(atomic_load_explicit(&c->kick, memory_order_relaxed) | (c->exc_vec >= 0) |
			     c->singlestep | tf | c->insn_bp)) {
			int k = atomic_load_explicit(&c->kick, memory_order_relaxed);
			if (k & EMU_KICK_EXIT) {
			kicked:
				atomic_fetch_and(&c->kick, ~EMU_KICK_EXIT);
				run->exit_reason = KVM_EXIT_INTR;
				c->stop = 0;
				emu_rflags(c); /* lazy flags (exec.c): exact outside run() */
				return -EINTR;
			}
			if (c->exc_vec >= 0) {
				emu_rflags(c); /* lazy flags (exec.c): exact for the frame */
				if (emu_deliver_pending(c))
					break; /* shutdown or internal error */
				if (c->singlestep) {
					debug_exit(c);
					break;
				}
			}
			if (k & EMU_KICK_EVENT) {
				/* an interrupt, NMI or HLT at this instruction boundary (irqchip.c) */
				int r = emu_irq_event(c);
				if (r == -EINTR)
					goto kicked;
				if (r)
					break; /* shutdown or internal error while delivering */
			}
			tf = c->rflags & EMU_TF;
			if (c->singlestep || tf)
				c->stop = EMU_ST_END;
			if (unlikely(c->insn_bp)) {
				if (insn_breakpoint(c))
					continue; /* the #DB is delivered at the top */
				c->stop = EMU_ST_END; /* one instruction at a time: each address is checked */
			}
		}
		/* the VM-wide word: an exclusive section to park for, a new code epoch (mmu.c, "SMP") */
		if (unlikely(atomic_load_explicit(&c->vm->sync, memory_order_acquire) != c->seen_sync))
			emu_sync_slow(c);
		int fst = 0;
		struct emu_block *b = emu_block_next(c, &fst);
		if (unlikely(!b)) {
			c->stop = 0;
			if (c->exit_pending)
				break;
			continue; /* fetch fault pending */
		}
		/* threaded: the block's handlers jump to each other (emu_next) and one status comes back */
		c->cur_b = b;
		c->cur_blin = emu_code_lin(c, c->rip);
		c->last_i = b->insn;
		c->chain_left = EMU_CHAIN_MAX;
		int st = b->entry(c, b->insn);
		__atomic_store_n(&c->icount, c->icount + emu_block_retired(c, c->cur_b, st, c->cur_blin),
				 __ATOMIC_RELAXED);
		c->stop = 0;
		/* again the rare cases in one test; each is a no-op when its own test is false */
		if (likely(!(c->mrc_n | c->pio_valid | c->exit_pending | c->singlestep | tf |
			     c->bus_lock_detected | c->bld_trap)))
			continue;
		/* OS bus-lock detection (SDM Vol. 3B 18.3.1.6): a #DB trap after the instruction that took
		 * the bus lock, DR6.BLD cleared; with TF, ONE #DB reports both (DR6.BS set too, SDM Vol. 3
		 * 17.3.1.4's rule for trap conditions of one instruction). Decided once the instruction
		 * completed (EMU_ST_END: the bus lock ended its block); kept across an MMIO read exit (the
		 * instruction re-executes to completion without detecting again, mmu.c); dropped when the
		 * instruction faulted. Raised before a VM exit of the same instruction is delivered, so the
		 * exit goes first and the #DB reaches the guest at the next entry, as the VMCS's pending-
		 * debug-exceptions field (bit 11, BLD) carries it across a trap-like bus-lock VM exit. */
		if (unlikely(c->bld_trap) && st != EMU_ST_EXIT) {
			c->bld_trap = false;
			if (st == EMU_ST_END && c->exc_vec < 0) {
				emu_dr6_db(c, DR6_BLD | (tf ? DR6_BS : 0));
				c->exc_vec = EMU_V_DB;
				c->exc_has_err = false;
				c->exc_soft = false;
			}
		}
		if (!c->mrc_wait)
			c->mrc_n = c->mrc_pos = 0;
		if (!c->pio_wait)
			c->pio_valid = false;
		if (c->exit_pending) {
			if (c->mwq_n && run->exit_reason != KVM_EXIT_INTERNAL_ERROR &&
			    run->exit_reason != KVM_EXIT_SHUTDOWN)
				deliver_queued_write(c);
			/* an exit to the monitor wins over a single-step exit of the same instruction */
			break;
		}
		bool stepped = st == EMU_ST_END || (st == EMU_ST_EXIT && c->exc_vec < 0);
		if (unlikely(c->db_shadow)) { /* MOV SS / POP SS blocks its own single-step trap */
			c->db_shadow = 0;
			stepped = false;
		}
		if (unlikely(tf && stepped && c->exc_vec < 0) &&
		    !(st == EMU_ST_END && (c->last_i->fn == emu_h_syscall || c->last_i->fn == emu_h_sysret))) {
			/* (SYSCALL and SYSRET decide their trap by TF at their end: system.c) */
			emu_dr6_db(c, DR6_BS); /* single-step trap (SDM Vol. 3 17.3.1.4) */
			c->exc_vec = EMU_V_DB;
			c->exc_has_err = false;
			c->exc_soft = false;
		}
		if (unlikely(c->singlestep && stepped && c->exc_vec < 0)) {
			debug_exit(c);
			break;
		}
		if (unlikely(c->bus_lock_detected)) {
			c->exit_reason = VMX_EXIT_REASON_BUS_LOCK; /* trap-like: after the instruction */
			break;
		}
	}
	emu_rflags(c); /* lazy flags (exec.c): exact outside run() */
	c->exit_pending = false;
	if (unlikely(c->exit_reason || c->bus_lock_detected))
		bus_lock_vmexit(c);
	return 0;
}

const struct blvm_engine_ops blvm_engine_emu = {
	.name = "emu",
	.vm_create = emu_vm_create,
	.vm_destroy = emu_vm_destroy,
	.check_extension = emu_check_extension,
	.enable_cap = emu_enable_cap,
	.set_user_memory_region = emu_set_user_memory_region,
	.vcpu_create = emu_vcpu_create,
	.vcpu_destroy = emu_vcpu_destroy,
	.get_regs = emu_get_regs,
	.set_regs = emu_set_regs,
	.get_sregs = emu_get_sregs,
	.set_sregs = emu_set_sregs,
	.get_msrs = emu_get_msrs,
	.set_guest_debug = emu_set_guest_debug,
	.get_mp_state = emu_op_get_mp_state,
	.set_mp_state = emu_op_set_mp_state,
	.get_vcpu_events = emu_op_get_vcpu_events,
	.get_lapic = emu_op_get_lapic,
	/* no get_stats_fd: run() reports a dead VM itself (KVM_EXIT_HLT, irqchip.c) */
	.run = emu_run,
	.kick = emu_kick,
	.instructions = emu_instructions,
	.native_instructions = emu_native_instructions,
	.bus_lock_info = emu_bus_lock_info,
	.shutdown_info = emu_shutdown_info,
	.create_irqchip = emu_op_create_irqchip,
	.create_pit2 = emu_op_create_pit2,
	.irq_line = emu_op_irq_line,
	.get_irqchip = emu_op_get_irqchip,
	.get_pit2 = emu_op_get_pit2,
};
