#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/kvm-unit-tests.py [BUILD]: the KVM community's x86 tests under QEMU TCG and under blvm.

Runs every named test of ../shared/kvm-unit-tests/x86/unittests.cfg whose file is built there (the
README beside it says how: Multiboot kernels, fw_cfg for the CPU count and memory size, the result
on isa-debug-exit) under QEMU TCG exactly as the suite's run_tests.sh does, and under `blvm run`
with the same vCPU count, memory and -append arguments, and prints one row per test side by side.

Verdicts, as the suite's scripts/runtime.bash reads the status: the test writes V to port 0xf4;
QEMU's isa-debug-exit exits with (V << 1) | 1, blvm with V. V = 0: PASS; V = 38: SKIP (the suite's
report_summary() returns 77 >> 1 when every test skipped, so that QEMU's status is autotools' 77);
a timeout: TIMEOUT, anything else: FAIL (with the last console line). blvm's status 0 after a
reset or power-off of the guest (said on stderr) is a FAIL, not the test's 0. Tests the suite marks `accel = kvm`,
`arch = i386`, or that need host-only CPU models (-cpu host) are listed as n/a.

This is a report; with CHECK=1 it is also the test tests/sh/kvm-unit-tests.sh runs on a fast
subset: status 1 when a test QEMU TCG passes in this run does not pass under blvm (QEMU's verdict,
computed in the same run, is the oracle). Environment: KUT (the suite's directory), QEMU, TIMEOUT
(seconds per run, default: the test's own, else 90), ONLY (a regex on test names), JOBS (parallel
runs, default 2), ENGINE (blvm's engine, default emu), CHECK.
"""
import concurrent.futures
import configparser
import os
import re
import shlex
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
BLVM = os.path.join(TOP, BUILD, "blvm")
KUT = os.environ.get("KUT", os.path.join(TOP, "..", "shared", "kvm-unit-tests"))
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
ONLY = re.compile(os.environ.get("ONLY", ""))
JOBS = int(os.environ.get("JOBS", "2"))
ENGINE = os.environ.get("ENGINE", "emu")


def tests():
    cfg = configparser.ConfigParser(interpolation=None, strict=False)
    cfg.read(os.path.join(KUT, "x86", "unittests.cfg"))
    for name in cfg.sections():
        t = dict(cfg[name])
        t["name"] = name
        t["path"] = os.path.join(KUT, "x86", t.get("file", ""))
        t["smp"] = int(t.get("smp", "1").split()[0]) if t.get("smp", "1").split()[0].isdigit() else 1
        args = t.get("test_args", t.get("extra_params", ""))
        m = re.search(r"-append\s+('([^']*)'|\"([^\"]*)\"|(\S+))", args)
        if "test_args" in t:
            t["append"] = t["test_args"].strip("'\"")
        elif m:
            t["append"] = next(g for g in m.groups()[1:] if g is not None)
        else:
            t["append"] = ""
        qp = t.get("qemu_params", "") + " " + re.sub(r"-append\s+('[^']*'|\"[^\"]*\"|\S+)", "",
                                                      t.get("extra_params", ""))
        t["qemu_params"] = qp.strip()
        t["timeout"] = int(re.sub(r"\D", "", t.get("timeout", "")) or 90)
        why = None
        if not os.path.exists(t["path"]):
            why = "not built"
        elif t.get("arch", "x86_64") != "x86_64":
            why = "arch " + t.get("arch")
        elif t.get("accel") == "kvm" or "-enable-kvm" in qp or "-cpu host" in qp:
            why = "needs KVM"
        t["na"] = why
        if ONLY.search(name):
            yield t


def verdict(status, out, qemu):
    if status == 124:
        return "TIMEOUT"
    if qemu:
        if status & 1 == 0:
            return "FAIL(qemu %d)" % status
        status >>= 1
    if status == 0:
        return "PASS"
    if status == 77 >> 1:
        return "SKIP"
    return "FAIL(%d)" % status


def last_line(out):
    lines = [l.strip() for l in out.decode("utf-8", "replace").splitlines() if l.strip()]
    summ = [l for l in lines if l.startswith("SUMMARY:")]
    return (summ[-1] if summ else (lines[-1] if lines else ""))[:110]


def run(cmd, timeout):
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        return 124, e.stdout or b""


def one(t):
    tmo = int(os.environ.get("TIMEOUT", t["timeout"]))
    q = [QEMU, "-accel", "tcg", "-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio",
         "-device", "pc-testdev", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-m", "256",
         "-smp", str(t["smp"]), "-kernel", t["path"]] + shlex.split(t["qemu_params"])
    if t["append"]:
        q += ["-append", t["append"]]
    qs, qo = run(q, tmo)
    b = [BLVM, "run", "--engine=" + ENGINE, "--mem=256M", "--vcpus=%d" % t["smp"], "--timeout=%d" % tmo]
    if "AuthenticAMD" in t["qemu_params"] or "Opteron" in t["qemu_params"]:
        b += ["--cpu=amd"]  # the vendor the test asks QEMU for (syscall: Opteron_G1,vendor=AuthenticAMD)
    b += [t["path"]]
    if t["append"]:
        b += ["--"] + shlex.split(t["append"])
    bs, bo = run(b, tmo + 10)
    if bs == 0 and re.search(rb"^blvm: guest (rebooted|powered off)", bo, re.M):
        bs = 256  # status 0 from a reset or power-off, not from the test's exit value: FAIL
    if bs == 124 and b"timeout" in bo:
        bs = 124
    return t, verdict(qs, qo, True), last_line(qo), verdict(bs, bo, False), last_line(bo)


def main():
    if not os.access(BLVM, os.X_OK):
        sys.exit("bench/kvm-unit-tests.py: %s is missing: run make first" % BLVM)
    ts = list(tests())
    runnable = [t for t in ts if not t["na"]]
    with concurrent.futures.ThreadPoolExecutor(JOBS) as ex:
        results = {r[0]["name"]: r for r in ex.map(one, runnable)}
    print("%-28s %-4s %-12s %-12s  %s" % ("test", "smp", "QEMU TCG", "blvm " + ENGINE, "blvm's last line"))
    counts = {}
    for t in ts:
        if t["na"]:
            print("%-28s %-4d %-12s %-12s  (%s)" % (t["name"], t["smp"], "n/a", "n/a", t["na"]))
            continue
        _, qv, ql, bv, bl = results[t["name"]]
        key = (qv.split("(")[0], bv.split("(")[0])
        counts[key] = counts.get(key, 0) + 1
        print("%-28s %-4d %-12s %-12s  %s" % (t["name"], t["smp"], qv, bv, bl))
    print()
    for (qv, bv), n in sorted(counts.items()):
        print("QEMU %-8s blvm %-8s %3d" % (qv, bv, n))
    qp = sum(n for (qv, _), n in counts.items() if qv == "PASS")
    both = counts.get(("PASS", "PASS"), 0)
    print("blvm passes %d of the %d tests QEMU TCG passes here" % (both, qp))
    if os.environ.get("CHECK") == "1":
        bad = [n for n, (_, qv, _, bv, _) in sorted(results.items()) if qv == "PASS" and bv != "PASS"]
        if bad:
            print("FAIL: QEMU TCG passes, blvm does not: " + " ".join(bad))
            sys.exit(1)
        if qp == 0:
            print("FAIL: QEMU TCG passed none of the selected tests: nothing was compared")
            sys.exit(1)


if __name__ == "__main__":
    main()
