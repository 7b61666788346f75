# COM1 and its console (src/dev/uart.c, console.c) on a guest: a line piped in reaches a guest that
# echoes it, and 50 000 bytes (far more than the FIFO and the host buffer) arrive in order with none lost
# (flow control); EOF on stdin ends nothing; wide port writes past COM1's last register do not wrap
# into THR (they go where those ports go: unclaimed); --timeout holds while stdout is blocked; a stdout
# that cannot be written ends the VM with status 122. The echo
# guest under QEMU, the peer, behaves the same.
. "$(dirname "$0")/../lib.sh"
engines="emu"
if kvm_usable; then engines="emu kvm"; else echo "note: /dev/kvm not usable here: kvm engine checks skipped"; fi
command -v python3 >/dev/null || skip "python3 is needed"
have_qemu=false
command -v qemu-system-x86_64 >/dev/null && have_qemu=true

json() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

for e in $engines; do
	# Console input: a line typed in is echoed back.
	printf 'hello\nworld\n\004' | "$BLVM" run --engine=$e "$GUESTS/echo" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	[ $rc -eq 0 ] && [ "$(cat "$TMP/out")" = "$(printf 'echo: ready\nhello\nworld\n\necho: 12 bytes')" ] &&
		ok "$e: stdin reaches the guest and comes back" || fail "$e: echo: status $rc, output $(head -c 200 "$TMP/out")"

	# 50 000 bytes, far more than the receive FIFO (16) and the host buffer (4096): none lost.
	n=50000; [ $e = kvm ] && n=300
	python3 -c "import sys,random; r=random.Random(7); sys.stdout.write(''.join(chr(r.randrange(32,127)) for _ in range($n)) + '\x04')" >"$TMP/in"
	"$BLVM" run --engine=$e "$GUESTS/echo" <"$TMP/in" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	python3 - "$TMP/in" "$TMP/out" $n <<'PY' && [ $rc -eq 0 ] && ok "$e: $n piped bytes echoed in order, none lost" || fail "$e: piped input: status $rc"
import sys
i = open(sys.argv[1], 'rb').read()[:-1]
o = open(sys.argv[2], 'rb').read()
want = b"echo: ready\n" + i + b"\necho: %d bytes\n" % int(sys.argv[3])
sys.exit(0 if o == want else 1)
PY

	# Input that ends (EOF) is no more input, nothing else: the guest runs on (here until --timeout).
	expect_status 124 "$e: EOF on stdin does not end the VM" -- "$BLVM" run --engine=$e --timeout=1 "$GUESTS/echo" </dev/null

	# Wide writes past COM1's end go where those ports go (unclaimed), not round into THR.
	expect_status 0 "$e: wide port accesses past COM1" -- "$BLVM" run --engine=$e --stats="$TMP/w.json" "$GUESTS/uart-wide"
	[ "$(cat "$TMP/out")" = "$(printf 'uart-wide: start\n\nscr 0x42 0x46, inl(0x3fe) 0xffff46b0\nuart-wide: ok')" ] &&
		ok "$e: nothing wrapped into THR" || fail "$e: uart-wide printed: $(cat -A "$TMP/out" | head -5)"
	[ "$(json "$TMP/w.json" 's["unclaimed"]["port_writes"], s["unclaimed"]["port_reads"]')" = "(2, 1)" ] &&
		ok "$e: the bytes past COM1 counted as unclaimed" || fail "$e: unclaimed $(json "$TMP/w.json" 's["unclaimed"]')"

done

# --timeout holds while stdout is blocked: the reader of the pipe sleeps, blvm must end at its
# timeout with status 124 (timeout -s KILL would make it 137) and the stats written.
( timeout -s KILL 8 "$BLVM" run --timeout=2 --stats="$TMP/b.json" "$GUESTS/flood" -- 100000000 2>"$TMP/err"; echo $? >"$TMP/rc" ) | sleep 10
[ "$(cat "$TMP/rc")" = 124 ] && ok "--timeout ends the VM while stdout is blocked (status 124)" || fail "blocked stdout: status $(cat "$TMP/rc")"
[ "$(json "$TMP/b.json" 's["end"], s["console_bytes"] > 0')" = "('timeout', True)" ] &&
	ok "--stats after a blocked stdout, console_bytes counted" || fail "blocked stdout stats: $(cat "$TMP/b.json" | head -12)"
# Under a sanitizer the guest may not fill the pipe (64 KiB) and the buffer (64 KiB) in 2 s: say so.
[ "$(json "$TMP/b.json" 's["console_bytes"] > 131072')" = True ] && ok "stdout was blocked (the guest wrote more than it could take)" ||
	echo "note: the guest wrote $(json "$TMP/b.json" 's["console_bytes"]') bytes in 2 s: stdout never blocked in this run"

# A stdout that cannot be written (ENOSPC) ends the VM through blvm_console_failed: status 122,
# the reason on stderr, the stats written. Nothing is silently lost with status 0.
expect_status 122 "console output to /dev/full" -- sh -c '"$0" run --stats="$1" "$2" >/dev/full' "$BLVM" "$TMP/f.json" "$GUESTS/flood"
expect_stderr "^blvm: cannot write the guest's console to stdout: No space left on device; ending the VM [(]output was lost[)]\$" "/dev/full"
[ "$(json "$TMP/f.json" 's["end"], s["exit_code"]')" = "('console_error', 122)" ] && ok "--stats end console_error" ||
	fail "/dev/full stats: $(json "$TMP/f.json" 's["end"], s["exit_code"]')"

if $have_qemu; then
	printf 'hello\nworld\n\004' | qemu_run "$GUESTS/echo" >"$TMP/q" 2>/dev/null
	[ "$(cat "$TMP/q")" = "$(printf 'echo: ready\nhello\nworld\n\necho: 12 bytes')" ] && ok "qemu: echo the same" || fail "qemu: echo $(cat "$TMP/q")"
else
	echo "note: qemu-system-x86_64 not installed: the QEMU side skipped"
fi
finish
