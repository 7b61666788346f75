#!/bin/bash
# bench/linux-soak.sh [SECONDS] [BUILD]: an SMP Linux soak under the sanitizers (issue 15: "a few
# minutes of an SMP Linux guest under each policy with the sanitizers, nothing reported"). Boots
# Debian's stock bzImage (scripts/linux-inputs.sh) with --vcpus=2 and the split-lock initramfs (two
# programs taking SPLITA and SPLITB split locks at once) again and again for SECONDS (default 300),
# each boot under the next policy of: log, ratelimit=2000, pause=1, contain, kill=N; on BUILD/blvm
# (default build-san, ASan+UBSan: `make SAN=1 build-san/blvm`; build-tsan for ThreadSanitizer). A run
# fails when
#   - a sanitizer reported (ASan/UBSan/TSan lines on stderr; TSan keeps going, exitcode 66);
#   - it hung: blvm's --timeout ended it (124) or the outer guard killed it;
#   - it went wrong: not the policy's status (0 after the guest's poweroff; 123 for kill), or the
#     bus locks blvm attributes to splitlock-a/-b in --stats tasks[] differ from what each program
#     counted and printed (every policy but kill lets both finish; kill=N must stop at exactly N).
# Failed runs' outputs are kept in OUT (default BUILD/linux-soak/). Not part of `make test` (minutes);
# the last result is recorded in tests/fuzz/README.md. Exit status 0 when no run failed, 1 otherwise.
set -u
cd "$(dirname "$0")/.."
SECS=${1:-300}
BUILD=${2:-build-san}
BLVM=$BUILD/blvm
OUT=${OUT:-$BUILD/linux-soak}
NA=${SPLITA:-3000} NB=${SPLITB:-2000} KILL=${KILL:-1500}
[ -x "$BLVM" ] || { echo "linux-soak: $BLVM is missing (make SAN=1 $BLVM, or SAN=thread build-tsan/blvm)"; exit 2; }
LX=$(scripts/linux-inputs.sh 2>/dev/null) || { echo "linux-soak: the Debian kernel and initramfs cannot be made here"; exit 2; }
rm -rf "$OUT"
mkdir -p "$OUT"
export TSAN_OPTIONS="exitcode=66 halt_on_error=0 ${TSAN_OPTIONS:-}"

policies=(log ratelimit=2000 pause=1 contain "kill=$KILL")
runs=0 failed=0 k=0 start=$SECONDS
printf '%-16s %6s %7s %s\n' policy status seconds result
while [ $((SECONDS - start)) -lt "$SECS" ]; do
	p=${policies[$((k % ${#policies[@]}))]}; k=$((k + 1)); runs=$((runs + 1))
	t0=$SECONDS
	timeout 900 "$BLVM" run --engine=emu --vcpus=2 --mem=256M --timeout=600 --bus-lock="$p" \
		--stats="$OUT/s.json" --initrd="$LX/initrd-splitlock.cpio" "$LX/vmlinuz" -- \
		console=ttyS0 panic=-1 SPLITA=$NA SPLITB=$NB >"$OUT/out" 2>"$OUT/err" </dev/null
	st=$?
	why=$(python3 - "$p" "$st" "$OUT/s.json" "$OUT/out" "$OUT/err" "$NA" "$NB" "$KILL" <<'PY'
import json, re, sys
p, st, stats, out, err, na, nb, kill = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
e = open(err, "rb").read().decode("latin-1")
if re.search(r"ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer|LeakSanitizer", e):
    print("sanitizer: " + re.search(r".*(Sanitizer|runtime error).*", e).group(0)[:100]); sys.exit()
if st in (124, 137, 143):
    print("hung (status %d)" % st); sys.exit()
want = 123 if p.startswith("kill") else 0
if st != want:
    print("status %d, want %d: %s" % (st, want, e.strip().splitlines()[-1:] if e.strip() else "")); sys.exit()
d = json.load(open(stats))
tasks = {t["comm"]: t["bus_locks"] for t in d["tasks"] if t["comm"].startswith("splitlock-")}
if p.startswith("kill"):
    total = sum(tasks.values())
    if d["bus_locks"]["total"] != kill:
        print("kill=%d: %d bus locks counted" % (kill, d["bus_locks"]["total"])); sys.exit()
    print("ok: killed at %d (splitlock: %s)" % (kill, tasks)); sys.exit()
con = open(out, "rb").read().decode("latin-1")
for comm, n in (("splitlock-a", na), ("splitlock-b", nb)):
    m = re.search(r"^%s: pid \d+ tgid \d+: (\d+) split locks, counter (\d+)" % comm, con, re.M)
    if not m or int(m.group(1)) != n or int(m.group(2)) != n:
        print("%s did not finish its %d" % (comm, n)); sys.exit()
    if tasks.get(comm) != n:
        print("tasks[] %s: %s, the program took %d" % (comm, tasks.get(comm), n)); sys.exit()
print("ok: %s" % tasks)
PY
)
	case $why in
	ok*) ;;
	*) failed=$((failed + 1)); cp "$OUT/out" "$OUT/run$runs.out"; cp "$OUT/err" "$OUT/run$runs.err";;
	esac
	printf '%-16s %6s %7s %s\n' "$p" "$st" $((SECONDS - t0)) "$why"
done
echo "linux-soak: $runs boots in $((SECONDS - start)) s on $BLVM, $failed failed (outputs in $OUT/)"
[ $failed -eq 0 ]
