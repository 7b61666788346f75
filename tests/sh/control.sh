# The control socket (--control, QMP's wire format), driven by tests/lib/qmp_client.py through every command
# (docs/DESIGN.md "Operating blvm"; QEMU's docs/interop/qmp-spec.rst): the greeting, negotiation, replies
# with their ids, QMP's error classes; malformed and oversized requests answered with an error and
# the connection still usable; two requests in one write, one request split across three writes; a
# client that disconnects in the middle of a request; two clients at once (both get the events); a
# live switch from log to ratelimit=100 whose effect the VM's own statistics show (the storm's rate
# drops from thousands per second to at most the limit); stop holds the instruction count still, cont lets it
# move; quit ends with status 0; kill=N set live ends the VM at the N-th bus lock after the change;
# --events holds the same events. `make check SAN=thread TESTS=sh/control` runs it under TSan.
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip "python3 is needed for the test client"
for g in buslock-storm spin; do [ -f "$GUESTS/$g" ] || { fail "guest $g not built"; finish; }; done

cat > "$TMP/client.py" <<'EOF'
import json, os, stat, sys, time
from qmp_client import Client
fails = 0
def ok(m): print("ok: " + m)
def fail(m):
    global fails; fails += 1; print("FAIL: " + m)
def check(c, m, detail=""):
    ok(m) if c else fail(m + (": " + str(detail) if detail != "" else ""))

