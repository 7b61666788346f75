#!/bin/bash
# bench/victim.sh [BUILD]: what a bus-locking guest does to a host process on another core.
#
# The victim (bench/victim.c, a memory-bound read-modify-write sweep of 64 MiB, pinned to core 1) is timed alone and
# while a storm runs on core 0: a native split-lock storm, then the storm guest
# (guests/buslock-storm.c) under QEMU TCG and under blvm's emu engine, then (once blvm has
# --bus-lock=) under each policy. Prints one table:
#     row, victim ms/pass (medians), slowdown (median of the rounds' paired ratios) and their range,
#     the storm's bus locks per second, bar
# docs/REFERENCE.md: alone 4.8 ms/pass, native split-lock storm 41.7 (8.6x); QEMU TCG does not slow it.
# Issue 5's bars: --bus-lock=off > 3x, ratelimit=1000 and pause=10 <= 1.05, contain <= 1.02;
# issue 6: the same policies with the storm on one vCPU of a 2-vCPU guest.
#
# The storm's rate is measured in a separate, timed run of the same command with a finite N
# ("storm split N"), N growing x10 until it takes >= 0.5 s beyond the start-up time (the same
# command with N = 0): bus locks per second as the guest sees them under that engine/policy.
#
# How a row is measured (PAIRING):
#   pairs (default): the storm starts, runs 0.5 s, and the victim itself stops (SIGSTOP) and
#     continues (SIGCONT) the storm's process group, timing PASSES passes (default 5) with the storm
#     stopped and PASSES with it running, PAIRS times (default 60), in ABBA order. Slowdown = median
#     of the pairs' ratios, range = their quartiles. The two halves of a pair are tens of ms apart,
#     so other tenants' load on this shared machine hits both alike (bench/victim.c, --pair-with).
#   rounds: ROUNDS rounds (default 3) of (victim alone, start the storm, 0.5 s, victim under the
#     storm, stop it); PASSES default 40; slowdown = median of the rounds' ratios, range = min-max.
#     Alone and storm are seconds apart: drift of the machine shows up as +-10-30 % (the aligned
#     controls).
# SWEEP="N1 N2 ..." adds a row per rate limit, --bus-lock=ratelimit=N/SWEEP_SLICE (slice default
# 10ms), after issue 5's rows: the figure of bench/victim-sweep.sh (slowdown against the limit). The
# slice is short so that a window of the victim (5 passes, ~30 ms) sees the limit as an average: with
# QEMU's 1 s slice the storm runs at full speed for N/1M s and then sleeps the rest of the second,
# and a median over short windows misses the bursts.
# TSV=FILE appends one line per measured row, tab-separated: row name, slowdown, its low and high
# range, victim ms alone and under the storm, the storm's bus locks/s ("-" when not measured).
# Environment: ONLY (an extended regex: run only the rows whose name matches), PAIRING, PAIRS,
# PASSES, ROUNDS, VICTIM_CORE (1),
# STORM_CORE (0), VICTIM_RT (1: run the victim SCHED_FIFO), KIND (the victim's loop: rmw, read or chase; see bench/victim.c), QEMU.
# Exit status 1 when a storm failed (a guest's self-check, or it ended early). Not a test: the bars
# are printed (ok / MISSED), never asserted. Needs 2 cores, taskset; rows whose program is missing
# are shown as "not measured". Build first:
#   make BUILD=build guests build/blvm build/bench/victim
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
VICTIM=$BUILD/bench/victim
BLVM=$BUILD/blvm
STORM=$BUILD/guests/buslock-storm
QEMU=${QEMU:-qemu-system-x86_64}
PAIRING=${PAIRING:-pairs}
case $PAIRING in
pairs) PASSES=${PASSES:-5} ;;
rounds) PASSES=${PASSES:-40} ;;
*) echo "victim.sh: PAIRING=$PAIRING: use pairs or rounds" >&2; exit 2 ;;
esac
PAIRS=${PAIRS:-60}
ROUNDS=${ROUNDS:-3}
KIND=${KIND:-rmw}
VCORE=${VICTIM_CORE:-1}
SCORE=${STORM_CORE:-0}

[ -x "$VICTIM" ] || { echo "victim.sh: $VICTIM is missing: make BUILD=$BUILD $VICTIM" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "victim.sh: needs 2 cores, this host has $(nproc)" >&2; exit 2; }
command -v taskset >/dev/null || { echo "victim.sh: needs taskset (util-linux)" >&2; exit 2; }

