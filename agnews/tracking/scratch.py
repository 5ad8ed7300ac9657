"""Each step process's scratch folder, removed as the process exits.

MLflow downloads a `runs:/` or `models:/` artifact into a new temporary folder and leaves
deleting it to the caller (`RunsArtifactRepository.download_artifacts` says so), and some of
its functions (`mlflow.models.get_model_info`, a flavor's `load_model`) give the caller no way
to choose the folder: every evaluate, predict and monitor left a copy of the model in the
system's temporary folder, and every step a few folders more. `use_scratch` points the
process's temporary folder (`tempfile.tempdir`, where MLflow's and our temporary folders are
made) at one folder of its own that is removed at exit, whatever made files in it.

A process killed before its exit handlers run (a crash that training later resumes from, an
out-of-memory kill) cannot remove its folder, so the next step removes the folders of
processes that no longer exist: their names carry the process id.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "agnews-step-"
_SCRATCH: tempfile.TemporaryDirectory | None = None


def owner_gone(folder: Path) -> bool:
    """Whether the process that made a scratch folder (its id in the name) has ended."""
    pid = folder.name[len(PREFIX):].split("-", 1)[0]
    if not pid.isdecimal():
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, and is another user's
        return False
    return False


def remove_orphans(root: Path) -> list[Path]:
    """Remove the scratch folders in `root` whose processes have ended; returns them."""
    gone = [f for f in root.glob(f"{PREFIX}*") if f.is_dir() and owner_gone(f)]
    for folder in gone:
        shutil.rmtree(folder, ignore_errors=True)  # another user's stays: not ours to remove
    return gone


def use_scratch() -> str:
    """Make this process's temporary files go to its scratch folder (once per process: steps
    run inline in `main` share main's); returns the folder."""
    global _SCRATCH
    if _SCRATCH is None:
        remove_orphans(Path(tempfile.gettempdir()))
        # Made in the system's temporary folder; TemporaryDirectory removes it at exit
        # (weakref.finalize), after the step's own exit handlers. A file still open there
        # (a memory-mapped Arrow file) does not stop the removal on POSIX.
        _SCRATCH = tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-",
                                               ignore_cleanup_errors=True)
        tempfile.tempdir = _SCRATCH.name
    return _SCRATCH.name
