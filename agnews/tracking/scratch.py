"""Each step process's scratch folder, removed as the process exits.

MLflow downloads a `runs:/` or `models:/` artifact into a new temporary folder and leaves
deleting it to the caller (`RunsArtifactRepository.download_artifacts` says so), and some of
its functions (`mlflow.models.get_model_info`, a flavor's `load_model`) give the caller no way
to choose the folder: every evaluate, predict and monitor left a copy of the model in the
system's temporary folder, and every step a few folders more. `use_scratch` points the
process's temporary folder (`tempfile.tempdir`, where MLflow's and our temporary folders are
made) at one folder of its own that is removed at exit, whatever made files in it.

A process killed before its exit handlers run (a crash that training later resumes from, an
out-of-memory kill) cannot remove its folder, so a later step removes it. The owner holds a
lock on the folder's `.alive` file while it runs, and the kernel drops the lock when the
process ends, however it ends: a folder whose lock can be taken has no owner any more. (A
process id would not do: a process in another PID namespace sharing the folder looks ended.)
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock, so no orphan is removed there
    fcntl = None

PREFIX = "agnews-step-"
LOCK = ".alive"
_SCRATCH: tempfile.TemporaryDirectory | None = None
_LOCK_FD: int | None = None


def hold_lock(folder: Path) -> int:
    """Lock `folder`'s `.alive` for as long as the returned descriptor stays open. The file is
    locked before it takes its name, so no one sees it unlocked while its owner lives."""
    staged = folder / f"{LOCK}.new"
    fd = os.open(staged, os.O_CREAT | os.O_WRONLY, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.rename(staged, folder / LOCK)
    return fd


def owner_gone(folder: Path) -> bool:
    """Whether the process that made a scratch folder has ended (its `.alive` lock is free)."""
    try:
        fd = os.open(folder / LOCK, os.O_RDONLY)
    except OSError:  # not there yet (its owner is setting up), or another user's
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held: the owner runs
        return False
    finally:
        os.close(fd)
    return True


def remove_orphans(root: Path) -> list[Path]:
    """Remove the scratch folders in `root` whose processes have ended; returns them."""
    gone = [f for f in root.glob(f"{PREFIX}*") if f.is_dir() and owner_gone(f)]
    for folder in gone:
        shutil.rmtree(folder, ignore_errors=True)
    return gone


def use_scratch() -> str:
    """Make this process's temporary files go to its scratch folder (once per process: steps
    run inline in `main` share main's); returns the folder."""
    global _SCRATCH, _LOCK_FD
    if _SCRATCH is None:
        if fcntl is not None:
            remove_orphans(Path(tempfile.gettempdir()))
        # Made in the system's temporary folder; TemporaryDirectory removes it at exit
        # (weakref.finalize), after the step's own exit handlers. A file still open there
        # (a memory-mapped Arrow file, the lock) does not stop the removal on POSIX.
        _SCRATCH = tempfile.TemporaryDirectory(prefix=PREFIX, ignore_cleanup_errors=True)
        if fcntl is not None:
            _LOCK_FD = hold_lock(Path(_SCRATCH.name))
        tempfile.tempdir = _SCRATCH.name
    return _SCRATCH.name
