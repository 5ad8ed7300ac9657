"""A long scoring pass on a CPU, split between this process and a forked copy of it.

PyTorch's eager forward pass keeps part of every batch serial (Python, operator dispatch, the
small operators between the matrix products), so a second thread on the same batch adds less
than a second process scoring other batches does: on two cores, two processes of one thread
each score more rows a second than one process of two threads (docs/performance.md, "Two
scoring processes"). A fork shares the loaded model's memory (copy-on-write) and starts in
milliseconds, where torch.multiprocessing's spawn would import torch and transformers again
and load the weights anew (seconds); nothing in PyTorch or transformers splits a pass this
way for a model already in memory, hence by hand. Each batch is still scored whole, so the
logits are those of a pass in one process.

The child scores every other batch and sends each one's logits back as it finishes; this
process scores the rest, collecting the child's as it goes (so a progress bar moves with
both). If the child dies, this process scores what it had not sent.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence

import numpy as np
import torch

# Fewer batches than this stay in one process: the fork and the child's first batch (its
# kernels' set-up) cost more than half of so short a pass saves.
MIN_BATCHES = 4

Batch = tuple[np.ndarray, object, object]  # row indices, input_ids, attention_mask


def can_split() -> bool:
    """Whether a long pass here may be split: on Linux only (macOS's system libraries are not
    safe to use after a fork, Windows has no fork), and only where this process scores on two
    threads, the case measured. The child must run on one thread: GNU OpenMP, torch's thread
    pool, hangs in a forked child that asks for more once its parent has used the pool; and
    with more cores one child of one thread would take too small a share to be worth a fork
    (a child per core was not measured: these machines have two)."""
    return sys.platform.startswith("linux") and torch.get_num_threads() == 2


def _child(score: Callable[[Batch], np.ndarray], todo: Sequence[Batch], writer) -> None:
    """The forked copy: score batches 1, 3, 5, ... and send (position, logits) for each."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it with its parent
        torch.set_num_threads(1)
        for k in range(1, len(todo), 2):
            writer.send((k, score(todo[k])))
        code = 0
    finally:
        writer.close()
        os._exit(code)  # never the parent's exit handlers, buffers or MLflow run


def split_logits(score: Callable[[Batch], np.ndarray], todo: Sequence[Batch], rows: int,
                 classes: int, progress=None) -> np.ndarray:
    """Logits of every row of `todo`'s batches (`score` maps a batch to its logits), the odd
    batches scored in a forked child, the even ones here, each on one thread; `progress`
    advances by rows as either finishes a batch."""
    out = np.zeros((rows, classes), dtype=np.float32)
    done = np.zeros(len(todo), dtype=bool)

    def take(k: int, logits: np.ndarray) -> None:
        out[todo[k][0]] = logits
        done[k] = True
        if progress is not None:
            progress.update(len(todo[k][0]))

    reader, writer = multiprocessing.Pipe(duplex=False)
    own = torch.get_num_threads()
    pid = os.fork()
    if pid == 0:
        reader.close()
        _child(score, todo, writer)
    writer.close()
    try:
        torch.set_num_threads(1)
        for k in range(0, len(todo), 2):
            take(k, score(todo[k]))
            while reader.poll():
                take(*reader.recv())
        while not done[1::2].all():
            take(*reader.recv())
    except EOFError:
        pass  # the child ended before sending all of its batches: scored below
    finally:
        torch.set_num_threads(own)
        reader.close()
        if not done[1::2].all():
            os.kill(pid, signal.SIGKILL)  # a child still running here is not needed
        os.waitpid(pid, 0)
    for k in np.flatnonzero(~done):
        take(int(k), score(todo[k]))
    return out


__all__ = ["MIN_BATCHES", "can_split", "split_logits"]
