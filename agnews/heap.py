"""Python's garbage collector around a step: its full collections wait while the step loads
its libraries, skip what it loaded once its work starts, and do not run as its process exits.

A full collection walks every object the process holds. While a step imports MLflow, torch
and transformers, Python runs one each time the heap has grown by a quarter, each walking all
that was imported so far, and once the model is loaded each one (an epoch's end, the parity
gate) walks half a million objects that will live as long as the process: a second or more
of a train step, a fraction of every other (docs/performance.md, Step start-up).
So `run_step` defers full collections (young objects are still collected as usual), and
`long_lived` (which `step_run` enters, as a step's run starts) freezes what is alive by then
and lets full collections resume over everything made after it. Python has no setting for
"not while importing", hence these few lines.
"""
from __future__ import annotations

import atexit
import contextlib
import gc
from collections.abc import Iterator

# A full collection after this many collections of the middle generation: none while deferred.
DEFERRED = 1 << 30

_resume: list[tuple[int, int, int]] = []  # the thresholds to go back to, while deferred
_frozen_depth = 0


def step_starting() -> None:
    """For a step's `main`, about to run: full collections deferred, and none at exit.

    At exit Python's last garbage collections walk every object torch, transformers and MLflow
    made: seconds a step process (docs/performance.md). Freezing them as the exit handlers run
    skips that walk; the process's end frees the memory, and only objects in reference cycles
    lose a `__del__`, which Python never promises at exit. Registered once a process, however
    many steps run inline in it."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    defer_full_collections()


def defer_full_collections() -> None:
    """Hold back full collections until `resume_full_collections` or `long_lived`."""
    if not _resume:
        young, middle, _ = before = gc.get_threshold()
        _resume.append(before)
        gc.set_threshold(young, middle, DEFERRED)


def resume_full_collections() -> None:
    """Full collections as before `defer_full_collections` (nothing if none were deferred)."""
    if _resume:
        gc.set_threshold(*_resume.pop())


@contextlib.contextmanager
def long_lived() -> Iterator[None]:
    """Inside the block, the objects alive as it starts (modules, a loaded model) are left out
    of the collector's passes, and deferred full collections resume over the rest. The young
    generations are collected first; the few cyclic leftovers of the imports that a full
    collection would find (a few hundred objects beside half a million) wait until the block
    ends, when everything frozen is handed back to the collector. Nested blocks (steps run
    inline in `main`'s process) freeze and unfreeze only at the outermost."""
    global _frozen_depth
    resume_full_collections()
    if _frozen_depth == 0:
        gc.collect(1)
        gc.freeze()
    _frozen_depth += 1
    try:
        yield
    finally:
        _frozen_depth -= 1
        if _frozen_depth == 0:
            gc.unfreeze()
