# --metrics into a FIFO whose reader stalls (docs/blvm.1 --metrics): the control thread does not
# block with it. The test holds the FIFO's read end with the pipe full and does not read for 3.5 s
# of a spin guest's --timeout=4 run, so the rewrites of the first three seconds cannot be written.
# Meanwhile query-status is asked twice (after one, then after two rewrites waited): both are
# answered. Then the test reads the pipe empty, blvm writes what waited, and the run ends through
# its timeout (status 124) within a few seconds of it. stderr says once that rewrites wait for the
# reader and at the end how many of them were not written whole. The FIFO holds the old bytes, then
# only whole expositions (never two interleaved, never one cut short), blvm_up_seconds rising, as
# many as were due less those counted as not written (a waiting one replaced by a newer), the
# last one the end's. Before the fix blvm blocked in fflush() at the first rewrite: no reply came
# and the run never ended. ~6 s.
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip "python3 is needed for the test client"
[ -f "$GUESTS/spin" ] || { fail "guest spin not built"; finish; }

cat > "$TMP/t.py" <<'EOF'
import os, re, socket, subprocess, sys, time
from qmp_client import Client
blvm, guest, tmp = sys.argv[1:4]
fails = 0
def check(c, m, detail=""):
    global fails
    if c: print("ok: " + m)
    else: fails += 1; print("FAIL: " + m + (": " + str(detail) if detail != "" else ""))

fifo, sock = tmp + "/m.fifo", tmp + "/c.sock"
os.mkfifo(fifo)
r = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a read end that does not read for now
filler = 0
try:
    while True: filler += os.write(r, b"x" * 4096)
except BlockingIOError: pass
def take():
    d = b""
    try:
        while True: d += os.read(r, 65536)
    except BlockingIOError: pass
    return d

err = open(tmp + "/err", "w")
t0 = time.monotonic()
p = subprocess.Popen([blvm, "run", "--control=" + sock, "--metrics=" + fifo, "--timeout=4", guest],
                     stdout=subprocess.DEVNULL, stderr=err)
answers, c = [], None
try:
    c = Client(sock, timeout=5)  # a hang guard: an answer comes in milliseconds or never
    for at in (2.3, 3.3):  # seconds after the start: one, then two rewrites waiting for the reader
        time.sleep(max(0, t0 + at - time.monotonic()))
        answers.append(c.execute("query-status"))
except (socket.timeout, EOFError, OSError) as e:
    answers.append({"error": str(e)})
check(len(answers) == 2 and all(a.get("return", {}).get("status") == "running" for a in answers),
      "query-status answered while the metrics FIFO's reader stalls", answers)
time.sleep(max(0, t0 + 3.5 - time.monotonic()))
data = take()  # the reader catches up
try:
    rc = p.wait(15)
except subprocess.TimeoutExpired:
    p.kill(); rc = p.wait()
    check(False, "blvm ended on time (it hung and was killed)")
took = time.monotonic() - t0
check(rc == 124, "the run ended through --timeout=4 (status 124)", rc)
check(took < 10, "and within a few seconds of it", "%.1f s" % took)
if c: c.close()
err.close()
data += take()
os.close(r)
text = open(tmp + "/err").read()
warn = [l for l in text.splitlines() if "does not keep up" in l]
check(len(warn) == 1, "one line says the reader does not keep up", text[:600])
m = re.search(r"--metrics=\S+: (\d+) of (\d+) rewrites were not written whole", text)
check(m is not None and int(m.group(1)) >= 1, "the count of rewrites not written is given at the end", text[:600])

check(data[:filler] == b"x" * filler, "the FIFO's old bytes first")
rest = data[filler:].decode(errors="replace")
head = "# HELP blvm_info "
parts = rest.split(head)
check(parts[0] == "", "then an exposition", rest[:80])
ups = []
for e in parts[1:]:
    u = re.search(r"^blvm_up_seconds ([0-9.]+)\n", e, re.M)
    whole = e.endswith("\n") and u is not None and e.count("# TYPE ") == e.count("# HELP ") + 1
    check(whole, "a whole exposition", e[-80:])
    if u: ups.append(float(u.group(1)))
check(ups == sorted(ups) and len(set(ups)) == len(ups), "blvm_up_seconds rises from one to the next", ups)
check(ups and ups[-1] >= 3.9, "the last exposition is the end's", ups)
if m:
    check(len(parts) - 1 + int(m.group(1)) == int(m.group(2)),
          "expositions written + not written = rewrites due", (len(parts) - 1, m.group(1), m.group(2)))
sys.exit(1 if fails else 0)
EOF
timeout 60 python3 "$TMP/t.py" "$BLVM" "$GUESTS/spin" "$TMP" || failures=$((failures+1))
finish
