"""Where and in what precision the model runs: a GPU if there is one, and the precision that
is fastest there.

Autocast runs matrix products in bf16 or fp16 while the weights, the optimiser state and the
saved model stay fp32, so a model trained here loads and serves anywhere.

- On a GPU, `auto` is bf16 where the GPU computes it natively (Ampere and newer), else fp16
  with loss scaling (a T4 or V100, whose bf16 is emulated and slow).
- On a CPU, `auto` is measured, not read off the CPU flags: an AMD EPYC with AVX-512 BF16
  trained 1.4-1.5x faster in bf16, while an Intel Xeon with the same flag but no AMX scored
  ~30% slower in bf16 than in fp32. `steps.precision_probe` times both and remembers the
  answer for this machine.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from steps.config import PRECISIONS
from steps.errors import UserError

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


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def gpu_precision(device: torch.device) -> Precision:
    """bf16 where the GPU computes it natively, else fp16 (loss scaling in training)."""
    name = torch.cuda.get_device_name(device)
    major, minor = torch.cuda.get_device_capability(device)
    where = f"{name} (compute capability {major}.{minor})"
    if torch.cuda.is_bf16_supported(including_emulation=False):
        return Precision("bf16", "bf16", f"{where} computes bf16 natively")
    return Precision("fp16", "fp16", f"{where} has no native bf16: fp16 with loss scaling")


def choose_precision(precision: str, model) -> Precision:
    """Resolve `precision` (auto|fp32|bf16|fp16) for `model` on the device it sits on."""
    if precision not in PRECISIONS:
        raise UserError(f"precision='{precision}' is not one of {', '.join(PRECISIONS)}")
    device = next(model.parameters()).device
    if precision == "fp16" and device.type != "cuda":
        raise UserError("precision=fp16 needs a CUDA GPU and none is in use: pass auto, fp32 "
                        "or bf16")
    if precision != "auto":
        return Precision(precision, precision, "asked for with -P precision")
    if device.type == "cuda":
        return gpu_precision(device)
    from steps.precision_probe import measured_cpu_precision

    return measured_cpu_precision(model)


def autocast(precision: str, device: torch.device):
    """The forward-pass context for a resolved precision."""
    if precision in _DTYPES:
        return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])
    return contextlib.nullcontext()


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for fp16, whose small range underflows gradients; a no-op otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
