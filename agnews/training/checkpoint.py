"""Training checkpoints: everything `fit` needs to resume exactly where it stopped.

A checkpoint holds the weights, the optimiser, schedule and loss-scaler state, the numpy and
torch (and CUDA) random states, and fit's own bookkeeping (epochs done, history, best
weights), so a resumed run draws the same shuffles and dropout masks an uninterrupted one
would. It holds tensors and plain Python values only, so it loads with `weights_only=True`
(no arbitrary unpickling), and onto the CPU first, so one written on a GPU resumes anywhere.
One that cannot be read (truncated, overwritten, not a checkpoint) is refused before anything
is restored, so the caller can set it aside and start over.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch


def save_checkpoint(path: Path, state: dict, model, optimizer, scheduler, scaler,
                    rng: np.random.Generator) -> None:
    """Write atomically: a kill during the write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({**state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),  # dropout masks on CPU
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
               tmp)
    os.replace(tmp, path)


REQUIRED = frozenset({"model", "optimizer", "scheduler", "numpy_rng", "torch_rng", "epoch",
                      "history"})


class UnreadableCheckpoint(Exception):
    """The file is not a checkpoint this code can resume from."""


def read_checkpoint(path: Path) -> dict:
    """The checkpoint's contents, checked for what resuming needs; nothing is restored yet."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, foreign or garbage: torch and pickle raise many kinds
        raise UnreadableCheckpoint(f"{type(err).__name__}: {str(err)[:200]}") from err
    if not isinstance(saved, dict) or not REQUIRED <= set(saved):
        have = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        raise UnreadableCheckpoint(f"it lacks what resuming needs (holds {have})")
    return saved


def set_aside(path: Path) -> Path:
    """Rename an unreadable checkpoint out of the way (kept for a post-mortem)."""
    dest = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, dest)
    return dest


def load_checkpoint(path: Path, model, optimizer, scheduler, scaler,
                    rng: np.random.Generator) -> dict:
    """Restore model, optimiser, schedule, scaler and random states in place; return fit's
    state. Raises UnreadableCheckpoint, having changed nothing, if the file cannot serve."""
    saved = read_checkpoint(path)
    model.load_state_dict(saved.pop("model"))  # copies onto the model's device
    optimizer.load_state_dict(saved.pop("optimizer"))  # moves state to the weights' device
    scheduler.load_state_dict(saved.pop("scheduler"))
    scaler_state = saved.pop("scaler", {})
    if scaler_state:
        scaler.load_state_dict(scaler_state)
    rng.bit_generator.state = saved.pop("numpy_rng")
    torch.set_rng_state(saved.pop("torch_rng"))
    cuda_rng = saved.pop("cuda_rng", None)
    if cuda_rng is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_rng)
    return saved
