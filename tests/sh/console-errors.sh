# Console output that cannot be written ends the VM cleanly, never silently: stdout on a full device,
# stdout closed, a reader that goes away (EPIPE; SIGPIPE is ignored, so it does not kill blvm). Each
# ends with status 122 (BLVM_STATUS_CONSOLE_FAILED), one line on stderr naming the error, and a
# complete --stats file with end "console_error". Scratch device nodes only (mknod in $TMP).
. "$(dirname "$0")/../lib.sh"
F="$GUESTS/flood"
[ -f "$F" ] || { fail "guest $F not built"; finish; }
command -v python3 >/dev/null || skip "python3 is needed to check the --stats JSON"
[ "$(id -u)" -eq 0 ] || skip "mknod needs root"
mknod "$TMP/full" c 1 7
json() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
check_stats() { # check_stats FILE WHAT ERRNO-TEXT
	if [ "$(json "$1" 's["end"], s["exit_code"], s["console_error"]' 2>&1)" = "('console_error', 122, '$3')" ]; then
		ok "$2: stats complete, end console_error, console_error '$3'"
	else fail "$2: stats: $(head -c 300 "$1")"; fi
}

# stdout on a full device: the first flushed line fails with ENOSPC.
timeout 20 "$BLVM" run --stats="$TMP/full.json" "$F" >"$TMP/full" 2>"$TMP/err"; rc=$?
[ $rc -eq 122 ] && ok "stdout full: status 122" || fail "stdout full: status $rc, want 122"
expect_stderr "^blvm: cannot write the guest's console to stdout: No space left on device" "stdout full"
check_stats "$TMP/full.json" "stdout full" "No space left on device"

# stdout closed by whoever started blvm: the console must not land in the stats file (descriptor 1
# would be the first free one), and the write error ends the VM.
timeout 20 "$BLVM" run --stats="$TMP/closed.json" "$GUESTS/hello" >&- 2>"$TMP/err"; rc=$?
[ $rc -eq 122 ] && ok "stdout closed: status 122" || fail "stdout closed: status $rc, want 122"
expect_stderr "^blvm: cannot write the guest's console to stdout: Bad file descriptor" "stdout closed"
check_stats "$TMP/closed.json" "stdout closed" "Bad file descriptor"

# A reader that leaves after 10 bytes: EPIPE, not a silent death by SIGPIPE (status 141, empty stats).
timeout 20 "$BLVM" run --stats="$TMP/pipe.json" "$F" 2>"$TMP/err" | head -c 10 >"$TMP/out"
rc=${PIPESTATUS[0]}
[ $rc -eq 122 ] && ok "reader gone: status 122" || fail "reader gone: status $rc, want 122"
expect_stderr "^blvm: cannot write the guest's console to stdout: Broken pipe" "reader gone"
check_stats "$TMP/pipe.json" "reader gone" "Broken pipe"
[ "$(wc -c < "$TMP/out")" -eq 10 ] && ok "the reader got its 10 bytes" || fail "reader got $(wc -c < "$TMP/out") bytes"

# The guest's last bytes, a line without newline, fail only at the final flush, after the guest
# has exited with 0: the loss must not hide behind the guest's status.
timeout 20 "$BLVM" run --stats="$TMP/last.json" "$GUESTS/partial-line" >"$TMP/full" 2>"$TMP/err"; rc=$?
[ $rc -eq 122 ] && ok "last partial line lost: status 122, not the guest's 0" || fail "last line: status $rc, want 122: $(cat "$TMP/err")"
expect_stderr "^blvm: cannot write the guest's console to stdout: No space left on device; output was lost" "last partial line"
check_stats "$TMP/last.json" "last partial line" "No space left on device"
expect_status 0 "partial-line to a file" -- timeout 20 "$BLVM" run "$GUESTS/partial-line"
[ "$(cat "$TMP/out")" = "partial line without newline" ] && ok "partial-line to a file: its bytes, no newline" || fail "partial-line: $(cat "$TMP/out")"

# Control: the same guest to a regular file loses nothing and exits 0.
expect_status 0 "flood to a file" -- timeout 20 "$BLVM" run "$F"
[ "$(grep -c '^line ' "$TMP/out")" -ge 20000 ] && ok "flood to a file: every line" || fail "flood lines: $(grep -c '^line ' "$TMP/out")"
finish
