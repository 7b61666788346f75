# The fake-kernel shim for the kvm engine's bus-lock path (tests/shim/kvm_buslock_shim.c) and the
# program that checks it (tests/shim/kvm_buslock_shim_check.c); tests/sh/kvm-buslock-shim.sh runs
# both. Included by the top-level Makefile; `make all` (hence `make check`) builds them.
#
# The shim is a shared object LD_PRELOADed into blvm. It is built with flags of its own, never the
# sanitizers of SAN=1/thread: it interposes mmap() and ioctl(), which the sanitizer runtimes call
# while they start, before instrumented code may run (an instrumented shim crashes ThreadSanitizer
# at start-up). The blvm it is preloaded into keeps its sanitizers; the check program below is built
# as every test program is. The .so is left without the execute bit: tests/run.sh runs every
# executable file in $(BUILD)/tests/ as a unit test, and a preloaded library needs no such bit.
# The check program lives in $(BUILD)/tests/shim/, out of run.sh's reach: it means something only
# under the shim.
SHIM_SO := $(BUILD)/tests/kvm_buslock_shim.so
SHIM_CHECK := $(BUILD)/tests/shim/kvm_buslock_shim_check

SHIM_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Iinclude -Isrc -MMD -MP -fPIC

# The software kernel (KVM_BUSLOCK_SHIM_SOFTWARE=1, for hosts without /dev/kvm) is blvm's emu engine,
# linked into the shim: the plain build's position-independent objects of src/emu/ (built for
# libblvm.so with the same flags), or, in a sanitizer build, the same sources compiled here without
# the sanitizers. The version script keeps every symbol but the interposed functions local, so the
# shim's emu engine and blvm's own never meet.
SHIM_EMU_SRCS := $(sort $(wildcard src/emu/*.c))
SHIM_EMU_OBJS := $(if $(SANFLAGS),$(SHIM_EMU_SRCS:%.c=$(BUILD)/tests/shim/obj/%.o),$(SHIM_EMU_SRCS:%.c=$(BUILD)/pic/%.o))

$(BUILD)/tests/shim/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_CFLAGS) -c $< -o $@

$(SHIM_SO): tests/shim/kvm_buslock_shim.c tests/shim/shim.mk tests/shim/shim.map $(SHIM_EMU_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_CFLAGS) -shared -Wl,--version-script=tests/shim/shim.map -Wl,-z,noexecstack -o $@ $< \
		$(SHIM_EMU_OBJS) -lZydis -ldl -lpthread -lm
	chmod a-x $@

$(SHIM_CHECK): $(BUILD)/tests/shim/kvm_buslock_shim_check.o $(BUILD)/libblvm-internal.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libblvm-internal.a $(LDLIBS)

shim-tests: $(SHIM_SO) $(SHIM_CHECK)
all: shim-tests
.PHONY: shim-tests
