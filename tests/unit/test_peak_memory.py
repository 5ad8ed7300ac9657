"""`agnews.tracking.memory.peak_rss_mb`: a process's own peak, not its parent's."""
from __future__ import annotations

import subprocess
import sys

import pytest
from support import ROOT, subprocess_env

from agnews.tracking.memory import peak_rss_mb

# A parent that touches 600 MB, frees it, then starts a child that reports its peak both ways.
PARENT = """
import resource, subprocess, sys
block = bytearray(600 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
del block
child = ("import resource; from agnews.tracking.memory import peak_rss_mb; "
         "print(peak_rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                     check=True).stdout)
"""


def test_this_process_peak_is_at_least_what_it_holds_now():
    status = open("/proc/self/status").read() if sys.platform == "linux" else ""
    now = [int(line.split()[1]) / 1024 for line in status.splitlines()
           if line.startswith("VmRSS:")]
    assert peak_rss_mb() > 0
    if now:
        assert peak_rss_mb() >= now[0] - 1


@pytest.mark.skipif(sys.platform != "linux", reason="the carried peak and /proc are Linux's")
def test_a_child_reports_its_own_peak_not_the_one_its_parent_carried_into_it():
    out = subprocess.run([sys.executable, "-c", PARENT], cwd=ROOT, env=subprocess_env(),
                         capture_output=True, text=True, timeout=120, check=True).stdout
    own, carried = map(float, out.split())
    assert carried >= 600  # what getrusage says: the parent's high-water mark
    assert own < 200       # the child's own: a Python process importing one small module
    assert peak_rss_mb("no-such-process") != peak_rss_mb("no-such-process")  # NaN
