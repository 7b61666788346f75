#!/bin/sh
# The README's main job: boot the demo guests under blvm and print their reports.
# (Until bus-lock policies land, the demo shows booting, the console and the statistics.)
BUILD=${1:-build}
set -e
cd "$(dirname "$0")/.."
stats=$(mktemp)
trap 'rm -f "$stats"' EXIT
echo "== blvm run $BUILD/guests/hello -- demo" >&2
"$BUILD/blvm" run --stats="$stats" "$BUILD/guests/hello" -- demo
echo "== statistics (--stats):" >&2
cat "$stats"
echo "== blvm run $BUILD/guests/arith (a guest that checks its own arithmetic)" >&2
"$BUILD/blvm" run --stats="$stats" "$BUILD/guests/arith"
cat "$stats"
