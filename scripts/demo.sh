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
set -e

# Linux (issue 13): Debian's stock cloud kernel, as shipped (a bzImage), whose userland runs two
# programs that split-lock at the same instruction; blvm names each guest process from outside,
# from the kernel's own BTF, while the guest kernel's split_lock_detect warns in the console.
if LX=$(scripts/linux-inputs.sh 2>/dev/null); then
	say "blvm run --bus-lock=log --initrd=initrd-splitlock.cpio vmlinuz -- SPLITA=5000 SPLITB=3000   (a stock Linux: which guest process takes the bus locks?)"
	"$B" run --mem=256M --timeout=300 --bus-lock=log --quiet --stats="$stats" --initrd="$LX/initrd-splitlock.cpio" \
		"$LX/vmlinuz" -- console=ttyS0 panic=-1 loglevel=5 SPLITA=5000 SPLITB=3000 < /dev/null |
		tr -d '\r' > "$stats.console"
	grep -E '#DB: splitlock' "$stats.console" | head -2   # the guest kernel's own view (ratelimited)
	grep -E '^splitlock-' "$stats.console"                # what the programs say of themselves
	rm -f "$stats.console"
	say "its --stats: tasks[]"
	python3 -c 'import json,sys; [print(json.dumps(t)) for t in json.load(open(sys.argv[1]))["tasks"]]' "$stats"
	say "the same Linux under --bus-lock=ratelimit=1000   (the processes are held to 1000 bus locks/s)"
	"$B" run --mem=256M --timeout=300 --bus-lock=ratelimit=1000 --quiet --initrd="$LX/initrd-splitlock.cpio" \
		"$LX/vmlinuz" -- console=ttyS0 panic=-1 loglevel=5 SPLITA=3000 SPLITB=2000 < /dev/null |
		tr -d '\r' | grep -E '^splitlock-'
else
	say "(the Linux section needs scripts/linux-inputs.sh's Debian kernel: not available here)"
fi