mode, path = sys.argv[1], sys.argv[2]
if mode == "main":
    a = Client(path, negotiate=False)  # first: it waits for blvm to listen (the path may not exist yet)
    check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "the socket's mode is 0600", oct(os.stat(path).st_mode))
    g = a.greeting.get("QMP", {})
    check(g.get("capabilities") == [] and g.get("version", {}).get("qemu", {}).get("minor") is not None
          and "blvm" in g["version"].get("package", ""), "greeting has QMP's shape and blvm's version", a.greeting)
    r = a.execute("query-status", id=7)
    check(r.get("error", {}).get("class") == "CommandNotFound" and r.get("id") == 7,
          "a command before qmp_capabilities: CommandNotFound, id echoed", r)
    check(a.execute("qmp_capabilities", {"enable": ["oob"]}).get("error", {}).get("class") == "GenericError",
          "qmp_capabilities with an unknown capability: GenericError")
    check(a.execute("qmp_capabilities", id={"x": [1]}) == {"return": {}, "id": {"x": [1]}},
          "qmp_capabilities: {} and any JSON id echoed")
    r = a.execute("qmp_capabilities")
    check(r.get("error", {}).get("class") == "CommandNotFound", "qmp_capabilities twice: CommandNotFound", r)
    st = a.result("query-status")
    check(st == {"running": True, "singlestep": False, "status": "running"}, "query-status: running", st)
    names = sorted(c["name"] for c in a.result("query-commands"))
    check({"query-status", "query-bus-locks", "set-bus-lock-policy", "stop", "cont", "quit"} <= set(names),
          "query-commands lists every command", names)
    v = a.result("query-version")
    check(v == g["version"], "query-version: the greeting's version", v)

    # malformed requests: each answered with an error, the connection usable after each
    cases = [
        (b'{"execute": }\n', "GenericError", "JSON parse error"),
        (b'[1, 2]\n', "GenericError", "must be a JSON object"),
        (b'"query-status"\n', "GenericError", "must be a JSON object"),
        (b'{"id": 3}\n', "GenericError", "lacks member 'execute'"),
        (b'{"execute": 42}\n', "GenericError", "must be a string"),
        (b'{"execute": "query-status", "arguments": []}\n', "GenericError", "must be an object"),
        (b'{"execute": "query-status", "bogus": 1}\n', "GenericError", "is unexpected"),
        (b'{"execute": "no-such-command"}\n', "CommandNotFound", "has not been found"),
        (b'{"execute": "set-bus-lock-policy"}\n', "GenericError", "'policy' is missing"),
        (b'{"execute": "set-bus-lock-policy", "arguments": {"policy": 5}}\n', "GenericError", "expected: string"),
        (b'{"execute": "set-bus-lock-policy", "arguments": {"policy": "log", "x": "y"}}\n', "GenericError", "unexpected"),
        (b'{"execute": "set-bus-lock-policy", "arguments": {"policy": "ratelimit=0"}}\n', "GenericError", "at least 1"),
        (b'{"execute": "set-bus-lock-policy", "arguments": {"policy": "off"}}\n', "GenericError", "cannot be turned off"),
        (b'{"execute": "query-status", "id": "\xff\xfe"}\n', "GenericError", "JSON parse error"),
        (b'{"execute": "stop"' + b' ' * 10 + b'[' * 100 + b'\n', "GenericError", "JSON parse error"),
        (b'{"execute": "query-status", "id": ' + b'[' * 1100 + b']' * 1100 + b'}\n', "GenericError", "too deep"),
    ]
    for raw, cls, text in cases:
        a.send(raw)
        r = a.reply()
        e = r.get("error", {})
        check(e.get("class") == cls and text in e.get("desc", ""), "malformed %r: %s" % (raw[:40], cls), r)
        check(a.result("query-status")["status"] == "running", "  ... and the connection still answers")
    # oversized: more than 64 KiB in one request, then a normal one on the next line
    a.send(b'{"execute": "query-status", "id": "' + b"x" * 100000 + b'"}\n')
    r = a.reply()
    check("too large" in r.get("error", {}).get("desc", ""), "a 100 KB request: error 'too large'", str(r)[:200])
    check(a.result("query-status")["status"] == "running", "  ... and the connection still answers")

    # two requests in one write; one request split across three writes
    a.send(b'{"execute": "query-status", "id": 1}{"execute": "query-version", "id": 2}\r\n')
    r1, r2 = a.reply(), a.reply()
    check(r1.get("id") == 1 and r1["return"]["status"] == "running" and r2.get("id") == 2 and "qemu" in r2["return"],
          "two requests in one write: two replies, in order", (r1, r2))
    for part in (b'{"exec', b'ute": "query-st', b'atus", "id": "split"}\n'):
        a.send(part); time.sleep(0.1)
    r = a.reply()
    check(r == {"return": {"running": True, "singlestep": False, "status": "running"}, "id": "split"}, "one request in three writes", r)

    # a client that disconnects in the middle of a request, and one that never negotiates
    d = Client(path, negotiate=False); d.send(b'{"execute": "query-st'); d.close()
    e = Client(path, negotiate=False); e.close()
    check(a.result("query-status")["status"] == "running", "a client gone mid-request: the others go on")

    # the live switch: log -> ratelimit=100, its effect in the VM's own statistics
    s0 = a.result("query-bus-locks"); time.sleep(0.5); s1 = a.result("query-bus-locks")
    check(s0["end"] is None and s0["exit_code"] is None and s0["bus_locks"]["policy"] == "log"
          and len(s0["vcpus"]) == 1 and s0["top"], "query-bus-locks: the --stats object, live", str(s0)[:200])
    before = (s1["bus_locks"]["total"] - s0["bus_locks"]["total"]) / (s1["wall_seconds"] - s0["wall_seconds"])
    check(before > 2000, "under log the storm takes %d bus locks/s (>2000: 20 times the limit)" % before, before)
    b = Client(path)   # a second client, at the same time
    r = a.result("set-bus-lock-policy", {"policy": "ratelimit=100"})
    check(r == {"policy": "ratelimit=100"}, "set-bus-lock-policy ratelimit=100", r)
    ev = b.wait_event("BUS_LOCK_POLICY")
    check(ev and ev["data"]["policy"] == "ratelimit=100" and set(ev["timestamp"]) == {"seconds", "microseconds"},
          "the other client gets BUS_LOCK_POLICY with a timestamp", ev)
    time.sleep(1.1)   # the first slice after the switch
    s2 = b.result("query-bus-locks"); time.sleep(1.5); s3 = a.result("query-bus-locks")
    n, dt = s3["bus_locks"]["total"] - s2["bus_locks"]["total"], s3["wall_seconds"] - s2["wall_seconds"]
    # QEMU's limiter: at most 100 per slice of 1 s; a window of dt seconds meets at most ceil(dt)+1 slices
    check(0 < n <= 100 * (int(dt) + 2) and s3["bus_locks"]["policy"] == "ratelimit=100"
          and s3["bus_locks"]["throttled_ns"] > s1["bus_locks"]["throttled_ns"],
          "after the switch: %d bus locks in %.2f s of the VM (limit 100/s), vCPU throttled" % (n, dt), s3["bus_locks"])
    check(s3["bus_locks"]["total"] >= s1["bus_locks"]["total"], "the counts carried over the switch")
    check(b.wait_event("BUS_LOCK_RATE") is not None, "BUS_LOCK_RATE events arrive")
    check(b.wait_event("BUS_LOCK_THROTTLE_START") is not None, "BUS_LOCK_THROTTLE_START arrives")
    r = a.result("set-bus-lock-policy", {"policy": "contain"})
    check(r == {"policy": "contain"}, "contain live on emu", r)
    a.result("set-bus-lock-policy", {"policy": "log"})

    # stop / cont: no instruction retires while stopped. First the guest runs (a vCPU may still be
    # in the sleep ratelimit gave it before the switch back to log).
    def insns(): return a.result("query-bus-locks")["instructions"]
    def moving(timeout=10):
        x = insns(); end = time.time() + timeout
        while time.time() < end:
            time.sleep(0.05); y = insns()
            if y != x: return True
        return False
    check(moving(), "under log again the guest runs")
    check(a.result("stop") == {}, "stop")
    i0 = a.result("query-bus-locks")["instructions"]; time.sleep(0.3); i1 = a.result("query-bus-locks")["instructions"]
    check(i0 == i1, "stopped: instructions stay at %d" % i0, i1)
    check(a.result("query-status") == {"running": False, "singlestep": False, "status": "paused"}, "query-status: paused")
    check(b.wait_event("STOP") is not None, "the other client gets STOP")
    check(a.result("cont") == {}, "cont")
    check(moving(), "after cont the instructions move on")
    check(b.wait_event("RESUME") is not None, "the other client gets RESUME")
    # under log since the switch back: the throttling has ended
    ev = b.wait_event("BUS_LOCK_THROTTLE_STOP")
    check(ev and ev["data"]["throttled_ns"] > 0 and ev["data"]["policy"] == "log",
          "BUS_LOCK_THROTTLE_STOP once no vCPU sleeps for the policy", ev)

    # kill=5 set live: the VM ends at the 5th bus lock after the change
    t0 = a.result("query-bus-locks")["bus_locks"]["total"]
    a.result("set-bus-lock-policy", {"policy": "kill=5"})
    k = b.wait_event("BUS_LOCK_KILL"); sd = b.wait_event("SHUTDOWN")
    check(k and "bus lock 5 of 5 allowed" in k["data"]["message"] and k["data"]["total"] >= t0 + 5,
          "BUS_LOCK_KILL at the 5th bus lock after the change", k)
    check(sd and sd["data"]["end"] == "bus_lock_kill" and sd["data"]["exit_code"] == 123 and not sd["data"]["guest"],
          "SHUTDOWN: bus_lock_kill, 123", sd)
