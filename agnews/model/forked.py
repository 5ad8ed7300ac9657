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

The child scores the shorter half of the work and sends each batch's logits back as it
finishes; this process scores the longer half, collecting the child's as it goes (so a
progress bar moves with both). If the child dies, this process scores what it had not sent;
if no copy can be forked (no memory or processes left), the pass runs here whole.
A split costs the child's own memory, about a tenth of a step's (docs/performance.md): a
step's bulk pass splits (evaluate, predict, monitor, register), train's passes and the
served model do not.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence

import numpy as np
import torch

# Fewer batches than this stay in one process: under 256 texts are half a second's scoring on
# two cores, of which a second process could save a fraction.
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


def halves(todo: Sequence[Batch]) -> int:
    """Where the batches (longest first) divide into two parts of the nearest to equal padded
    tokens, the work a batch costs: this process takes those before, the child the rest.
    The child so scores the shorter texts, and its own memory (activations, kernel caches,
    pages it changes) stays small: its resident memory starts as the pages it shares with
    this process, so what it adds is all that puts it above this process's."""
    cost = np.cumsum([ids.shape[0] * ids.shape[1] for _, ids, _ in todo])
    return int(np.argmin(np.abs(cost[:-1] - cost[-1] / 2))) + 1


def _child(score: Callable[[Batch], np.ndarray], todo: Sequence[Batch], first: int,
           writer) -> None:
    """The forked copy: score the batches from `first` on, sending (position, logits) each.
    Should its parent be killed outright, it ends at its next send, on the closed pipe."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it with its parent
        torch.set_num_threads(1)
        for k in range(first, len(todo)):
            writer.send((k, score(todo[k])))
        code = 0
    finally:
        writer.close()
        os._exit(code)  # never the parent's exit handlers, buffers or MLflow run


def split_logits(score: Callable[[Batch], np.ndarray], todo: Sequence[Batch], rows: int,
                 classes: int, progress=None) -> np.ndarray:
    """Logits of every row of `todo`'s batches (`score` maps a batch to its logits; at least
    two batches, longest first), the first half of the work scored here and the rest in a
    forked child, each on one thread; `progress` advances by rows as either finishes a
    batch."""
    out = np.zeros((rows, classes), dtype=np.float32)
    done = np.zeros(len(todo), dtype=bool)
    first = halves(todo)

    def take(k: int, logits: np.ndarray) -> None:
        out[todo[k][0]] = logits
        done[k] = True
        if progress is not None:
            progress.update(len(todo[k][0]))

    reader, writer = multiprocessing.Pipe(duplex=False)
    own = torch.get_num_threads()
    try:
        pid = os.fork()
    except OSError:  # no memory or processes left for a copy: the pass runs here, whole
        pid = None
    if pid == 0:
        reader.close()
        _child(score, todo, first, writer)
    writer.close()
    try:
        if pid is not None:
            torch.set_num_threads(1)
            for k in range(first):
                take(k, score(todo[k]))
                while reader.poll():
                    take(*reader.recv())
            while not done[first:].all():
                take(*reader.recv())
    except EOFError:
        pass  # the child ended before sending all of its batches: scored below
    finally:
        torch.set_num_threads(own)
        reader.close()
        if pid is not None:
            if not done[first:].all():
                os.kill(pid, signal.SIGKILL)  # a child still running here is not needed
            os.waitpid(pid, 0)
    for k in np.flatnonzero(~done):
        take(int(k), score(todo[k]))
    return out


__all__ = ["MIN_BATCHES", "can_split", "halves", "split_logits"]
