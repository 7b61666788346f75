#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/callgrind.sh [BUILD]: host instructions per guest instruction of the emu engine, counted by
# valgrind --tool=callgrind (docs/DESIGN.md "Notes on the emu engine's speed"). Unlike wall time this is
# repeatable to a fraction of a percent on a noisy machine, so it is the figure to tune against.
#
# Runs `blvm run --engine=emu` under callgrind on hello-min (boot and start-up alone) and on
# bench-cpu at a small scale (SCALE, default 5: ~16 M guest instructions, ~10-30 s under
# callgrind), once per back end: the interpreter (--translate=off) and the binary translator
# (--translate=on, issue 16), which also reports the share of guest instructions it executed as
# re-emitted host instructions (--stats native_instructions). Prints, per back end,
#   total     Ir(bench) / instructions(bench): everything, start-up included;
#   marginal  (Ir(bench) - Ir(hello)) / (instructions(bench) - instructions(hello)): the cost of
#             one more guest instruction, start-up excluded; the figure for the hot path.
# and, if callgrind_annotate is installed, the TOP (default 15) functions by Ir of each bench run.
# The callgrind outputs are kept in OUT (default $BUILD/callgrind.bench-cpu.out; the translator's
# with .xlate appended) for
# callgrind_annotate / kcachegrind. Exit 1 if anything fails.
set -u
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
BLVM="$BUILD/blvm"
GUEST="$BUILD/guests/bench-cpu"
HELLO="$BUILD/guests/hello-min"
SCALE="${SCALE:-5}"
TOP="${TOP:-15}"
OUT="${OUT:-$BUILD/callgrind.bench-cpu.out}"

die() {
	echo "bench/callgrind.sh: $*" >&2
	exit 1
}
for f in "$BLVM" "$GUEST" "$HELLO"; do
	[ -x "$f" ] || die "$f is missing: build it with 'make BUILD=$BUILD $BUILD/blvm guests'"
done
command -v valgrind >/dev/null 2>&1 || die "valgrind is missing (apt-get install valgrind)"
command -v python3 >/dev/null 2>&1 || die "python3 is missing (apt-get install python3)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# cg NAME OUTFILE TRANSLATE KERNEL [CMDLINE...]: blvm under callgrind; prints "IR INSTRUCTIONS NATIVE".
cg() {
	local name=$1 out=$2 tr=$3 kernel=$4
	shift 4
	local cmd=("$BLVM" run --engine=emu --translate="$tr" --stats="$tmp/$name.json" "$kernel")
	[ $# -gt 0 ] && cmd+=(-- "$@")
	valgrind --tool=callgrind --callgrind-out-file="$out" "${cmd[@]}" \
		</dev/null >"$tmp/$name.out" 2>"$tmp/$name.err"
	local rc=$?
	if [ $rc -ne 0 ]; then
		{
			echo "bench/callgrind.sh: blvm run --engine=emu $(basename "$kernel") $* under callgrind: status $rc"
			echo "  console (last lines):"
			tail -n 8 "$tmp/$name.out" | sed 's/^/    | /'
			echo "  stderr (last lines):"
			grep -v '^==[0-9]*==' "$tmp/$name.err" | tail -n 8 | sed 's/^/    ! /'
		} >&2
		return 1
	fi
	# callgrind writes "summary: N" (older) or "totals: N" (newer) with the total Ir.
	local ir
	ir=$(sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$out" | tail -n 1)
	[ -n "$ir" ] || {
		echo "bench/callgrind.sh: no Ir total in $out" >&2
		return 1
	}
	local insns
	insns=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["instructions"])' "$tmp/$name.json") || return 1
	case "$insns" in
	'' | None | *[!0-9]*)
		echo "bench/callgrind.sh: blvm --stats gave no instruction count" >&2
		return 1
		;;
	esac
	local native
	native=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("native_instructions", 0))' "$tmp/$name.json") || return 1
	echo "$ir $insns $native"
}

echo "bench/callgrind.sh: valgrind $(valgrind --version | sed 's/^valgrind-//'), bench-cpu scale $SCALE"
for tr in off on; do
	out="$OUT"
	[ "$tr" = on ] && out="$OUT.xlate"
	read -r hello_ir hello_insns hello_nat < <(cg "hello-$tr" "$tmp/hello-$tr.cg" "$tr" "$HELLO") || true
	[ -n "${hello_insns:-}" ] || die "hello-min failed under callgrind (see above)"
	read -r bench_ir bench_insns bench_nat < <(cg "bench-$tr" "$out" "$tr" "$GUEST" "$SCALE") || true
	[ -n "${bench_insns:-}" ] || die "bench-cpu failed under callgrind (see above)"
	[ "$bench_insns" -gt "$hello_insns" ] || die "bench-cpu retired no more instructions than hello-min"

	echo
	[ "$tr" = off ] && echo "== interpreter (--translate=off)" || echo "== translator (--translate=on)"
	printf '%-12s %16s %18s %14s\n' run "host Ir" "guest instructions" "native"
	printf '%-12s %16s %18s %14s\n' hello-min "$hello_ir" "$hello_insns" "$hello_nat"
	printf '%-12s %16s %18s %14s\n' bench-cpu "$bench_ir" "$bench_insns" "$bench_nat"
	python3 - "$hello_ir" "$hello_insns" "$bench_ir" "$bench_insns" "$bench_nat" <<'EOF'
import sys
hi, hn, bi, bn, bnat = map(int, sys.argv[1:])
print(f"total:    {bi / bn:8.1f} host instructions per guest instruction (start-up included)")
print(f"marginal: {(bi - hi) / (bn - hn):8.1f} host instructions per guest instruction (start-up excluded)")
print(f"start-up: {hi / 1e6:8.2f} M host instructions for hello-min ({hn} guest instructions)")
print(f"native:   {100.0 * bnat / bn:8.1f} % of bench-cpu's guest instructions ran as host instructions")
EOF
	if command -v callgrind_annotate >/dev/null 2>&1; then
		echo
		echo "top $TOP functions of the bench-cpu run (callgrind_annotate $out):"
		callgrind_annotate "$out" 2>/dev/null | sed -n '/^-*$/,$p' | grep -E '^ *[0-9,]+ ' | head -n "$TOP"
	fi
done
exit 0
