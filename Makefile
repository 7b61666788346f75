# blvm build. `make` builds the command, the library and the guests;
# `make check` runs the test suite; `make check SAN=1` runs it under ASan+UBSan;
# `make check SAN=thread` under ThreadSanitizer (build-tsan/).
# `make test` (the README's test command) installs what is missing and runs both.

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
else
BUILD ?= build
SANFLAGS =
endif

CC = gcc
CFLAGS = -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Iinclude -Isrc -MMD -MP $(SANFLAGS)
LDFLAGS = $(SANFLAGS)
LDLIBS = -lZydis -lbpf -lpthread -lm

LIB_SRCS := $(sort $(wildcard src/vmm/*.c src/boot/*.c src/dev/*.c src/introspect/*.c src/policy/*.c src/kvm/*.c src/emu/*.c))
CLI_SRCS := $(sort $(wildcard src/cli/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/*.c))

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

all: $(BUILD)/blvm $(BUILD)/libblvm.a unit-tests guests bench-progs

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libblvm.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/blvm: $(CLI_OBJS) $(BUILD)/libblvm.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) $(BUILD)/libblvm.a $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libblvm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libblvm.a $(LDLIBS)

unit-tests: $(UNIT_BINS)

# The fake-kernel shim test's programs (tests/shim/): rules in tests/shim/shim.mk.
include tests/shim/shim.mk

# Benchmark host programs (the victim of the bus-lock benchmark): bench/bench.mk.
include bench/bench.mk

# Guests: freestanding x86-64 PVH kernels; rules and the list live in guests/guests.mk.
include guests/guests.mk
# Instantiated here, after the whole of guests.mk, so that every `GUESTS_ALL +=` line counts.
$(foreach g,$(GUESTS_ALL),$(eval $(call guest_template,$(g))))
guests: $(addprefix $(GUEST_DIR)/,$(GUESTS_ALL))

check: all
	BUILD=$(BUILD) SAN=$(SAN) tests/run.sh

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
	$(MAKE) check SAN=thread TESTS="unit/smp unit/policy_threads sh/smp"

clean:
	rm -rf build build-san build-tsan build-clang build-san-clang build-tsan-clang

.PHONY: all check deps demo test clean unit-tests guests
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
