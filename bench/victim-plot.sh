#!/bin/bash
# bench/victim-plot.sh TSV SVG: draws the rate-limit sweep of bench/victim.sh (its TSV=FILE lines) as
# an SVG with gnuplot (package gnuplot-nox), two panels:
#   left:  the victim's slowdown against N in --bus-lock=ratelimit=N/SLICE (log scale), the rows
#          --bus-lock=log (detection, no limit) and --bus-lock=off (no detection) to the right of the
#          largest N, and the native split-lock storm as a dashed line;
#   right: the same points against the bus locks/s the storm achieved (log scale), with the native
#          storm among them: the slowdown follows the rate, whatever sets it.
# Error bars are the rows' ranges (quartiles of the paired ratios with PAIRING=pairs). Rows of other
# names (controls, pause, contain, 2 vCPUs) are not drawn. Exit 2 with one line on bad input.
set -u
[ $# -eq 2 ] || { echo "usage: bench/victim-plot.sh TSV SVG" >&2; exit 2; }
tsv=$1 svg=$2
[ -r "$tsv" ] || { echo "victim-plot.sh: cannot read $tsv" >&2; exit 2; }
case $svg in *\'*) echo "victim-plot.sh: $svg: a single quote in the path is not supported (gnuplot's set output)" >&2; exit 2;; esac
d=$(dirname -- "$svg")
[ -d "$d" ] && [ -w "$d" ] || { echo "victim-plot.sh: cannot write $svg: $d is not a writable directory" >&2; exit 2; }
command -v gnuplot >/dev/null || { echo "victim-plot.sh: needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Three data blocks for gnuplot's `index`: 0 the sweep (N slowdown lo hi rate), 1 log/off (x slowdown
# lo hi rate label), 2 the native storm (slowdown lo hi rate). x of log/off: 10x and 30x the largest N.
# A rate of "-" or 0 becomes "NaN" (gnuplot skips the point on the log-scale right panel).
if ! awk -F'\t' -v out="$tmp/data" -v counts="$tmp/counts" '
function num(v) { return v ~ /^[0-9]+(\.[0-9]*)?$/ }
NF != 7 || !num($2) || !num($3) || !num($4) {
	printf "victim-plot.sh: line %d: want 7 tab-separated fields (row, slowdown, low, high, alone ms, storm ms, bus locks/s)\n", NR > "/dev/stderr"
	bad = 1; exit 1
}
{ rate = (num($7) && $7 > 0) ? $7 : "NaN" }
($1 ~ /ratelimit=[0-9]+\/|--bus-lock=(log|off)$/ || $1 == "native split-lock storm") && $4 > ymax { ymax = $4 }
match($1, /--bus-lock=ratelimit=[0-9]+\//) {
	n = substr($1, RSTART + 21, RLENGTH - 22) + 0
	sweep[++ns] = n " " $2 " " $3 " " $4 " " rate
	if (n > maxn) maxn = n
	next
}
$1 ~ /--bus-lock=(log|off)$/ && $1 !~ /vCPU/ {
	p = substr($1, length($1) - 2)
	nolim[p] = $2 " " $3 " " $4 " " rate
	next
}
$1 == "native split-lock storm" { native = $2 " " $3 " " $4 " " rate }
END {
	if (bad) exit 1
	if (ns == 0) { print "victim-plot.sh: no --bus-lock=ratelimit=N/SLICE rows in the data" > "/dev/stderr"; exit 1 }
	for (i = 1; i <= ns; i++) print sweep[i] > out
	printf "\n\n" > out
	nn = 0
	if ("log" in nolim) { print maxn * 10, nolim["log"], "log" > out; nn++ }
	if ("off" in nolim) { print maxn * 30, nolim["off"], "off" > out; nn++ }
	if (nn == 0) print "NaN NaN NaN NaN NaN none" > out
	printf "\n\n" > out
	print (native != "" ? native : "NaN NaN NaN NaN") > out
	print ns, nn, (native != "" ? 1 : 0), maxn, ymax > counts
}' "$tsv"; then
	exit 2
fi
read -r ns nn nnat maxn ymax <"$tmp/counts"

# The left panel's x tics: every power of ten up to the largest N, then "log" and "off" at their x.
xt=""
for ((p = 10; p <= maxn; p *= 10)); do
	case $p in 10) l=10;; 100) l=100;; 1000) l=1k;; 10000) l=10k;; 100000) l=100k;; 1000000) l=1M;; *) l=$p;; esac
	xt+="\"$l\" $p, "
done
xt+="\"log\" $((maxn * 10)), \"off\" $((maxn * 30))"

left="'$tmp/data' index 0 using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb '#1f77b4' title 'ratelimit=N'"
right="'$tmp/data' index 0 using 5:2:3:4 with yerrorbars pt 7 lc rgb '#1f77b4' title 'ratelimit=N'"
if [ "$nn" -gt 0 ]; then
	left+=", '' index 1 using 1:2:3:4 with yerrorbars pt 5 ps 1.2 lc rgb '#d62728' title 'log / off (no limit)'"
	right+=", '' index 1 using 5:2:3:4 with yerrorbars pt 5 ps 1.2 lc rgb '#d62728' title 'log / off'"
	right+=", '' index 1 using 5:2:6 with labels left offset 1,0 notitle"
fi
if [ "$nnat" -gt 0 ]; then
	nat=$(awk 'BEGIN { RS = ""; } NR == 3 { print $1 }' "$tmp/data")
	left+=", $nat with lines dt 2 lw 1.5 lc rgb '#555555' title 'native split-lock storm'"
	right+=", '' index 2 using 4:1:2:3 with yerrorbars pt 9 ps 1.4 lc rgb '#555555' title 'native storm'"
fi

cat >"$tmp/plot.gp" <<EOF
set terminal svg size 960,420 dynamic font 'sans,12' background rgb 'white'
set output '$svg'
set multiplot layout 1,2 title "Victim slowdown (bench/victim.sh: 64 MiB read-modify-write sweep on the other core)"
set logscale x
set grid
# Room above the highest error bar for the key.
set yrange [0:$(awk -v y="$ymax" 'BEGIN { print (y > 1 ? y : 1) * 1.45 }')]
set ylabel 'victim slowdown (x, median, quartiles)'
set key top left
set xlabel 'blvm --bus-lock=ratelimit=N (bus locks/s)'
set xrange [50:$((maxn * 60))]
set xtics ($xt)
plot 1 with lines lc rgb '#2ca02c' dt 3 title 'no slowdown', $left
set xlabel "storm guest's bus locks/s (achieved)"
set xrange [*:*]
set xtics autofreq
set format x '10^{%L}'
plot 1 with lines lc rgb '#2ca02c' dt 3 notitle, $right
unset multiplot
EOF
if ! gnuplot "$tmp/plot.gp" 2>"$tmp/err"; then
	echo "victim-plot.sh: gnuplot failed: $(grep -v '^ *^* *$' "$tmp/err" | head -n 3 | tr -s ' \n' '  ')" >&2
	exit 1
fi
# gnuplot writes warnings (e.g. an empty data set) on stderr but exits 0: show them.
[ -s "$tmp/err" ] && sed 's/^/victim-plot.sh: gnuplot: /' "$tmp/err" >&2
echo "victim-plot.sh: $svg: $ns rate limits, $nn unlimited rows, native storm: $([ "$nnat" -gt 0 ] && echo yes || echo no)"