elif mode == "qemu":
    # The same requests to QEMU's own QMP server (qemu-system-x86_64 -machine none -qmp) and to blvm's:
    # the same replies in shape (return or error, error class, id echoed or not), the same messages
    # for the protocol's own errors (QEMU's qmp-dispatch.c), the same events in the same order.
    reqs = [b'{"execute": "query-status", "id": 7}', b'{"execute": "qmp_capabilities", "id": 1}',
            b'{"execute": "qmp_capabilities"}', b'[1, 2]', b'"x"', b'{"id": 3}', b'{"execute": 42}',
            b'{"execute": "query-status", "arguments": []}', b'{"execute": "query-status", "bogus": 1}',
            b'{"execute": "no-such-command", "id": "n"}', b'{"execute": "query-status", "arguments": {"x": "y"}}',
            b'{"execute": }', b'{"execute": "query-status", "id": ' + b'[' * 50 + b']' * 50 + b'}',
            b'{"execute": "query-status"}{"execute": "query-version", "id": 2}', b'{"execute": "stop"}',
            b'{"execute": "query-status"}', b'{"execute": "cont", "id": "c"}', b'{"execute": "query-status"}']
    def shape(m):
        if "event" in m: return ("event", m["event"], sorted(m), sorted(m["timestamp"]))
        if "error" in m:
            d = m["error"]["desc"]
            return ("error", m["error"]["class"], "JSON parse error" if d.startswith("JSON parse error") else d, m.get("id"))
        r = m["return"]
        return ("return", sorted(r) if isinstance(r, dict) else r, r.get("status") if isinstance(r, dict) else None, m.get("id"))
    def run(path):
        c = Client(path, negotiate=False)
        out = [("greeting", sorted(c.greeting["QMP"]), sorted(c.greeting["QMP"]["version"]),
                sorted(c.greeting["QMP"]["version"]["qemu"]))]
        for raw in reqs:
            c.send(raw + b"\n")
            want = raw.count(b'"execute"') if raw.count(b"{") <= 2 else 1
            want = max(want, 1)
            got = 0
            while got < want:
                m = c.msg(); out.append(shape(m))
                if "event" not in m: got += 1
        return out
    q, b = run(sys.argv[3]), run(path)
    for i, (x, y) in enumerate(zip(q, b)):
        check(x == y, "as QEMU: %s" % (x,), "blvm: %s" % (y,))
    check(len(q) == len(b), "as many messages as QEMU (%d)" % len(q), len(b))
elif mode == "off":
    a = Client(path)
    r = a.execute("set-bus-lock-policy", {"policy": "log"})
    check("start with --bus-lock=log" in r.get("error", {}).get("desc", ""),
          "detection off at start: set-bus-lock-policy says why it cannot", r)
    check(a.result("query-bus-locks")["bus_locks"]["policy"] == "off", "query-bus-locks under off")
    check(a.result("quit") == {}, "quit: {}")
    sd = a.wait_event("SHUTDOWN")
    check(sd and sd["data"]["reason"] == "host-qmp-quit" and sd["data"]["exit_code"] == 0, "SHUTDOWN after quit", sd)
