/*
 * realmode: real-address mode and 16-bit code, from a long-mode guest and back (SDM Vol. 3 10.9.2
 * "Switching Back to Real-Address Mode", 10.9.1, 9.8.5). The guest leaves 64-bit mode for 32-bit
 * compatibility code, turns paging off (EFER.LMA clears), jumps to a 16-bit protected-mode code
 * segment, clears CR0.PE and far-jumps into real mode at 6000:xxxx (the 16-bit blob is copied to
 * physical 0x60000, its stack segment is 7000, its IVT at 0). There it runs groups of checks, each
 * folding every result (registers, FLAGS, memory) into a 32-bit hash, then goes back the same way
 * (PE, 32-bit code, paging, 64-bit code) and prints one line per group:
 *
 *   rm: <group> n=<values hashed> h=<hash>
 *
 * The hashes are not known in advance: tests/sh/realmode-qemu.sh runs the guest under blvm and
 * under QEMU TCG and requires the same console bytes. Every status flag is hashed, those the SDM
 * leaves undefined after the BCD adjustments included (the engine computes them as QEMU does:
 * src/emu/legacy.c). Groups:
 *   bcd     DAA DAS AAA AAS AAM AAD (two bases) on every AL, with CF/AF in, AH varied;
 *   addr16  the 24 16-bit ModRM forms on 256 register sets (BP forms read SS, the others DS);
 *   string  MOVS STOS LODS CMPS SCAS with REP/REPE/REPNE, both directions, SI/DI/CX wrapping;
 *   legacy  PUSHA/POPA(D), XLAT, LDS/LES/LFS/LGS/LSS, BOUND, SALC, CBW/CWD/CWDE/CDQ, ENTER/LEAVE,
 *           LOOP/JCXZ;
 *   intr    INT n, INT3, INTO, #DE, #UD (UD2, ARPL, LAR, LSL), #BR through the IVT (vector, pushed
 *           IP/CS/FLAGS). Not INT1 (F1): QEMU 7.2 (Debian 12) builds target/i386 without
 *           WANT_ICEBP and raises #UD for it, so it is no oracle there; tests/unit/emu_realmode.c
 *           checks INT1 against the SDM instead;
 *   op32    66/67 prefixes in 16-bit code: 32-bit arithmetic, [EBX+ESI*4+disp], PUSHL/POPL,
 *           far CALL/RET with 16:32 pointers, IRETD.
 * Exit status 0 when the round trip completed and the self-checks (interrupt counts) hold.
 */
#include "rt.h"

#define RM_BASE 0x60000u   /* CS = DS = ES = 0x6000 */
#define RM_RES 0x8000u     /* results: offset in DS */
#define NGROUPS 6

/* ------------------------------------------------------------------ the way there and back */
__asm__(
	".text\n"
	".code64\n"
	".globl rm_call\n"
	/* rm_call(): saves the callee-saved registers, RSP, IDTR; 64-bit -> 32-bit compat -> paging off ->
	 * 16-bit protected mode -> real mode; the blob returns to rm_back32. */
	"rm_call:\n"
	"	push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
	"	mov %rsp, rm_saved_rsp(%rip)\n"
	"	sidt rm_saved_idt(%rip)\n"
	"	sgdt rm_saved_gdt(%rip)\n"
	"	lgdt rm_gdt_desc(%rip)\n"
	"	pushq $0x18\n"
	"	lea rm_c32(%rip), %rax\n"
	"	push %rax\n"
	"	lretq\n"
	".code32\n"
	"rm_c32:\n"
	"	mov $0x10, %eax\n mov %eax, %ds\n mov %eax, %es\n mov %eax, %ss\n"
	"	mov %cr0, %eax\n"
	"	and $0x7fffffff, %eax\n"
	"	mov %eax, %cr0\n"                 /* paging off: EFER.LMA = 0, legacy protected mode */
	"	ljmp $0x20, $(rm_pm16 - rm_blob)\n"  /* 16-bit code, base RM_BASE */
	"rm_back32:\n"                         /* from the blob, PE set again, CS = 0x18 */
	"	mov $0x10, %eax\n mov %eax, %ds\n mov %eax, %es\n mov %eax, %ss\n mov %eax, %fs\n mov %eax, %gs\n"
	"	mov %cr0, %eax\n"
	"	or $0x80000000, %eax\n"
	"	mov %eax, %cr0\n"                 /* paging on, EFER.LME still set: LMA */
	"	ljmp $0x08, $rm_back64\n"
	".code64\n"
	"rm_back64:\n"
	"	mov rm_saved_rsp(%rip), %rsp\n"
	"	lgdt rm_saved_gdt(%rip)\n"
	"	lidt rm_saved_idt(%rip)\n"
	"	pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
	"	ret\n"
	".data\n"
	".balign 16\n"
	"rm_gdt:\n"
	"	.quad 0\n"
	"	.quad 0x00af9b000000ffff\n"         /* 0x08 64-bit code */
	"	.quad 0x00cf93000000ffff\n"         /* 0x10 flat data */
	"	.quad 0x00cf9b000000ffff\n"         /* 0x18 32-bit code */
	"	.quad 0x00009b060000ffff\n"         /* 0x20 16-bit code, base 0x60000, limit 0xffff */
	"	.quad 0x000093060000ffff\n"         /* 0x28 16-bit data, base 0x60000, limit 0xffff */
	"rm_gdt_end:\n"
	"rm_gdt_desc: .word rm_gdt_end - rm_gdt - 1\n .quad rm_gdt\n"
	".balign 8\n"
	"rm_saved_rsp: .quad 0\n"
	"rm_saved_idt: .word 0\n .quad 0\n"
	"rm_saved_gdt: .word 0\n .quad 0\n"
	".text\n");

