#!/bin/bash
# bench/victim-sweep.sh [BUILD] [OUT]: the victim's slowdown against blvm's bus-lock rate limit, as a
# picture (issue 14). Runs bench/victim.sh on the rows that make the curve: the native split-lock
# storm (the reference), the storm guest under --bus-lock=ratelimit=N/10ms for N in SWEEP (default
# "100 1000 10000 30000 100000 300000"), and under --bus-lock=log (detection, no limit) and off (no
# detection); keeps victim.sh's table (OUT.txt) and its rows (OUT.tsv, TSV=), then draws OUT.svg
# with bench/victim-plot.sh. OUT defaults to bench/victim (bench/victim.svg is the README's picture).
# About 1-1.5 minutes here (PAIRS=60 per row); PAIRS=20 for a quick look. Environment as victim.sh's
# (SWEEP, SWEEP_SLICE, PAIRS, PASSES, KIND, ...). Not a test: nothing is asserted on time. Exit
# status: victim.sh's, or the plot's when victim.sh succeeded.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${1:-build}
OUT=${2:-bench/victim}
export SWEEP=${SWEEP:-100 1000 10000 30000 100000 300000}
export ONLY='^native split-lock storm$|storm guest, --bus-lock=(off|log|ratelimit=[0-9]+/.*)$'
export TSV=$OUT.tsv
: >"$TSV"
bench/victim.sh "$BUILD" | tee "$OUT.txt"
rc=${PIPESTATUS[0]}
bench/victim-plot.sh "$TSV" "$OUT.svg" || { [ "$rc" -ne 0 ] || rc=$?; }
exit "$rc"
