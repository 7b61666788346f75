/* SPDX-License-Identifier: MIT */
/*
 * emu engine internals: a software x86-64 CPU behind struct blvm_engine_ops.
 *
 * ARCHITECTURE
 * ============
 *
 * Files
 *   emu.h      this picture; state, decoded form, inline fast paths
 *   engine.c   the engine ops (KVM ioctls): VM, slots, vCPUs, registers, run loop, exits to kvm_run
 *   mmu.c      the ONE guest-memory access path: software TLB, page walk, MMIO, SMC detection,
 *              emu_locked_rmw() (the one path of every locked read-modify-write)
 *   decode.c   Zydis -> struct emu_insn, blocks, the decode cache
 *   insn.def   THE instruction table: a row per mnemonic (select function, handler, LOCK, block
 *              end/start, lin_flat variant, CPUID feature); exec.c's emu_select reads it
 *   exec*.c    instruction handlers (one signature, specialised by operand size and form) with
 *              their select functions, one file per family (exec.h says which is where)
 *   xlate.c    the binary translator (--translate): a block's entry runs native host code for the
 *              integer register forms and its handlers for the rest; the W^X code arena
 *   system.c   exceptions and interrupt delivery, far transfers, segment loads, CR/DR/MSR, CPUID
 *   irq.h      the PC interrupt platform (KVM_CREATE_IRQCHIP/PIT2, KVM_IRQ_LINE): lapic.c, ioapic.c,
 *              pic.c, pit.c (one model each, state machines on virtual time) and irqchip.c (the
 *              VM's timer thread, routing, taking interrupts at block boundaries, HLT sleep)
 *
 * No global mutable state: everything hangs off struct emu_vm (shared by every vCPU) or struct
 * emu_vcpu (owned by the one host thread that calls run()). Read-only tables are const.
 *
 * VM state (struct emu_vm)
 *   - memory slots = KVM user memory regions (guest-physical range -> caller-owned host memory);
 *     guest-physical addresses outside every slot are MMIO;
 *   - per 4 KiB guest-physical page of each slot: a write generation page_gen[] (Bochs' "write stamp")
 *     and a has-code mark page_code[], both atomics, so that several vCPUs may share memory;
 *   - sync (EMU_SYNC_*): the one VM-wide word every vCPU loads at every block boundary: the code
 *     epoch (bumped when a page becomes a code page, and after every write to a code page; a vCPU
 *     that sees it move drops the writable entries of its TLB and its jump cache) and the
 *     stop-the-world request count (see SMP below);
 *   - the vCPU list and stw_lock (the exclusive section), written only at vCPU create/destroy;
 *   - the capability state (bus-lock detection mode, KVM_CAP_X86_BUS_LOCK_EXIT; contain, an atomic)
 *     and the config. Slots change only while no vCPU runs (KVM_SET_USER_MEMORY_REGION contract).
 *
 * vCPU state (struct emu_vcpu)
 *   GPRs r[0..15] (+ r[16] == 0, the "no register" used for absent base/index), RIP, RFLAGS,
 *   segment registers with their hidden parts exactly as struct kvm_segment, CR0/2/3/4/8, EFER,
 *   DR0-7, GDTR/IDTR, LDTR/TR (kvm_segment), MSRs (IA32_PAT reset 0x0007040600070406, FS/GS/
 *   KERNEL_GS base = the hidden bases, STAR/LSTAR/CSTAR/SFMASK, TSC offset, TSC_AUX, SYSENTER_*),
 *   derived mode (cpl, 64-bit or not, effective segment bases sbase[] — 0 for ES/CS/SS/DS in 64-bit
 *   mode — linear-address mask), the software TLB, the decode cache, the kvm_run area, the pending
 *   exception, the MMIO/PIO completion state, counters.
 *
 * Decoded instruction (struct emu_insn, 40 bytes, one per guest instruction, in blocks):
 *
 *     0        8        16       24   25  26  27  28  29  30  31  32   34   36  37  38  40
 *     +--------+--------+--------+----+---+---+---+---+---+---+---+----+----+---+---+---+
 *     | fn     | imm    | disp   |len | r | b | x |sc |seg|op |v  |flg |mnem|osz|idx|asz|
 *     +--------+--------+--------+----+---+---+---+---+---+---+---+----+----+---+---+---+
 *   fn    handler, chosen at decode time for the operation, operand size and form (register or memory
 *         destination, immediate...): the hot path never switches on operand size or form;
 *   imm   immediate (sign-extended as the encoding says), relative branch displacement, or moffs;
 *   disp  memory displacement (64-bit so that moffs and 32-bit absolute addresses fit);
 *   r     the ModRM.reg-side register operand (or the destination register of a register form);
 *   b     the ModRM.rm-side register (register form) or the base register (memory form), 16 = none;
 *   x     index register (16 = none); sc = log2(scale); seg = segment (0 ES .. 5 GS);
 *   v     VEX.vvvv register (BMI1) or a second immediate (ENTER);
 *   op    sub-operation for handlers shared by a group (ALU op, shift op, condition code, CR number...);
 *   flg   EMU_I_* (LOCK, REP, REPNE, RIP-relative, 32-bit addressing in 64-bit mode, count in CL,
 *         SEG: a memory operand outside 64-bit mode, its segment's limit checked by emu_lin());
 *   mnem  ZydisMnemonic, for diagnostics and the bus-lock report;
 *   osz   operand size in bytes, read only by rare handlers that are not specialised on it;
 *   asz   bytes the memory operand's access covers, for the segment-limit check outside 64-bit mode.
 *   Register operands of byte size are BYTE OFFSETS into r[] (so AH = offset 1); of other sizes indices.
 *
 * Handler signature (ONE for all instructions):  int fn(struct emu_vcpu *c, const struct emu_insn *i)
 *   Dispatch is threaded: a completed instruction continues with the next decoded one by a tail call
 *   (emu_next()), so a block runs as jumps from handler to handler and returns ONE status:
 *           EMU_ST_END    completed, leave the block (a taken branch, which sets c->last_i = i first —
 *                         branch_to() in exec_branch.c — or any completed instruction when c->stop);
 *           EMU_ST_FAULT  not completed: an exception is pending (RIP still at the instruction);
 *           EMU_ST_EXIT   not completed: exit to the monitor (MMIO read, IN, a string-I/O step);
 *           EMU_ST_SENTINEL  the block's end marker (nothing executed).
 *   Handlers read every input first, commit last, and end with emu_next() (RIP += len; when c->stop
 *   is set it returns EMU_ST_END, which asks for a block end after this instruction: self-modifying
 *   code, queued MMIO write exits, single-step, mode changes, bus-lock traps; else the next handler).
 *   Status flags are lazy (exec.h, "LAZY FLAGS"): read them with emu_rflags(); handlers outside
 *   exec*.c run only as the first instruction of a block (EMU_I_FIRST), where c->rflags is exact.
 *
 * Blocks and the decode cache (decode.c): a block is up to EMU_BLOCK_MAX decoded instructions from one
 * guest-physical page (an instruction straddling two pages ends its block and the block records both
 * pages), ending at an unconditional control transfer or an instruction that may change the mode, then
 * a sentinel; a conditional branch (Jcc, LOOP, JrCXZ) does not end it: not taken, the block goes on.
 * Blocks are keyed by (guest-physical address, decode mode) in a per-vCPU hash table (per vCPU: no locks
 * on the hot path; SMP shares the VM's page generations, which is all correctness needs). A block stores
 * the write generation of its page(s) at decode; lookup compares it (an acquire load). When a page
 * BECOMES a code page (emu_mark_code), it is marked inside the exclusive section and the code epoch
 * moves, so every vCPU's TLB loses write permission for it before that vCPU's next block. A write to a
 * code page therefore takes the slow path, which clears the mark, sets c->stop so the current block
 * ends after the writing instruction (the new code runs next), and AFTER the store bumps the page's
 * generation (invalidating its blocks everywhere) and the code epoch (every jump cache). The HOST's writes
 * to guest RAM are not seen so: every run() moves c->run_seq and c->xep, and a block runs in a run
 * only once its kept bytes were compared with memory (block_seen, decode.c). Retired instructions are
 * counted per block: (index of the stopping instruction) + (1 if it completed) (emu_block_retired()).
 * The run loop finds the next block through a per-vCPU jump cache (struct emu_jc, validated by the
 * exec epoch c->xep) before the hash table, and a taken branch may chain straight into the next block
 * (branch_to() in exec_branch.c, at most EMU_CHAIN_MAX blocks between two visits of the run loop).
 *
 * Memory path (mmu.c): every guest access goes through emu_rd{1,2,4,8}/emu_wr{1,2,4,8} (inline TLB hit:
 * tag compare + add), else emu_read_slow/emu_write_slow, or emu_read_bytes/emu_write_bytes (descriptor
 * tables, 16-byte operands), or emu_locked_rmw. Every one of them receives the linear address and size
 * of the access. The slow path splits accesses that cross a 4 KiB page (both pages are translated before
 * any byte is written, so a fault on the second leaves memory untouched), walks the page tables, sets
 * accessed/dirty bits with host atomics, raises #PF/#GP, fills the TLB, routes MMIO pieces to exits and
 * detects writes to code.
 *   MMIO: a read exits (KVM_EXIT_MMIO, is_write 0) with the instruction not completed; the next run()
 *   re-executes that one instruction, whose MMIO reads are served, in order, from the completion list
 *   (KVM's "read cache"); a write is queued, the instruction completes, and the queued writes leave one
 *   KVM_EXIT_MMIO each (the following run() calls deliver the rest before executing). An access that
 *   straddles RAM and MMIO is split at the page boundary: the RAM part is plain memory, the MMIO part
 *   exits for its own bytes; an MMIO access wider than 8 bytes (CMPXCHG16B, descriptor reads) exits in
 *   8-byte pieces in increasing address order. A read that would follow a queued write in the same
 *   instruction ends the instruction there (string instructions stop between iterations) or, where that
 *   cannot be, is an internal error.
 *
 * Software TLB (per vCPU, direct-mapped, EMU_TLB_SIZE entries of 4 KiB linear pages): tag_r/tag_w/tag_x
 * are the linear page address when reading/writing/fetching is allowed at the CPL it was filled for
 * (the TLB is flushed when CPL, CR0, CR3, CR4, EFER or IA32_PAT change; the data tags go when
 * EFLAGS.AC is cleared or PKRU / IA32_PKRS change, if some entry depends on them), addend = host - linear,
 * gpa of the page, and its memory type (PAT index from PAT/PCD/PWT through the guest's IA32_PAT; UC for
 * MMIO; WB with paging off; MTRRs are not modelled, i.e. all WB). MMIO pages are never entered, so the
 * fast path only ever sees RAM. INVLPG drops one entry, or everything once a large page was entered.
 *
 * SMP (one host thread per vCPU; mmu.c "SMP"): guest memory is shared, everything in struct emu_vcpu
 * is private to its thread (TLB, decode cache, jump cache, arena, decoders), struct emu_vm is read-only
 * while vCPUs run except its atomics. What blvm guarantees:
 *   - x86-TSO: a guest load or store inside one page of RAM is ONE host load or store of its size
 *     (EMU_GLD/EMU_GST: acquire/release atomics, a plain MOV on x86-64), in program order, never
 *     buffered by the engine: fast path, slow path, REP MOVS/STOS fast path, PUSH/POP/CALL/RET alike.
 *     A page-crossing access is two (up to 8-byte pieces each), not atomic, as on the hardware.
 *     MFENCE is a host MFENCE; LFENCE/SFENCE are no-ops (no non-temporal stores are emulated).
 *   - Locked operations (LOCK, XCHG with memory) are one host locked instruction on the same bytes,
 *     aligned or split: atomic with each other. A contained bus lock (split/UC under contain) and a
 *     split across host-discontiguous pages are plain read-modify-writes inside the exclusive section
 *     ("stop the world": every other vCPU parked at a block boundary or outside run()).
 *   - Cross-modifying code: once another vCPU's store to code is visible, this vCPU executes the new
 *     code from its next visit of the run loop (at most EMU_CHAIN_MAX chained blocks later, or at the
 *     next iteration check of a string instruction); a serialising CPUID ends its block, so SDM Vol. 3
 *     9.1.3's protocol (see the writer's flag, serialise, jump) always executes the new code. Decoding
 *     reads code with 8-byte atomic loads: an aligned patch of up to 8 bytes is never seen torn.
 *
 * Modes: c->mode (EMU_MODE_*, emu_update_mode()) is the decode mode: 64-bit, 32-bit code (compat or
 * legacy), 16-bit code (CS.D = 0 outside 64-bit mode: real mode and 16-bit protected mode; Zydis
 * decodes with 16-bit default operand and address sizes, 66/67 select 32), and virtual-8086 (refused).
 * 16-bit addressing ([BX+SI+disp] ...) is a memory operand with EMU_I_ADDR16: emu_lin() wraps the
 * effective address at 64 KiB in its rare-flags branch, so the 64-bit path costs nothing more; stack
 * accesses use c->sp_mask (SS.B); relative branches with a 16-bit operand size have their own
 * handlers (IP wraps at 64 KiB). Real mode (CR0.PE = 0) is CPL 0, segment bases selector << 4.
 *
 * Exceptions (system.c): emu_raise*() records a pending exception and returns EMU_ST_FAULT; the run
 * loop delivers it through the IDT (64-bit gates in IA-32e mode, 32- and 16-bit gates in protected
 * mode, 4-byte vectors of the IVT in real mode), with
 * SDM Vol. 3 6.15 Table 6-5 for double faults and a triple fault -> KVM_EXIT_SHUTDOWN.
 *
 * Exits: engine.c turns exit_pending state into struct kvm_run (IO, MMIO, HLT, SHUTDOWN, DEBUG,
 * INTERNAL_ERROR) exactly as KVM fills them; run->flags is cleared on every run().
 *
 * Bus locks (issue 4): the vCPU has the hardware's controls (VMX secondary control bit 30; SVM
 * INTERCEPT_BUSLOCK + bus_lock_counter), copied from the VM's KVM_CAP_X86_BUS_LOCK_EXIT setting at
 * vCPU creation. Detection happens only where locks are taken: emu_locked_rmw() (LOCK prefix, XCHG
 * with memory), the walker's A/D updates and the descriptor accessed/busy updates (paging-structure
 * memory type from CR3/parent PCD/PWT). emu_bus_lock() in mmu.c is the CPU model (VMX: trap-like,
 * c->bus_lock_detected ends the block, exit 74 after the instruction or bit 26 on a higher-priority
 * exit; SVM: fault-like 0xa5 before it); bus_lock_vmexit() in engine.c is KVM's vmx_handle_exit() /
 * bus_lock_exit() turning that into kvm_run; bus_lock_info reports c->bl.
 */
