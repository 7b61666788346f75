# Guests: freestanding x86-64 PVH kernels (guests/README.md). Included by the top-level Makefile.
#
# Every guest NAME is guests/NAME.c (plus guests/NAME/*.c if that directory exists), linked with
# the runtime in guests/rt/ into the ELF $(BUILD)/guests/NAME. Guests never see the host CFLAGS
# (which may carry -fsanitize=...): they have their own flags below. Objects go to
# $(BUILD)/guests/obj/, generated headers to $(BUILD)/guests/gen/.
#
# To add a guest: write guests/NAME.c with `int guest_main(void)` and add NAME to GUESTS_ALL.

GUESTS_ALL := hello hello-min arith exit42 exc-ud exc-pf exc-handled spin halt unclaimed flood
GUESTS_ALL += bench-cpu
GUESTS_ALL += pg-nx pg-wp pg-np pg-1g pg-us smc sys-misc sys-int
GUESTS_ALL += buslock-census buslock-storm
GUESTS_ALL += smp-count smp-litmus smp-stack smp-storm smp-stop
GUESTS_ALL += kvm-buslock-marks
GUESTS_ALL += realmode

GUESTS_ALL += sse
GUESTS_ALL += idt-mmio partial-line

GUESTS_ALL += irq

GUESTS_ALL += echo uart-wide acpi-off platform

GUEST_CC ?= gcc
GUEST_HOSTCC ?= gcc
GUEST_DIR := $(BUILD)/guests
GUEST_OBJ := $(GUEST_DIR)/obj
GUEST_GEN := $(GUEST_DIR)/gen

# -mgeneral-regs-only: no SSE/x87 anywhere (the interrupt stubs do not save them, and a young
# software CPU need not have them). -mno-red-zone: interrupts push onto the current stack.
# -fno-tree-loop-distribute-patterns: stop gcc turning memset's own loop into a memset call.
# GUEST_CC=clang builds them with clang (tests/sh/guests-clang.sh: issue 3 asks for what gcc
# and clang emit); -fno-tree-loop-distribute-patterns is gcc's only, and clang's driver warns that
# -no-pie goes unused with -static.
GUEST_CFLAGS := -std=c11 -O2 -g -ffreestanding -fno-builtin -fno-pic -fno-pie -nostdlib \
	-mno-red-zone -mgeneral-regs-only -mcmodel=small -fno-stack-protector -fcf-protection=none \
	-fno-asynchronous-unwind-tables -fno-unwind-tables \
	$(if $(findstring clang,$(notdir $(GUEST_CC))),,-fno-tree-loop-distribute-patterns) \
	-fno-omit-frame-pointer -Wall -Wextra -Werror -Iguests/rt -I$(GUEST_GEN)
GUEST_ASFLAGS := -Iguests/rt -Wa,--fatal-warnings -Wall -Werror
GUEST_LDFLAGS := -nostdlib -static $(if $(findstring clang,$(notdir $(GUEST_CC))),,-no-pie) -Wl,-T,guests/rt/guest.ld -Wl,--build-id=none \
	-Wl,-z,noexecstack -Wl,-z,max-page-size=0x1000 -Wl,--fatal-warnings

GUEST_RT_SRCS := guests/rt/entry.S guests/rt/isr.S guests/rt/rt.c guests/rt/printf.c guests/rt/string.c
GUEST_RT_OBJS := $(patsubst guests/%,$(GUEST_OBJ)/%.o,$(basename $(GUEST_RT_SRCS)))

# Built by the host compiler from guests/gen/*.c (plain -O2: no sanitizers, no host CFLAGS).
GUEST_HOST_CFLAGS := -std=c11 -O2 -Wall -Wextra -Werror -Iguests/gen

$(GUEST_OBJ)/%.o: guests/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -MMD -MP -c $< -o $@

$(GUEST_OBJ)/%.o: guests/%.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_ASFLAGS) -MMD -MP -c $< -o $@

# guest_template NAME: the link rule of one guest.
define guest_template
GUEST_OBJS_$(1) := $(GUEST_OBJ)/$(1).o $$(patsubst guests/%.c,$(GUEST_OBJ)/%.o,$$(wildcard guests/$(1)/*.c))
$(GUEST_DIR)/$(1): $$(GUEST_OBJS_$(1)) $(GUEST_RT_OBJS) guests/rt/guest.ld
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $$@ $$(GUEST_OBJS_$(1)) $(GUEST_RT_OBJS)
endef
# (the top-level Makefile instantiates guest_template for every name once this file is read,
# so `GUESTS_ALL +=` lines may stand anywhere in it)

# sse: its kernels (guests/sse/*.c) are built with the compiler's floating-point and vector
# instructions (issue 11: the emu engine runs x87, MMX, SSE..SSE4.2); guests/sse.c enables them.
$(GUEST_OBJ)/sse/%.o: GUEST_CFLAGS := $(filter-out -mgeneral-regs-only,$(GUEST_CFLAGS)) -msse4.2 -mpclmul \
	-fno-math-errno

# arith: the expected results come from the host CPU, through the same code (guests/gen/arith_ops.h).
$(GUEST_GEN)/arith-gen: guests/gen/arith-gen.c guests/gen/arith_ops.h
	@mkdir -p $(dir $@)
	$(GUEST_HOSTCC) $(GUEST_HOST_CFLAGS) -o $@ $<

$(GUEST_GEN)/arith_cases.h: $(GUEST_GEN)/arith-gen
	$< > $@.tmp && mv $@.tmp $@

$(GUEST_OBJ)/arith.o: $(GUEST_GEN)/arith_cases.h guests/gen/arith_ops.h
$(GUEST_OBJ)/arith.o: GUEST_CFLAGS += -Iguests/gen



# Boot-format variants of one guest (tests/sh/boot-formats.sh): bootinfo is the PVH ELF as always;
# bootinfo-mb adds the Multiboot header and entry (rt/mb.S) and is converted to ELF32, as QEMU's
# Multiboot loader requires (kvm-unit-tests do the same); bootinfo-bz has the 64-bit bzImage entry
# (rt/bz.S) and is wrapped in a setup header by rt/mkbzimage.py. Both link rt/bootfmt.c, which turns
# their boot information into a start_info; ordinary guests do not carry it.
GUESTS_ALL += bootinfo
$(GUEST_DIR)/bootinfo-mb: $(GUEST_OBJ)/bootinfo.o $(GUEST_RT_OBJS) $(GUEST_OBJ)/rt/mb.o $(GUEST_OBJ)/rt/bootfmt.o guests/rt/guest.ld
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -Wl,-e,rt_mb_entry32 -o $@.elf64 $(filter %.o,$^)
	objcopy -O elf32-i386 $@.elf64 $@ && rm -f $@.elf64
$(GUEST_DIR)/bootinfo-bz: $(GUEST_OBJ)/bootinfo.o $(GUEST_RT_OBJS) $(GUEST_OBJ)/rt/bz.o $(GUEST_OBJ)/rt/bootfmt.o guests/rt/guest.ld guests/rt/mkbzimage.py
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@.elf $(filter %.o,$^)
	python3 guests/rt/mkbzimage.py $@.elf $@
guests: $(GUEST_DIR)/bootinfo-mb $(GUEST_DIR)/bootinfo-bz
