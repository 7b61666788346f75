# blvm build. `make` builds the command, the library and the guests;
# `make check` runs the test suite; `make check SAN=1` runs it under ASan+UBSan;
# `make check SAN=thread` under ThreadSanitizer (build-tsan/).
# `make test` (the README's test command) installs what is missing and runs both.

# One build job per host CPU unless the command line says otherwise (`make -j1`); set at the top
# level only, so that sub-makes share its jobserver.
ifeq ($(MAKELEVEL),0)
MAKEFLAGS += -j$(shell nproc)
endif

SAN ?=
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else ifeq ($(SAN),thread)
# ThreadSanitizer over the monitor and the engines (the guests are built as always). Guest memory is
# shared by the vCPU threads on purpose: the emu engine touches it only through atomics (emu.h,
# EMU_GLD/EMU_GST) and inline-asm locked instructions, so TSan checks the engine's own structures.
BUILD ?= build-tsan
SANFLAGS = -fsanitize=thread -fno-omit-frame-pointer
else ifeq ($(SAN),fuzz)
# Coverage-guided fuzzing (tests/fuzz/, `make fuzz`): clang's libFuzzer with ASan and UBSan; the
# library is instrumented for coverage, the harnesses link the fuzzer's main.
BUILD ?= build-fuzz
SANFLAGS = -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD ?= build
SANFLAGS =
endif

ifeq ($(SAN),fuzz)
CC = clang
else
CC = gcc
endif
CFLAGS = -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Iinclude -Isrc -MMD -MP $(SANFLAGS)
# json-c parses the control socket's requests (src/control/, the command only: libblvm does not need it).
JSONC_CFLAGS := $(shell pkg-config --cflags json-c 2>/dev/null)
JSONC_LIBS := $(or $(shell pkg-config --libs json-c 2>/dev/null),-ljson-c)
LDFLAGS = $(SANFLAGS)
LDLIBS = -lZydis -lbpf -llz4 -lz -llzma -lzstd -lbz2 -llzo2 -lpthread -lm