/* ------------------------------------------------------------------ the 16-bit blob
 * Position independent within its segment: every address is `label - rm_blob`. */
#define O(l) "(" #l " - rm_blob)"
#define RES(g) "(0x8000 + 8 * " #g ")"   /* per group: hash (4 bytes), count (4 bytes) */
#define HASH "0x7ff0"
#define COUNT "0x7ff4"
#define NINT "0x7ff8"

__asm__(
	".section .rodata\n"
	".code16\n"
	".globl rm_blob, rm_blob_end\n"
	"rm_blob:\n"
	"rm_pm16:\n"                           /* 16-bit protected mode, CS = 0x20 */
	"	mov $0x28, %ax\n mov %ax, %ds\n mov %ax, %es\n mov %ax, %ss\n mov %ax, %fs\n mov %ax, %gs\n"
	"	mov %cr0, %eax\n"
	"	and $0xfffffffe, %eax\n"
	"	mov %eax, %cr0\n"                 /* real mode, CS still the 16-bit descriptor's */
	"	ljmp $0x6000, $" O(rm_real) "\n"
	"rm_real:\n"
	"	mov $0x6000, %ax\n mov %ax, %ds\n mov %ax, %es\n"
	"	mov $0x7000, %ax\n mov %ax, %ss\n"
	"	mov $0xfffe, %sp\n"
	"	lidt %cs:" O(rm_ivt_desc) "\n"
	/* IVT: vectors 0 (#DE), 3 (#BP), 4 (#OF), 5 (#BR), 6 (#UD), 0x40 -> handlers */
	"	xor %ax, %ax\n mov %ax, %fs\n"
	"	movw $" O(h_de) ", %fs:0\n  movw $0x6000, %fs:2\n"
	"	movw $" O(h_bp) ", %fs:12\n movw $0x6000, %fs:14\n"
	"	movw $" O(h_of) ", %fs:16\n movw $0x6000, %fs:18\n"
	"	movw $" O(h_br) ", %fs:20\n movw $0x6000, %fs:22\n"
	"	movw $" O(h_ud) ", %fs:24\n movw $0x6000, %fs:26\n"
	"	movw $" O(h_40) ", %fs:0x100\n movw $0x6000, %fs:0x102\n"
	"	movw $0, " NINT "\n"
	/* the data pattern the addressing group reads: DS:0x9000.. and SS:0x0000..0xefff */
	"	mov $0x9000, %di\n"
	"1:	mov %di, %ax\n imul $0x9e37, %ax\n xor %ah, %al\n mov %al, (%di)\n inc %di\n jnz 1b\n"
	"	xor %di, %di\n"
	"2:	mov %di, %ax\n imul $0x7f4a, %ax\n add %ah, %al\n mov %al, %ss:(%di)\n inc %di\n cmp $0xf000, %di\n jne 2b\n"

	/* ---- group 0: bcd */
	"	call g_begin\n"
	"	xor %cx, %cx\n"                     /* CH: flags index 0..3, CL: AL */
	"3:	mov %cl, %al\n mov %cl, %ah\n xor $0x5a, %ah\n"
	/* FLAGS in: CF AF from CH; SF ZF PF OF from AL's bits (AAA/AAS keep them, others rewrite) */
	"	mov %ch, %bl\n and $1, %bl\n mov %ch, %bh\n and $2, %bh\n shl $3, %bh\n or %bh, %bl\n"
	"	mov %cl, %bh\n and $0xc4, %bh\n or %bh, %bl\n mov %cl, %bh\n and $0x08, %bh\n"
	"	.irp op, daa, das, aaa, aas, aam, aad, aamb, aadb\n"
	"	push %ax\n push %bx\n popf\n"
	"	.ifc \\op, aamb\n .byte 0xd4, 0x07\n .else\n .ifc \\op, aadb\n .byte 0xd5, 0x0d\n .else\n \\op\n .endif\n .endif\n"
	"	pushf\n pop %dx\n"
	"	.ifc \\op, daa\n and $0x8d5, %dx\n .endif\n"
	"	.ifc \\op, das\n and $0x8d5, %dx\n .endif\n"
	"	.ifc \\op, aaa\n and $0x8d5, %dx\n .endif\n"
	"	.ifc \\op, aas\n and $0x8d5, %dx\n .endif\n"
	"	.ifc \\op, aam\n and $0x8d5, %dx\n .endif\n"
	"	.ifc \\op, aad\n and $0x8d5, %dx\n .endif\n"
	"	.ifc \\op, aamb\n and $0x8d5, %dx\n .endif\n"
	"	.ifc \\op, aadb\n and $0x8d5, %dx\n .endif\n"
	"	call ck\n"
	"	mov %dx, %ax\n call ck\n"
	"	pop %ax\n"
	"	.endr\n"
	"	inc %cl\n jnz 3b\n"
	"	inc %ch\n cmp $4, %ch\n jne 3b\n"
	"	mov $0, %bx\n call g_end\n"

	/* ---- group 1: addr16 (mod 0/1/2 x rm 0..7) */
	"	call g_begin\n"
	"	xor %cx, %cx\n"
	"4:	mov %cx, %bx\n imul $0x101, %bx\n"
	"	mov %cx, %si\n imul $0x3b3, %si\n"
	"	mov %cx, %di\n imul $0x1d7, %di\n"
	"	mov %cx, %bp\n imul $0x2f1, %bp\n"
	"	or $0x9000, %bx\n"
	".macro a16 m\n"
	"	movzbw \\m, %ax\n call ck\n"
	"	movzbw 0x7f\\m, %ax\n call ck\n"
	"	movzbw -0x80\\m, %ax\n call ck\n"
	"	movzbw 0x1234\\m, %ax\n call ck\n"
	"	movzbw -0x6789\\m, %ax\n call ck\n"
	"	lea 0x4321\\m, %ax\n call ck\n"
	".endm\n"
	"	a16 \"(%bx,%si)\"\n"
	"	a16 \"(%bx,%di)\"\n"
	"	a16 \"(%bp,%si)\"\n"
	"	a16 \"(%bp,%di)\"\n"
	"	a16 \"(%si)\"\n"
	"	a16 \"(%di)\"\n"
	"	a16 \"(%bx)\"\n"
	"	movzbw (%bp), %ax\n call ck\n"      /* mod 1 rm 6: [BP+0], SS */
	"	movzbw 0x7f(%bp), %ax\n call ck\n"
	"	movzbw -0x1234(%bp), %ax\n call ck\n"
	"	movzbw 0x9abc, %ax\n call ck\n"      /* mod 0 rm 6: disp16, DS */
	"	inc %cx\n cmp $256, %cx\n jne 4b\n"
	"	mov $1, %bx\n call g_end\n"

	/* ---- group 2: string */
	"	call g_begin\n"
	"	xor %dx, %dx\n"                       /* DL: round */
	"5:	mov %dx, %si\n imul $0x1357, %si\n"
	"	mov %dx, %di\n imul $0x2468, %di\n and $0x3fff, %di\n or $0xa000, %di\n"
	"	mov %dx, %cx\n and $0x3f, %cx\n"
	"	test $1, %dl\n jz 6f\n std\n jmp 7f\n 6: cld\n 7:\n"
	"	push %cx\n rep movsb\n call ck_sdc\n pop %cx\n"
	"	push %cx\n mov %dx, %ax\n rep stosw\n call ck_sdc\n pop %cx\n"
	"	push %cx\n rep lodsb\n call ck\n call ck_sdc\n pop %cx\n"
	"	push %cx\n repe cmpsb\n pushf\n pop %ax\n call ck\n call ck_sdc\n pop %cx\n"
	"	push %cx\n mov %dl, %al\n repne scasb\n pushf\n pop %ax\n call ck\n call ck_sdc\n pop %cx\n"
	"	push %cx\n repe cmpsw\n pushf\n pop %ax\n call ck\n call ck_sdc\n pop %cx\n"
	"	inc %dx\n cmp $200, %dx\n jne 5b\n"
	"	cld\n"
	"	mov $2, %bx\n call g_end\n"

	/* ---- group 3: legacy */
	"	call g_begin\n"
	"	xor %cx, %cx\n"
	"8:	mov %cx, %ax\n imul $0x3141, %ax\n mov %cx, %bx\n imul $0x5926, %bx\n and $0x6ff0, %bx\n or $0x9000, %bx\n"
	"	mov %cx, %dx\n imul $0x5358, %dx\n mov %cx, %si\n imul $0x9793, %si\n"
	"	mov %cx, %di\n imul $0x2384, %di\n mov %cx, %bp\n imul $0x6264, %bp\n"
	"	push %cx\n"
	"	pusha\n mov %sp, %bp\n"
	"	.irp k, 0, 2, 4, 6, 8, 10, 12, 14\n mov \\k(%bp), %ax\n call ck\n .endr\n"
	"	xorw $0x1111, 2(%bp)\n"
	"	popa\n"
	"	push %ax\n mov %cx, %ax\n call ck\n mov %sp, %ax\n call ck\n pop %ax\n"
	"	pushal\n popal\n"
	"	xlat\n call ck\n"
	"	les (%bx), %si\n mov %es, %ax\n call ck\n mov %si, %ax\n call ck\n"
	"	mov %ds, %ax\n mov %ax, %es\n"
	"	ldsl 2(%bx), %esi\n mov %ds, %ax\n call ck\n mov %esi, %eax\n call ck32\n"
	"	mov %cs, %ax\n mov %ax, %ds\n"
	/* LFS, LGS (SDM Vol. 2A "LDS/LES/LFS/LGS/LSS"): FS and GS are put back after */
	"	push %fs\n push %gs\n"
	"	lfs (%bx), %si\n mov %fs, %ax\n call ck\n mov %si, %ax\n call ck\n"
	"	lgsl 2(%bx), %esi\n mov %gs, %ax\n call ck\n mov %esi, %eax\n call ck32\n"
	"	lgs 4(%bx), %di\n mov %gs, %ax\n call ck\n mov %di, %ax\n call ck\n"
	"	lfsl (%bx), %edi\n mov %fs, %ax\n call ck\n mov %edi, %eax\n call ck32\n"
	"	pop %gs\n pop %fs\n"
	"	mov %ss, %ax\n mov %sp, %dx\n"
	"	movw $0x1000, 0x7f00\n movw $0x7000, 0x7f02\n"
	"	lss 0x7f00, %sp\n mov %sp, %di\n mov %ss, %si\n"
	"	mov %ax, %ss\n mov %dx, %sp\n"
	"	mov %di, %ax\n call ck\n mov %si, %ax\n call ck\n"
	"	pop %cx\n push %cx\n"
	"	mov %cx, %ax\n imul $0x7a1, %ax\n"
	"	movw $-100, 0x7f10\n movw $1000, 0x7f12\n"
	"	and $0x1ff, %ax\n bound %ax, 0x7f10\n call ck\n"   /* in range: no #BR */
	"	clc\n .byte 0xd6\n call ck\n stc\n .byte 0xd6\n call ck\n"
	"	mov %cx, %ax\n imul $0x4567, %ax\n cbw\n call ck\n cwd\n mov %dx, %ax\n call ck\n"
	"	mov %cx, %ax\n imul $0xc3a5, %ax\n cwde\n call ck32\n cltd\n mov %edx, %eax\n call ck32\n"
	/* an even frame pointer: ENTER's nesting reads words at BP-2, BP-4, and an odd BP near 0 would
	 * read one across SS's limit 0xffff (#SS(0) on the hardware, SDM Vol. 3 20.1.1; QEMU TCG does
	 * not check data segment limits) */
	"	mov %sp, %si\n mov %cx, %bp\n add %bp, %bp\n"
	"	enter $0x20, $0\n mov %bp, %ax\n sub %si, %ax\n call ck\n mov %sp, %ax\n sub %si, %ax\n call ck\n leave\n"
	"	enter $0x8, $3\n mov %bp, %ax\n sub %si, %ax\n call ck\n mov %sp, %ax\n sub %si, %ax\n call ck\n leave\n"
	"	mov %sp, %ax\n sub %si, %ax\n call ck\n"
	"	pop %cx\n push %cx\n and $7, %cx\n xor %ax, %ax\n"
	"	jcxz 10f\n 9: add %cx, %ax\n loop 9b\n 10: call ck\n"
	"	pop %cx\n"
	"	inc %cx\n cmp $300, %cx\n jne 8b\n"
	"	mov $3, %bx\n call g_end\n"

	/* ---- group 4: intr */
	"	call g_begin\n"
	"	mov $7, %ax\n int $0x40\n call ck\n"
	"	int3\n"
	"	mov $0x7f, %al\n add $1, %al\n into\n"       /* OF = 1: #OF */
	"	mov $0x10, %al\n add $1, %al\n into\n"       /* OF = 0: nothing */
	"	xor %cl, %cl\n mov $5, %ax\n div %cl\n"     /* #DE */
	"	ud2\n"                                      /* #UD */
	"	mov $2000, %ax\n bound %ax, 0x7f10\n"       /* #BR: above the upper bound */
	"	arpl %ax, %bx\n"                            /* #UD in real mode */
	/* LAR, LSL: #UD in real mode; the handler skips 2 bytes and runs the ModRM byte F8 as CLC */
	"	stc\n .byte 0x0f, 0x02, 0xf8\n"             /* lar %ax, %di */
	"	stc\n .byte 0x0f, 0x03, 0xf8\n"             /* lsl %ax, %di */
	"	pushf\n pop %ax\n and $0xfd5, %ax\n call ck\n"
	"	mov " NINT ", %ax\n call ck\n"
	"	mov $4, %bx\n call g_end\n"

	/* ---- group 5: op32 */
	"	call g_begin\n"
	"	xor %ecx, %ecx\n"
	"11:	mov %ecx, %eax\n imul $0x9e3779b9, %eax\n"
	"	mov %ecx, %edx\n imul $0x85ebca6b, %edx\n"
	"	add %edx, %eax\n pushf\n call ck32\n pop %ax\n call ck\n"
	"	sub %eax, %edx\n pushf\n mov %edx, %eax\n call ck32\n pop %ax\n call ck\n"
	"	mov %ecx, %ebx\n and $0xfff, %ebx\n mov %ecx, %esi\n and $0x3ff, %esi\n"
	"	lea 0x1234(%ebx,%esi,4), %eax\n call ck32\n"
	"	movzbl 0x8000(%ebx,%esi,4), %eax\n call ck32\n"
	"	pushl %ecx\n popl %eax\n call ck32\n"
	"	lcalll $0x6000, $" O(far32) "\n call ck32\n"
	"	pushfl\n pushl $0x6000\n pushl $" O(12f) "\n iretl\n"
	"12:	mov %sp, %ax\n call ck\n"
	"	inc %ecx\n cmp $200, %ecx\n jne 11b\n"
	"	mov $5, %bx\n call g_end\n"

	/* back: PE, 32-bit code (CS 0x18 of rm_gdt, still in GDTR) */
	"	lgdtl %cs:" O(rm_gdt_ptr) "\n"
	"	mov %cr0, %eax\n or $1, %eax\n mov %eax, %cr0\n"
	"	.byte 0x66, 0xea\n .long rm_back32\n .word 0x18\n"

	/* ck: hash AX (ck32: EAX) into HASH; count */
	"ck:\n"
	"	push %eax\n movzwl %ax, %eax\n call ck32\n pop %eax\n ret\n"
	"ck32:\n"
	"	push %eax\n push %edx\n"
	"	mov %cs:" HASH ", %edx\n rol $5, %edx\n xor %eax, %edx\n imul $0x01000193, %edx\n"
	"	mov %edx, %cs:" HASH "\n incl %cs:" COUNT "\n"
	"	pop %edx\n pop %eax\n ret\n"
	"ck_sdc:\n"
	"	push %ax\n mov %si, %ax\n call ck\n mov %di, %ax\n call ck\n mov %cx, %ax\n call ck\n pop %ax\n ret\n"
	"g_begin:\n"
	"	movl $0x811c9dc5, %cs:" HASH "\n movl $0, %cs:" COUNT "\n ret\n"
	"g_end:\n"                              /* BX = group */
	"	shl $3, %bx\n mov %cs:" HASH ", %eax\n mov %eax, %cs:0x8000(%bx)\n"
	"	mov %cs:" COUNT ", %eax\n mov %eax, %cs:0x8004(%bx)\n ret\n"
	/* handlers: record vector and the pushed IP/CS/FLAGS, skip a faulting instruction */
	"h_40:\n"
	"	push %bp\n mov %sp, %bp\n imul $3, %ax\n incw %cs:" NINT "\n pop %bp\n iret\n"
	"h_bp:\n"
	"	push $3\n jmp h_common\n"
	"h_of:\n"
	"	push $4\n jmp h_common\n"
	"h_de:\n"
	"	push $0x100\n jmp h_fault2\n"
	"h_ud:\n"
	"	push $0x600\n jmp h_fault2\n"
	"h_br:\n"
	"	push $0x500\n jmp h_fault2\n"
	"h_fault2:\n"                              /* faults: skip the 2-byte instruction (4 bytes: bound) */
	"	push %bp\n mov %sp, %bp\n"
	"	cmpw $0x500, 2(%bp)\n jne 13f\n addw $2, 4(%bp)\n"
	"13:	addw $2, 4(%bp)\n pop %bp\n"
	"h_common:\n"
	"	push %bp\n mov %sp, %bp\n push %ax\n"
	"	mov 2(%bp), %ax\n call ck\n"     /* vector code */
	"	mov 4(%bp), %ax\n call ck\n"     /* IP */
	"	mov 6(%bp), %ax\n call ck\n"     /* CS */
	"	mov 8(%bp), %ax\n and $0xfd5, %ax\n call ck\n" /* FLAGS */
	"	incw %cs:" NINT "\n"
	"	pop %ax\n pop %bp\n add $2, %sp\n iret\n"
	"far32:\n"
	"	push %bp\n mov %sp, %bp\n movzwl 6(%bp), %eax\n pop %bp\n lretl\n"
	"rm_ivt_desc: .word 0x3ff\n .long 0\n"
	"rm_gdt_ptr: .word rm_gdt_end - rm_gdt - 1\n .long rm_gdt\n"
	"rm_blob_end:\n"
	".code64\n"
	".text\n");