#ifndef BLVM_EMU_EMU_H
#define BLVM_EMU_EMU_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <pthread.h>

#include <Zydis/Zydis.h>

#include "blvm/engine.h"
#include "emu/alu.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ---------------------------------------------------------------- tunables */
#define EMU_MAX_SLOTS 32
#define EMU_TLB_SIZE 256                /* entries (emu_tlbe() folds the page number by 8 bits) */
#define EMU_TLB_AC_MAX 8                /* TLB entries remembered as valid only while EFLAGS.AC = 1 */
#define EMU_TLB_PK_PKRU 1               /* c->tlb_pk: some data tag depends on PKRU */
#define EMU_TLB_PK_PKRS 2               /* ... on IA32_PKRS */
#define EMU_BLOCK_MAX 64                /* decoded instructions per block */
#define EMU_BCACHE_BUCKETS 32768        /* hash buckets of the decode cache (power of two; ~1 block each) */
#define EMU_CHAIN_MAX 64                /* blocks chained by taken branches between run-loop checks */
#define EMU_ARENA_BYTES (8u << 20)      /* decoded-block arena per vCPU; full -> flush the cache */
#define EMU_MMIO_RC 8                   /* MMIO read completions one instruction may consume */
#define EMU_MMIO_WQ 8                   /* MMIO writes one instruction may queue */
#define EMU_REP_KICK_CHECK 1024         /* string iterations between checks of kick() */
#define EMU_RUN_DATA_OFFSET 4096        /* run->io.data_offset: the page after struct kvm_run */
#define EMU_RUN_BYTES 8192
#define EMU_LIN_BITS 57                 /* CPUID 0x80000008 EAX[15:8]: 5-level paging (CPUID 7.0:ECX[16]) */
#define EMU_PHYS_BITS 39                /* CPUID 0x80000008 EAX[7:0]; page-table reserved bits above */

#define EMU_PAT_RESET 0x0007040600070406ull

/* ---------------------------------------------------------------- bus-lock model (issue 4)
 * The CPU side of the seed, in the hardware's own numbering (Linux arch/x86/include/asm/vmx.h,
 * vmxfeatures.h, svm.h; docs/REFERENCE.md). The kernel layer in engine.c turns these into kvm_run. */
#define VMX_SECONDARY_EXEC_BUS_LOCK_DETECTION 0x40000000u /* secondary proc-based control bit 30 */
#define VMX_EXIT_REASON_BUS_LOCK 74u                     /* trap-like */
#define VMX_EXIT_REASON_BUS_LOCK_DETECTED (1u << 26)     /* exit-reason bit 26: a bus lock was
							  * detected, a higher-priority exit won */
#define SVM_EXIT_BUS_LOCK 0xa5u                          /* fault-like, INTERCEPT_BUSLOCK */
#define EMU_CACHE_LINE 64

/* ---------------------------------------------------------------- register numbering */
enum { EMU_RAX, EMU_RCX, EMU_RDX, EMU_RBX, EMU_RSP, EMU_RBP, EMU_RSI, EMU_RDI, EMU_NOREG = 16 };
enum { EMU_ES, EMU_CS, EMU_SS, EMU_DS, EMU_FS, EMU_GS, EMU_NSEG };

/* RFLAGS bits beyond alu.h's */
#define EMU_RF_FIXED 0x2ull
#define EMU_IOPL 0x3000ull
#define EMU_NT 0x4000ull
#define EMU_RF 0x10000ull
#define EMU_VM 0x20000ull
#define EMU_AC 0x40000ull
#define EMU_ID 0x200000ull
/* bits POPF/IRET/SAHF may change at CPL 0 (VM, VIF, VIP stay 0: no virtual-8086 mode) */
#define EMU_FLAGS_WRITABLE (EMU_STATUS_FLAGS | EMU_TF | EMU_IF | EMU_DF | EMU_IOPL | EMU_NT | EMU_RF | \
			    EMU_AC | EMU_ID)

/* control registers */
#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_AM (1ull << 18)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_PG (1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_PGE (1ull << 7)
#define CR4_PCE (1ull << 8)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_OSXSAVE (1ull << 18)
#define CR4_SMEP (1ull << 20)
#define CR4_SMAP (1ull << 21)
#define CR4_UMIP (1ull << 11)
#define CR4_PKE (1ull << 22)
#define CR4_PKS (1ull << 24)
#define CR4_LA57 (1ull << 12)
#define CR4_DE (1ull << 3)
#define CR4_TSD (1ull << 2)
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)

