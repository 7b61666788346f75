# Benchmarks' host programs (bench/). Included by the top-level Makefile.
#
# The victim (bench/victim.c) is timed: plain gcc -O2, never the host CFLAGS (which may carry
# -fsanitize=...), so that `make check SAN=1` builds it the same way.
BENCH_CFLAGS := -std=c11 -O2 -g -Wall -Wextra -Werror

$(BUILD)/bench/victim: bench/victim.c
	@mkdir -p $(dir $@)
	gcc $(BENCH_CFLAGS) -o $@ $<

bench-progs: $(BUILD)/bench/victim
.PHONY: bench-progs
