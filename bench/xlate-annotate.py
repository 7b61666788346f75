#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/xlate-annotate.py DUMP PROFILE [BLOCKS]: the translator's hottest blocks, disassembled.

DUMP is what BLVM_XLATE_DUMP=FILE made blvm write (each translated block's guest and host bytes, xlate.c);
PROFILE a callgrind output of the same run made with --dump-instr=yes (host instructions executed), or a
perf.data of it (perf record -e cpu-clock: samples of where the time goes; callgrind under valgrind
does not run the code as the host does, e.g. valgrind's CPUID is not the host's). Prints the BLOCKS (default
5) blocks with the most host instructions executed: the guest instructions (objdump), then the host code
with the count of each host instruction. The tool to look at before changing what the translator emits:

  BLVM_XLATE_DUMP=/tmp/x.dump valgrind --tool=callgrind --dump-instr=yes \\
      --callgrind-out-file=/tmp/x.cg build/blvm run --engine=emu build/guests/bench-cpu -- 5
  bench/xlate-annotate.py /tmp/x.dump /tmp/x.cg
  BLVM_XLATE_DUMP=/tmp/p.dump perf record -e cpu-clock -c 100000 -o /tmp/perf.data \\
      build/blvm run --engine=emu build/guests/bench-cpu
  bench/xlate-annotate.py /tmp/p.dump /tmp/perf.data
"""
import collections
import re
import subprocess
import sys
import tempfile


def costs(path):
    """self Ir per instruction address (callgrind's format, positions "instr line" or "instr")"""
    ir = collections.Counter()
    npos, last, skip = 1, 0, False
    with open(path) as f:
        for line in f:
            if line.startswith("positions:"):
                npos = len(line.split()[1:])
                continue
            if line.startswith("calls="):
                skip = True  # the next cost line is the call's inclusive cost
                continue
            if not line or not (line[0] in "0123456789+-*"):
                continue
            parts = line.split()
            if len(parts) < npos + 1:
                continue
            p = parts[0]
            if p == "*":
                addr = last
            elif p[0] in "+-":
                addr = last + int(p, 0)
            else:
                addr = int(p, 0)
            last = addr
            if skip:
                skip = False
                continue
            ir[addr] += int(parts[npos])
    return ir


def samples(path):
    """perf samples per instruction address (perf script's ip field)"""
    ir = collections.Counter()
    r = subprocess.run(["perf", "script", "-i", path, "-F", "ip"], capture_output=True, text=True, check=True)
    for line in r.stdout.split():
        ir[int(line, 16)] += 1
    return ir


def blocks(path):
    out, cur = {}, None
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w:
                continue
            if w[0] == "block":
                cur = {"vcpu": int(w[1]), "gpa": int(w[2], 0), "mode": int(w[3]), "x": int(w[4], 0)}
            elif w[0] == "guest" and cur:
                cur["guest"] = bytes.fromhex(w[1]) if len(w) > 1 else b""
            elif w[0] == "host" and cur:
                cur["host"] = bytes.fromhex(w[1]) if len(w) > 1 else b""
                out[cur["x"]] = cur  # a flushed arena reuses addresses: the last translation wins
                cur = None
    return list(out.values())


def disasm(code, vma, bits64=True):
    with tempfile.NamedTemporaryFile(suffix=".bin") as t:
        t.write(code)
        t.flush()
        r = subprocess.run(["objdump", "-D", "-b", "binary", "-m", "i386:x86-64" if bits64 else "i386",
                            "--adjust-vma=%#x" % vma, t.name], capture_output=True, text=True, check=True)
    rows = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*(.*)$", line)
        if m:
            rows.append((int(m.group(1), 16), m.group(2).strip()))
    return rows


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    with open(sys.argv[2], "rb") as f:
        perf = f.read(8) == b"PERFILE2"
    ir = samples(sys.argv[2]) if perf else costs(sys.argv[2])
    bl = blocks(sys.argv[1])
    nshow = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    for b in bl:
        b["ir"] = sum(ir.get(a, 0) for a in range(b["x"], b["x"] + len(b["host"])))
    total = sum(ir.values())
    jit = sum(b["ir"] for b in bl)
    what = "samples" if perf else "host instructions"
    print("%s: %d in all, %d (%.1f %%) in %d translated blocks" %
          (what, total, jit, 100.0 * jit / max(total, 1), len(bl)))
    for b in sorted(bl, key=lambda b: -b["ir"])[:nshow]:
        print("\n== block gpa %#x (mode %d, vCPU %d): %d %s (%.1f %%), %d guest bytes, %d host bytes" %
              (b["gpa"], b["mode"], b["vcpu"], b["ir"], what, 100.0 * b["ir"] / max(total, 1), len(b["guest"]),
               len(b["host"])))
        for a, t in disasm(b["guest"], b["gpa"], b["mode"] == 0):
            print("   guest %8x  %s" % (a, t))
        for a, t in disasm(b["host"], b["x"]):
            print("%12s  %x  %s" % (ir.get(a, "") or "", a, t))


if __name__ == "__main__":
    main()