/* MSRs */
#define MSR_TSC 0x10
#define MSR_APIC_BASE 0x1b
#define MSR_DEBUGCTL 0x1d9
#define MSR_SYSENTER_CS 0x174
#define MSR_SYSENTER_ESP 0x175
#define MSR_SYSENTER_EIP 0x176
#define MSR_PAT 0x277
#define MSR_PKRS 0x6e1
#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SFMASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_TSC_AUX 0xc0000103
#define MSR_PLATFORM_ID 0x17
#define MSR_FEATURE_CONTROL 0x3a
#define MSR_TSC_ADJUST 0x3b
#define MSR_ARCH_CAPABILITIES 0x10a
#define MSR_BIOS_SIGN_ID 0x8b
#define MSR_MTRRCAP 0xfe
#define MSR_MISC_ENABLE 0x1a0
#define MSR_MTRR_PHYSBASE0 0x200
#define MSR_MTRR_FIX64K_00000 0x250
#define MSR_MTRR_FIX16K_80000 0x258
#define MSR_MTRR_FIX16K_A0000 0x259
#define MSR_MTRR_FIX4K_C0000 0x268
#define MSR_MTRR_FIX4K_F8000 0x26f
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_K7_HWCR 0xc0010015
#define MSR_AMD64_NB_CFG 0xc001001f /* NB_CFG (Linux's msr-index.h), family 10H and later */
#define MSR_K7_EVNTSEL0 0xc0010000 /* PerfEvtSel0-3, then PerfCtr0-3 (APM Vol. 2 13.2.1) */
#define MSR_K7_PERFCTR3 0xc0010007
#define EMU_MTRR_VAR 8
#define EMU_HWCR_TSCFREQSEL (1ull << 24)
/* IA32_MISC_ENABLE at reset: fast strings (bit 0) and KVM's BTS/PEBS unavailable (bits 11, 12) */
#define EMU_MISC_ENABLE_RESET 0x1801ull
/* IA32_MTRR_DEF_TYPE: MTRRs enabled, default type WB (as the firmware of a PC leaves it) */
#define EMU_MTRR_DEF_TYPE_RESET 0x806ull

/* OS bus-lock detection (SDM Vol. 3B 18.3.1.6; CPUID.(EAX=7,ECX=0):ECX[24] BUS_LOCK_DETECT): the
 * IA32_DEBUGCTL bit that enables it and the DR6 bit it clears (DR6 bits are otherwise active-high;
 * BLD is active-low, 1 in DR6's reset value 0xffff0ff0). */
#define DEBUGCTL_BLD (1ull << 2)
#define DR6_BLD (1ull << 11)
#define DR6_BS (1ull << 14)
#define DR6_BD (1ull << 13)
#define DR7_GD (1ull << 13)

/* exception vectors */
enum { EMU_V_DE = 0, EMU_V_DB = 1, EMU_V_BP = 3, EMU_V_OF = 4, EMU_V_UD = 6, EMU_V_NM = 7, EMU_V_DF = 8,
       EMU_V_TS = 10, EMU_V_NP = 11, EMU_V_SS = 12, EMU_V_GP = 13, EMU_V_PF = 14 };
/* A triple fault's chain of events (struct emu_vcpu sd_ev): at most a benign event, a contributory
 * or page fault, #DF, and the shutdown's own, with room to spare. */
enum { EMU_SD_MAX = 8, EMU_EV_SOFT = 0x100, EMU_EV_EXT = 0x200 };

/* #PF error code (SDM Vol. 3 4.7) */
#define PFE_P (1u << 0)
#define PFE_W (1u << 1)
#define PFE_U (1u << 2)
#define PFE_RSVD (1u << 3)
#define PFE_I (1u << 4)
#define PFE_PK (1u << 5)

/* memory types (IA32_PAT encodings, SDM Vol. 3 11.12) */
enum { EMU_MT_UC = 0, EMU_MT_WC = 1, EMU_MT_WT = 4, EMU_MT_WP = 5, EMU_MT_WB = 6, EMU_MT_UCM = 7 };

/* decode modes (c->mode, emu_update_mode): the code size CS gives, and which Zydis machine mode */
enum { EMU_MODE_64 = 0,   /* 64-bit mode */
       EMU_MODE_C32 = 1,  /* compatibility mode, 32-bit code */
       EMU_MODE_L32 = 2,  /* legacy protected mode, 32-bit code */
       EMU_MODE_16 = 3,   /* CS.D = 0 outside 64-bit mode: real mode, 16-bit protected/compat mode */
       EMU_MODE_V86 = 4,  /* EFLAGS.VM = 1: refused (no block is ever decoded in it) */
};

/* handler statuses */
enum { EMU_ST_OK = 0, EMU_ST_END = 1, EMU_ST_SENTINEL = 2, EMU_ST_FAULT = -1, EMU_ST_EXIT = -2 };

/* emu_insn.flg */
#define EMU_I_LOCK 0x01
#define EMU_I_REP 0x02    /* F3: REP / REPE */
#define EMU_I_REPNE 0x04  /* F2 */
#define EMU_I_RIPREL 0x08
#define EMU_I_ADDR32 0x10 /* 67 prefix in 64-bit mode: the effective address wraps at 4 GiB */
#define EMU_I_CL 0x20     /* shift count in CL */
#define EMU_I_W 0x40      /* REX.W / 64-bit operand (IRETQ, SYSRET, far RET) */
#define EMU_I_ADDR16 0x80 /* 16-bit address size (16-bit code, or 67 in 32-bit code): the effective
			     address wraps at 64 KiB (SDM Vol. 2 2.1.5, Table 2-1) */
#define EMU_I_FIRST 0x100 /* starts its block: the handler (system.c) reads/writes c->rflags as is,
			     which is exact only while no lazy flags are pending (block entry) */
#define EMU_I_SEG 0x200   /* a memory operand decoded outside 64-bit mode: emu_lin() checks its
			     segment's limit (emu_seg_lin) for the i->asz bytes the access covers */

/* access kinds for the slow path */
#define EMU_ACC_R 0
#define EMU_ACC_W 1
#define EMU_ACC_X 2
#define EMU_ACC_SYS 4     /* implicit supervisor access (descriptor tables, TSS, IDT): never in the TLB */

struct emu_vcpu;
struct emu_insn;
typedef int emu_fn(struct emu_vcpu *c, const struct emu_insn *i);

struct emu_insn {
	emu_fn *fn;
	uint64_t imm;
	int64_t disp;
	uint8_t len, r, b, x, sc, seg, op, v;
	uint16_t flg;
	uint16_t mnem;
	uint8_t osz;      /* operand size in bytes, for the rare handlers that are not specialised */
	uint8_t idx;      /* index in its block (retired-instruction count of chained blocks) */
	uint16_t asz;     /* bytes the memory operand's access covers (Zydis's operand size: 6 for
			     m16:32, 512 for FXSAVE), checked against the segment limit (EMU_I_SEG) */
};
_Static_assert(sizeof(struct emu_insn) == 40, "decoded form is 40 bytes");

struct emu_block {
	struct emu_block *next;     /* hash chain */
	uint64_t gpa;               /* guest-physical address of the first instruction */
	uint64_t gpa2;              /* second page (an instruction straddles), or ~0 */
	uint32_t gen, gen2;         /* write generations at decode */
	_Atomic uint32_t *genp, *genp2; /* where the current generations live (the slots' page_gen) */
	const uint8_t *hva, *hva2;  /* where its bytes are in host memory (a slot change flushes blocks) */
	uint8_t mode;               /* decode mode */
	uint8_t flags_exact;        /* insn[0] has EMU_I_FIRST: materialise lazy flags before it */
	uint16_t n;                 /* instructions (without the sentinel) */
	uint32_t run_seq;           /* c->run_seq when its bytes were last seen equal to memory */
	emu_fn *entry;              /* how the block runs: insn[0].fn, or the translator's (xlate.c) */
	const void *chain;          /* where a translated branch enters it (xlate.c, emit_chain) */
	uint32_t heat;              /* translator: runs counted before it translates the block */
	uint16_t nbytes;            /* its bytes, kept after the sentinel (emu_block_bytes()) */
	uint8_t lim_cut;            /* decoding stopped at CS's limit (decode.c): not for another CS */
	struct emu_insn insn[];     /* n + 1 (sentinel), then the block's nbytes bytes */
};

/* The guest bytes a block was decoded from, kept after its sentinel (b->nbytes of them). */
static inline uint8_t *emu_block_bytes(struct emu_block *b)
{
	return (uint8_t *)&b->insn[b->n + 1];
}

/* Jump cache (per vCPU, direct-mapped by linear RIP): the block last run at that RIP, valid while
 * the vCPU's exec epoch c->xep is the one it was entered with. c->xep moves (emu_xep_bump) whenever
 * an entry could have gone wrong: a TLB flush (translation, execute permission), a write to any code
 * page (seen through the code epoch in vm->sync, which emu_smc_commit() bumps), a decode-cache flush.
 * Its bit 0 is whether the vCPU runs at CPL 3 (emu_update_mode): execute permission differs between
 * user and supervisor mode (U/S, SMEP), so an entry made in one is not valid in the other, but one
 * made at CPL 0 is valid again when the kernel returns from user mode with no event in between
 * (7500 of a Linux boot's 25800 full flushes were changes of CPL; without them the run loop looked
 * up 4.8 million blocks in the hash table instead of 10.1 million: perf probe on emu_block_get).
 * The decode mode is compared.
 * The code epoch c->cep moves with c->xep on every event but the TLB flushes (emu_xep_bump_tlb): a
 * translated branch to a target in its own block's page keeps its chaining site across them
 * (xlate.c, emit_taken: same_page). */
#define EMU_JC_SIZE 4096
struct emu_jc {
	uint64_t lin;
	struct emu_block *b;
	uint32_t xep;
	uint8_t chain_mode; /* emu_jc_chain_mode(b): what a taken branch compares with c->mode to chain */
};

