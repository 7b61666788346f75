#!/bin/bash
# bench/smp-soak.sh [SECONDS] [BUILD]: an SMP soak under ThreadSanitizer (issue 15). Runs the SMP
# guests (guests/smp-*.c) again and again for SECONDS (default 600) with 2, 3, 4 and 8 vCPUs under
# each bus-lock policy, on BUILD/blvm (default build-tsan: `make SAN=thread build-tsan/blvm`; the
# guests come from build/guests, GUESTS= to change), and reports every run that
#   - raced: a ThreadSanitizer report on stderr (TSAN_OPTIONS exitcode=66, reports kept going);
#   - hung: blvm's own --timeout ended it (status 124), or the outer guard had to kill it;
#   - went wrong: another status than the guest's contract, or its result line missing (exact
#     counts, the x86-TSO forbidden outcomes, a lost or duplicated stack node, all N ready lines).
# Each failed run's stdout and stderr are kept in OUT (default BUILD/soak/). Not part of `make test`
# (it runs for minutes); the last result is recorded in tests/fuzz/README.md.
# Exit status 0 when no run failed, 1 otherwise.
set -u
SECS=${1:-600}
BUILD=${2:-build-tsan}
BLVM=$BUILD/blvm
GUESTS=${GUESTS:-build/guests}
OUT=${OUT:-$BUILD/soak}
[ -x "$BLVM" ] || { echo "smp-soak: $BLVM is missing (make SAN=thread $BLVM)"; exit 2; }
for g in smp-count smp-stack smp-litmus smp-storm smp-stop; do
	[ -f "$GUESTS/$g" ] || { echo "smp-soak: guest $GUESTS/$g is missing (make guests)"; exit 2; }
done
rm -rf "$OUT"
mkdir -p "$OUT"
export TSAN_OPTIONS="exitcode=66 halt_on_error=0 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"

# One case: NAME POLICY WANT-STATUS WANT-REGEX GUEST [GUEST-ARGS...] (\s in the regex: a space). The work per run is
# kept small (TSan slows the engine down 5-15 times) so that a 10-minute soak makes many runs.
cases=(
	"count off 0 ^smp-count:\slock-add-split4\sok smp-count 150"
	"count log 0 ^smp-count:\slock-add-split4\sok smp-count 150"
	"count contain 0 ^smp-count:\slock-add-split4\sok smp-count 150"
	"stack off 0 ^smp-stack:.*ok$ smp-stack 2000"
	"litmus off 0 ^smp-litmus:\slb\sok smp-litmus 2000"
	"storm ratelimit=5000 0 ^smp-storm:\sdone smp-storm 200"
	"storm pause=1 0 ^smp-storm:\sdone smp-storm 200"
	"stop-triple off 125 triple-faults\snow smp-stop triple"
	"stop-kill kill=40 123 ready$ smp-stop storm"
)
vcpus=(2 3 4 8)
runs=0 failed=0 races=0 hangs=0 wrong=0
start=$(date +%s)
i=0
while [ $(( $(date +%s) - start )) -lt "$SECS" ]; do
	read -r name policy want regex guest args <<<"${cases[$((i % ${#cases[@]}))]}"
	n=${vcpus[$(( (i / ${#cases[@]}) % ${#vcpus[@]} ))]}
	i=$((i + 1))
	tag="$i-$name-$n-${policy//=/_}"
	regex=${regex//\\s/ }
	# --timeout bounds the run; the outer guard only catches a blvm that ignores its own timeout.
	timeout -k 5 150 "$BLVM" run --quiet --timeout=90 --engine=emu --vcpus="$n" --bus-lock="$policy" \
		"$GUESTS/$guest" -- $args >"$OUT/$tag.out" 2>"$OUT/$tag.err"
	rc=$?
	runs=$((runs + 1))
	why=
	if grep -q "WARNING: ThreadSanitizer" "$OUT/$tag.err"; then
		why="race: $(grep -m1 -A2 'WARNING: ThreadSanitizer' "$OUT/$tag.err" | tr '\n' ' ')"; races=$((races + 1))
	elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		why="hang (status $rc)"; hangs=$((hangs + 1))
	elif [ $rc -ne "$want" ] || ! grep -Eq "$regex" "$OUT/$tag.out"; then
		why="status $rc (want $want), output: $(tail -n 2 "$OUT/$tag.out" | tr '\n' ' ')"; wrong=$((wrong + 1))
	fi
	if [ -n "$why" ]; then
		failed=$((failed + 1))
		echo "smp-soak: run $tag FAILED: $why"
	else
		rm -f "$OUT/$tag.out" "$OUT/$tag.err"
	fi
done
echo "smp-soak: $runs runs in $(( $(date +%s) - start )) s ($BLVM, vCPUs ${vcpus[*]}, ${#cases[@]} cases):" \
	"$failed failed ($races races, $hangs hangs, $wrong wrong results)"
[ $failed -eq 0 ]