extern const char rm_blob[], rm_blob_end[];
void rm_call(void);

static const char *const names[NGROUPS] = { "bcd", "addr16", "string", "legacy", "intr", "op32" };

int guest_main(void)
{
	uint8_t *dst = (uint8_t *)(uintptr_t)RM_BASE;
	unsigned len = (unsigned)(rm_blob_end - rm_blob);
	if (len > 0x7f00) {
		rt_printf("realmode: blob too large (%u bytes)\n", len);
		return 1;
	}
	memcpy(dst, rm_blob, len);
	memset(dst + RM_RES, 0, 8 * NGROUPS);
	rm_call();
	rt_printf("realmode: back in 64-bit mode\n");
	int bad = 0;
	for (int g = 0; g < NGROUPS; g++) {
		uint32_t h, n;
		memcpy(&h, dst + RM_RES + 8 * g, 4);
		memcpy(&n, dst + RM_RES + 8 * g + 4, 4);
		rt_printf("rm: %s n=%u h=0x%08x\n", names[g], n, h);
		if (n == 0)
			bad++;
	}
	uint16_t nint;
	memcpy(&nint, dst + 0x7ff8, 2);
	rt_printf("realmode: %u interrupts and exceptions taken\n", nint);
	if (nint != 9) /* INT 0x40, INT3, INTO, #DE, #UD (UD2), #BR, #UD (ARPL, LAR, LSL) */
		bad++;
	return bad ? 1 : 0;
}