/* A block a taken branch may chain to has its decode mode here (the vCPU's must equal it); one that
 * needs exact flags at entry (flags_exact: the run loop materialises them) matches no mode. Kept in
 * the entry so that chaining reads the entry's cache line only (the translator's emit_taken). */
static inline uint8_t emu_jc_chain_mode(const struct emu_block *b)
{
	return b->flags_exact ? 0xff : b->mode;
}

struct emu_slot {
	uint64_t gpa, size;
	uint8_t *hva;
	uint32_t id, flags;
	_Atomic uint32_t *page_gen;  /* per 4 KiB page */
	_Atomic uint8_t *page_code;  /* 1: blocks were decoded from this page */
};

/* vCPU states for the VM-wide exclusive section (mmu.c, "SMP"): OUT = not executing guest
 * instructions (outside run(), or waiting to own the section), RUN = may touch guest memory at any
 * moment, PARKED = inside run() at a block boundary, waiting for the section's end. */
enum { EMU_CS_OUT = 0, EMU_CS_RUN = 1, EMU_CS_PARKED = 2 };
#define EMU_MAX_VCPUS 64

/* vm->sync: the one VM-wide word every vCPU loads (acquire) at every block boundary. Bits 7:0 count
 * the stop-the-world requests in progress (0 or 1: owners are serialised by stw_lock); bits 63:8
 * are the code epoch (EMU_SYNC_EPOCH per step), bumped when a page becomes a code page (inside a
 * stop-the-world section) and after every write to a code page (smc_commit): a vCPU that sees a
 * new epoch drops the write permissions of its TLB and its jump cache before its next block. */
#define EMU_SYNC_STW 0xffull
#define EMU_SYNC_EPOCH 0x100ull

struct emu_irqchip;
struct emu_lapic;

/* c->kick bits: EXIT = return from run() with -EINTR (kick()); EVENT = an interrupt, NMI, INIT or
 * SIPI may be pending, or the vCPU sleeps in HLT (irqchip.c): both are seen by the one test of the
 * kick word the run loop makes at every block boundary. */
#define EMU_KICK_EXIT 1
#define EMU_KICK_EVENT 2

struct emu_vm {
	struct blvm_engine_config cfg;
	struct emu_slot slots[EMU_MAX_SLOTS];
	unsigned nslots;
	_Atomic uint64_t sync;         /* see EMU_SYNC_*; alone in its cache line (read at every block) */
	char pad_sync[56];
	_Atomic uint32_t slots_epoch;  /* bumped when a slot changes: vCPUs drop their TLB and blocks */
	bool bus_lock_detection_enabled; /* KVM_CAP_X86_BUS_LOCK_EXIT: EXIT was enabled (KVM's
					  * kvm->arch.bus_lock_detection_enabled); copied into a vCPU's
					  * controls when the vCPU is created */
	_Atomic bool bus_lock_contain; /* BLVM_CAP_BUS_LOCK_CONTAIN: split/UC locked ops without a host
				       * bus lock (see emu_locked_rmw); may change while vCPUs run */
	/* The vCPUs, for the exclusive section. Changed (create/destroy) under stw_lock, which also
	 * serialises the owners of the section; nvcpus is read without it for the one-vCPU fast path. */
	pthread_mutex_t stw_lock;
	struct emu_vcpu *vcpus[EMU_MAX_VCPUS];
	_Atomic unsigned nvcpus;
	struct emu_irqchip *irqchip;   /* KVM_CREATE_IRQCHIP (irq.h), NULL before */
	/* With the irqchip, HLT never leaves run(), not even when the whole VM is dead: KVM's
	 * kvm_vcpu_halt(). Off (the default) the engine reports a dead VM with KVM_EXIT_HLT
	 * (irqchip.c); the test shim's software KVM (tests/shim/) turns it on, as KVM is. */
	bool halt_in_kernel;
};

/* 64 bytes, one cache line each: the translator's TLB path (xlate.c, emit_tlb) scales the index
 * with one shift folded into the hash's (two host instructions fewer per memory access than 48) */
struct emu_tlb_entry {
	_Alignas(64) uint64_t tag_r;  /* linear page address, or 1 (never matches): reads, */
	uint64_t tag_w, tag_x;        /* writes, instruction fetches */
	int64_t addend;               /* host = linear + addend */
	uint64_t gpa;                 /* guest-physical page */
	uint8_t memtype;
	uint8_t large;
};

struct emu_mmio_rc { uint64_t gpa; uint32_t len; uint8_t data[8]; };
struct emu_mmio_wq { uint64_t gpa; uint32_t len; uint8_t data[8]; };

struct emu_dtable { uint64_t base; uint16_t limit; };

struct emu_vcpu {
	/* hot: registers and derived mode first */
	uint64_t r[17];               /* r[16] is always 0 */
	uint64_t rip;
	uint64_t rflags;
	uint64_t sbase[EMU_NSEG];     /* effective segment bases (0 for ES/CS/SS/DS in 64-bit mode) */
	uint64_t lin_mask;            /* ~0 in 64-bit mode, 0xffffffff otherwise */
	uint64_t sp_mask;             /* stack pointer width: ~0, 0xffffffff or 0xffff */
	/* Lazy status flags (exec.h, "LAZY FLAGS"): when lf_k != 0 the six status flags of rflags are
	 * stale and those of the last flag-writing operation are recorded here instead: kind and size in
	 * lf_k, operands and result shifted left so that the operand's sign bit is bit 63. Read them with
	 * emu_rflags() / emu_rflagsp(); the run loop materialises them at every block end, so outside
	 * block execution (and in the first instruction of a block) rflags is always exact. */
	uint64_t lf_d, lf_s, lf_r;
	uint32_t lf_k;
	uint32_t lf_cfof;             /* CF and OF when lf_k has LF_OVR (IMUL, ROL/ROR after a lazy op) */
	int stop;                     /* end the block after the current instruction */
	const struct emu_insn *last_i; /* the instruction that returned EMU_ST_END (run loop's count) */
	struct emu_block *cur_b;      /* the block running (a taken branch may chain to the next) */
	uint64_t cur_blin;            /* its linear address */
	int chain_left;               /* blocks a branch may still chain to before the run loop */
	uint64_t rd_slow;             /* emu_rdN's slow-path result: no local's address escapes a
					 handler, so gcc can make its emu_next() a tail call */
	uint8_t cpl;
	uint8_t mode64;               /* 64-bit mode (EFER.LMA && CS.L) */
	uint8_t mode;                 /* decode mode (EMU_MODE_*) */
	uint8_t singlestep;           /* KVM_GUESTDBG_SINGLESTEP */
	uint8_t insn_bp;              /* DR7 enables an instruction breakpoint (emu_dr7_written()) */
	uint8_t db_shadow;            /* MOV SS / POP SS with TF: no single-step trap after it */
	bool bus_lock_detected;       /* VMX: this instruction took a bus lock; exit 74 after it, or
				       * bit 26 on a higher-priority exit (one per instruction). Hot: the
				       * run loop tests it once per block; it sits in padding here. */
	uint8_t seg_check;            /* bit s: segment s needs its limit checked (emu_seg_lin): outside
				       * 64-bit mode, unless flat (expand-up, limit 4 GiB - 1) */
	struct emu_tlb_entry tlb[EMU_TLB_SIZE];
	uint64_t seen_sync;           /* vm->sync as this vCPU last acted on it (STW bits always 0) */
	uint32_t seen_slots_epoch;
	uint32_t xep;                 /* exec epoch of the jump cache (struct emu_jc) */
	uint32_t cep;                 /* code epoch: xep's events but TLB flushes (struct emu_jc) */
	uint32_t run_seq;             /* KVM_RUN calls: blocks are re-checked against memory once per
				       * run, as the host may write guest RAM between runs (decode.c) */
	bool tlb_has_large;
	/* SMAP (mmu.c xlat): the TLB entries whose data tags let CPL < 3 reach a user-mode page because
	 * EFLAGS.AC was 1 when they were filled; EFLAGS.AC = 0 invalidates them (emu_ac_written) */
	uint8_t tlb_ac_n;
	uint8_t tlb_ac[EMU_TLB_AC_MAX];
	/* Protection keys (mmu.c walk): an entry's data tags were filled with rights that PKRU
	 * (EMU_TLB_PK_PKRU: a user-mode page) or IA32_PKRS (EMU_TLB_PK_PKRS: a supervisor-mode page)
	 * took away or could take away; a change of that register drops the data tags (emu_pk_written) */
	uint8_t tlb_pk;

	struct emu_vm *vm;
	unsigned id;
	struct kvm_run *run;

	/* architectural state that is not hot */
	struct kvm_segment seg[EMU_NSEG]; /* ES CS SS DS FS GS, hidden parts included */
	struct kvm_segment tr, ldt;
	struct emu_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
	uint64_t pdpte[4];            /* PAE paging, Intel model: the PDPTE registers (emu_load_pdptes) */
	uint64_t dr[8];
	uint64_t pat, kernel_gs_base, star, lstar, cstar, sfmask, tsc_offset, tsc_aux;
	uint64_t tsc_adjust;          /* IA32_TSC_ADJUST (system.c emu_wrmsr) */
	uint32_t pkru;                /* PKRU (SDM Vol. 3 4.6.2): WRPKRU, XRSTOR component 9; 0 at RESET */
	uint64_t pkrs;                /* IA32_PKRS (MSR 0x6e1), the Intel model's PKS; 0 at RESET */
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t misc_enable, mtrr_def_type, feature_control; /* stored platform MSRs (system.c) */
	uint64_t mtrr_fixed[11], mtrr_var[2 * EMU_MTRR_VAR];

