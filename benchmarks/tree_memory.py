"""The memory a whole command holds: every process it starts, summed, while it runs.

A step's `peak_rss_mb` is one process's peak. Processes forked from one another share pages,
which each one's resident size counts in full; the proportional set size (PSS, Linux's
`smaps_rollup`) splits each shared page among the processes that map it, so its sum over
every process is what they hold together. This samples that sum over the command's whole
process tree (steps forked from main's warm server are its grandchildren) every 0.1 s and
prints its peak, and the largest single process's resident size at that moment:

    python benchmarks/tree_memory.py -- mlflow run . --env-manager local -P model=<folder> ...
    AGNEWS_FORK_STEPS=0 python benchmarks/tree_memory.py -- mlflow run . ...   # new interpreters

Linux only (`/proc`). The command's own output is discarded.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

import psutil


def pss_kb(pid: int) -> int:
    """A process's proportional set size in KB (0 if it has ended or cannot be read)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    command = parser.parse_args().command
    command = command[1:] if command[:1] == ["--"] else command
    if not command:
        sys.exit("tree_memory: give the command to measure after --")
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = psutil.Process(proc.pid)
    peak, largest, processes = 0, 0, 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            break
        total = sum(pss_kb(p.pid) for p in tree)
        if total > peak:
            sizes = []
            for p in tree:
                try:
                    sizes.append(p.memory_info().rss)
                except psutil.Error:
                    pass
            peak, largest, processes = total, max(sizes, default=0), len(tree)
        time.sleep(0.1)
    wall = time.perf_counter() - start
    print(f"exit code {proc.returncode}, {wall:.1f} s; peak of the summed PSS "
          f"{peak / 1024:,.0f} MB over {processes} processes, the largest then "
          f"{largest / 2**20:,.0f} MB resident")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
