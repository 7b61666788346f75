# The files blvm's options name (include/blvm/file.h): a failed run never truncates or deletes what
# --stats names; regular outputs are written to a temporary file beside the target and renamed (no
# temporary file is left behind); a symlink is followed as cp does; a device or FIFO is written in
# place and never replaced or removed; no open blocks (a FIFO as the kernel or as --stats without a
# reader is refused at once with one line). Scratch nodes only (mknod/mkfifo in $TMP), every run
# under timeout(1) so that a hang fails instead of stalling the suite.
. "$(dirname "$0")/../lib.sh"
G="$GUESTS/hello-min"
[ -f "$G" ] || { fail "guest $G not built"; finish; }
command -v python3 >/dev/null || skip "python3 is needed to check the --stats JSON"
[ "$(id -u)" -eq 0 ] || skip "mknod needs root"
T="$TMP/d"; mkdir "$T"
valid_json() { python3 -m json.tool "$1" >/dev/null 2>&1; }
no_temp_left() { # no_temp_left WHAT: nothing but the names we made is in $T
	local extra; extra=$(ls -A "$T" | grep -v -x -e k -e s.json -e link -e dangling -e null -e fifo -e dir -e devlink -e kfifo -e klink -e kfifolink)
	[ -z "$extra" ] && ok "$1: no temporary file left" || fail "$1: left behind: $extra"
}

# 1. A failed run leaves an existing stats file exactly as it was.
echo '{"old": true}' > "$T/s.json"; chmod 640 "$T/s.json"
: > "$T/k"   # an empty file: not an ELF kernel
expect_status 2 "bad kernel with an existing --stats file" -- timeout 10 "$BLVM" run --stats="$T/s.json" "$T/k"
[ "$(cat "$T/s.json")" = '{"old": true}' ] && ok "the old stats file is untouched" || fail "stats file changed: $(head -c 80 "$T/s.json")"
no_temp_left "failed run"

# 2. The stats path names the kernel itself (the issue's `blvm run --stats=k k`): the kernel is
# read before anything is written, the run succeeds, and k then holds the statistics.
cp "$G" "$T/k"
expect_status 0 "--stats=k k" -- timeout 10 "$BLVM" run --stats="$T/k" "$T/k"
grep -q "Hello" "$TMP/out" && valid_json "$T/k" && ok "the kernel ran, then k became the stats" || fail "--stats=k k: $(head -c 80 "$T/k")"

# 3. A good run replaces a regular file atomically and keeps its mode.
expect_status 0 "good run over an existing stats file" -- timeout 10 "$BLVM" run --stats="$T/s.json" "$G"
valid_json "$T/s.json" && ok "stats replaced with valid JSON" || fail "stats: $(head -c 80 "$T/s.json")"
[ "$(stat -c %a "$T/s.json")" = 640 ] && ok "the file's mode (640) kept" || fail "mode $(stat -c %a "$T/s.json")"
no_temp_left "good run"

# 4. A symlink to a regular file: the file it points to is written, the link stays (as cp).
echo old > "$T/s.json"; ln -s s.json "$T/link"
expect_status 0 "--stats through a symlink" -- timeout 10 "$BLVM" run --stats="$T/link" "$G"
[ -L "$T/link" ] && valid_json "$T/s.json" && ok "link kept, its target holds the stats" || fail "symlink: $(ls -l "$T")"
: > "$T/k"
echo old > "$T/s.json"
expect_status 2 "failed run through a symlink" -- timeout 10 "$BLVM" run --stats="$T/link" "$T/k"
[ -L "$T/link" ] && [ "$(cat "$T/s.json")" = old ] && ok "failed run: link and target untouched" || fail "symlink after failure: $(ls -l "$T")"
ln -s nowhere "$T/dangling"
expect_status 2 "--stats = a dangling symlink" -- timeout 10 "$BLVM" run --stats="$T/dangling" "$G"
expect_stderr "symbolic link to a file that does not exist" "dangling symlink"
[ -L "$T/dangling" ] && [ ! -e "$T/nowhere" ] && ok "dangling link left alone, nothing created" || fail "dangling: $(ls -l "$T")"

# 5. A character device (our own null device node): written in place, never removed or replaced,
# whether the run fails or succeeds; through a symlink too.
mknod "$T/null" c 1 3
ln -s null "$T/devlink"
: > "$T/k"
expect_status 2 "failed run with --stats = a device node" -- timeout 10 "$BLVM" run --stats="$T/null" "$T/k"
[ -c "$T/null" ] && ok "failed run: the device node is still there" || fail "device node removed: $(ls -l "$T")"
expect_status 0 "good run with --stats = a device node" -- timeout 10 "$BLVM" run --stats="$T/null" "$G"
[ -c "$T/null" ] && ok "good run: the device node is still a device" || fail "device node replaced: $(ls -l "$T")"
expect_status 0 "good run with --stats = a symlink to a device" -- timeout 10 "$BLVM" run --stats="$T/devlink" "$G"
[ -L "$T/devlink" ] && [ -c "$T/null" ] && ok "symlink to a device: both kept" || fail "devlink: $(ls -l "$T")"

