# SIGINT, SIGTERM, SIGHUP and SIGQUIT end a run cleanly (docs/DESIGN.md "Operating blvm"): the vCPUs stop,
# the summary is printed, the --stats file is complete, valid JSON with end "signal", and blvm exits
# 128 + N. Then 100 signals (30 outside TSan) at random moments, from just after blvm has blocked them (before the kernel
# is loaded) to after the guest has ended by itself: every run ends cleanly, with status 128 + N and a
# "signal" record, or the guest's own 0 and its record; never a crash, a hang or an empty stats file.
# (`make check SAN=thread TESTS=sh/signals` runs it under ThreadSanitizer with the issue's 100 random
# signals, ~5 min; `make test`'s TSan pass runs it with SIGNAL_RUNS=10, Makefile TSAN_TESTS.)
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip "python3 is needed to check the --stats JSON"
for g in spin smp-storm; do [ -f "$GUESTS/$g" ] || { fail "guest $g not built"; finish; }; done
json() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>&1; }
signum() { kill -l "$1"; }
# start_blvm OUT ERR ARGS...: blvm in the background as $p (signals go to it, not to a wrapper), with
# a guard that kills it after 60 s so that a hang fails the test instead of stalling it. A shell starts
# background jobs with SIGINT and SIGQUIT ignored, and blvm leaves an ignored signal ignored (as
# nohup(1) expects): env(1) sets them back to their default first.
start_blvm() {
	local out=$1 err=$2; shift 2
	env --default-signal=INT,QUIT "$BLVM" run "$@" >"$out" 2>"$err" & p=$!
	guard_start
}
# The guard kills $p only if it is still this blvm (never a process that reused the pid), and
# takes its sleep with it when stopped.
guard_start() {
	( trap 'kill $s 2>/dev/null; exit 0' TERM; sleep 60 & s=$!; wait $s
	  grep -q blvm "/proc/$p/cmdline" 2>/dev/null && kill -KILL $p ) >/dev/null 2>&1 & guard=$!
}
stop_guard() { kill $guard 2>/dev/null; wait $guard 2>/dev/null; }

