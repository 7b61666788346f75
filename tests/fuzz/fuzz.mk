# Coverage-guided fuzzing (issue 15): one libFuzzer harness per input surface, tests/fuzz/NAME.c,
# each with a seed corpus in tests/fuzz/corpus/NAME/. Included by the top-level Makefile.
#
#   make fuzz [FUZZ_SECONDS=N] [FUZZ=NAME...]   build with clang (SAN=fuzz, build-fuzz/) and run each
#                                               harness for N seconds (default 60); a crash fails and
#                                               leaves its input in build-fuzz/fuzz/NAME/crash-*
#
# A crash found becomes a regression input: copy it into tests/fuzz/corpus/NAME/ (every later run
# starts from the corpus, so it is replayed first) and fix the bug.
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/*.c))
FUZZ_NAMES := $(FUZZ_SRCS:tests/fuzz/%.c=%)
FUZZ_SECONDS ?= 60
CI_FUZZ_SECONDS ?= 10
FUZZ ?= $(FUZZ_NAMES)

$(BUILD)/fuzz/bin/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/libblvm-internal.a
	@mkdir -p $(dir $@)
	$(CC) -fsanitize=fuzzer,address,undefined -o $@ $< $(BUILD)/libblvm-internal.a $(LDLIBS) $(JSONC_LIBS)

# cli_options includes src/cli/main.c, which calls the control socket (src/control/, linked into the
# command only, not into the libraries).
$(BUILD)/fuzz/bin/cli_options: $(BUILD)/tests/fuzz/cli_options.o $(BUILD)/src/control/control.o $(BUILD)/libblvm-internal.a
	@mkdir -p $(dir $@)
	$(CC) -fsanitize=fuzzer,address,undefined -o $@ $(filter %.o,$^) $(BUILD)/libblvm-internal.a $(LDLIBS) $(JSONC_LIBS)

fuzz-bins: $(addprefix $(BUILD)/fuzz/bin/,$(FUZZ_NAMES))

ifeq ($(SAN),fuzz)
fuzz: fuzz-bins
	tests/fuzz/run.sh $(BUILD) $(FUZZ_SECONDS) $(FUZZ)
else
fuzz:
	$(MAKE) SAN=fuzz fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ="$(FUZZ)"
endif

.PHONY: fuzz fuzz-bins
