"""Each step process's scratch folder, removed as the process exits.

MLflow downloads a `runs:/` or `models:/` artifact into a new temporary folder and leaves
deleting it to the caller (`RunsArtifactRepository.download_artifacts` says so), and some of
its functions (`mlflow.models.get_model_info`, a flavor's `load_model`) give the caller no way
to choose the folder: every evaluate, predict and monitor left a copy of the model in the
system's temporary folder, and every step a few folders more. `use_scratch` points the
process's temporary folder (`tempfile.tempdir`, where MLflow's and our temporary folders are
made) at one folder of its own that is removed at exit, whatever made files in it.
"""
from __future__ import annotations

import tempfile

_SCRATCH: tempfile.TemporaryDirectory | None = None


def use_scratch() -> str:
    """Make this process's temporary files go to its scratch folder (once per process: steps
    run inline in `main` share main's); returns the folder."""
    global _SCRATCH
    if _SCRATCH is None:
        # Made in the system's temporary folder; TemporaryDirectory removes it at exit
        # (weakref.finalize), after the step's own exit handlers. A file still open there
        # (a memory-mapped Arrow file) does not stop the removal on POSIX.
        _SCRATCH = tempfile.TemporaryDirectory(prefix="agnews-step-",
                                               ignore_cleanup_errors=True)
        tempfile.tempdir = _SCRATCH.name
    return _SCRATCH.name