	/* pending exception */
	int exc_vec;                  /* -1: none */
	uint32_t exc_err;
	bool exc_has_err;
	uint64_t exc_cr2;
	bool exc_soft;                /* INT n / INT3 / INTO: trap-like, privilege checked against gate DPL */
	uint8_t exc_soft_len;         /* its length: a fault while delivering it is reported AT the INT */
	bool exc_ext;                 /* an external interrupt or NMI (irqchip.c): RF is pushed as it is */
	/* The events of the last delivery, first first, as the double-fault rules (SDM Vol. 3 6.15,
	 * Table 6-5) turned each failed delivery into the next: kept for the report of a triple fault
	 * (engine.c emu_shutdown_info). Vectors; EMU_EV_SOFT / EMU_EV_EXT mark INT n and interrupts. */
	uint16_t sd_ev[EMU_SD_MAX];
	uint8_t sd_n;
	bool sd_resume;               /* the pending event's delivery is resumed: its chain goes on */
	uint8_t sd_bytes[15], sd_nbytes, sd_mode; /* the instruction at the shutdown's RIP, and its mode */

	/* exits */
	bool exit_pending;            /* run is filled: return to the monitor after this instruction */
	struct emu_mmio_rc mrc[EMU_MMIO_RC];
	unsigned mrc_n, mrc_pos;
	bool mrc_wait;                /* the last exit was an MMIO read: its data is in run->mmio */
	struct emu_mmio_wq mwq[EMU_MMIO_WQ];
	unsigned mwq_n, mwq_pos;
	bool pio_wait;                /* the last exit was IN/INS: data is in the run area */
	bool pio_valid;               /* completion data for the re-executed IN/INS */
	uint16_t pio_port;
	uint8_t pio_size;
	uint8_t pio_data[8];
	bool debug_exit;              /* single-step exit after this instruction */
	/* interrupts (irqchip.c): the vCPU's LAPIC (NULL without KVM_CREATE_IRQCHIP); halted in HLT
	 * with IF=1; STI / MOV SS interrupt shadow (SDM Vol. 3 6.8.3); an interrupt was held back by
	 * IF=0 (STI/POPF/IRET ask again); an NMI handler runs (blocked until IRET, SDM 6.7.1) */
	struct emu_lapic *lapic;
	bool halted, intr_shadow, irq_wait_if, nmi_blocked;
	_Atomic int kick;             /* EMU_KICK_* */
	_Atomic bool blocking;        /* sleeps in run() after HLT or waiting for INIT/SIPI: KVM's
				       * vcpu->stat.generic.blocking around kvm_vcpu_block() */
	_Atomic int state;            /* EMU_CS_*: written by this vCPU, read by an exclusive-section owner */
	_Atomic uint32_t *smc_gen[4]; /* generations to bump once this instruction's store is done */
	unsigned smc_n;
	bool stw_held;                /* this vCPU owns the exclusive section (emu_stw_begin) */

	/* decode cache */
	struct emu_jc jc[EMU_JC_SIZE];
	struct emu_block *bcache[EMU_BCACHE_BUCKETS];
	uint8_t *arena;
	size_t arena_used;
	ZydisDecoder dec64, dec32, decl32, dec16; /* per decode mode: emu_decoder() */

	/* counters */
	uint64_t icount;
	/* pause-loop detection (exec.c, h_pause): instruction count at the last PAUSE, PAUSEs in a loop */
	uint64_t ple_last;
	uint32_t ple_count;
	uint64_t ple_since;   /* CLOCK_MONOTONIC ns of the loop's first pause-loop exit, 0: none yet */
	uint64_t ple_sleeps;  /* sleeps of long pause loops (exec.c, pause_loop_exit) */
	long ple_sleep_ns;    /* this loop's last sleep (doubling up to EMU_PLE_SLEEP_MAX_NS); 0: it has
			       * not slept, else it sleeps every EMU_PLE_COUNT_SLEEPING PAUSEs */
	bool ple_read_tsc;    /* the TSC was read since the last pause-loop exit: a delay loop */
	uint64_t locked_rmw, locked_split, locked_uc; /* every locked RMW / split / UC (detection on or off) */

	/* bus-lock model (issue 4): the execution controls as the hardware has them */
	bool bus_lock_detect;         /* either control below is on: the one test on the locked paths */
	uint32_t secondary_exec_control; /* VMX: VMX_SECONDARY_EXEC_BUS_LOCK_DETECTION */
	bool intercept_buslock;       /* SVM: INTERCEPT_BUSLOCK */
	uint16_t bus_lock_counter;    /* SVM: VMCB bus_lock_counter (bus locks allowed before an exit) */
	uint32_t exit_reason;         /* VMX basic exit reason | bit 26, or SVM exit code, of the exit
				       * being delivered; 0 = an exit filled straight into kvm_run */
	bool cui_buslock;             /* SVM: complete_userspace_buslock() pending at the next run */
	uint64_t cui_linear_rip;
	bool bl_valid;                /* the last run reported the bus lock in bl */
	struct blvm_bus_lock_info bl; /* attribution of the bus lock being reported (disasm filled lazily) */
	uint8_t bl_bytes[15], bl_nbytes, bl_mode; /* its instruction bytes and decode mode */
	uint64_t bus_locks;           /* bus locks taken (all reported ones, credited AMD ones included) */
	/* The guest's own detection (issue 13): IA32_DEBUGCTL, and "this instruction took a bus lock at
	 * CPL > 0 with DEBUGCTL.BLD set": a #DB trap follows it (engine.c run loop). */
	uint64_t debugctl;
	bool bld_trap;
	uint64_t unimpl_seen[(ZYDIS_MNEMONIC_MAX_VALUE + 64) / 64]; /* "unimplemented" printed once */
	struct emu_fpu *fpu;          /* x87/MMX/SSE state, XCR0, host stubs (fpu.c) */
	struct emu_xlate *xl;         /* the translator (xlate.c); NULL: --translate=off */
	uint64_t xl_native;           /* guest instructions the translated code ran as host instructions */
	/* the checked CS the jump cache holds blocks for (system.c seg_checks()); last, so that no
	 * offset the translator emits moves (its memo hashes them: xlate.c emit()) */
	uint64_t cs_seen_base;
	uint32_t cs_seen_limit;
	bool cs_seen;
};

/* ---------------------------------------------------------------- mmu.c */
int emu_read_slow(struct emu_vcpu *c, uint64_t lin, unsigned size, uint64_t *v);
int emu_write_slow(struct emu_vcpu *c, uint64_t lin, unsigned size, uint64_t v);
/* Any size (descriptor tables, IDT gates, 16-byte operands); acc may include EMU_ACC_SYS. */
int emu_read_bytes(struct emu_vcpu *c, uint64_t lin, void *buf, unsigned size, unsigned acc);
int emu_write_bytes(struct emu_vcpu *c, uint64_t lin, const void *buf, unsigned size, unsigned acc);
/* The faults a write of [lin, lin+size) (at most two pages) would raise, without writing: for an
 * instruction that writes several places, checked before it writes the first (XSAVE). */
int emu_write_check(struct emu_vcpu *c, uint64_t lin, unsigned size);
/* Code fetch translation of one linear page: guest-physical address and host pointer (NULL: MMIO). */
int emu_fetch_xlat(struct emu_vcpu *c, uint64_t lin, uint64_t *gpa, uint8_t **hva);
/* Every TLB entry, and with them the jump cache (emu_xep_bump) */
void emu_tlb_flush(struct emu_vcpu *c);
/* Every TLB entry, the jump cache kept: a change of CPL (emu_update_mode; struct emu_jc) */
void emu_tlb_flush_perms(struct emu_vcpu *c);
/* PAE paging (CR0.PG = CR4.PAE = 1, EFER.LME = 0) with CR0, CR4 and EFER as given */
static inline bool emu_pae_paging(uint64_t cr0, uint64_t cr4, uint64_t efer)
{
	return (cr0 & CR0_PG) && (cr4 & CR4_PAE) && !(efer & EFER_LME);
}
/* The Intel model's PDPTE registers from the table at cr3 (SDM Vol. 3 4.4.1). check: -1 and nothing
 * loaded if a present PDPTE sets a reserved bit (the caller's #GP(0)); else 0. The AMD model reads
 * the PDPTEs at each walk instead and has no such registers. */
int emu_load_pdptes(struct emu_vcpu *c, uint64_t cr3, bool check);
void emu_tlb_flush_page(struct emu_vcpu *c, uint64_t lin);
void emu_tlb_drop_writes(struct emu_vcpu *c);
void emu_tlb_drop_ac(struct emu_vcpu *c);
/* PKRU or IA32_PKRS now holds v (which: EMU_TLB_PK_*): sets it and drops the TLB's data tags that
 * depend on the old value. Every writer of either register calls it. */
void emu_pk_written(struct emu_vcpu *c, unsigned which, uint64_t v);
struct emu_slot *emu_slot_of(struct emu_vm *vm, uint64_t gpa);
/* Host pointer of guest-physical [gpa, gpa+len) inside one slot, or NULL. */
uint8_t *emu_phys_ptr(struct emu_vm *vm, uint64_t gpa, uint64_t len);
/* Marks the page of gpa as containing decoded code; returns its write generation. */
uint32_t emu_mark_code(struct emu_vcpu *c, uint64_t gpa);
uint32_t emu_page_gen(struct emu_vm *vm, uint64_t gpa);
_Atomic uint32_t *emu_page_gen_ptr(struct emu_vm *vm, uint64_t gpa);

/* The one path of every locked read-modify-write (LOCK prefix, XCHG with memory, CPU-made locked
 * updates are separate: page-table A/D bits use host atomics in the walker). */