TMP=$(mktemp -d)
storm_pid=
# Each storm runs as a background job in its own process group (set -m), so that stopping it
# reaches the real program (QEMU, blvm) and not just the subshell running a shell function.
set -m
stop_storm() {
	[ -n "$storm_pid" ] || return 0
	kill -TERM -- "-$storm_pid" 2>/dev/null
	kill -CONT -- "-$storm_pid" 2>/dev/null # a storm the victim left stopped takes SIGTERM only when continued
	wait "$storm_pid" 2>/dev/null
	storm_pid=
}
cleanup() {
	stop_storm
	rm -rf "$TMP"
}
trap cleanup EXIT

now() { date +%s.%N; }

# The victim runs SCHED_FIFO (chrt) where allowed: on a shared machine other tenants' processes
# would otherwise share its core, and more so while a storm occupies the other core, which shows
# up as a slowdown even under the aligned controls. VICTIM_RT=0 runs it at normal priority.
RT=()
if [ "${VICTIM_RT:-1}" = 1 ] && chrt -f 10 true 2>/dev/null; then RT=(chrt -f 10); fi

# victim_ms: runs the victim once on VCORE, prints its median ms/pass.
victim_ms() {
	"${RT[@]}" "$VICTIM" --core="$VCORE" --passes="$PASSES" --kind="$KIND" | sed -n 's/^victim: median_ms=\([0-9.]*\) .*/\1/p'
}

if [ "$PAIRING" = pairs ]; then
	echo "victim: $KIND sweep of 64 MiB on core $VCORE${RT:+ (SCHED_FIFO)}; storms on core $SCORE; each row: $PAIRS interleaved pairs of $PASSES passes (storm stopped / running, ABBA), slowdown = median ratio, range = quartiles"
else
	echo "victim: $KIND sweep of 64 MiB on core $VCORE${RT:+ (SCHED_FIFO)}, $PASSES passes per measurement, median of $ROUNDS rounds; storms on core $SCORE; range = min-max of the rounds' ratios"
fi
W=57 # width of the row names (the longest: the SWEEP rows)
printf "%-${W}s %9s %9s %9s %11s %18s  %s\n" "row" "alone ms" "storm ms" "slowdown" "range" "storm bus locks/s" "bar"
# row NAME ALONE MS RATE [BAR]: ALONE and MS are victim ms/pass (median) without and with the
# storm; BAR is ">3" (slowdown must exceed 3), "1.05" (must not exceed 1.05) or empty.
row() {
	local name=$1 alone=$2 ms=$3 rate=$4 bar=${5:-} ratio range verdict=""
	if [ -z "$ms" ] || [ -z "$alone" ]; then
		printf "%-${W}s %9s %9s %9s %11s %18s  %s\n" "$name" "${alone:--}" "-" "-" "-" "$rate" "${bar:+bar $bar: }not measured"
		return
	fi
	# The slowdown is the median of the rounds' own ratios (storm / the alone taken just before it),
	# paired so that the machine's drift between rounds cancels; range is their min-max (the noise:
	# see the aligned controls). Rows not measured by under_storm: the ratio of the two medians.
	if [ -n "$pmed" ]; then ratio=$pmed; range=$prange; else
		ratio=$(awk -v a="$ms" -v b="$alone" 'BEGIN { printf "%.2f", a / b }'); range=-; fi
	pmed= prange=
	case $bar in
	"") ;;
	">"*) verdict=$(awk -v r="$ratio" -v b="${bar#>}" 'BEGIN { print (r > b) ? "ok" : "MISSED" }')
	      verdict="bar $bar: $verdict";;
	*) verdict=$(awk -v r="$ratio" -v b="$bar" 'BEGIN { print (r <= b) ? "ok" : "MISSED" }')
	   verdict="bar <=$bar: $verdict";;
	esac
	printf "%-${W}s %9s %9s %8sx %11s %18s  %s\n" "$name" "$alone" "$ms" "$ratio" "$range" "$rate" "$verdict"
	if [ -n "${TSV:-}" ] && [ "$range" != - ]; then
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$ratio" "${range%-*}" "${range#*-}" "$alone" "$ms" "$rate" >>"$TSV"
	fi
}

pmed= prange=
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

