"""A process's own peak resident memory, as every step logs it (`peak_rss_mb`) and the
benchmarks read it.

Linux's `getrusage(...).ru_maxrss` is not a process's own peak: across fork (or vfork) and
exec the kernel carries the parent's high-water mark into the child's, so a step started by a
`main` that had touched 900 MB would report at least 900 MB whatever it used itself. The
kernel's `VmHWM` line in `/proc/<pid>/status` is the high-water mark of the process's own
address space. Where there is no `/proc` (macOS), `getrusage` is all there is.
"""
from __future__ import annotations

import sys
from pathlib import Path


def peak_rss_mb(pid: int | str = "self") -> float:
    """The peak resident memory in MB of process `pid` (this one by default) so far: its
    `VmHWM`, or for this process without `/proc` its `ru_maxrss` (KB on Linux, bytes on
    macOS); NaN for another process whose status cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    if pid != "self":
        return float("nan")
    import resource  # POSIX only: imported here so the module still imports elsewhere

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)
