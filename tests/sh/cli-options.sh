# Option parsing beyond cli-errors.sh: an unknown short option is named exactly (the message once
# printed a garbage byte through a non-literal format: -Wformat now checks every usage_error call);
# -m SIZE is QEMU's spelling of --mem, and SIZE is read as QEMU's -m reads it (util/cutils.c
# do_strtosz: fractions, suffixes B K M G T P E in either case, plain = MiB); --mem beyond the host's
# RAM and swap runs with a warning; a guest exit value equal to one of blvm's own statuses is said.
. "$(dirname "$0")/../lib.sh"
G="$GUESTS/hello"
[ -f "$G" ] || { fail "guest $G not built"; finish; }

expect_status 2 "-p is unknown" -- "$BLVM" run -p 256 "$G"
[ "$(cat "$TMP/err")" = "blvm: unknown option '-p' (see blvm run --help)" ] && ok "-p named exactly" ||
	fail "-p: $(od -c "$TMP/err" | head -2)"
expect_status 2 "-m without a value" -- "$BLVM" run -m
expect_stderr "^blvm: option '-m' needs a value" "-m without a value"

# memsize MEM...: the end of the RAM entry at 1 MiB in hello's memory map (the guest sees --mem).
mem_end() { "$BLVM" run "$@" "$G" 2>"$TMP/err" | sed -n 's/^  0x100000 \(0x[0-9a-f]*\) type 1$/\1/p'; }
check_mem() { # check_mem WANT-BYTES OPTION...
	local want=$1; shift
	local got; got=$(mem_end "$@")
	[ "$got" = "$(printf '0x%x' $((want - 0x100000)))" ] && ok "$* gives $want bytes" || fail "$*: RAM entry ends $got, want $(printf '0x%x' $((want - 0x100000))): $(cat "$TMP/err")"
}
check_mem $((256 << 20)) -m 256
check_mem $((256 << 20)) -m 256M
check_mem $((1536 << 20)) --mem=1.5G
check_mem $((1536 << 20)) --mem=1.5g
check_mem $((512 << 20)) --mem=0.5G
check_mem $((64 << 20)) --mem=65536K
check_mem $((64 << 20)) --mem=67108864B
check_mem $((1 << 30)) --mem=1GiB
check_mem $((3 << 20)) --mem=3
check_mem $((3 << 20)) --mem=3.
for bad in 1.5B .5G 0x10 -1 " 64" 64Q 64MX; do
	expect_status 2 "--mem='$bad' refused" -- "$BLVM" run "--mem=$bad" "$G"
done

# More than the host has: a warning, and the guest runs (MAP_NORESERVE: nothing is committed).
host_mb=$(awk '/^MemTotal:|^SwapTotal:/ { kb += $2 } END { print int(kb / 1024) }' /proc/meminfo)
if [ "$host_mb" -lt 65536 ]; then
	expect_status 0 "--mem=64G on a host with ${host_mb}M of RAM and swap runs" -- "$BLVM" run --mem=64G "$G"
	expect_stderr "^blvm: warning: --mem=65536M is more than this host's memory \\(${host_mb}M of RAM and swap\\)" "--mem=64G warns"
	expect_status 0 "--mem=128M: no warning" -- "$BLVM" run --mem=128M "$G"
	[ -s "$TMP/err" ] && fail "--mem=128M printed: $(cat "$TMP/err")" || ok "--mem=128M: stderr empty"
else
	echo "note: this host has ${host_mb}M of RAM and swap, more than --mem's 64G limit: warning not checked"
fi

# A guest's own exit value that is one of blvm's statuses: buslock-storm exits 2 on a bad command line.
"$BLVM" run "$GUESTS/buslock-storm" -- bogus words >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q "^blvm: the guest exited with status 2 (blvm's own statuses: 2 usage" "$TMP/err" &&
	ok "guest exit 2: status 2, and stderr says it was the guest's" || fail "guest exit 2: status $rc: $(cat "$TMP/err")"
expect_status 42 "guest exit 42: not one of blvm's" -- "$BLVM" run "$GUESTS/exit42"
[ -s "$TMP/err" ] && fail "exit42 printed: $(cat "$TMP/err")" || ok "guest exit 42: stderr empty"
finish
