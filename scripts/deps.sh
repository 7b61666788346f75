#!/bin/sh
# Installs what blvm's build and tests need, where it is missing (Debian, as root).
# gcc/make: the toolchain; libzydis-dev: the x86 decoder; qemu-system-x86: the test and benchmark peer;
# clang: the guests are also built with it (tests/sh/guests-clang.sh); lz4: the Debian kernel's payload
# (scripts/linux-inputs.sh); time: peak RSS in the benchmarks; libbpf-dev: the guest kernel's BTF
# (src/introspect), liblz4-dev zlib1g-dev liblzma-dev libzstd-dev libbz2-dev liblzo2-dev: a bzImage's payload unpacked for its BTF
# (src/boot/bzimage.c), bpftool: the oracle of tests/sh/introspect-btf.sh (zstd, bzip2, lzop: it packs such payloads); acpica-tools: iasl disassembles the
# ACPI tables blvm builds (tests/unit/dev_acpi.c uses it as the oracle when it is there); libjson-c-dev: the
# control socket's JSON (src/control/); python3-prometheus-client: the --metrics parser of tests/sh/metrics.sh;
# gnuplot-nox: bench/victim-plot.sh draws the victim's slowdown against the rate limit as SVG (bench/victim.svg,
# tests/sh/bench-victim.sh); libelf1: linux-kbuild's modpost and objtool, which build tests/linux/kmod against the
# Debian kernel's headers (scripts/linux-inputs.sh --kmod unpacks them; the kernel's CC is gcc-12, bookworm's gcc).
set -e
need=""
for pkg in gcc make libc6-dev libzydis-dev libbpf-dev liblz4-dev zlib1g-dev liblzma-dev libzstd-dev libbz2-dev liblzo2-dev bpftool qemu-system-x86 python3 clang lz4 time acpica-tools libjson-c-dev python3-prometheus-client gnuplot-nox libelf1 zstd bzip2 lzop; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need="$need $pkg"
done
[ -z "$need" ] && exit 0
echo "deps: installing$need" >&2
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$need; run as root or: sudo apt-get install -y$need" >&2
	exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >&2
