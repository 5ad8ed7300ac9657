"""Locks that keep concurrent runs in one project folder from stepping on each other.

`main` holds one per step key while it runs that step, so a second identical `main` waits,
then reuses the finished run instead of training into the same checkpoint; `register` holds one
per registered model while it reads the champion and sets the alias, so two registers at once
cannot both decide against the same old champion. The files live in `.locks/` of the project
folder (filelock: fcntl on POSIX, msvcrt on Windows); the operating system releases a lock
when its process dies, even on kill -9. They serialize runs that share this folder (one
machine, or a shared file system), not runs on other machines against a team server.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from agnews import PROJECT_DIR
from agnews.errors import UserError

LOCKS = PROJECT_DIR / ".locks"


@contextlib.contextmanager
def held(name: str, waiting: str, folder: Path = LOCKS, refuse: bool = False) -> Iterator[Path]:
    """Hold the lock `name`; if another process holds it, print `waiting` and wait for it
    (with `refuse`, stop with `waiting` as the one-line error instead)."""


    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".lock")
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if refuse:
            raise UserError(waiting) from None
        print(f"{waiting} ({path})", flush=True)
        lock.acquire()
    try:
        yield path
    finally:
        lock.release()


def step_lock(key: str, step: str) -> contextlib.AbstractContextManager:
    """Held while `main` decides on and runs the step with cache key `key`."""
    return held(f"step-{key}", f"main: {step} waits for another run of the same step")


def registry_lock(model: str) -> contextlib.AbstractContextManager:
    """Held while `register` reads the champion of `model`, registers and sets aliases."""
    return held(f"registry-{model}", f"register: waits for another register of '{model}'")
