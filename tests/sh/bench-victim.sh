# The benchmark's victim program (bench/victim.c), not its timing: its interleaved-pairs mode stops
# and continues a storm's process group and leaves it running, refuses a storm that is gone
# (status 3), and rejects bad arguments (status 2). bench/victim.sh relies on all three.
. "$(dirname "$0")/../lib.sh"
V="$TOP/$BUILD/bench/victim"
[ -x "$V" ] || { fail "$V not built"; finish; }
command -v setsid >/dev/null || skip "setsid (util-linux) missing"

# A storm in its own session and process group (setsid: pgid = its pid); --aligned: no bus lock.
setsid "$V" --storm --aligned --core=0 --seconds=60 >"$TMP/storm.out" 2>&1 &
sp=$!
sleep 0.2
line=$("$V" --core=0 --mib=4 --passes=2 --pairs=6 --pair-with=$sp 2>"$TMP/err"); rc=$?
if [ $rc -eq 0 ] && grep -Eq '^victim: pairs=6 alone_ms=[0-9.]+ storm_ms=[0-9.]+ ratio=[0-9.]+ q1=[0-9.]+ q3=[0-9.]+ passes=2 mib=4 core=0 kind=rmw$' <<<"$line"; then
	ok "pairs: one line with the medians and the ratio's quartiles"
else
	fail "pairs: status $rc, line '$line', stderr $(cat "$TMP/err")"
fi
# Left running: its state is R or S, not T (stopped).
st=$(awk '{ print $3 }' "/proc/$sp/stat" 2>/dev/null)
case $st in R|S) ok "pairs: the storm is left running (state $st)";; *) fail "pairs: storm state '$st' after the victim";; esac
kill -TERM $sp; wait $sp 2>/dev/null
grep -q "^storm: locks=" "$TMP/storm.out" && ok "the storm ended on SIGTERM and reported" || fail "storm output: $(cat "$TMP/storm.out")"

# The storm is gone: status 3 and a message, not a hang.
"$V" --core=0 --mib=4 --passes=1 --pairs=2 --pair-with=$sp >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 3 ] && grep -q "the storm (process group $sp) is gone" "$TMP/err" && ok "a vanished storm: status 3, says so" ||
	fail "vanished storm: status $rc, $(cat "$TMP/err")"

"$V" --pair-with=banana >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q "unknown argument '--pair-with=banana'" "$TMP/err" && ok "bad --pair-with: status 2" ||
	fail "bad --pair-with: status $rc, $(cat "$TMP/err")"
finish
