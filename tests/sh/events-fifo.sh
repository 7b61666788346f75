# --events into a FIFO whose reader stalls (issue 14; docs/blvm.1 --events): the control thread does
# not block with it. The test holds the FIFO's read end and never reads while the run lasts; the
# pipe is full but for a few KiB. Then 2500 stop/cont pairs make 5000 events (far more than the
# 256 KiB blvm queues): every request is still answered, query-status too, the warning comes once,
# quit ends the run with status 0 (a clean end, not the outer guard). Afterwards the FIFO holds only
# whole JSON lines, and the lines there plus the count blvm gives as not written are every event it
# emitted (2 per pair, plus SHUTDOWN). Before the fix blvm blocked in write() at the first event
# that did not fit, so no reply came and the run never ended. ~3 s.
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip "python3 is needed for the test client"
[ -f "$GUESTS/spin" ] || { fail "guest spin not built"; finish; }

cat > "$TMP/t.py" <<'EOF'
import json, os, re, socket, subprocess, sys
from qmp_client import Client
blvm, guest, tmp = sys.argv[1:4]
fails = 0
def check(c, m, detail=""):
    global fails
    if c: print("ok: " + m)
    else: fails += 1; print("FAIL: " + m + (": " + str(detail) if detail != "" else ""))

fifo, sock = tmp + "/ev.fifo", tmp + "/c.sock"
os.mkfifo(fifo)
r = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a read end that does not read
filler = 0
try:
    while True: filler += os.write(r, b"x" * 4096)
except BlockingIOError: pass
room = 8192
os.read(r, room); filler -= room  # a few events fit, then the reader stalls

err = open(tmp + "/err", "w")
p = subprocess.Popen([blvm, "run", "--control=" + sock, "--events=" + fifo, "--timeout=60", guest],
                     stdout=subprocess.DEVNULL, stderr=err)
pairs, answered, c = 2500, 0, None
try:
    c = Client(sock, timeout=10)  # a hang guard: an answer comes in milliseconds or never
    for b in range(0, pairs, 250):
        c.send(b'{"execute": "stop"}\n{"execute": "cont"}\n' * 250)
        answered += sum("return" in m for m in c.replies(500))
    st = c.execute("query-status")
except (socket.timeout, EOFError) as e:
    st = {"error": str(e)}
check(answered == 2 * pairs, "every stop and cont answered while the FIFO's reader stalls", answered)
check(st.get("return", {}).get("status") == "running", "query-status answered", st)
try:
    if c: c.send(b'{"execute": "quit"}\n')
except (OSError, EOFError): pass
try:
    rc = p.wait(20)
except subprocess.TimeoutExpired:
    p.kill(); rc = p.wait()
    check(False, "blvm ended after quit (it hung and was killed)")
check(rc == 0, "quit: status 0", rc)
err.close()
text = open(tmp + "/err").read()
warn = [l for l in text.splitlines() if "does not keep up" in l]
check(len(warn) == 1, "one warning that events are dropped", text[:500])
m = re.search(r"--events=\S+: (\d+) of (\d+) events were not written", text)
check(m is not None, "the count of events not written is given at the end", text[:500])

data = b""
try:
    while True: data += os.read(r, 65536)
except BlockingIOError: pass
os.close(r)
check(data[:filler] == b"x" * filler, "the FIFO's old bytes first")
lines = data[filler:].split(b"\n")
check(lines[-1] == b"", "the FIFO ends with a whole line", lines[-1][:80])
evs = []
for l in lines[:-1]:
    try: evs.append(json.loads(l)["event"])
    except (ValueError, KeyError): check(False, "a line in the FIFO is an event", l[:80])
check(0 < len(evs) < 2 * pairs, "some events were written, not all", len(evs))
check(evs[:2] == ["STOP", "RESUME"], "the first events in order", evs[:2])
if m:
    dropped, total = int(m.group(1)), int(m.group(2))
    check(total == 2 * pairs + 1, "events emitted: 2 per stop/cont pair + SHUTDOWN", total)
    check(len(evs) + dropped == total, "lines written + not written = emitted", (len(evs), dropped, total))
sys.exit(1 if fails else 0)
EOF
timeout 120 python3 "$TMP/t.py" "$BLVM" "$GUESTS/spin" "$TMP" || failures=$((failures+1))
finish
