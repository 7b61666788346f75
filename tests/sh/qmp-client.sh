# The script tests' QMP client (tests/lib/qmp_client.py) against a scripted server whose every byte
# the test chooses, for what blvm's socket never does on purpose: a socket that appears late, a
# server that never greets, closes, refuses qmp_capabilities, sends events between and around the
# replies (in pieces, several in one write), or a reply while the client waits for an event. The
# oracle: the bytes the server received (each request one JSON object on one line, as sent) and the
# messages the client hands back, in order; every wait ends at its deadline with the error the
# module promises, never a hang (the outer timeout). ~2 s on an idle host.
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip "python3 is needed for the test client"

cat > "$TMP/t.py" <<'EOF'
import json, os, select, socket, sys, threading, time
from qmp_client import Client, QMPError
tmp = sys.argv[1]
fails = 0
def check(c, m, detail=""):
    global fails
    if c: print("ok: " + m)
    else: fails += 1; print("FAIL: " + m + (": " + str(detail) if detail != "" else ""))

G = b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 8}, "package": "t"}, "capabilities": []}}\r\n'
OK = b'{"return": {}, "id": "qmp_capabilities"}\r\n'
n = 0
def server(script, delay=0):
    """A one-connection server at a new path, listening after delay seconds; script(conn, lines)
    talks to the client (lines() returns the next request lines received). Returns the path and the
    list the received lines go to."""
    global n
    n += 1
    path, got = "%s/s%d" % (tmp, n), []
    def run():
        time.sleep(delay)
        srv = socket.socket(socket.AF_UNIX); srv.bind(path); srv.listen(1)
        c, _ = srv.accept()
        buf = [b""]
        def lines(k=1):
            while buf[0].count(b"\n") < k:
                d = c.recv(65536)
                if not d: break
                buf[0] += d
            *ls, buf[0] = buf[0].split(b"\n")
            got.extend(ls)
            return ls
        script(c, lines)
        time.sleep(2)  # holds the connection open (until the client is done with it)
        c.close(); srv.close()
    threading.Thread(target=run, daemon=True).start()
    return path, got

# no socket there: one OSError naming the path, after the deadline
path = tmp + "/none"
t = time.monotonic()
try: Client(path, connect_timeout=0.3); r = "connected"
except OSError as e: r = str(e)
check(path in r and "no QMP server" in r and time.monotonic() - t >= 0.3,
      "nothing at the path: OSError naming it, once the connect deadline has passed", r)

# the socket appears 0.3 s late: the client keeps trying within its deadline
path, got = server(lambda c, lines: (c.sendall(G), lines(), c.sendall(OK)), delay=0.3)
a = Client(path, connect_timeout=20)
check(a.greeting == json.loads(G) and [json.loads(l) for l in got] == [{"execute": "qmp_capabilities", "id": "qmp_capabilities"}],
      "a socket that appears late: connected, greeting kept, qmp_capabilities sent as one line", (a.greeting, got))
a.close()

# a server that accepts and never greets: socket.timeout after the client's timeout
path, _ = server(lambda c, lines: None)
t = time.monotonic()
try: Client(path, timeout=0.5); r = "greeted"
except socket.timeout: r = "timeout"
check(r == "timeout" and time.monotonic() - t >= 0.5, "no greeting: socket.timeout at the client's timeout", r)

# closed after the greeting with qmp_capabilities unread (the client's read fails with ECONNRESET): EOFError
path, _ = server(lambda c, lines: (c.sendall(G), select.select([c], [], [], 10), c.close()))
try: Client(path); r = "negotiated"
except EOFError: r = "EOFError"
check(r == "EOFError", "closed before negotiating: EOFError", r)

# qmp_capabilities refused: QMPError with the reply
path, _ = server(lambda c, lines: (c.sendall(G), lines(),
                                   c.sendall(b'{"error": {"class": "GenericError", "desc": "no"}, "id": "qmp_capabilities"}\r\n')))
