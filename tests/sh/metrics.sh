# --metrics=FILE.prom (docs/DESIGN.md "Operating blvm"): Prometheus text exposition, rewritten atomically
# every second. While a two-vCPU split-lock storm runs under ratelimit, every version of the file the
# poller sees is parsed by prometheus_client's text parser (Debian's python3-prometheus-client): the
# families and their types, blvm_info's labels, no sample timestamps (the textfile-collector
# convention), counters that never go back. The last version, written at the end, holds exactly the
# numbers of the --stats file, and its per-vCPU rows add up to the VM's. ~8 s.
. "$(dirname "$0")/../lib.sh"
# The Debian package installs for the system's python3, which may not be the first one on PATH.
PY=
for py in python3 /usr/bin/python3; do "$py" -c 'import prometheus_client' 2>/dev/null && { PY=$py; break; }; done
[ -n "$PY" ] || skip "python3-prometheus-client is not installed (scripts/deps.sh)"
G="$GUESTS/smp-storm"
[ -f "$G" ] || { fail "guest $G not built"; finish; }
M="$TMP/m.prom"
echo "old" > "$M"

cat > "$TMP/poll.py" <<'EOF'
import json, os, sys, time
from prometheus_client.parser import text_string_to_metric_families
path, pid, stats = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fails = 0
def check(c, m, d=""):
    global fails
    if c: print("ok: " + m)
    else: fails += 1; print("FAIL: %s: %s" % (m, d))
def parse(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            assert s.timestamp is None, "a sample with a timestamp: %r" % (s,)
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        out[("#type", fam.name)] = fam.type
    return out
def alive():
    try: os.kill(pid, 0); return True
    except OSError: return False
versions, seen, bad = [], set(), []
while True:
    running = alive()
    try:
        st = os.stat(path); key = (st.st_ino, st.st_mtime_ns)
        if key not in seen:
            seen.add(key)
            text = open(path).read()
            if text != "old\n":
                try: versions.append(parse(text))
                except Exception as e: bad.append("%s: %r" % (e, text[:200]))
    except FileNotFoundError:
        bad.append("the file was missing for a moment")
    if not running: break
    time.sleep(0.02)
check(not bad, "every version parsed (%d versions)" % len(versions), bad[:2])
check(len(versions) >= 3, "rewritten while the storm ran: %d versions" % len(versions))
if versions:
    last = versions[-1]
    info = [k for k in last if k[0] == "blvm_info"]
    check(len(info) == 1 and dict(info[0][1]).get("engine") == "emu" and dict(info[0][1]).get("policy") == "ratelimit=20000"
          and dict(info[0][1]).get("version"), "blvm_info{version, engine, policy} 1", info)
    for fam, typ in (("blvm_bus_locks", "counter"), ("blvm_vcpu_bus_locks", "counter"), ("blvm_throttled_seconds", "counter"),
                     ("blvm_exits", "counter"), ("blvm_instructions", "counter"), ("blvm_info", "gauge")):
        check(last.get(("#type", fam)) == typ, "family %s is a %s" % (fam, typ), last.get(("#type", fam)))
    mono = True
    for a, b in zip(versions, versions[1:]):
        for k, v in a.items():
            if k[0].endswith("_total") and k in b and b[k] < v: mono = False
    check(mono, "counters never go back across rewrites")
    def val(v, name, **labels): return v.get((name, tuple(sorted(labels.items()))))
    # Live, the VM's count and the vCPUs' are read one after the other; at the end they must agree.
    tot = sum(val(last, "blvm_bus_locks_total", reason=r) for r in ("split", "uc", "unattributed"))
    per = sum(val(last, "blvm_vcpu_bus_locks_total", vcpu=str(i)) for i in range(2))
    check(tot == per and all(val(last, "blvm_vcpu_bus_locks_total", vcpu=str(i)) > 0 for i in range(2)),
          "the last version: both vCPUs' bus locks add up to the VM's", (tot, per))
    s = json.load(open(stats))
    b = s["bus_locks"]
    check(val(last, "blvm_bus_locks_total", reason="split") == b["split"] and b["split"] > 0
          and val(last, "blvm_bus_locks_total", reason="uc") == b["uc"], "the last version: bus locks as --stats", (b, last))
    check(abs(val(last, "blvm_throttled_seconds_total") - b["throttled_ns"] / 1e9) < 1e-6 and b["throttled_ns"] > 0,
          "the last version: throttled seconds as --stats")
    check(val(last, "blvm_instructions_total") == s["instructions"]
          and all(val(last, "blvm_vcpu_instructions_total", vcpu=str(c["id"])) == c["instructions"] for c in s["vcpus"]),
          "the last version: instructions as --stats (VM and per vCPU)")
    check(all(val(last, "blvm_exits_total", reason=r) == n for r, n in s["exits"].items()), "the last version: exits by reason as --stats")
sys.exit(1 if fails else 0)
EOF

"$BLVM" run --vcpus=2 --bus-lock=ratelimit=20000 --timeout=3.5 --quiet --metrics="$M" --stats="$TMP/s.json" \
	"$G" -- 1000M >"$TMP/out" 2>"$TMP/err" & p=$!
timeout 60 "$PY" "$TMP/poll.py" "$M" $p "$TMP/s.json" > "$TMP/poll.out" 2>&1 &
poller=$!
wait $p; rc=$?
wait $poller; prc=$?
cat "$TMP/poll.out"
[ $rc -eq 124 ] && ok "the storm ended by --timeout (124)" || fail "status $rc, want 124: $(tail -3 "$TMP/err")"
[ $prc -eq 0 ] && ok "the metrics checks" || fail "metrics checks: status $prc"
[ -z "$(ls -A "$TMP" | grep '^\.m\.prom')" ] && ok "no temporary file left" || fail "left: $(ls -A "$TMP")"

# Bad paths: one line, status 2, nothing started; --events appends and never truncates.
mkdir "$TMP/dir"
expect_status 2 "--metrics = a directory" -- timeout 10 "$BLVM" run --metrics="$TMP/dir" "$GUESTS/hello-min"
expect_stderr "is a directory" "--metrics directory"
expect_status 2 "--events = a directory" -- timeout 10 "$BLVM" run --events="$TMP/dir" "$GUESTS/hello-min"
expect_stderr "is a directory" "--events directory"
echo '{"earlier": true}' > "$TMP/e.jsonl"
expect_status 0 "--events appends" -- timeout 10 "$BLVM" run --events="$TMP/e.jsonl" "$GUESTS/hello-min"
[ "$(head -1 "$TMP/e.jsonl")" = '{"earlier": true}' ] && [ "$(tail -1 "$TMP/e.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["event"])')" = SHUTDOWN ] &&
	ok "--events: the earlier line kept, SHUTDOWN appended" || fail "--events: $(cat "$TMP/e.jsonl")"
finish