enum emu_rmw_op {
	EMU_RMW_ADD, EMU_RMW_OR, EMU_RMW_ADC, EMU_RMW_SBB, EMU_RMW_AND, EMU_RMW_SUB, EMU_RMW_XOR,
	EMU_RMW_INC, EMU_RMW_DEC, EMU_RMW_NEG, EMU_RMW_NOT,
	EMU_RMW_BTS, EMU_RMW_BTR, EMU_RMW_BTC,
	EMU_RMW_XCHG, EMU_RMW_XADD, EMU_RMW_CMPXCHG, EMU_RMW_CMPXCHG_DW,
};
struct emu_rmw {
	enum emu_rmw_op op;
	unsigned size;        /* 1, 2, 4, 8; 8 or 16 for CMPXCHG_DW */
	uint64_t src;         /* operand / bit number (within the operand) / new value (CMPXCHG) */
	uint64_t cmp;         /* CMPXCHG: the accumulator; CMPXCHG_DW: expected low half */
	uint64_t cmp_hi, new_lo, new_hi; /* CMPXCHG_DW */
	uint64_t old, old_hi; /* out: the memory operand's previous value (XCHG, XADD, CMPXCHG, CMPXCHG_DW) */
	uint64_t rflags;      /* in: current RFLAGS; out: RFLAGS after the operation */
};
int emu_locked_rmw(struct emu_vcpu *c, const struct emu_insn *i, uint64_t lin, struct emu_rmw *m);
/* A locked byte OR the CPU makes itself on a system structure (descriptor accessed bit, TSS busy
 * bit; SDM Vol. 3 9.1.2.1); nv is the whole new byte (used for MMIO). A bus lock when uncacheable. */
int emu_cpu_locked_or8(struct emu_vcpu *c, uint64_t lin, uint8_t bits, uint8_t nv);
/*
 * DR6 as a #DB reports the conditions `cond` (DR6_BS, DR6_BLD, B0-B3; 0 for INT1), written as KVM's
 * kvm_deliver_exception_payload() writes it (the payload in the VMCS's pending-debug-exceptions
 * format): B0-B3 cleared ("certain debug exceptions may clear bits 0-3", SDM Vol. 3 17.2.3), the
 * active-low bits (BLD 11, RTM 16) set to 1, then each condition's bit set, BLD's cleared (0 reports
 * a bus lock). Other bits (BD, BS, BT) stay as they were: the processor never clears them.
 */
#define DR6_ACTIVE_LOW 0xffff0ff0ull

/* DR7 (SDM Vol. 3 17.2.4): breakpoint n is enabled by L<n> (bit 2n) or G<n> (bit 2n + 1); R/W<n>
 * (bits 16 + 4n, 2 bits) = 00 makes it an instruction breakpoint. c->insn_bp caches whether any
 * enabled one is, so that the run loop checks instruction addresses only then. */
static inline bool emu_dr7_insn_bp(uint64_t dr7, unsigned n)
{
	return ((dr7 >> (2 * n)) & 3) && !((dr7 >> (16 + 4 * n)) & 3);
}
static inline void emu_dr7_written(struct emu_vcpu *c)
{
	c->insn_bp = 0;
	for (unsigned n = 0; n < 4; n++)
		c->insn_bp |= emu_dr7_insn_bp(c->dr[7], n);
}
static inline void emu_dr6_db(struct emu_vcpu *c, uint64_t cond)
{
	uint64_t dr6 = (c->dr[6] & ~0xfull) | DR6_ACTIVE_LOW | cond;
	c->dr[6] = dr6 ^ (cond & (DR6_BLD | (1ull << 16)));
}

/* A bus lock is about to be taken (mmu.c; the CPU model of the VMX/SVM controls): 0 = go on,
 * EMU_ST_EXIT = the SVM flavour's fault-like exit (nothing of the instruction done). */
int emu_bus_lock(struct emu_vcpu *c, uint64_t lin, uint64_t gpa, unsigned size, unsigned reason,
		 bool implicit);
/* OS bus-lock detection (the guest's #DB) is the Intel flavour's, exposed as KVM exposes it on hosts
 * that have it (KVM: "Expose bus lock debug exception to guest"). */
static inline bool emu_bus_lock_detect_exposed(const struct emu_vcpu *c)
{
	return !c->vm->cfg.cpu_vendor_amd;
}

/* c->bus_lock_detect from the controls that want bus locks seen: the VMX/SVM ones (the monitor's
 * KVM_CAP_X86_BUS_LOCK_EXIT) and the guest's IA32_DEBUGCTL.BLD. Call after changing any of them. */
static inline void emu_bus_lock_controls(struct emu_vcpu *c)
{
	c->bus_lock_detect = c->intercept_buslock ||
			     (c->secondary_exec_control & VMX_SECONDARY_EXEC_BUS_LOCK_DETECTION) ||
			     (c->debugctl & DEBUGCTL_BLD);
}

/* SMP (mmu.c, "SMP"): the VM-wide exclusive section ("stop the world"). begin: every other vCPU is
 * OUT or PARKED at a block boundary when it returns, none can start a block until end. Called only
 * at a point where this vCPU touches no guest memory while it waits (it counts as OUT meanwhile).
 * Serialised between owners; a no-op with one vCPU. */
void emu_stw_begin(struct emu_vcpu *c);
void emu_stw_end(struct emu_vcpu *c);
/* run() entry and exit: RUN only while no section is held (waits), OUT afterwards. */
void emu_vcpu_enter(struct emu_vcpu *c);
void emu_vcpu_leave(struct emu_vcpu *c);
/* At a block boundary, vm->sync != c->seen_sync: park for a section, act on a new code epoch. */
void emu_sync_slow(struct emu_vcpu *c);
/* The writes of this instruction to code pages are done: new generations (see smc_write). */
void emu_smc_commit(struct emu_vcpu *c);
/* Copies n bytes of guest RAM with 8-byte atomic loads of every aligned quadword they touch (all in
 * the same 4 KiB page as src..src+n-1 when that range lies in one page): a naturally aligned store
 * of up to 8 bytes by another vCPU is seen whole or not at all (decoder, bus-lock report). */
void emu_guest_copy_in(void *dst, const uint8_t *src, unsigned n);
/* Whether the n bytes of guest RAM at src equal ref (loaded as emu_guest_copy_in does). */
bool emu_guest_same(const uint8_t *src, const uint8_t *ref, unsigned n);

/* ---------------------------------------------------------------- decode.c */
struct emu_block *emu_block_get(struct emu_vcpu *c, int *st);
extern struct emu_block emu_jc_none; /* an empty jump-cache entry's block: matches no TLB entry */
void emu_bcache_flush(struct emu_vcpu *c);
int emu_decoder_init(struct emu_vcpu *c);
const ZydisDecoder *emu_decoder(const struct emu_vcpu *c, unsigned mode);
emu_fn emu_h_sentinel;
/* exec.c */
int emu_select(struct emu_vcpu *c, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
	       struct emu_insn *i);
#define EMU_SEL_END 1 /* the instruction ends its block */
#define EMU_SEL_BAD -1
/* Operand helpers of the selector for the selectors in other files (legacy.c, fpu.c): a GPR
 * operand's or a Zydis GPR's r[] index (byte registers: offset; -1: not a GPR), and a memory operand
 * into i's b/x/sc/disp/seg/flags (0, or -1 for a form the engine does not handle). */
int emu_gpr_operand(const ZydisDecodedOperand *o);
int emu_gpr_id(ZydisRegister r, unsigned *size);
int emu_mem_operand(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *o, struct emu_insn *i);
/* legacy.c: PUSHA/POPA, BCD, SALC, XLAT, BOUND, ARPL, LDS/LES/LFS/LGS/LSS */
int emu_select_legacy(struct emu_vcpu *c, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
		      struct emu_insn *i);
emu_fn emu_h_ud, emu_h_unimpl, emu_h_nop;

/* ---------------------------------------------------------------- fpu.c */
int emu_fpu_init(struct emu_vcpu *c);
void emu_fpu_free(struct emu_vcpu *c);
void emu_fpu_reset(struct emu_vcpu *c);   /* FCW 0x37f, FTW empty, MXCSR 0x1f80, XCR0 1 */
/* x87 / MMX / SSE / XSAVE forms (fpu.c's table); EMU_SEL_BAD when not one of them */
int emu_fpu_select(struct emu_vcpu *c, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
		   struct emu_insn *i);
/* the form's ISA set is in fpu.c's table and CPUID advertises it */
bool emu_fpu_advertised(const ZydisDecodedInstruction *zi);
/* ORs the FPU/SIMD feature bits into CPUID leaf 1 and fills leaf 0xD */
void emu_fpu_cpuid(struct emu_vcpu *c, uint32_t leaf, uint32_t sub, uint32_t out[4]);

/* ---------------------------------------------------------------- system.c */
int emu_raise(struct emu_vcpu *c, int vec);
int emu_raise_err(struct emu_vcpu *c, int vec, uint32_t err);
int emu_raise_pf(struct emu_vcpu *c, uint64_t lin, uint32_t err);
int emu_unimplemented(struct emu_vcpu *c, const struct emu_insn *i);
/* Delivers the pending exception; returns 0, or -1 after a triple fault (run filled: SHUTDOWN). */
int emu_deliver_pending(struct emu_vcpu *c);
/* The bytes of the instruction at linear address lrip, without side effects on the guest (from the
 * TLB, else a fetch translation whose exception, if any, is forgotten): up to 15, fewer where a page
 * is not mapped. Returns how many. */
unsigned emu_peek_insn(struct emu_vcpu *c, uint64_t lrip, uint8_t bytes[15]);
/* The instruction in bytes[0..n) decoded in mode (struct emu_vcpu mode) and formatted in Intel syntax
 * at address rip into buf; "(unknown)" where it does not decode. One format for every report. */
void emu_format_insn(const struct emu_vcpu *c, const uint8_t *bytes, unsigned n, unsigned mode, uint64_t rip,
		     char *buf, size_t len);