sys.exit(1 if fails else 0)
EOF

# The main run: a split-lock storm under log, every command, ended by kill=5 set live (status 123).
S="$TMP/c.sock"
timeout 120 "$BLVM" run --control="$S" --events="$TMP/ev.jsonl" --bus-lock=log --stats="$TMP/s.json" \
	"$GUESTS/buslock-storm" >"$TMP/out" 2>"$TMP/err" & p=$!
timeout 100 python3 "$TMP/client.py" main "$S" > "$TMP/client.out" 2>&1; crc=$?
cat "$TMP/client.out"
[ $crc -eq 0 ] && ok "test client (main run)" || fail "test client: status $crc"
# blvm ends by itself (kill=5): wait for that, and stop it only if it does not. A signal that
# arrives while an ASan build runs LeakSanitizer's check at exit can hang that check for good (its
# tracer holds the process: "already traced" when gdb tried to attach; 1 in 30-100 runs of
# kill=5 + SIGTERM at exit, in a loop of such runs): CI saw this test end with timeout's status 124.
for i in $(seq 300); do kill -0 $p 2>/dev/null || break; sleep 0.1; done
kill -0 $p 2>/dev/null && kill $p; wait $p; rc=$?
[ $rc -eq 123 ] && ok "kill=5 set live: status 123" || { fail "main run: status $rc, want 123"; sed 's/^/  stderr: /' "$TMP/err" | tail -5; }
[ ! -e "$S" ] && ok "the socket is removed at the end" || fail "the socket is left behind"
python3 - "$TMP/ev.jsonl" "$TMP/s.json" <<'EOF' && ok "--events: one JSON object per line, the socket's events" || fail "--events: $(head -c 300 "$TMP/ev.jsonl")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
names = [e["event"] for e in ev]
need = ["BUS_LOCK_RATE", "BUS_LOCK_POLICY", "STOP", "RESUME", "BUS_LOCK_KILL", "SHUTDOWN"]
assert all(n in names for n in need), names
assert names[-1] == "SHUTDOWN" and names[-2] == "BUS_LOCK_KILL", names[-3:]
assert all(set(e) - {"data"} == {"event", "timestamp"} for e in ev)
s = json.load(open(sys.argv[2]))
assert s["end"] == "bus_lock_kill" and s["bus_locks"]["policy"] == "kill=5", (s["end"], s["bus_locks"])
EOF

# Detection off at start: the switch is refused; quit ends with status 0; a stale socket is replaced.
# First the wire format against QEMU's own QMP server, request for request.
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$S"
timeout 60 "$BLVM" run --control="$S" --stats="$TMP/q.json" "$GUESTS/spin" >"$TMP/out" 2>"$TMP/err" & p=$!
if command -v qemu-system-x86_64 >/dev/null; then
	Q="$TMP/q.sock"
	timeout 30 qemu-system-x86_64 -machine none -display none -nodefaults -qmp unix:"$Q",server=on,wait=off & qp=$!
	timeout 25 python3 "$TMP/client.py" qemu "$S" "$Q"; qrc=$?
	kill $qp 2>/dev/null; wait $qp 2>/dev/null
	[ $qrc -eq 0 ] && ok "the wire format as QEMU's QMP server" || fail "against QEMU's QMP: status $qrc"
else
	echo "note: qemu-system-x86_64 not found: the comparison with QEMU's QMP server is skipped"
fi
timeout 50 python3 "$TMP/client.py" off "$S"; crc=$?
[ $crc -eq 0 ] && ok "test client (off run)" || fail "test client (off run): status $crc"
wait $p; rc=$?
[ $rc -eq 0 ] && grep -q '"end": "quit"' "$TMP/q.json" && ok "quit: status 0, stats end \"quit\"" || fail "quit: status $rc, $(head -c 200 "$TMP/q.json")"

# Bad paths: one line, status 2, nothing started.
echo x > "$TMP/file"
expect_status 2 "--control = an existing regular file" -- timeout 10 "$BLVM" run --control="$TMP/file" "$GUESTS/spin"
expect_stderr "exists and is not a socket" "--control on a file"
[ "$(cat "$TMP/file")" = x ] && ok "the file is untouched" || fail "the file changed"
expect_status 2 "--control path too long" -- timeout 10 "$BLVM" run --control="$TMP/$(printf 'x%.0s' $(seq 120))" "$GUESTS/spin"
expect_stderr "too long for a Unix socket" "--control too long"
expect_status 2 "--control in a missing directory" -- timeout 10 "$BLVM" run --control="$TMP/nodir/c.sock" "$GUESTS/spin"
finish
