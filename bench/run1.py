#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run one command and measure it: bench/run1.py OUT ERR TIMEOUT -- CMD [ARGS...]

stdin is /dev/null, stdout goes to OUT, stderr to ERR. Prints one line:

    WALL_SECONDS STATUS

WALL_SECONDS: from just before the spawn to the child's exit (time.perf_counter), i.e. what
`/usr/bin/time -f %e` prints, but with microsecond instead of 10 ms resolution (the start-up bar
is 10 ms). STATUS: the exit status as a shell reports it (128+N for signal N, 124 when TIMEOUT
seconds passed and the child was killed).

Peak RSS is deliberately not measured here: Linux charges a process's maxrss with the RSS of the
memory it had before execve (kernel/fs/exec.c, exec_mmap: setmax_mm_hiwater_rss), and a child of
python starts with python's ~14 MiB. GNU time forks from a ~2 MiB process, so the scripts use
`/usr/bin/time -f %M` for RSS.
"""
import os
import signal
import subprocess
import sys
import threading
import time


def main():
    if len(sys.argv) < 6 or sys.argv[4] != "--":
        sys.exit("usage: run1.py OUT ERR TIMEOUT -- CMD [ARGS...]")
    out, err, timeout, cmd = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[5:]
    with open(out, "wb") as fo, open(err, "wb") as fe, open(os.devnull, "rb") as fi:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=fi, stdout=fo, stderr=fe)
        fired = []

        def kill():
            fired.append(1)
            os.kill(p.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, _ = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        p.returncode = 0  # reaped above; keep Popen from reaping again
        timed_out = bool(fired)
    if timed_out:
        code = 124
    elif os.WIFSIGNALED(status):
        code = 128 + os.WTERMSIG(status)
    else:
        code = os.WEXITSTATUS(status)
    print(f"{wall:.6f} {code}")


if __name__ == "__main__":
    main()
