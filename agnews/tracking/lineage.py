"""What every run records about where it came from: code, environment and inputs.

The git commit alone does not say what ran when the tree had uncommitted edits, so a dirty
tree also leaves its diff; the package versions are the ones imported, not the pins.
"""
from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

from agnews import PROJECT_DIR


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state(folder: Path = PROJECT_DIR) -> dict[str, str] | None:
    """{"commit", "dirty", "diff"} of the checkout holding `folder`; None outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                              check=True, timeout=30).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        # Untracked files are listed too: a new, uncommitted module changes what runs.
        status = git("status", "--porcelain", "--untracked-files=normal", "--", ".")
        diff = git("diff", "HEAD", "--", ".") if status else ""
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": "true" if status else "false",
            "diff": diff + ("".join(f"# {line}\n" for line in status.splitlines())
                            if status else "")}


def requirement_names(requirements: Path = PROJECT_DIR / "requirements.txt") -> list[str]:
    names = []
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.append(line.split("==")[0])
    return names


def environment() -> dict:
    """Python and the installed version of every pinned package, as this process sees them."""
    versions = {}
    for name in requirement_names():
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "packages": versions}
