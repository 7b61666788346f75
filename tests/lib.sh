# Sourced by tests/sh/*.sh. Environment from tests/run.sh: BLVM, GUESTS, BUILD, TOP.
set -u
: "${TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${BUILD:=build}"
: "${BLVM:=$TOP/$BUILD/blvm}"
: "${GUESTS:=$TOP/$BUILD/guests}"
# The tests' Python finds their shared modules (tests/lib/qmp_client.py: the one QMP client) here;
# no bytecode cache is written into the source tree.
export PYTHONPATH="$TOP/tests/lib${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0

fail() { echo "FAIL: $*"; failures=$((failures+1)); }
ok() { echo "ok: $*"; }
skip() { echo "SKIP: $*"; exit 77; }
finish() { [ "$failures" -eq 0 ] && { echo "all checks passed"; exit 0; }; echo "$failures check(s) failed"; exit 1; }

# run_each DIR OUT COMMAND...: runs COMMAND once per file F of DIR ("{}" in COMMAND stands for F), as
# many at once as there are CPUs (the suite runs one test at a time: the other CPU would idle),
# stdout discarded, stderr to OUT/NAME.err and the exit status to OUT/NAME.rc (NAME = F's name).
run_each() {
	local dir=$1 out=$2 jobs f a; shift 2
	jobs=$(nproc 2>/dev/null || echo 2)
	mkdir -p "$out"
	for f in "$dir"/*; do
		local args=()
		for a in "$@"; do [ "$a" = "{}" ] && a=$f; args+=("$a"); done
		{ "${args[@]}" >/dev/null 2>"$out/${f##*/}.err" </dev/null; echo $? >"$out/${f##*/}.rc"; } &
		while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
	done
	wait
}

# expect_status WANT DESCRIPTION -- COMMAND...: runs COMMAND, stdout to $TMP/out, stderr to $TMP/err.
expect_status() {
	local want=$1 what=$2; shift 3
	"$@" >"$TMP/out" 2>"$TMP/err"
	local rc=$?
	if [ "$want" -eq 2 ] && [ "$(wc -l < "$TMP/err")" -ne 1 ]; then
		fail "$what: a usage error must be one line on stderr, got $(wc -l < "$TMP/err")"; fi
	if [ "$want" -eq 2 ] && [ -s "$TMP/out" ]; then fail "$what: stdout not empty"; fi
	if [ "$rc" -eq "$want" ]; then ok "$what (status $rc)"; else
		fail "$what: status $rc, want $want"; sed 's/^/  stderr: /' "$TMP/err" | head -5; fi
}
# expect_stderr REGEX DESCRIPTION: the last command's stderr matches REGEX (grep -E).
expect_stderr() {
	if grep -Eq -- "$1" "$TMP/err"; then ok "$2: stderr says it"; else
		fail "$2: stderr does not match /$1/:"; sed 's/^/  stderr: /' "$TMP/err" | head -5; fi
}

# kvm_usable: /dev/kvm exists and can be opened.
kvm_usable() { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }

# qemu_run GUEST [ARGS...]: the QEMU TCG peer; stdout is the guest's console; returns V from (V<<1)|1.
qemu_run() {
	local g=$1; shift
	timeout 60 qemu-system-x86_64 -accel tcg -cpu max -m 128 -display none -no-reboot -nodefaults \
		-serial stdio -monitor none -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$g" "$@"
	local rc=$?
	if [ $((rc & 1)) -eq 1 ]; then return $((rc >> 1)); fi
	return 255
}
