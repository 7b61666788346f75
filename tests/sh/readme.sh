#!/bin/bash
# README.md's code stays true: the policy-module snippet ("The policy module in your own monitor")
# compiles against include/blvm/policy.h and links with libblvm.a, inside a function that supplies
# the names it assumes (vm_fd, vcpu_fd, run, ...); and the README's two commands are make targets.
source "$(dirname "$0")/../lib.sh"
cd "$TOP"

snippet=$(awk '/^## The policy module in your own monitor/ { sec = 1 } sec && /^```c$/ { on = 1; next } on && /^```$/ { exit } on' README.md)
[ -n "$snippet" ] || { fail "README.md: no C block under \"The policy module in your own monitor\""; finish; }
{
	echo '#include <stdint.h>'
	echo '#include <stdio.h>'
	echo '#include <stdlib.h>'
	echo '#include <sys/ioctl.h>'
	echo '#include <linux/kvm.h>'
	printf '%s\n' "$snippet" | grep '^#include'
	echo 'static void sleep_ns(uint64_t ns) { (void)ns; }'
	echo 'void readme_example(int vm_fd, int vcpu_fd, unsigned nr_vcpus, unsigned vcpu_id, struct kvm_run *run, double wall_seconds);'
	echo 'void readme_example(int vm_fd, int vcpu_fd, unsigned nr_vcpus, unsigned vcpu_id, struct kvm_run *run, double wall_seconds)'
	echo '{'
	echo '	char err[256];'
	printf '%s\n' "$snippet" | grep -v '^#include'
	echo '}'
	echo 'int main(void) { return 0; }'
} >"$TMP/readme.c"
# libblvm.a of a sanitizer build needs the same sanitizer at link time (Makefile's SANFLAGS).
san=()
case "${SAN:-}" in 1) san=(-fsanitize=address,undefined);; thread) san=(-fsanitize=thread);; esac
if gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter "${san[@]}" -Iinclude -o "$TMP/readme" "$TMP/readme.c" \
	"$BUILD/libblvm.a" -lZydis -lbpf -llz4 -lz -llzma -lzstd -lbz2 -llzo2 -lpthread -lm 2>"$TMP/cc.err"; then
	ok "README's policy-module snippet compiles and links with libblvm.a"
else
	fail "README's policy-module snippet does not compile:"; head -20 "$TMP/cc.err"; nl -ba "$TMP/readme.c" | head -60
fi

# The two commands at the top of the README are `make demo` and `make test`, and both are targets.
cmds=$(awk '/^```sh$/ { on = 1; next } on && /^```$/ { exit } on { print $1, $2 }' README.md)
[ "$cmds" = "$(printf 'make demo\nmake test')" ] && ok "README opens with: make demo, make test" ||
	fail "README's first commands are not 'make demo' and 'make test': $cmds"
for t in demo test; do
	make -n "$t" >/dev/null 2>&1 && ok "make $t is a target" || fail "make $t is not a target of the Makefile"
done

# The architecture and contract documents are the repository's own (issue 14): every docs/*.md a
# source, test, bench or document cites exists in docs/, and none points at a copy outside the tree.
cited=$(git ls-files | grep -v '^docs/.*\.[13]$' | xargs grep -ohE 'docs/[A-Za-z]+\.md' 2>/dev/null | sort -u)
missing=$(for f in $cited; do [ -f "$f" ] || echo "$f"; done)
[ -n "$cited" ] && [ -z "$missing" ] && ok "every cited document is in the repository: $(echo $cited)" ||
	fail "cited but not in the repository: ${missing:-nothing cited}"
outside=$(git ls-files | xargs grep -lE '\.\./shared/docs/|\.\./seed/|\.\./kvm-unit-tests/README' 2>/dev/null)
[ -z "$outside" ] && ok "no file points at documents outside the repository" || fail "paths outside the repository in: $outside"
# A citation of the design or the reference page names its place: docs/.
bare=$(git ls-files | xargs grep -nE '(^|[^/A-Za-z])(DESIGN|REFERENCE)\.md' 2>/dev/null | head -3)
[ -z "$bare" ] && ok "the design and reference pages are always cited with docs/" || fail "bare citations: $bare"

# The abridged demo output the README shows is what `make demo` prints today: every line of the
# block (but "...") occurs in scripts/demo.sh's output, numbers masked (times, rates and addresses
# vary; the words, fields and order of a line do not).
# The words do not depend on the build: the sanitizer builds leave this to the plain one (the demo
# boots Linux; its code paths are each under a sanitizer in their own tests).
[ -n "${SAN:-}" ] && { echo "note: sanitizer build: the demo excerpt is checked in the plain build only"; finish; }
norm() { sed -e 's/\x1b\[[0-9;]*m//g' -e "s#$BUILD/#build/#g" -e 's/0x[0-9a-f]\+/X/g' -e 's/[0-9][0-9.]*/N/g'; }
awk '/What the demo prints, abridged/ { sec = 1 } sec && /^```$/ { if (on) exit; on = 1; next } on' README.md |
	grep -v '^\.\.\.$' | norm >"$TMP/readme-demo"
sh scripts/demo.sh "$BUILD" >"$TMP/demo" 2>&1
norm <"$TMP/demo" >"$TMP/demo-n"
n=$(wc -l <"$TMP/readme-demo")
missing=$(grep -vxFf "$TMP/demo-n" "$TMP/readme-demo")
if [ "$n" -ge 5 ] && [ -z "$missing" ]; then ok "README's demo excerpt ($n lines) is in what scripts/demo.sh prints"
else fail "README's demo excerpt ($n lines) has lines the demo no longer prints:"; printf '%s\n' "$missing" | head -5; fi
finish