void emu_update_mode(struct emu_vcpu *c);
int emu_internal_error(struct emu_vcpu *c, const char *what);
void emu_cpuid(struct emu_vcpu *c, uint32_t leaf, uint32_t sub, uint32_t out[4]);
int emu_rdmsr(struct emu_vcpu *c, uint32_t msr, uint64_t *v);
int emu_wrmsr(struct emu_vcpu *c, uint32_t msr, uint64_t v);
int emu_write_cr(struct emu_vcpu *c, int cr, uint64_t v);
int emu_load_seg(struct emu_vcpu *c, int seg, uint16_t sel);
int emu_far_jump(struct emu_vcpu *c, uint16_t sel, uint64_t off);
int emu_push(struct emu_vcpu *c, unsigned size, uint64_t v);
int emu_pop(struct emu_vcpu *c, unsigned size, uint64_t *v);
uint64_t emu_tsc(struct emu_vcpu *c);
/* The INIT state (SDM Vol. 3 Table 10-1), and a SIPI's start in real mode at vector << 12. */
void emu_init_state(struct emu_vcpu *c);
void emu_enter_real_mode_sipi(struct emu_vcpu *c, uint8_t vector);
/* irqchip.c: the vCPU side of the interrupt platform */
int emu_irq_event(struct emu_vcpu *c);        /* EVENT seen: 0 go on, 1 exit filled, -EINTR kicked */
bool emu_irq_mmio(struct emu_vcpu *c, uint64_t gpa, bool write, uint8_t *data, unsigned len);
bool emu_irq_pio(struct emu_vcpu *c, uint16_t port, bool write, uint8_t *data, unsigned len);
int emu_irq_rdmsr(struct emu_vcpu *c, uint32_t msr, uint64_t *v); /* 1: not ours */
int emu_irq_wrmsr(struct emu_vcpu *c, uint32_t msr, uint64_t v);
int emu_irq_vcpu_init(struct emu_vcpu *c);   /* vCPU create: its LAPIC */
void emu_irq_vcpu_fini(struct emu_vcpu *c);
void emu_wake(struct emu_vcpu *c);           /* wakes a vCPU sleeping in HLT (kick) */
/* CR8 is the LAPIC's TPR[7:4] when the vCPU has one (SDM Vol. 3 11.8.6.5), else a plain register */
void emu_irq_set_cr8(struct emu_vcpu *c, uint64_t v);
uint64_t emu_irq_get_cr8(struct emu_vcpu *c);
int emu_op_create_irqchip(struct blvm_engine_vm *vm);
int emu_op_create_pit2(struct blvm_engine_vm *vm, const struct kvm_pit_config *cfg);
int emu_op_irq_line(struct blvm_engine_vm *vm, const struct kvm_irq_level *irq);
int emu_op_get_mp_state(struct blvm_engine_vcpu *v, struct kvm_mp_state *mp);
int emu_op_set_mp_state(struct blvm_engine_vcpu *v, const struct kvm_mp_state *mp);
int emu_op_get_vcpu_events(struct blvm_engine_vcpu *v, struct kvm_vcpu_events *ev);
int emu_op_get_lapic(struct blvm_engine_vcpu *v, struct kvm_lapic_state *s);
int emu_op_get_irqchip(struct blvm_engine_vm *vm, struct kvm_irqchip *chip);
int emu_op_get_pit2(struct blvm_engine_vm *vm, struct kvm_pit_state2 *pit);
void emu_irqchip_destroy_vm(struct emu_vm *vm);
/* RFLAGS.IF went 0 -> 1 (STI, POPF, IRET): ask for the interrupt IF held back */
static inline void emu_irq_if_set(struct emu_vcpu *c)
{
	if (unlikely(c->irq_wait_if)) {
		c->irq_wait_if = false;
		atomic_fetch_or(&c->kick, EMU_KICK_EVENT);
	}
}
/* system.c's handlers of forms that share a mnemonic with exec*.c's (far JMP/CALL/RET, MOV and POP
 * of segment registers, MOV to/from CRn/DRn), and SYSCALL/SYSRET (engine.c looks for them); the
 * others are named by their insn.def row, which declares them (insn.h) */
emu_fn emu_h_ljmp_ptr, emu_h_ljmp_m, emu_h_lcall_ptr, emu_h_lcall_m, emu_h_lret, emu_h_mov_sreg_r,
	emu_h_mov_sreg_m, emu_h_pop_sreg, emu_h_mov_cr_r, emu_h_mov_r_cr, emu_h_mov_dr_r, emu_h_mov_r_dr,
	emu_h_syscall, emu_h_sysret;

/* ---------------------------------------------------------------- inline fast paths */

/* a sign-extended from bit bits-1 (shift unsigned: no UB on high addresses) */
static inline bool emu_canonical_bits(uint64_t a, unsigned bits)
{
	return (uint64_t)((int64_t)(a << (64 - bits)) >> (64 - bits)) == a;
}

/* A linear address used as such (access, branch target, IRET/SYSRET/far-transfer RIP): canonical
 * for the paging mode, 57 bits with CR4.LA57 = 1, else 48 (SDM Vol. 3 4.5.1). A 48-bit canonical
 * address is 57-bit canonical too: the common case costs what it did with 4-level paging only. */
static inline bool emu_canonical(const struct emu_vcpu *c, uint64_t a)
{
	return likely(emu_canonical_bits(a, 48)) || ((c->cr4 & CR4_LA57) && emu_canonical_bits(a, 57));
}

/* A base address loaded into a register (LGDT, LIDT, LLDT, LTR; WRMSR to FS/GS/KERNEL_GS base,
 * LSTAR, CSTAR, SYSENTER_ESP/EIP): canonical relative to the processor's linear-address width
 * (CPUID 0x80000008 EAX[15:8]: 57, LA57 being enumerated) whatever CR4.LA57 says (Intel's 5-level
 * paging white paper, "Canonicality checking"; kvm-unit-tests la57 checks it in 4-level mode). */
static inline bool emu_canonical_base(uint64_t a)
{
	return emu_canonical_bits(a, EMU_LIN_BITS);
}

/*
 * Segment limits (SDM Vol. 3 5.3, Vol. 1 3.4.5): outside 64-bit mode an access whose bytes are not
 * all within [0, limit] (expand-up) or (limit, 0xFFFF or 0xFFFFFFFF as D/B says] (expand-down) is
 * #SS(0) through SS and #GP(0) through the others; in real mode too, against the limit the cache
 * keeps (SDM Vol. 3 20.1.1). 64-bit mode checks no limit (5.3.1). An access does not return a
 * status from here: emu_seg_lin() answers one of these linear addresses instead, which no TLB entry
 * holds (above 4 GiB and not canonical), so the access takes the slow path, whose xlat() raises the
 * exception (mmu.c) before translating anything: every access site keeps its one TRY.
 */
#define EMU_LIN_LIMIT_GP 0x4000000000000000ull
#define EMU_LIN_LIMIT_SS 0x6000000000000000ull
_Static_assert(EMU_LIN_LIMIT_GP >> 61 == 2 && EMU_LIN_LIMIT_SS >> 61 == 3, "xlat() tells them by bits 63:61");
/* The limit test of emu_seg_lin() for a segment with its bit in c->seg_check (system.c). */
uint64_t emu_seg_lin_checked(const struct emu_vcpu *c, unsigned seg, uint64_t off, unsigned size);

/* The linear address of the size bytes at offset off (already wrapped to the address size) of
 * segment seg, or EMU_LIN_LIMIT_* when they are not all within its limit. */
static inline uint64_t emu_seg_lin(const struct emu_vcpu *c, unsigned seg, uint64_t off, unsigned size)
{
	if (unlikely(c->seg_check & (1u << seg)))
		return emu_seg_lin_checked(c, seg, off, size);
	return (c->sbase[seg] + off) & c->lin_mask;
}

/* Effective linear address of a memory operand (segment base added, wrapped to the mode's width).
 * Outside 64-bit mode (EMU_I_SEG) its i->asz bytes are checked against the segment's limit; the
 * 64-bit path tests no more flags than before. */
static inline __attribute__((always_inline)) uint64_t emu_lin(const struct emu_vcpu *c,
								 const struct emu_insn *i)
{
	uint64_t ea = c->r[i->b] + (c->r[i->x] << i->sc) + (uint64_t)i->disp;
	if (unlikely(i->flg & (EMU_I_RIPREL | EMU_I_ADDR32 | EMU_I_ADDR16 | EMU_I_SEG))) {
		if (i->flg & EMU_I_RIPREL)
			ea += c->rip + i->len;
		if (i->flg & EMU_I_ADDR32)
			ea = (uint32_t)ea;
		if (i->flg & EMU_I_ADDR16)
			ea = (uint16_t)ea; /* [BX+SI+disp16] etc.: the sum wraps at 64 KiB */
		if (i->flg & EMU_I_SEG)
			return emu_seg_lin(c, i->seg, (uint32_t)ea, i->asz);
	}
	return (c->sbase[i->seg] + ea) & c->lin_mask;
}

/* The entry of a linear page: its page number folded with the next 8 bits (EMU_TLB_SIZE = 256), so
 * that two pages a power-of-two multiple of 1 MiB apart get different entries. With the plain low
 * bits they evicted each other at every access of a copy between them: the Linux bzImage
 * decompressor's memmove of 2 MiB walked the page tables for every load and store (11.6 M walks
 * in 3 s), about 4 s of the boot. Consecutive pages still take consecutive entries. */
static inline struct emu_tlb_entry *emu_tlbe(struct emu_vcpu *c, uint64_t lin)
{
	uint64_t p = lin >> 12;
	return &c->tlb[(p ^ (p >> 8)) & (EMU_TLB_SIZE - 1)];
}