# 6. A FIFO as --stats: without a reader refused at once (it would block); with one, written in place.
mkfifo "$T/fifo"
expect_status 2 "--stats = a FIFO nobody reads" -- timeout 10 "$BLVM" run --stats="$T/fifo" "$G"
expect_stderr "FIFO and nothing reads it" "FIFO without a reader"
[ -p "$T/fifo" ] && ok "the FIFO is still a FIFO" || fail "FIFO removed"
timeout 20 cat "$T/fifo" > "$TMP/fifo.json" & reader=$!
sleep 0.2
expect_status 0 "--stats = a FIFO with a reader" -- timeout 10 "$BLVM" run --stats="$T/fifo" "$G"
wait $reader
valid_json "$TMP/fifo.json" && [ -p "$T/fifo" ] && ok "the reader got the whole JSON through the FIFO" ||
	fail "FIFO reader got: $(head -c 80 "$TMP/fifo.json")"

# 7. A directory as --stats.
mkdir "$T/dir"
expect_status 2 "--stats = a directory" -- timeout 10 "$BLVM" run --stats="$T/dir" "$G"
expect_stderr "is a directory" "--stats directory"

# 8. The kernel: a FIFO (nobody writes it: open would block forever), a symlink to one, a device,
# a directory are refused at once with one line; a symlink to a kernel file runs.
mkfifo "$T/kfifo"; ln -s kfifo "$T/kfifolink"; cp "$G" "$T/k"; ln -s k "$T/klink"
expect_status 2 "kernel = a FIFO" -- timeout 10 "$BLVM" run "$T/kfifo"
expect_stderr "^blvm: kernel .*kfifo is a FIFO, not a regular file$" "kernel FIFO"
expect_status 2 "kernel = a symlink to a FIFO" -- timeout 10 "$BLVM" run "$T/kfifolink"
expect_stderr "is a FIFO" "kernel symlink to a FIFO"
expect_status 2 "kernel = a device" -- timeout 10 "$BLVM" run "$T/null"
expect_stderr "^blvm: kernel .*null is a device, not a regular file$" "kernel device"
expect_status 2 "kernel = a directory" -- timeout 10 "$BLVM" run "$T/dir"
expect_stderr "is a directory" "kernel directory"
expect_status 0 "kernel = a symlink to a kernel" -- timeout 10 "$BLVM" run "$T/klink"
# A FIFO that someone writes a kernel into is still refused: a kernel is read whole, from a file.
(timeout 5 cat "$G" > "$T/kfifo" 2>/dev/null &)
expect_status 2 "kernel = a FIFO with a writer" -- timeout 10 "$BLVM" run "$T/kfifo"
# 9. --metrics (rewritten like --stats) and --events (appended) by the same rules: a FIFO nobody
# reads, a dangling link, a directory refused with one line; a device (and a link to one) written in
# place and kept; a regular file's mode kept by the metrics rewrite; an events file never truncated.
for opt in metrics events; do
	expect_status 2 "--$opt = a FIFO nobody reads" -- timeout 10 "$BLVM" run --$opt="$T/fifo" "$G"
	expect_stderr "FIFO and nothing reads it" "--$opt FIFO without a reader"
	expect_status 2 "--$opt = a dangling symlink" -- timeout 10 "$BLVM" run --$opt="$T/dangling" "$G"
	expect_stderr "symbolic link to a file that does not exist" "--$opt dangling symlink"
	expect_status 2 "--$opt = a directory" -- timeout 10 "$BLVM" run --$opt="$T/dir" "$G"
	expect_status 0 "--$opt = a device" -- timeout 10 "$BLVM" run --$opt="$T/devlink" "$G"
	[ -L "$T/devlink" ] && [ -c "$T/null" ] && ok "--$opt: the link and the device kept" || fail "--$opt devlink: $(ls -l "$T")"
done
echo old > "$T/s.json"; chmod 640 "$T/s.json"
expect_status 0 "--metrics over an existing file" -- timeout 10 "$BLVM" run --metrics="$T/s.json" "$G"
grep -q '^blvm_info{' "$T/s.json" && [ "$(stat -c %a "$T/s.json")" = 640 ] && ok "--metrics: replaced, mode 640 kept" ||
	fail "--metrics: $(head -c 80 "$T/s.json"), mode $(stat -c %a "$T/s.json")"
timeout 20 cat "$T/fifo" > "$TMP/fifo.ev" & reader=$!
sleep 0.2
expect_status 0 "--events = a FIFO with a reader" -- timeout 10 "$BLVM" run --events="$T/fifo" "$G"
wait $reader
grep -q '"event":"SHUTDOWN"' "$TMP/fifo.ev" && [ -p "$T/fifo" ] && ok "--events through a FIFO: SHUTDOWN read" || fail "--events FIFO: $(cat "$TMP/fifo.ev")"
echo '{"kept": 1}' > "$T/s.json"
expect_status 0 "--events over an existing file" -- timeout 10 "$BLVM" run --events="$T/s.json" "$G"
[ "$(head -1 "$T/s.json")" = '{"kept": 1}' ] && [ "$(wc -l < "$T/s.json")" -eq 2 ] && ok "--events: appended, nothing truncated" || fail "--events: $(cat "$T/s.json")"
no_temp_left "all cases"
finish
