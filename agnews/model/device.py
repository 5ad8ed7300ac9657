"""Where the model runs (a GPU if there is one), and what a resolved precision means there:
autocast for the forward passes and loss scaling for fp16. Which precision `auto` picks is
decided in `agnews.model.precision`.

Autocast runs matrix products in bf16 or fp16 while the weights, the optimiser state and the
saved model stay fp32, so a model trained here loads and serves anywhere.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from agnews.tracking.lineage import cpu_model

# oneDNN's kernel cache (ONEDNN_PRIMITIVE_CACHE_CAPACITY) is left at its default of 1,024:
# training builds kernels for ~9 batch shapes x every layer, forward and backward, and a cap of
# 8 rebuilt them all the time: the default train step took 23 s an epoch instead of 25-26 s,
# for 37 MB more peak memory (1,198 vs 1,161 MB). Set it in the environment to trade back.

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """The resolved precisions of one step, and why (recorded on its run)."""

    train: str     # fp32 | bf16 | fp16: the forward and backward passes of training
    score: str     # fp32 | bf16 | fp16: forward passes without gradients
    reason: str

    def tags(self) -> dict[str, str]:
        return {"precision_train": self.train, "precision_score": self.score,
                "precision_reason": self.reason}


def device_name(device: torch.device) -> str:
    """What the model ran on, for a run's tags and the model card: the GPU's name, or the
    CPU's model and the threads torch uses (a speed means little without both)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()}, {torch.get_num_threads()} threads"


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(precision: str, device: torch.device):
    """The forward-pass context for a resolved precision."""
    if precision in _DTYPES:
        return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])
    return contextlib.nullcontext()


def release_freed_memory() -> None:
    """Hand the memory a phase freed back to the system before the next one allocates: glibc
    keeps freed memory in its arenas, fragmented, so the next phase's tensors (a scoring pass's
    batches after training's, the exporter's copies of the weights) would stack on top of the
    last phase's peak instead of reusing it."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to hand back
        pass


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for fp16, whose small range underflows gradients; a no-op otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