/* Every write of EFLAGS.AC that may clear it calls this (CLAC, POPF, and emu_update_mode() after
 * IRET, SYSCALL, SYSRET, event delivery in real mode, KVM_SET_REGS): a TLB hit must not let
 * supervisor code reach a user-mode page under SMAP once AC is 0 (SDM Vol. 3 4.6.1). Free when no
 * entry depends on AC (no SMAP, or no STAC-bracketed access since the last CLAC). */
static inline void emu_ac_written(struct emu_vcpu *c)
{
	if (unlikely(c->tlb_ac_n) && !(c->rflags & EMU_AC))
		emu_tlb_drop_ac(c);
}

/*
 * Guest memory and x86-TSO. Every host access to guest RAM made for a guest plain load or store is
 * ONE host access of the same size: __atomic_load_n with acquire / __atomic_store_n with release.
 * On x86-64 both compile to the plain MOV that memcpy of a constant size gives (no fence: the host
 * is TSO, and acquire loads + release stores are exactly TSO in C11), but the compiler may no longer
 * split, merge, elide, duplicate or reorder them. Guest memory is shared by the vCPU threads without
 * C-level locking by design; with every access atomic there is no C11 data race on it (the locked
 * operations are inline asm, invisible to the C model and to ThreadSanitizer). A guest access may be
 * misaligned within its page: the pointer is cast to the natural type anyway (x86 allows the MOV,
 * gcc emits the same instruction; as on the hardware such an access is not atomic when it crosses a
 * cache line). Page-crossing accesses are split in two (mmu.c read_piece/write_piece).
 */
#define EMU_GLD(T, p) ((T)__atomic_load_n((const T *)(const void *)(p), __ATOMIC_ACQUIRE))
#define EMU_GST(T, p, v) __atomic_store_n((T *)(void *)(p), (T)(v), __ATOMIC_RELEASE)

#define EMU_DEFINE_RW(N, T)                                                                     \
	static inline __attribute__((always_inline)) int emu_rd##N(struct emu_vcpu *c, uint64_t lin, \
								    uint64_t *v)                \
	{                                                                                       \
		const struct emu_tlb_entry *e = emu_tlbe(c, lin);                               \
		if (likely(e->tag_r == (lin & ~0xfffull) && (lin & 0xfff) <= 0x1000 - N)) {     \
			*v = EMU_GLD(T, (uintptr_t)(lin + (uint64_t)e->addend));               \
			return 0;                                                               \
		}                                                                               \
		int st = emu_read_slow(c, lin, N, &c->rd_slow);                                \
		*v = c->rd_slow;                                                                \
		return st;                                                                      \
	}                                                                                       \
	static inline __attribute__((always_inline)) int emu_wr##N(struct emu_vcpu *c, uint64_t lin, \
								    uint64_t v)                 \
	{                                                                                       \
		const struct emu_tlb_entry *e = emu_tlbe(c, lin);                               \
		if (likely(e->tag_w == (lin & ~0xfffull) && (lin & 0xfff) <= 0x1000 - N)) {     \
			EMU_GST(T, (uintptr_t)(lin + (uint64_t)e->addend), v);                 \
			return 0;                                                               \
		}                                                                               \
		return emu_write_slow(c, lin, N, v);                                            \
	}
EMU_DEFINE_RW(1, uint8_t)
EMU_DEFINE_RW(2, uint16_t)
EMU_DEFINE_RW(4, uint32_t)
EMU_DEFINE_RW(8, uint64_t)

static inline int emu_rd(struct emu_vcpu *c, uint64_t lin, unsigned size, uint64_t *v)
{
	switch (size) {
	case 1: return emu_rd1(c, lin, v);
	case 2: return emu_rd2(c, lin, v);
	case 4: return emu_rd4(c, lin, v);
	default: return emu_rd8(c, lin, v);
	}
}

static inline int emu_wr(struct emu_vcpu *c, uint64_t lin, unsigned size, uint64_t v)
{
	switch (size) {
	case 1: return emu_wr1(c, lin, v);
	case 2: return emu_wr2(c, lin, v);
	case 4: return emu_wr4(c, lin, v);
	default: return emu_wr8(c, lin, v);
	}
}

/* Register operand access at a fixed size: byte operands are byte offsets into r[], others indices. */
#define EMU_RD_1(c, o) ((uint64_t)((const uint8_t *)(c)->r)[o])
#define EMU_RD_2(c, o) ((uint64_t)(uint16_t)(c)->r[o])
#define EMU_RD_4(c, o) ((uint64_t)(uint32_t)(c)->r[o])
#define EMU_RD_8(c, o) ((c)->r[o])
#define EMU_WR_1(c, o, v) (((uint8_t *)(c)->r)[o] = (uint8_t)(v))
#define EMU_WR_2(c, o, v) ((c)->r[o] = ((c)->r[o] & ~0xffffull) | ((v) & 0xffffull))
#define EMU_WR_4(c, o, v) ((c)->r[o] = (uint32_t)(v))
#define EMU_WR_8(c, o, v) ((c)->r[o] = (v))

static inline uint64_t emu_rdreg(const struct emu_vcpu *c, unsigned size, unsigned o)
{
	switch (size) {
	case 1: return EMU_RD_1(c, o);
	case 2: return EMU_RD_2(c, o);
	case 4: return EMU_RD_4(c, o);
	default: return EMU_RD_8(c, o);
	}
}

static inline void emu_wrreg(struct emu_vcpu *c, unsigned size, unsigned o, uint64_t v)
{
	switch (size) {
	case 1: EMU_WR_1(c, o, v); break;
	case 2: EMU_WR_2(c, o, v); break;
	case 4: EMU_WR_4(c, o, v); break;
	default: EMU_WR_8(c, o, v); break;
	}
}

/* Materialises the lazy status flags into c->rflags (exec.c); returns c->rflags. */
uint64_t emu_flags_sync(struct emu_vcpu *c);

/* The exact RFLAGS (status flags materialised). Non-status bits of c->rflags are always exact. */
static inline uint64_t emu_rflags(struct emu_vcpu *c)
{
	return c->lf_k ? emu_flags_sync(c) : c->rflags;
}

/* &c->rflags with the status flags materialised, for alu.h/alu.c functions that update RFLAGS. */
static inline uint64_t *emu_rflagsp(struct emu_vcpu *c)
{
	if (c->lf_k)
		emu_flags_sync(c);
	return &c->rflags;
}

/* The linear address of code at rip: CS.base + rip, truncated outside 64-bit mode (SDM Vol. 3
 * 3.4.3; in 64-bit mode CS.base is 0: sbase[EMU_CS] is 0 there). Every code fetch, block lookup and
 * jump-cache key goes through it (kvm_get_linear_rip() in KVM). */
static inline uint64_t emu_code_lin(const struct emu_vcpu *c, uint64_t rip)
{
	return (c->sbase[EMU_CS] + rip) & c->lin_mask;
}

static inline unsigned emu_jc_index(uint64_t lin)
{
	return (unsigned)(lin ^ (lin >> 12)) & (EMU_JC_SIZE - 1);
}

/* Every jump-cache entry and chaining site invalid from now on (struct emu_jc); bit 0 stays. */
static inline void emu_xep_bump(struct emu_vcpu *c)
{
	c->xep += 2;
	c->cep += 2;
}

/* A TLB flush: translations may have changed, code has not (struct emu_jc). Every caller ends its
 * block before any chained branch (c->stop, or outside run()): the next block comes through the
 * run loop's lookup with the new translations, and a branch within a page translated at that
 * block's entry goes where the page is now. */
static inline void emu_xep_bump_tlb(struct emu_vcpu *c)
{
	c->xep += 2;
}

/* The block at RIP for the run loop: the jump cache when its entry is still valid (struct emu_jc),
 * else emu_block_get(). Materialises the lazy flags before a block that needs them exact. */
static inline struct emu_block *emu_block_next(struct emu_vcpu *c, int *st)
{
	uint64_t lin = emu_code_lin(c, c->rip);
	const struct emu_jc *j = &c->jc[emu_jc_index(lin)];
	struct emu_block *b = j->b;
	if (!(likely(j->lin == lin && j->xep == c->xep && b->mode == c->mode))) {
		b = emu_block_get(c, st);
		if (!b)
			return NULL;
	}
	if (unlikely(b->flags_exact) && c->lf_k)
		emu_flags_sync(c);
	return b;
}

/* Instructions of block b (entered at linear blin) retired by a run that returned st: all of them
 * at the sentinel; up to c->last_i at EMU_ST_END; those before RIP's at EMU_ST_FAULT/EXIT (the
 * instruction at RIP did not complete). */
static inline uint64_t emu_block_retired(const struct emu_vcpu *c, const struct emu_block *b, int st,
					 uint64_t blin)
{
	if (likely(st == EMU_ST_END))
		return c->last_i->idx + 1u;
	if (st == EMU_ST_SENTINEL)
		return b->n;
	uint64_t pos = blin, at = emu_code_lin(c, c->rip);
	unsigned k = 0;
	while (k < b->n && pos != at)
		pos = (pos + b->insn[k++].len) & c->lin_mask;
	return k;
}

/* Completes the instruction: RIP past it; then the block ends here when c->stop is set, else the
 * next decoded instruction runs (threaded dispatch: a tail call, so a block runs as a chain of
 * jumps from handler to handler and returns once, with the status of its last instruction).
 * A handler that returns EMU_ST_END itself (a taken branch) sets c->last_i = i first, unless it is
 * EMU_I_FIRST (then it is its block's instruction 0, the run loop's default). */
static inline int emu_next(struct emu_vcpu *c, const struct emu_insn *i)
{
	c->rip += i->len;
	if (unlikely(c->stop)) {
		c->last_i = i;
		return c->stop;
	}
	return i[1].fn(c, i + 1);
}

#endif
