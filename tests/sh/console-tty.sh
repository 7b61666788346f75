# The console on a terminal (src/dev/console.c), driven through a pseudo-terminal as a user's shell
# would run blvm: while the guest runs the terminal is raw (no echo, no line editing, no signal keys),
# typed bytes reach the guest one by one, Ctrl-A Ctrl-A sends one Ctrl-A, Ctrl-A x ends the VM with
# status 0 and says so on stderr, and afterwards the terminal's settings are exactly what they were
# (also when the VM ends by --timeout, SIGTERM or SIGHUP).
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip "python3 is needed for the pseudo-terminal"
python3 - "$BLVM" "$GUESTS/echo" "$TMP" <<'PY'
import fcntl, os, select, subprocess, sys, termios, time
blvm, guest, tmp = sys.argv[1:4]
fails = 0
def check(c, what):
    global fails
    print(("ok: " if c else "FAIL: ") + what)
    fails += 0 if c else 1

master, slave = os.openpty()
before = termios.tcgetattr(slave)
err = open(os.path.join(tmp, "err"), "w")
def ctty():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
p = subprocess.Popen([blvm, "run", "--timeout=60", guest], stdin=slave, stdout=slave, stderr=err,
                     start_new_session=True, preexec_fn=ctty)
out = b""
def read_until(token, secs=20):
    global out
    end = time.time() + secs
    while token not in out and time.time() < end:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
    return token in out

check(read_until(b"echo: ready"), "the guest runs on the terminal")
raw = termios.tcgetattr(slave)
check(not (raw[3] & (termios.ECHO | termios.ICANON | termios.ISIG)), "raw mode while the VM runs (no ECHO, ICANON, ISIG)")
check(raw[1] & termios.OPOST, "output processing kept, as QEMU's stdio")
os.write(master, b"ab\x03")          # Ctrl-C is a byte for the guest, not SIGINT
check(read_until(b"ab\x03"), "typed bytes, Ctrl-C included, reach the guest and come back")
os.write(master, b"\x01\x01")         # Ctrl-A Ctrl-A: one Ctrl-A
check(read_until(b"ab\x03\x01"), "Ctrl-A Ctrl-A sends one Ctrl-A")
os.write(master, b"\x01x")            # Ctrl-A x: quit
try:
    rc = p.wait(timeout=20)
except subprocess.TimeoutExpired:
    p.kill(); rc = None
check(rc == 0, "Ctrl-A x ends the VM with status 0 (status %s)" % rc)
after = termios.tcgetattr(slave)
check(after == before, "the terminal's settings are restored")
err.close()
e = open(os.path.join(tmp, "err")).read()
check("Ctrl-A x" in e, "stderr says why the VM ended: %r" % e.strip())
check(b"\x01x" not in out and out.count(b"\x01") == 1, "the escape itself never reaches the guest")

# Restored on the other ends too: here --timeout while the guest waits for input.
p = subprocess.Popen([blvm, "run", "--timeout=1", guest], stdin=slave, stdout=slave, stderr=subprocess.DEVNULL,
                     start_new_session=True, preexec_fn=ctty)
try:
    rc = p.wait(timeout=20)
except subprocess.TimeoutExpired:
    p.kill(); rc = None
check(rc == 124, "--timeout on a terminal: status 124 (status %s)" % rc)
check(termios.tcgetattr(slave) == before, "the terminal's settings are restored after a timeout")

# And on a stop signal (SIGTERM from kill(1), SIGHUP when the terminal's session ends): sent once the
# terminal is raw, the VM stops, blvm exits 128 + N and the settings are back as they were.
import signal
for sig in (signal.SIGTERM, signal.SIGHUP):
    name = signal.Signals(sig).name
    out = b""
    p = subprocess.Popen([blvm, "run", "--timeout=60", guest], stdin=slave, stdout=slave, stderr=subprocess.DEVNULL,
                         start_new_session=True, preexec_fn=ctty)
    check(read_until(b"echo: ready"), "%s: the guest runs on the terminal" % name)
    # the guest's output may come before blvm has made the terminal raw: wait for raw mode (5 s at most),
    # so that the check below sees a restore and not settings never changed
    end = time.time() + 5
    while termios.tcgetattr(slave)[3] & (termios.ECHO | termios.ICANON | termios.ISIG) and time.time() < end:
        time.sleep(0.02)
    raw = termios.tcgetattr(slave)
    check(not (raw[3] & (termios.ECHO | termios.ICANON | termios.ISIG)), "%s: raw mode before the signal" % name)
    os.kill(p.pid, sig)
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill(); rc = None
    check(rc == 128 + sig, "%s: status %s, want %d" % (name, rc, 128 + sig))
    check(termios.tcgetattr(slave) == before, "%s: the terminal's settings are restored" % name)
sys.exit(1 if fails else 0)
PY
rc=$?
[ $rc -eq 0 ] && ok "console on a terminal" || fail "console on a terminal"
finish
