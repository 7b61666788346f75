# The script tests' one client for blvm's control socket (--control: QMP's wire format, QEMU's
# docs/interop/qmp-spec.rst), and for QEMU's own QMP server where a test compares the two.
# tests/lib.sh puts this directory on PYTHONPATH: a test's Python says `from qmp_client import Client`.
#
# Every wait has a deadline, so a server that stops answering fails the test instead of hanging it:
# a read that waits longer than the client's timeout raises socket.timeout (an OSError), a closed
# (or reset) connection raises EOFError; wait_event() gives None in both cases (the event did not come).
import json, socket, time


class QMPError(Exception):
    """A reply other than the one the request must get: a refused negotiation, an error where
    result() wanted a return."""


def connect(path, deadline):
    """A stream socket connected to the Unix socket at path, tried every 50 ms until deadline (a
    time.monotonic() value): the server creates the socket as it starts."""
    while True:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            return s
        except OSError as e:
            s.close()
            if time.monotonic() >= deadline:
                raise OSError(e.errno, "%s: no QMP server accepts connections here (%s)" % (path, e.strerror))
        time.sleep(0.05)


class Client:
    """One QMP connection. greeting: the server's first message; events: the events received while
    waiting for something else, oldest first, until wait_event() takes them."""

    def __init__(self, path, negotiate=True, connect_timeout=10, timeout=20):
        """Connects to path (trying for connect_timeout seconds), reads the greeting and, with
        negotiate, leaves capabilities negotiation mode with qmp_capabilities (qmp-spec.rst,
        "Capabilities Negotiation"), whose reply must be {"return": {}} with the id echoed.
        timeout: the longest wait for any one message."""
        self.timeout = timeout
        self.buf = b""
        self.events = []
        self.replies_aside = []  # replies read while wait_event() waited, for reply() to return
        self.s = connect(path, time.monotonic() + connect_timeout)
        self.s.settimeout(timeout)
        self.greeting = self.msg()
        if negotiate:
            r = self.execute("qmp_capabilities")
            if r != {"return": {}, "id": "qmp_capabilities"}:
                raise QMPError("qmp_capabilities: %s" % r)

    def msg(self):
        """The next message, a reply or an event, as it arrives: the server ends each JSON object
        with CRLF (qmp-spec.rst, "General Definitions")."""
        while b"\r\n" not in self.buf:
            try:
                d = self.s.recv(65536)
            except ConnectionResetError:  # closed with a request of ours unread
                d = b""
            if not d:
                raise EOFError("connection closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return json.loads(line)

    def reply(self):
        """The next reply ("return" or "error"); the events before it go to self.events."""
        if self.replies_aside:
            return self.replies_aside.pop(0)
        while True:
            m = self.msg()
            if "event" in m:
                self.events.append(m)
            else:
                return m

    def replies(self, n):
        """The next n replies, in order (for requests sent together with send())."""
        return [self.reply() for _ in range(n)]

    def send(self, raw):
        """Writes raw bytes as they are: malformed, split or several requests in one write."""
        try:
            self.s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            raise EOFError("connection closed") from None

    def execute(self, name, args=None, id=None):
        """Runs command name with args (a dict, left out if None) and returns its reply; the id is
        name unless given (any JSON value: the server echoes it)."""
        req = {"execute": name, "id": id if id is not None else name}
        if args is not None:
            req["arguments"] = args
        self.send(json.dumps(req).encode() + b"\n")
        return self.reply()

    def result(self, name, args=None):
        """The "return" value of command name; QMPError if the reply is an error."""
        r = self.execute(name, args)
        if "return" not in r:
            raise QMPError("%s: %s" % (name, r))
        return r["return"]

    def wait_event(self, name, timeout=15):
        """The oldest event called name not taken yet (from self.events, or read within timeout
        seconds); None if none comes in time or the connection ends first."""
        end = time.monotonic() + timeout
        try:
            while True:
                for i, e in enumerate(self.events):
                    if e["event"] == name:
                        return self.events.pop(i)
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.s.settimeout(max(0.1, left))
                m = self.msg()
                (self.events if "event" in m else self.replies_aside).append(m)
        except (socket.timeout, EOFError):
            return None
        finally:
            self.s.settimeout(self.timeout)

    def close(self):
        self.s.close()
