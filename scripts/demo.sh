#!/bin/sh
# The README's main job: a guest that split-locks in a loop (buslock-storm), run under blvm's
# emu engine with bus-lock policies (log, ratelimit, contain, kill), each printing its report
# (stderr) and statistics.
BUILD=${1:-build}
set -e
cd "$(dirname "$0")/.."
stats=$(mktemp)
trap 'rm -f "$stats"' EXIT
B="$BUILD/blvm"
G="$BUILD/guests/buslock-storm"

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

say "blvm run --bus-lock=log $G -- 200000   (count and name every bus lock)"
"$B" run --bus-lock=log --stats="$stats" "$G" -- 200000
say "the same run's --stats=FILE.json"
cat "$stats"

say "blvm run --bus-lock=ratelimit=1000 $G -- 3000   (QEMU's policy: at most 1000 bus locks/s)"
"$B" run --bus-lock=ratelimit=1000 "$G" -- 3000

say "blvm run --vcpus=2 --bus-lock=contain $BUILD/guests/smp-storm -- 100000   (both vCPUs split-lock one counter; no host bus lock, still atomic: the guest checks the sum)"
"$B" run --vcpus=2 --bus-lock=contain "$BUILD/guests/smp-storm" -- 100000

say "blvm run --bus-lock=kill=5 $G -- 1000   (end the VM at its 5th bus lock: status 123)"
set +e
"$B" run --bus-lock=kill=5 "$G" -- 1000
echo "exit status $?" >&2
