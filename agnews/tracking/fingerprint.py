"""Content hashes of local files and folders: what a data folder or a model folder holds."""
from __future__ import annotations

import hashlib
from pathlib import Path


def hash_files(paths: list[Path], root: Path | None = None) -> str:
    """sha256 over the files' names (relative to `root`) and contents."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(root) if root else path.name).encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def fingerprint(location: str) -> str:
    """Content hash of a local file or folder; for anything else (a Hub id) the id itself.

    A Hub id's content is named by its commit, which `main` pins before computing keys and
    passes on as the step's `data_revision` / `model_revision` parameter, so the key follows
    it through the parameters.
    """
    path = Path(location).expanduser()
    if path.is_file():
        return "file:" + hash_files([path])
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts)
        return "dir:" + hash_files(files, root=path)
    return "id:" + location
