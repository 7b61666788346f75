#!/bin/bash
# tests/fuzz/run.sh BUILD SECONDS NAME...: runs each libFuzzer harness for SECONDS on a working copy
# of its seed corpus (tests/fuzz/corpus/NAME/ first, so every regression input is replayed), prints
# executions, coverage (edges) and corpus size per harness, and fails when one crashed, leaked,
# timed out or ran out of memory (the input is left in BUILD/fuzz/NAME/). JOBS harnesses run at once
# (default: one per host CPU).
set -u
BUILD=$1 SECONDS_EACH=$2
shift 2
failed=()
printf '%-22s %10s %8s %8s %8s  %s\n' harness execs "exec/s" edges corpus result
# fuzz_one NAME: runs it; its table line (and a failure's excerpt) into BUILD/fuzz/NAME.result,
# "failed" into BUILD/fuzz/NAME.failed when it did.
fuzz_one() {
	local name=$1 bin work seeds rc stats execs rate cov corp result
	bin=$BUILD/fuzz/bin/$name
	work=$BUILD/fuzz/$name
	rm -rf "$work" "$work.result" "$work.failed"
	mkdir -p "$work/corpus"
	[ -x "$bin" ] || { echo "$bin is missing" > "$work.result"; touch "$work.failed"; return; }
	seeds=tests/fuzz/corpus/$name
	[ -d "$seeds" ] || mkdir -p "$seeds"
	"$bin" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/" "$work/corpus" "$seeds" > "$work/log" 2>&1
	rc=$?
	stats=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "$work/log" | tail -n1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
	cov=$(echo "$stats" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	corp=$(echo "$stats" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
	if [ $rc -eq 0 ]; then
		result=ok
	else
		result="FAILED (status $rc): $(ls "$work" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | head -n1)"
		touch "$work.failed"
	fi
	{ printf '%-22s %10s %8s %8s %8s  %s\n' "$name" "${execs:--}" "${rate:--}" "${cov:--}" "${corp:--}" "$result"
	  [ $rc -eq 0 ] || grep -E 'ERROR|SUMMARY|panic|==[0-9]+==' "$work/log" | head -n 8 | sed 's/^/    | /'
	} > "$work.result"
}
mkdir -p "$BUILD/fuzz"
JOBS=${JOBS:-$(nproc)}
for name in "$@"; do
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
	fuzz_one "$name" &
done
wait
for name in "$@"; do
	cat "$BUILD/fuzz/$name.result"
	[ -e "$BUILD/fuzz/$name.failed" ] && failed+=("$name")
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: failed: ${failed[*]} (inputs in $BUILD/fuzz/NAME/)"; exit 1; }
echo "fuzz: ${#@} harnesses, no crash"