LIB_SRCS := $(sort $(wildcard src/vmm/*.c src/boot/*.c src/dev/*.c src/introspect/*.c src/policy/*.c src/kvm/*.c src/emu/*.c))
CLI_SRCS := $(sort $(wildcard src/cli/*.c src/control/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/*.c))

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
PIC_OBJS := $(LIB_SRCS:%.c=$(BUILD)/pic/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

# The library (issue 14, packaging): libblvm.a and libblvm.so export only blvm_* (the API in
# include/blvm/); libblvm-internal.a keeps every symbol for the unit tests, which reach the
# engines' internals (the host-oracle tests call the ALU directly).
SONAME_MAJOR := $(shell sed -n 's/^\#define BLVM_VERSION_MAJOR \([0-9]*\)$$/\1/p' include/blvm/version.h)
LIB_VERSION := $(shell sed -n 's/^\#define BLVM_VERSION "\(.*\)"$$/\1/p' include/blvm/version.h)
SHLIB := $(BUILD)/libblvm.so.$(LIB_VERSION)

all: $(BUILD)/blvm $(BUILD)/libblvm.a $(if $(SANFLAGS),,$(SHLIB)) unit-tests guests bench-progs

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/src/control/%.o: src/control/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(JSONC_CFLAGS) -c $< -o $@

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@

$(BUILD)/libblvm-internal.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# One relocatable object (ld -r) whose symbols other than blvm_* are made local: a program that
# embeds the static library sees blvm's API and nothing else (no emu_*, json_*, ...).
$(BUILD)/libblvm.o: $(LIB_OBJS)
	ld -r -o $@.tmp $^
	objcopy --wildcard --keep-global-symbol='blvm_*' $@.tmp $@
	rm -f $@.tmp

$(BUILD)/libblvm.a: $(BUILD)/libblvm.o
	rm -f $@ && ar rcs $@ $<

# The shared library: position-independent objects; the version script exports blvm_* only.
$(SHLIB): $(PIC_OBJS) src/libblvm.map
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libblvm.so.$(SONAME_MAJOR) -Wl,--version-script=src/libblvm.map \
		-Wl,-z,noexecstack -o $@ $(PIC_OBJS) $(LDLIBS)
	ln -sf $(notdir $@) $(BUILD)/libblvm.so.$(SONAME_MAJOR)
	ln -sf $(notdir $@) $(BUILD)/libblvm.so

$(BUILD)/blvm: $(CLI_OBJS) $(BUILD)/libblvm.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) $(BUILD)/libblvm.a $(LDLIBS) $(JSONC_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libblvm-internal.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libblvm-internal.a $(LDLIBS)

unit-tests: $(UNIT_BINS)

# The fake-kernel shim test's programs (tests/shim/): rules in tests/shim/shim.mk.
include tests/shim/shim.mk

# Benchmark host programs (the victim of the bus-lock benchmark): bench/bench.mk.
include bench/bench.mk

# Fuzz harnesses (tests/fuzz/fuzz.mk): built and run by `make fuzz`.
include tests/fuzz/fuzz.mk

# Guests: freestanding x86-64 PVH kernels; rules and the list live in guests/guests.mk.
include guests/guests.mk
# Instantiated here, after the whole of guests.mk, so that every `GUESTS_ALL +=` line counts.
$(foreach g,$(GUESTS_ALL),$(eval $(call guest_template,$(g))))
guests: $(addprefix $(GUEST_DIR)/,$(GUESTS_ALL))

# CHECK_DEPS: what a check builds first (everything; the TSan pass of `make test` builds what its
# tests run).
CHECK_DEPS ?= all
check: $(CHECK_DEPS)
	BUILD=$(BUILD) SAN=$(SAN) tests/run.sh

# The ThreadSanitizer pass of `make test`: the tests that share state between vCPU threads, and
# sh/signals with 10 of its stop signals at random moments (the issue's 100 are `make check
# SAN=thread TESTS=sh/signals`, ~5-8 min on 2 idle cores: each TSan run of the guest takes seconds).
TSAN_TESTS := unit/smp unit/policy_threads sh/smp sh/control sh/signals
TSAN_SIGNAL_RUNS ?= 10
tsan-deps: $(BUILD)/blvm guests $(filter $(BUILD)/tests/smp_% $(BUILD)/tests/policy_threads,$(UNIT_BINS))

deps:
	scripts/deps.sh

# The README's two commands.
demo: deps
	$(MAKE) all
	scripts/demo.sh $(BUILD)

test: deps
	$(MAKE) check
	$(MAKE) check SAN=1
	# ThreadSanitizer over what shares state between vCPU threads: the SMP unit tests and guests,
	# the policy module's shared limiter (the whole suite under TSan: `make check SAN=thread`).
	SIGNAL_RUNS=$(TSAN_SIGNAL_RUNS) $(MAKE) check SAN=thread TESTS="$(TSAN_TESTS)" CHECK_DEPS=tsan-deps
	# Every fuzz harness for a bounded time (regressions of the inputs' parsers and the CPU).
	$(MAKE) fuzz FUZZ_SECONDS=$(CI_FUZZ_SECONDS)

# `make install PREFIX=/usr/local DESTDIR=`: the command, both libraries, the headers, blvm.pc, the
# manual pages, bash completion and the licence.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/blvm
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
PUBLIC_HEADERS := $(wildcard include/blvm/*.h)

$(BUILD)/blvm.pc: src/blvm.pc.in include/blvm/version.h
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(LIB_VERSION)|' $< > $@

install: $(BUILD)/blvm $(BUILD)/libblvm.a $(SHLIB) $(BUILD)/blvm.pc
	@test -z "$(SANFLAGS)" || { echo "make install: build without SAN" >&2; exit 1; }
	install -D -m 0755 $(BUILD)/blvm $(DESTDIR)$(BINDIR)/blvm
	install -D -m 0644 $(BUILD)/libblvm.a $(DESTDIR)$(LIBDIR)/libblvm.a
	install -D -m 0755 $(SHLIB) $(DESTDIR)$(LIBDIR)/$(notdir $(SHLIB))
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/libblvm.so.$(SONAME_MAJOR)
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/libblvm.so
	install -d $(DESTDIR)$(INCLUDEDIR)/blvm
	install -m 0644 $(PUBLIC_HEADERS) $(DESTDIR)$(INCLUDEDIR)/blvm/
	install -D -m 0644 $(BUILD)/blvm.pc $(DESTDIR)$(LIBDIR)/pkgconfig/blvm.pc
	install -D -m 0644 docs/blvm.1 $(DESTDIR)$(MANDIR)/man1/blvm.1
	install -D -m 0644 docs/blvm-policy.3 $(DESTDIR)$(MANDIR)/man3/blvm-policy.3
	install -D -m 0644 scripts/blvm.bash-completion $(DESTDIR)$(BASHCOMPDIR)/blvm
	install -D -m 0644 LICENSE $(DESTDIR)$(DOCDIR)/LICENSE

clean:
	rm -rf build build-san build-tsan build-fuzz build-clang build-san-clang build-tsan-clang

.PHONY: all check deps demo test clean unit-tests guests install tsan-deps
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
