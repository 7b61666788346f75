#!/bin/bash
# Packaging (issue 14): `make install` into a scratch DESTDIR puts the command, both libraries,
# the headers, blvm.pc, the manual pages, bash completion and the licence in place; a program built
# with `pkg-config --cflags --libs blvm` against it runs (shared and static); both libraries
# define only blvm_* symbols globally (a program cannot link an engine internal); the manual pages
# render without warnings; versions agree (header, blvm.pc, blvm --version, blvm_version()).
set -u
cd "$TOP"
if [ -n "${SAN:-}" ]; then
	echo "skip: packaging is checked in the plain build (make install refuses sanitizer builds)"
	exit 77
fi
for t in pkg-config groff man nm; do command -v $t >/dev/null || { echo "$t is missing"; exit 1; }; done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
prefix=/opt/blvm-test
make -s install BUILD="$BUILD" PREFIX=$prefix DESTDIR="$tmp/root" > "$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "make install"; }
root=$tmp/root$prefix
for f in bin/blvm lib/libblvm.a lib/libblvm.so lib/libblvm.so.0 lib/pkgconfig/blvm.pc include/blvm/policy.h \
	 include/blvm/version.h include/blvm/vm.h include/blvm/engine.h share/man/man1/blvm.1 \
	 share/man/man3/blvm-policy.3 share/bash-completion/completions/blvm share/doc/blvm/LICENSE; do
	[ -e "$root/$f" ] || fail "$f not installed"
done
[ "$(readlink "$root/lib/libblvm.so.0")" = "$(readlink "$root/lib/libblvm.so")" ] || fail "symlinks disagree"
objdump -p "$root/lib/libblvm.so" | grep -q 'SONAME *libblvm.so.0$' || fail "soname is not libblvm.so.0"

# only blvm_* defined globally, in both libraries
bad=$(nm -g --defined-only "$root/lib/libblvm.a" | awk 'NF == 3 && $3 !~ /^blvm_/')
[ -z "$bad" ] || fail "libblvm.a exports more than blvm_*: $(echo "$bad" | head -5)"
bad=$(nm -D --defined-only "$root/lib/libblvm.so" | awk 'NF == 3 && $3 !~ /^blvm_/')
[ -z "$bad" ] || fail "libblvm.so exports more than blvm_*: $(echo "$bad" | head -5)"
echo "exported: $(nm -g --defined-only "$root/lib/libblvm.a" | awk 'NF == 3' | wc -l) symbols in libblvm.a," \
     "$(nm -D --defined-only "$root/lib/libblvm.so" | awk 'NF == 3' | wc -l) in libblvm.so, all blvm_*"

# a program built against the installed tree, through pkg-config
export PKG_CONFIG_PATH="$root/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
cat > "$tmp/prog.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <blvm/policy.h>
#include <blvm/version.h>
int main(void)
{
	struct blvm_policy_config cfg;
	char err[200], spec[64];
	if (blvm_policy_parse("ratelimit=100/100ms", &cfg, err, sizeof err) != 0)
		return 1;
	blvm_policy_format(&cfg, spec, sizeof spec);
	struct blvm_policy *p = blvm_policy_create(&cfg, 2, NULL, NULL);
	if (!p)
		return 1;
	blvm_policy_destroy(p);
	printf("%s %s %s\n", BLVM_VERSION, blvm_version(), spec);
	return strcmp(BLVM_VERSION, blvm_version()) != 0;
}
C
gcc -std=c11 -Wall -Werror -o "$tmp/prog-shared" "$tmp/prog.c" $(pkg-config --cflags --libs blvm) \
	-Wl,-rpath,"$root/lib" 2> "$tmp/cc.err" || { cat "$tmp/cc.err"; fail "cannot build against libblvm.so"; }
ldd "$tmp/prog-shared" | grep -q "$root/lib/libblvm.so.0" || fail "the program does not use the installed libblvm.so"
out_shared=$("$tmp/prog-shared") || fail "the shared-library program failed"
gcc -std=c11 -Wall -Werror -static-libgcc -o "$tmp/prog-static" "$tmp/prog.c" $(pkg-config --cflags blvm) \
	"$root/lib/libblvm.a" $(pkg-config --static --libs-only-l blvm | sed 's/-lblvm//') 2> "$tmp/cc.err" ||
	{ cat "$tmp/cc.err"; fail "cannot build against libblvm.a"; }
ldd "$tmp/prog-static" | grep -q libblvm && fail "the static program uses a shared libblvm"
out_static=$("$tmp/prog-static") || fail "the static-library program failed"
echo "program: shared '$out_shared', static '$out_static'"
[ "$out_shared" = "$out_static" ] || fail "shared and static programs disagree"

# an engine internal is not reachable from outside
printf 'void emu_tlb_flush(void *);\nint main(void) { emu_tlb_flush(0); return 0; }\n' > "$tmp/internal.c"
gcc -o "$tmp/internal" "$tmp/internal.c" "$root/lib/libblvm.a" $(pkg-config --static --libs-only-l blvm | sed 's/-lblvm//') \
	> /dev/null 2>&1 && fail "a program linked emu_tlb_flush from libblvm.a"

# versions agree
hv=$(sed -n 's/^#define BLVM_VERSION "\(.*\)"$/\1/p' include/blvm/version.h)
[ "$(pkg-config --modversion blvm)" = "$hv" ] || fail "blvm.pc says $(pkg-config --modversion blvm), the header $hv"
[ "$("$root/bin/blvm" --version)" = "blvm $hv" ] || fail "blvm --version says '$("$root/bin/blvm" --version)'"
[ "${out_shared%% *}" = "$hv" ] || fail "the program saw version ${out_shared%% *}"

# manual pages: render, no groff warnings
for page in "$root/share/man/man1/blvm.1" "$root/share/man/man3/blvm-policy.3"; do
	groff -man -ww -z "$page" 2> "$tmp/groff.err"
	[ -s "$tmp/groff.err" ] && { cat "$tmp/groff.err"; fail "groff warns about $(basename "$page")"; }
	MANWIDTH=80 man -l "$page" 2>/dev/null | grep -q '^NAME' || fail "man -l does not render $(basename "$page")"
done
# completion: loads and completes
bash -c "source '$root/share/bash-completion/completions/blvm'; complete -p blvm" | grep -q _blvm ||
	fail "the bash completion does not register"
echo "ok"