# under_storm CMD...: ROUNDS times: time the victim alone, start CMD (already pinned) in the
# background, let it run 0.5 s, time the victim again, stop CMD. Each storm measurement has its
# own baseline taken just before it, so that a change in the machine's load (other tenants) between
# rows does not show up as a slowdown. Sets alone and ms to the medians over the rounds, ms to ""
# if CMD died before the victim ended. (Not in a $(...) subshell: the EXIT trap must know
# storm_pid.)
under_storm() {
	if [ "$PAIRING" = pairs ]; then under_storm_pairs "$@"; return; fi
	local r a=() m=() x
	ms=
	for ((r = 0; r < ROUNDS; r++)); do
		a+=("$(victim_ms)")
		"$@" >"$TMP/storm.out" 2>"$TMP/storm.err" </dev/null &
		storm_pid=$!
		sleep 0.5
		x=$(victim_ms)
		if ! kill -0 "$storm_pid" 2>/dev/null; then
			echo "  (storm ended before the victim: $(tail -n 2 "$TMP/storm.err" "$TMP/storm.out" | tr '\n' ' '))" >&2
			touch "$TMP/failed"
			stop_storm
			alone=$(printf '%s\n' "${a[@]}" | median)
			return
		fi
		stop_storm
		m+=("$x")
	done
	alone=$(printf '%s\n' "${a[@]}" | median)
	ms=$(printf '%s\n' "${m[@]}" | median)
	local rs=() i
	for i in "${!m[@]}"; do rs+=("$(awk -v x="${m[$i]}" -v y="${a[$i]}" 'BEGIN { printf "%.3f", x / y }')"); done
	pmed=$(printf '%s\n' "${rs[@]}" | median | awk '{ printf "%.2f", $1 }')
	prange=$(printf '%s\n' "${rs[@]}" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }')
}

# under_storm_pairs CMD...: start CMD (already pinned) in the background, let it run 0.5 s, then the
# victim's interleaved pairs against it (bench/victim.c --pair-with); sets alone, ms, pmed, prange
# from the victim's line, ms to "" if the storm died.
under_storm_pairs() {
	local line
	ms=
	"$@" >"$TMP/storm.out" 2>"$TMP/storm.err" </dev/null &
	storm_pid=$!
	sleep 0.5
	line=$("${RT[@]}" "$VICTIM" --core="$VCORE" --passes="$PASSES" --kind="$KIND" --pair-with="$storm_pid" --pairs="$PAIRS")
	if ! kill -0 "$storm_pid" 2>/dev/null || [ -z "$line" ]; then
		echo "  (storm ended before the victim: $(tail -n 2 "$TMP/storm.err" "$TMP/storm.out" | tr '\n' ' '))" >&2
		touch "$TMP/failed"
		stop_storm
		alone=$(sed -n 's/.* alone_ms=\([0-9.]*\) .*/\1/p' <<<"$line")
		return
	fi
	stop_storm
	alone=$(sed -n 's/.* alone_ms=\([0-9.]*\) .*/\1/p' <<<"$line")
	ms=$(sed -n 's/.* storm_ms=\([0-9.]*\) .*/\1/p' <<<"$line")
	pmed=$(sed -n 's/.* ratio=\([0-9.]*\) .*/\1/p' <<<"$line" | awk '{ printf "%.2f", $1 }')
	prange=$(sed -n 's/.* q1=\([0-9.]*\) q3=\([0-9.]*\) .*/\1 \2/p' <<<"$line" | awk '{ printf "%.2f-%.2f", $1, $2 }')
}

# guest_rate CMD-PREFIX...: bus locks/s of `CMD-PREFIX split N` (the storm guest's command line
# appended), timed as described at the top. CMD-PREFIX must end where the guest command line goes.
guest_rate() {
	local t0 t1 base_s n=100 el
	t0=$(now); "$@" "split 0" >/dev/null 2>&1 </dev/null || { touch "$TMP/failed"; echo "-"; return; }; t1=$(now)
	base_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
	while :; do
		t0=$(now)
		"$@" "split $n" >"$TMP/rate.out" 2>&1 </dev/null
		t1=$(now)
		if ! grep -q "^storm: done $n\$" "$TMP/rate.out"; then
			echo "  (storm guest failed: $* 'split $n': $(tail -n 2 "$TMP/rate.out" | tr '\n' ' '))" >&2
			touch "$TMP/failed"; echo "-"; return
		fi
		el=$(awk -v a="$t0" -v b="$t1" -v s="$base_s" 'BEGIN { print b - a - s }')
		if awk -v e="$el" 'BEGIN { exit !(e >= 0.5) }' || [ "$n" -ge 1000000000 ]; then break; fi
		n=$((n * 10))
	done
	awk -v n="$n" -v e="$el" 'BEGIN { printf "%.0f", n / (e > 0 ? e : 1e-9) }'
}

# want NAME: the row is selected by ONLY (an extended regular expression; empty: every row).
want() { [ -z "${ONLY:-}" ] || grep -Eq -- "$ONLY" <<<"$1"; }

# ---- alone ----
alone1=$(victim_ms)
row "alone" "$alone1" "$alone1" "-"

