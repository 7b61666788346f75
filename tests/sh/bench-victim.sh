# The benchmark's victim program (bench/victim.c), not its timing: its interleaved-pairs mode stops
# and continues a storm's process group and leaves it running, refuses a storm that is gone
# (status 3), and rejects bad arguments (status 2). bench/victim.sh relies on all three.
# Also the plotting step of bench/victim-sweep.sh (bench/victim-plot.sh) on canned rows: a well-formed
# SVG with one point per row in each panel, in the order of the rows' slowdowns.
. "$(dirname "$0")/../lib.sh"

PLOT="$TOP/bench/victim-plot.sh"
if ! command -v gnuplot >/dev/null; then
	fail "gnuplot is missing (package gnuplot-nox, scripts/deps.sh): bench/victim-plot.sh cannot draw"
else
	# victim.sh's TSV= lines: row, slowdown, low, high, alone ms, storm ms, bus locks/s. The control,
	# issue 5's ratelimit=1000 (1 s slice) and the 2-vCPU row are not part of the picture.
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"native split-lock storm" 5.05 4.41 5.86 7.03 35.27 1002599 \
		"native aligned lock storm (control)" 1.00 0.96 1.04 5.98 5.95 0 \
		"blvm emu: storm guest, --bus-lock=ratelimit=1000" 0.99 0.95 1.03 6.61 6.54 992 \
		"blvm emu: storm guest, --bus-lock=ratelimit=100/10ms" 1.00 0.97 1.03 6.10 6.10 99 \
		"blvm emu: storm guest, --bus-lock=ratelimit=10000/10ms" 1.03 0.99 1.06 6.00 6.18 9950 \
		"blvm emu: storm guest, --bus-lock=ratelimit=100000/10ms" 1.30 1.20 1.40 6.00 7.80 99000 \
		"blvm emu: storm guest, --bus-lock=ratelimit=300000/10ms" 1.90 1.70 2.10 6.00 11.40 290000 \
		"blvm emu: storm guest, --bus-lock=log" 1.74 1.57 2.08 6.71 12.01 506578 \
		"blvm emu: storm guest, --bus-lock=off" 4.07 3.80 4.63 7.26 29.78 976448 \
		"blvm emu, 2 vCPUs: storm on vCPU 0, off" 3.39 3.17 3.76 6.67 21.82 893216 >"$TMP/rows.tsv"
	"$PLOT" "$TMP/rows.tsv" "$TMP/v.svg" >"$TMP/out" 2>"$TMP/err"; rc=$?
	if [ $rc -eq 0 ] && grep -qx "victim-plot.sh: $TMP/v.svg: 4 rate limits, 2 unlimited rows, native storm: yes" "$TMP/out"; then
		ok "plot: canned rows drawn (4 rate limits, log, off, native)"
	else
		fail "plot: status $rc, $(cat "$TMP/out" "$TMP/err")"
	fi
	# Each plot is a <g id="gnuplot_plot_..."><title>TITLE</title> group; a point is a <use> of a
	# point symbol (white ones are the backgrounds under error-bar points); the last is the key's sample.
	if python3 - "$TMP/v.svg" >"$TMP/pts" 2>&1 <<'PY'; then
import sys, xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
for g in root.iter("{http://www.w3.org/2000/svg}g"):
    if not g.get("id", "").startswith("gnuplot_plot_"):
        continue
    t = g.find("s:title", ns)
    pts = [u for u in g.iter("{http://www.w3.org/2000/svg}use") if u.get("color") != "#FFFFFF"]
    if t is None or not pts:
        continue
    ys = [float(u.get("transform").split(",")[1].split(")")[0]) for u in pts[:-1]]
    print(t.text, len(ys), " ".join("%.1f" % y for y in ys))
PY
		ok "plot: the SVG is well-formed XML"
	else
		fail "plot: the SVG does not parse: $(tail -n 2 "$TMP/pts")"
	fi
	# Per panel: 4 sweep points whose SVG y falls as the slowdown rises (1.00 < 1.03 < 1.30 < 1.90),
	# log and off (in that order, log lower), the native storm on the right (a line on the left).
	awk '
	$1 == "ratelimit=N" { n++; if ($2 == 4 && $3 > $4 && $4 > $5 && $5 > $6) good++ }
	/^log \/ off/ { if ($(NF - 2) == 2 && $(NF - 1) > $NF) lo++ }   # log (1.74) below off (4.07)
	/^native storm / { if ($3 == 1) nat++ }
	END { exit !(n == 2 && good == 2 && lo == 2 && nat == 1) }' "$TMP/pts" &&
		ok "plot: 4 sweep points per panel in slowdown order, log and off in both, the native storm" ||
		fail "plot: points per plot (title, count, y): $(tr '\n' ';' <"$TMP/pts")"

	printf 'native split-lock storm\t5.05\n' >"$TMP/bad.tsv"
	expect_status 2 "plot: a line without 7 fields" -- "$PLOT" "$TMP/bad.tsv" "$TMP/bad.svg"
	expect_stderr "line 1: want 7 tab-separated fields" "plot: a line without 7 fields"
	head -n 2 "$TMP/rows.tsv" >"$TMP/nosweep.tsv"
	expect_status 2 "plot: no ratelimit=N/SLICE rows" -- "$PLOT" "$TMP/nosweep.tsv" "$TMP/bad.svg"
	expect_stderr "no --bus-lock=ratelimit=N/SLICE rows" "plot: no ratelimit=N/SLICE rows"
	expect_status 2 "plot: a missing file" -- "$PLOT" "$TMP/absent.tsv" "$TMP/bad.svg"
	expect_status 2 "plot: an SVG in a missing directory" -- "$PLOT" "$TMP/rows.tsv" "$TMP/absent/v.svg"
	expect_stderr "cannot write .*is not a writable directory" "plot: an SVG in a missing directory"
fi

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