try: Client(path); r = "negotiated"
except QMPError as e: r = str(e)
check("GenericError" in r, "qmp_capabilities refused: QMPError with the reply", r)

# events around replies, messages split and batched, a reply nobody waits for
def talk(c, lines):
    c.sendall(G[:10]); time.sleep(0.05); c.sendall(G[10:])
    lines()
    c.sendall(b'{"event": "A", "data": {"i": 1}, "timestamp": {"seconds": 1, "microseconds": 0}}\r\n' + OK[:7])
    time.sleep(0.05); c.sendall(OK[7:])
    lines()  # query-status
    c.sendall(b'{"event": "B", "timestamp": {}}\r\n{"event": "A", "data": {"i": 2}, "timestamp": {}}\r\n'
              b'{"return": {"status": "running"}, "id": "query-status"}\r\n')
    lines()  # set-x
    c.sendall(b'{"error": {"class": "GenericError", "desc": "bad"}, "id": "set-x"}\r\n')
    lines(2)  # two raw requests in one write
    c.sendall(b'{"return": 1, "id": 1}\r\n{"event": "C", "timestamp": {}}\r\n{"return": 2, "id": 2}\r\n')
    lines()  # id 3, answered before the event the client waits for
    c.sendall(b'{"return": 3, "id": 3}\r\n{"event": "D", "timestamp": {}}\r\n')
    lines()  # the client's last line: the server closes
    c.close()
path, got = server(talk)
a = Client(path)
check([e["event"] for e in a.events] == ["A"], "an event before the negotiation reply is kept aside", a.events)
r = a.result("query-status")
check(r == {"status": "running"} and [e["event"] for e in a.events] == ["A", "B", "A"],
      "result(): the return; the events before it kept, in order", (r, a.events))
try: a.result("set-x", {"v": "1"}); r = "returned"
except QMPError as e: r = str(e)
check("set-x" in r and "bad" in r, "result() of an error: QMPError", r)
a.send(b'{"execute": "one", "id": 1}\n{"execute": "two", "id": 2}\n')
r = a.replies(2)
check([m["return"] for m in r] == [1, 2], "two requests in one write: replies(2) in order, the event between kept aside", r)
e = a.wait_event("A")
check(e and e["data"] == {"i": 1} and a.wait_event("A")["data"] == {"i": 2} and a.wait_event("C") is not None,
      "wait_event: the oldest event of the name, taken once", a.events)
a.send(b'{"execute": "three", "id": 3}\n')
e = a.wait_event("D")
try: r = a.reply()
except EOFError: r = "EOF: the reply was lost"
check(e is not None and r == {"return": 3, "id": 3}, "a reply read while waiting for an event is the next reply()", r)
check([json.loads(l) for l in got] == [{"execute": "qmp_capabilities", "id": "qmp_capabilities"},
       {"execute": "query-status", "id": "query-status"}, {"execute": "set-x", "id": "set-x", "arguments": {"v": "1"}},
       {"execute": "one", "id": 1}, {"execute": "two", "id": 2}, {"execute": "three", "id": 3}],
      "the server received each request as sent, execute()'s with the name as id", got)
t = time.monotonic()
e = a.wait_event("Z", timeout=0.3)
check(e is None and time.monotonic() - t >= 0.3, "wait_event for an event that does not come: None at its deadline", e)
a.send(b'{"execute": "bye"}\n')  # the server closes; were the end missed, the outer timeout would end this
check(a.wait_event("B") is not None and a.wait_event("Z", timeout=60) is None,
      "after the server closes: the kept events still, then None (EOF)")
try: a.send(b'{"execute": "four"}\n'); a.reply(); r = "answered"
except EOFError: r = "EOFError"
check(r == "EOFError", "a request after the server closed: EOFError", r)
sys.exit(1 if fails else 0)
EOF
timeout 30 python3 "$TMP/t.py" "$TMP" || failures=$((failures+1))
finish