# wait_for FILE TEXT PID: until FILE contains TEXT (the guest runs), at most 20 s.
wait_for() {
	local i
	for i in $(seq 400); do grep -q "$2" "$1" 2>/dev/null && return 0; kill -0 "$3" 2>/dev/null || return 1; sleep 0.05; done
	return 1
}
# wait_blocked PID: until blvm has blocked the stop signals: its main thread's SigBlk has all four of
# SIGHUP, SIGINT, SIGQUIT and SIGTERM (bits 0, 1, 2, 14), so that a signal from now on is blvm's to
# handle and not the default action's. SIGINT alone is not enough: bash's make_child() blocks SIGINT,
# SIGTERM and SIGCHLD around fork(), so the child shows them blocked for a moment before it restores
# its mask and execs env and then blvm. A signal sent on that sign reached a process that had not
# yet blocked anything: under TSan blvm takes ~150 ms to reach main(), and 2 of 100 random runs died
# by the default action (status 131, 129, no stats). Neither bash nor env blocks SIGHUP or SIGQUIT.
wait_blocked() {
	local k v
	while kill -0 "$1" 2>/dev/null; do
		while read -r k v; do
			[ "$k" = SigBlk: ] && (( (16#$v & 0x4007) == 0x4007 )) && return 0
		done < "/proc/$1/status" 2>/dev/null
	done
	return 1
}

# --- each signal, one vCPU spinning forever, then two vCPUs storming under --bus-lock=log ---------
for s in INT TERM HUP QUIT; do
	n=$(signum $s); want=$((128 + n))
	start_blvm "$TMP/out" "$TMP/err" --stats="$TMP/s.json" "$GUESTS/spin"
	wait_for "$TMP/out" spinning $p || fail "SIG$s: the guest did not start"
	kill -$s $p; wait $p; rc=$?; stop_guard
	[ $rc -eq $want ] && ok "spin, SIG$s: status $rc (128+$n)" || fail "spin, SIG$s: status $rc, want $want"
	grep -q "^blvm: SIG$s received; the VM stopped" "$TMP/err" && ok "spin, SIG$s: stderr says so" || fail "spin, SIG$s: stderr: $(cat "$TMP/err")"
	[ "$(json "$TMP/s.json" 's["end"], s["exit_code"], len(s["vcpus"]), s["instructions"] > 0')" = "('signal', $want, 1, True)" ] &&
		ok "spin, SIG$s: stats complete (end signal, exit_code $want)" || fail "spin, SIG$s: stats: $(head -c 200 "$TMP/s.json")"
	rm -f "$TMP/s.json"

	start_blvm "$TMP/out" "$TMP/err" --vcpus=2 --bus-lock=log --stats="$TMP/m.json" "$GUESTS/smp-storm" -- 1000M
	wait_for "$TMP/out" "storming" $p || fail "SIG$s: smp-storm did not start"
	sleep 0.2
	kill -$s $p; wait $p; rc=$?; stop_guard
	[ $rc -eq $want ] && ok "smp-storm x2, SIG$s: status $rc" || fail "smp-storm x2, SIG$s: status $rc, want $want"
	grep -q "^blvm: --bus-lock=log: [0-9]* bus locks in" "$TMP/err" && grep -Eq "^blvm: by vCPU: [01]: [0-9]+, [01]: [0-9]+$" "$TMP/err" &&
		ok "smp-storm x2, SIG$s: summary printed" || fail "smp-storm x2, SIG$s: no summary: $(cat "$TMP/err")"
	[ "$(json "$TMP/m.json" 's["end"], s["exit_code"], len(s["vcpus"]), s["bus_locks"]["total"] > 0 and s["bus_locks"]["total"] == sum(v["bus_locks"] for v in s["vcpus"])')" = "('signal', $want, 2, True)" ] &&
		ok "smp-storm x2, SIG$s: stats complete, per-vCPU bus locks add up" || fail "smp-storm x2, SIG$s: stats: $(head -c 300 "$TMP/m.json")"
	rm -f "$TMP/m.json"
done

# --- a second signal: within a second of the first it is the same request (timeout(1) sends its
# signal to the command and again to its process group): the stop stays clean; the run is wrapped in
# timeout(1) itself, whose expiry must leave a complete record.
mkdir "$TMP/d"
timeout --preserve-status -s TERM 0.5 "$BLVM" run --stats="$TMP/d/s.json" "$GUESTS/spin" >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 143 ] && [ "$(json "$TMP/d/s.json" 's["end"], s["exit_code"]')" = "('signal', 143)" ] &&
	ok "timeout(1) expiry (SIGTERM twice): status 143, stats complete" || fail "timeout(1) expiry: status $rc: $(cat "$TMP/err")"
start_blvm "$TMP/out" "$TMP/err" --stats="$TMP/d/s.json" "$GUESTS/spin"
wait_for "$TMP/out" spinning $p
kill -INT $p; kill -INT $p; wait $p; rc=$?; stop_guard
[ $rc -eq 130 ] && [ "$(json "$TMP/d/s.json" 's["end"], s["exit_code"]')" = "('signal', 130)" ] &&
	ok "two SIGINTs at once: status 130, stats complete" || fail "two SIGINTs at once: status $rc: $(cat "$TMP/err")"
left=$(ls -A "$TMP/d" | grep -v -x s.json)
[ -z "$left" ] && ok "no temporary file left" || fail "left behind: $left"

# --- a signal while the console output blocks (stdout a FIFO whose reader never reads): the VM ends
# cleanly if it can; if a vCPU is stuck in the write, a second signal a second later exits at once,
# status 143, the stats target left as it was (absent here) and no temporary file behind.
mkfifo "$TMP/cons"
sleep 60 <"$TMP/cons" & reader=$!
start_blvm "$TMP/cons" "$TMP/err" --stats="$TMP/d/b.json" "$GUESTS/flood" -- 1000000000
sleep 1; kill -TERM $p
for i in $(seq 30); do kill -0 $p 2>/dev/null || break; sleep 0.05; done
if kill -0 $p 2>/dev/null; then
	sleep 1; kill -TERM $p; t0=$SECONDS; wait $p; rc=$?
	[ $rc -eq 143 ] && [ $((SECONDS - t0)) -le 5 ] && [ ! -e "$TMP/d/b.json" ] &&
		ok "blocked output: a second SIGTERM exits at once (143), stats target untouched" ||
		fail "blocked output: second SIGTERM: status $rc after $((SECONDS - t0)) s: $(cat "$TMP/err")"
	grep -q "^blvm: SIGTERM again while stopping: exiting at once" "$TMP/err" && ok "blocked output: stderr says so" ||
		fail "blocked output: stderr: $(cat "$TMP/err")"
else
	wait $p; rc=$?
	[ $rc -eq 143 ] && [ "$(json "$TMP/d/b.json" 's["end"]')" = signal ] && ok "blocked output: the first SIGTERM ended the VM cleanly" ||
		fail "blocked output: status $rc: $(cat "$TMP/err")"
fi
stop_guard; kill $reader 2>/dev/null; wait $reader 2>/dev/null
left=$(ls -A "$TMP/d" | grep -v -x -e s.json -e b.json)
[ -z "$left" ] && ok "blocked output: no temporary file left" || fail "blocked output: left behind: $left"

# --- an ignored signal stays ignored (nohup): SIGHUP does not stop the run, SIGTERM still does -------
env --ignore-signal=HUP "$BLVM" run --stats="$TMP/d/s.json" "$GUESTS/spin" >"$TMP/out" 2>"$TMP/err" & p=$!
guard_start
wait_for "$TMP/out" spinning $p
kill -HUP $p; sleep 0.3
if kill -0 $p 2>/dev/null; then ok "SIGHUP ignored by the caller: the run goes on"; else fail "SIGHUP ignored by the caller stopped the run"; fi
kill -TERM $p; wait $p; rc=$?; stop_guard
[ $rc -eq 143 ] && ok "then SIGTERM: status 143" || fail "ignored HUP, then TERM: status $rc"

# --- 100 signals at random moments --------------------------------------------------------------
# The guest: two vCPUs, 20000 bus locks each under log, ending by itself. The range of delays is the
# time from the moment the loop below starts its clock (blvm has blocked the signals) to the guest's
# own end, measured the same way, so that a slow build (e.g. under TSan) or a slow machine is covered
# alike; the process start before that moment does not count (with the whole run's duration as the
# range, most delays fell after the end and a CI run saw 0 of 30 signals land).
start_blvm /dev/null /dev/null --vcpus=2 --bus-lock=log --quiet "$GUESTS/smp-storm" -- 20000
wait_blocked $p; t0=$(date +%s%N); wait $p; stop_guard
dur_ms=$(( ($(date +%s%N) - t0) / 1000000 )); [ $dur_ms -lt 20 ] && dur_ms=20
echo "note: the guest runs $dur_ms ms after blvm blocks the signals; delays from 0 to $dur_ms ms"
# 100 runs under ThreadSanitizer (`make check SAN=thread`), where races would show; 30 in the plain
# pass and 10 under ASan+UBSan (the signal paths' memory use, not their timing) to keep the suite
# short; SIGNAL_RUNS=N overrides.
default_runs=30; [ "${SAN:-}" = thread ] && default_runs=100; [ "${SAN:-}" = 1 ] && default_runs=10
sigs=(INT TERM HUP QUIT) runs=${SIGNAL_RUNS:-$default_runs} by_signal=0 by_guest=0 bad=0
# ASan builds: no leak check at exit in these runs. A signal that lands after the guest's own end,
# while LeakSanitizer checks at exit, can hang that check for good (tests/sh/control.sh); every
# other test keeps the leak check.
[ "${SAN:-}" = 1 ] && export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
for i in $(seq $runs); do
	s=${sigs[$((RANDOM % 4))]}; n=$(signum $s)
	delay_us=$(( RANDOM * 32768 + RANDOM )); delay_us=$(( delay_us % (dur_ms * 1000 + 1) ))
	rm -f "$TMP/r.json"
	start_blvm "$TMP/out" "$TMP/err" --vcpus=2 --bus-lock=log --quiet --stats="$TMP/r.json" "$GUESTS/smp-storm" -- 20000
	wait_blocked $p
	sleep "$(printf '%d.%06d' $((delay_us / 1000000)) $((delay_us % 1000000)))"
	kill -$s $p 2>/dev/null; wait $p; rc=$?; stop_guard
	rec=$(json "$TMP/r.json" 's["end"], s["exit_code"]')
	if [ $rc -eq $((128 + n)) ] && [ "$rec" = "('signal', $rc)" ]; then by_signal=$((by_signal + 1))
	elif [ $rc -eq 0 ] && [ "$rec" = "('guest_exit', 0)" ]; then by_guest=$((by_guest + 1))
	else bad=$((bad + 1)); echo "  run $i: SIG$s after ${delay_us} us: status $rc, stats $rec: $(head -3 "$TMP/err")"; fi
done
[ $bad -eq 0 ] && ok "$runs random signals: $by_signal ended by the signal, $by_guest by the guest first, all clean" ||
	fail "$runs random signals: $bad unclean ends ($by_signal by signal, $by_guest by guest)"
[ $by_signal -gt 0 ] && ok "some signals landed while the VM ran" || fail "no signal landed during a run: delays too long?"
finish