# ---- native storms (the damage, and the aligned control) ----
if want "native split-lock storm"; then
	under_storm taskset -c "$SCORE" "$VICTIM" --storm --core="$SCORE"
	# The rate from a separate 1 s run, as for the guests: the storm above was stopped half the time.
	rate=$(taskset -c "$SCORE" "$VICTIM" --storm --core="$SCORE" --seconds=1 | sed -n 's/^storm: .* rate=\([0-9]*\)$/\1/p')
	row "native split-lock storm" "$alone" "$ms" "${rate:--}"
fi
if want "native aligned lock storm (control)"; then
	under_storm taskset -c "$SCORE" "$VICTIM" --storm --aligned --core="$SCORE"
	row "native aligned lock storm (control)" "$alone" "$ms" "0"
fi

# ---- the storm guest under QEMU TCG ----
qemu_cmd() {
	taskset -c "$SCORE" "$QEMU" -accel tcg -cpu max -m 128 -display none -no-reboot -nodefaults \
		-serial stdio -monitor none -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$STORM" -append "$1"
}
if ! command -v "$QEMU" >/dev/null 2>&1 || [ ! -f "$STORM" ]; then
	row "qemu tcg: storm guest" "" "" "-"
else
	qrun() { qemu_cmd "$@"; [ $? -eq 1 ]; } # exit value 0 -> QEMU status 1
	if want "qemu tcg: storm guest"; then
		under_storm qemu_cmd ""
		row "qemu tcg: storm guest" "$alone" "$ms" "$(guest_rate qrun)"
	fi
	if want "qemu tcg: aligned storm guest (control)"; then
		under_storm qemu_cmd "aligned"
		row "qemu tcg: aligned storm guest (control)" "$alone" "$ms" "0"
	fi
fi

# ---- the storm guest under blvm ----
# blvm_row NAME BAR MODE [OPTIONS...]: the storm guest (command line MODE: "" = split, forever)
# under `blvm run --engine=emu OPTIONS`; the rate is that of "split N" under the same options.
blvm_row() {
	local name=$1 bar=$2 mode=$3; shift 3
	want "$name" || return 0
	if [ ! -x "$BLVM" ] || [ ! -f "$STORM" ]; then row "$name" "" "" "-" "$bar"; return; fi
	local opts=("$@") rate=0
	brun() { taskset -c "$SCORE" "$BLVM" run --engine=emu "${opts[@]}" --timeout=600 "$STORM" ${1:+-- $1}; }
	under_storm brun "$mode"
	[ -z "$mode" ] && rate=$(guest_rate brun)
	row "$name" "$alone" "$ms" "$rate" "$bar"
}
blvm_row "blvm emu: storm guest (no --bus-lock)" "" ""
blvm_row "blvm emu: aligned storm guest (control)" "" "aligned"
if [ -x "$BLVM" ] && "$BLVM" run --help 2>&1 | grep -q -- '--bus-lock'; then
	# Issue 5's rows and bars. Add a policy here: "NAME|BAR|OPTION".
	for spec in "off|>3|--bus-lock=off" "log||--bus-lock=log" "ratelimit=1000|1.05|--bus-lock=ratelimit=1000" \
		"pause=10|1.05|--bus-lock=pause=10" "contain|1.02|--bus-lock=contain"; do
		IFS='|' read -r pname pbar popt <<<"$spec"
		blvm_row "blvm emu: storm guest, --bus-lock=$pname" "$pbar" "" "$popt"
	done
	for n in ${SWEEP:-}; do
		blvm_row "blvm emu: storm guest, --bus-lock=ratelimit=$n/${SWEEP_SLICE:-10ms}" "" "" \
			"--bus-lock=ratelimit=$n/${SWEEP_SLICE:-10ms}"
	done
	# Issue 6: the same storm on vCPU 0 of a 2-vCPU guest (vCPU 1 idles in the guest runtime's
	# PAUSE loop on the storm's core; the emu engine yields the host CPU in PAUSE loops). Under
	# contain, each contained lock stops the other vCPU (the exclusive section).
	for spec in "off||--bus-lock=off" "ratelimit=1000|1.05|--bus-lock=ratelimit=1000" \
		"pause=10|1.05|--bus-lock=pause=10" "contain|1.02|--bus-lock=contain"; do
		IFS='|' read -r pname pbar popt <<<"$spec"
		blvm_row "blvm emu, 2 vCPUs: storm on vCPU 0, $pname" "$pbar" "" "$popt" --vcpus=2
	done
else
	echo "(blvm has no --bus-lock option yet: the policy rows off/log/ratelimit=1000/pause=10/contain come later)"
fi

# ---- alone again: the machine did not change under us ----
alone2=$(victim_ms)
row "alone (again, at the end)" "$alone1" "$alone2" "-"
if [ -e "$TMP/failed" ]; then
	echo "victim.sh: a storm failed (see the messages above): the rows it touches are not valid" >&2
	exit 1
fi
